"""chm: Contextual Hierarchical Models that learn segmentation from a few labelled pixels.

Pipeline, one module each: ``features`` (filter bank, a sibling package) -> ``chm.pyramid``
(resampling, contexts) -> ``chm.classifiers`` (LDNN, logistic; numba SGD in ``chm._sgd``) ->
``chm.losses`` (supervised, total variation) -> ``chm.model`` (the cascade) -> ``chm.mrf``
(post-processing baseline); ``chm.datasets`` and ``chm.metrics`` for experiments.
``chm.ConvNet`` (``chm.convnet``, network in ``chm.patchnet``) is the paper's ConvNet; it needs
PyTorch (the ``convnet`` extra) and is imported on first use, so ``import chm`` never loads torch.
"""

__version__ = "0.1.0"

from .model import CHM  # noqa: E402
from .persistence import load  # noqa: E402

__all__ = ["CHM", "ConvNet", "load", "__version__"]


def __getattr__(name):
    if name == "ConvNet":
        from .convnet import ConvNet

        return ConvNet
    raise AttributeError(f"module 'chm' has no attribute {name!r}")
