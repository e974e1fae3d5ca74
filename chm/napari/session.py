"""What the napari widget keeps between clicks: the model and the feature cache that makes a retrain fast.

No Qt here: the widget runs :meth:`Session.train` and :meth:`Session.predict` in a worker thread,
and ``benchmarks/napari_latency.py`` times them without a viewer.
"""

import tempfile
import threading

import joblib
import numpy as np

from chm import CHM, load
from chm.cascade.cache import FeatureCache
from chm.cascade.pyramid import level_shape

__all__ = ["CACHE_BYTES", "METHODS", "Cancelled", "Session", "fit_levels"]

#: The widget's methods: label -> ``CHM(semi_supervised=...)``. "auto" learns from the unlabelled
#: pixels too (the README's recommendation for accuracy) at 10-30 times the fit's time
#: (benchmarks/napari_latency.py: about a minute for a 512 x 512 image).
METHODS = {"supervised (fast)": None, "semi-supervised: auto (slower)": "auto"}

#: Disk the feature cache may fill (about 0.5 KB per pixel with the default bank and levels):
#: a few hundred 512 x 512 slices' features; past it, new features are computed, not stored.
CACHE_BYTES = 8 * 2**30

_MIN_COARSE_SIDE = 4  # as chm.CHM: the coarsest level keeps this many pixels a side


class Cancelled(Exception):
    """Training or prediction stopped because its ``cancel`` event was set."""


def fit_levels(shapes, levels):
    """The largest level count up to ``levels`` that every image of ``shapes`` is big enough for."""
    while levels > 0 and any(min(level_shape(s[:2], levels)) < _MIN_COARSE_SIDE for s in shapes):
        levels -= 1
    return levels


class Session:
    """A model trained and retrained on the same images, through one feature cache.

    The filter bank of each (image, level) is computed at the first fit and read from disk at
    every later one, so a retrain after a few more strokes skips the costliest pass. The cache
    lives in a temporary folder until :meth:`close`.

    Parameters
    ----------
    model_params : dict, optional
        Further :class:`chm.CHM` parameters (e.g. ``{"levels": 1, "epochs": 3}`` for a quick
        look); ``levels`` is lowered where the images are too small for it.
    cache_bytes : int
        Budget of the feature cache (:data:`CACHE_BYTES`).

    Attributes
    ----------
    model : chm.CHM or None
        The last model trained or loaded.
    cache : chm.cascade.cache.FeatureCache
        Its ``hits`` and ``misses`` count the features read and computed.
    """

    def __init__(self, model_params=None, cache_bytes=CACHE_BYTES):
        self.model_params = dict(model_params or {})
        self.model = None
        self._folder = tempfile.TemporaryDirectory(prefix="chm-napari-")
        self.cache = FeatureCache(self._folder.name, max_bytes=cache_bytes)

    def train(self, images, labels, n_classes, semi_supervised=None, progress=None, cancel=None, channels=None):
        """Fit a new model; :attr:`model` is replaced only when the fit completes.

        Parameters
        ----------
        images, labels : lists of arrays
            2-D images and API labels (-1 unlabelled, 0 .. K-1), as :meth:`chm.CHM.fit` takes.
        channels : list of arrays, optional
            Each image's feature channels, as :meth:`chm.CHM.fit` takes them.
        n_classes : int
        semi_supervised : None or str
            As ``chm.CHM(semi_supervised=...)``.
        progress : callable(desc, done, total), optional
            Called as each stage starts and advances.
        cancel : threading.Event, optional
            Once set, the fit stops at its next step (an SGD epoch, an image) with :class:`Cancelled`.

        Returns
        -------
        chm.CHM
        """
        params = {"random_state": 0, **self.model_params}
        params["levels"] = fit_levels([np.shape(im) for im in images], params.get("levels", 3))
        model = CHM(n_classes=n_classes, semi_supervised=semi_supervised, feature_cache=self.cache,
                    progress=_reporter(progress, cancel), **params)
        # Threads rather than processes: no worker start-up, no copies of the images, and the
        # cache's hit counts see every read.
        with joblib.parallel_config(backend="threading", n_jobs=-1):
            model.fit(images, labels, channels=channels)
        model.set_params(progress=False)
        self.model = model
        return model

    def predict(self, images, cached=None, progress=None, cancel=None, channels=None):
        """:meth:`chm.CHM.predict_proba` of each image, one at a time (the cores share its filter bank).

        ``cached[i]``: read image i's features through the cache (training images, whose
        features are there); others are computed and not stored, so predicting a long stack
        does not fill the disk. ``progress`` and ``cancel`` as in :meth:`train` (a step is an image).
        ``channels``: each image's feature channels, for a model fitted with them.
        """
        if self.model is None:
            raise RuntimeError("no model yet: train or load one")
        report = _reporter(progress, cancel)
        cached = [False] * len(images) if cached is None else cached
        out = []
        report("predict", 0, len(images))
        with joblib.parallel_config(backend="threading", n_jobs=-1):
            for i, (im, through_cache) in enumerate(zip(images, cached)):
                self.model.set_params(feature_cache=self.cache if through_cache else None)
                out.append(self.model.predict_proba([im], channels=None if channels is None else [channels[i]])[0])
                report("predict", i + 1, len(images))
        return out

    def save(self, path):
        """Write the model (chm's ``.npz``, atomically); returns the path written."""
        if self.model is None:
            raise RuntimeError("no model yet: train or load one")
        return self.model.save(path)

    def load(self, path):
        """Read a model saved by the plugin, :meth:`chm.CHM.save` or ``chm train``."""
        model = load(path)
        if not isinstance(model, CHM):
            raise ValueError(f"{path} holds a {type(model).__name__}; the plugin uses chm.CHM models")
        self.model = model.set_params(progress=False)
        return self.model

    def close(self):
        """Delete the feature cache."""
        self._folder.cleanup()


def _reporter(progress, cancel):
    """The ``CHM(progress=...)`` callback: raise :class:`Cancelled` once ``cancel`` is set, else pass on."""
    cancel = cancel or threading.Event()

    def report(desc, done, total):
        if cancel.is_set():
            raise Cancelled(desc)
        if progress is not None:
            progress(desc, done, total)

    return report
