"""Plain numpy references ("oracles") of the library's numba kernels, for the tests only.

One module per library subpackage: :mod:`.sgd` (``chm.classifiers._sgd``), :mod:`.mrf`
(``chm.mrf._kernels``), :mod:`.features` (``chm.features``: hog, sift, haar, stencil). Each
function states which kernel it mirrors; the tests compare the kernel with it on small inputs.
They are written for clarity, not speed, and the library never imports them.
"""
