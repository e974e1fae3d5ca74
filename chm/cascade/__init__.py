"""The cascade: the image pyramid, context features, training rows and the training loop.

Modules in pipeline order: ``pyramid`` (halving, label pooling), ``cache`` (the filter bank's
features of every level image, optionally on disk), ``contexts`` (stencil features of earlier
classifiers' maps), ``sampling`` (training rows), ``normalisation`` (robust scaling), ``spec``
(what the cascade is: schedule, stencils, classifier per level), ``training`` (fit and
self-train the cascade), ``inference`` (run a fitted cascade over whole images) and ``tiling``
(over a large image a tile at a time, with the whole image's result).
Nothing here imports :mod:`chm.model`: the estimator hands the cascade value objects.
"""
