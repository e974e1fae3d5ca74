"""chm: Contextual Hierarchical Models that learn segmentation from a few labelled pixels.

Pipeline, one module each: ``features`` (filter bank, a sibling package) -> ``chm.pyramid``
(resampling, contexts) -> ``chm.classifiers`` (LDNN, logistic; numba SGD in ``chm._sgd``) ->
``chm.losses`` (supervised, total variation) -> ``chm.model`` (the cascade) -> ``chm.mrf``
(post-processing baseline); ``chm.datasets`` and ``chm.metrics`` for experiments.
"""

__version__ = "0.1.0"

from .model import CHM  # noqa: E402
from .persistence import load  # noqa: E402

__all__ = ["CHM", "load", "__version__"]
