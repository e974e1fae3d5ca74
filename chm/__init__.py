"""chm: Contextual Hierarchical Models that learn segmentation from a few labelled pixels.

The pipeline, one subpackage each: ``chm.features`` (the filter bank) -> ``chm.cascade`` (pyramid,
contexts, training rows, the training loop and inference) -> ``chm.classifiers`` (LDNN, logistic,
softmax; numba SGD) -> ``chm.semi`` (the TV and contrast losses, superpixels, self-training) ->
``chm.model`` (:class:`CHM`, the estimator) -> ``chm.mrf`` (the post-processing baseline).
``chm.io`` reads images and reads and writes model files, ``chm.datasets`` loads the paper's data
sets and samples sparse labels, ``chm.metrics`` and ``chm.selection`` score and choose.
``chm.ConvNet`` (``chm.convnet``) is the paper's ConvNet; it needs PyTorch (the ``convnet`` extra)
and is imported on first use, so ``import chm`` never loads torch.
"""

from ._version import __version__
from . import _compat  # noqa: F401  (one release of the module paths before chm 0.2's subpackages)
from .io.persistence import load
from .model import CHM

__all__ = ["CHM", "ConvNet", "load", "__version__"]


def __getattr__(name):
    if name == "ConvNet":
        from .convnet import ConvNet

        return ConvNet
    raise AttributeError(f"module 'chm' has no attribute {name!r}")
