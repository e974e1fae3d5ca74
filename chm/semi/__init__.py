"""Learning from the unlabelled pixels.

``losses`` (the paper's TV loss and the contrast-sensitive one, eq. 8-15), ``superpixels``
(spreading sparse labels over Felzenszwalb segments), ``selftraining`` (graph-cut proposals of
the training images) and ``recipes`` (the named methods of ``CHM(semi_supervised=...)`` and the
weights each gets).
"""
