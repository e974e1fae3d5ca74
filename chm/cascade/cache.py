"""A disk cache of filter-bank features for images that are used again and again.

Experiments train dozens of models on the same images (one per sparse-label draw and method):
the filter bank of each (image, level) is then computed once and memory-mapped afterwards.
Features are stored as float16 (about 3 significant digits: far below the noise of the
features), so a model trained through the cache differs slightly from one trained without it;
the same cache and seed still give the same model.

All of the filter bank's maps are large (the 476-feature bank: about 2 KB per pixel over the
pyramid, 24 GB for the 328 Weizmann images), so a cache can be given a budget: once its folder
holds ``max_bytes``, new entries are computed but not stored. The first images fill it, and
those are the ones every later fit reads first. Whether stored or not, features come out of a
cache as float16, so the model does not depend on which entries were stored.
"""

import hashlib
import os
import tempfile
import threading
import time
import weakref
from pathlib import Path

import numpy as np

from ..utils._signals import on_interrupt
from ..utils import process_alive
from ._scratch import scratch
from .pyramid import level_shape

__all__ = ["FeatureCache", "FeatureSource", "bank_features", "footprint", "remove_orphans"]

_OPEN = weakref.WeakSet()  # this process's caches, for remove_orphans after a stop


class FeatureCache:
    """Filter-bank outputs kept as ``.npy`` files in ``folder``, keyed by image content and bank.

    A bank with feature channels (:class:`chm.features.FeatureChannels`) takes the image's planes
    with the channels' behind them, so an entry is keyed by the channels' values too, and by
    their standardisation.

    Parameters
    ----------
    folder : str or Path
        Created if missing. Safe to share between processes (files are written atomically).
    max_bytes : int or None
        Stop storing new entries once the folder's ``.npy`` files hold this many bytes (a few
        processes filling it at once may pass it by an entry each); None = no limit.

    Attributes
    ----------
    hits, misses : int
        :meth:`get` calls on this object that read an entry / computed the features. A copy
        shipped to a worker process counts there, so these see the work of the threads of this
        process only (``n_jobs=1``, or joblib's threading backend).
    """

    def __init__(self, folder, max_bytes=None):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._count_lock = threading.Lock()
        self.remove_orphans()
        _OPEN.add(self)
        on_interrupt(remove_orphans)  # after a stop, the temp files of the workers it killed

    def remove_orphans(self):
        """Delete temporary files whose writer died mid-write; returns how many are left.

        An entry is written to ``<pid>.<random>.npy.part`` and renamed into place; a worker
        killed in between (a stopped experiment kills its busy workers) cannot remove its file.
        Files of writers still running are left alone.
        """
        left = 0
        if self.folder.is_dir():
            for e in os.scandir(self.folder):
                if not e.name.endswith(".npy.part"):
                    continue
                pid = e.name.split(".", 1)[0]
                if pid.isdigit() and not process_alive(int(pid)):
                    try:
                        os.remove(e.path)
                    except FileNotFoundError:
                        pass
                else:
                    left += 1
        return left

    def size(self):
        """Bytes held by the cache's entries."""
        if not self.folder.is_dir():
            return 0
        return sum(e.stat().st_size for e in os.scandir(self.folder) if e.name.endswith(".npy") and e.is_file())

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_count_lock"]  # a lock does not pickle (joblib ships the cache to workers)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._count_lock = threading.Lock()

    def _count(self, hit):
        with self._count_lock:  # threads of one fit share the cache
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def _path(self, image, bank):
        h = hashlib.sha1(np.ascontiguousarray(image, dtype=np.float64).tobytes())
        h.update(repr((image.shape, tuple(bank.families))).encode())
        if bank.channels is not None:
            # The channels' planes are in ``image``; their standardisation is the bank's. (Only
            # then: the keys of banks without channels stay those of existing caches.)
            h.update(repr(bank.channels.to_dict()).encode())
        return self.folder / f"{h.hexdigest()}.npy"

    def get(self, image, bank):
        """``bank(image)``, from the cache when it is there (a read-only float16 memmap)."""
        path = self._path(image, bank)
        if path.exists():
            try:
                feats = np.load(path, mmap_mode="r")
                self._count(hit=True)
                return feats
            except (ValueError, OSError):
                path.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
        self._count(hit=False)
        feats = bank(image, out=bank_scratch("cache", np.shape(image), bank)).astype(np.float16)
        if self.max_bytes is not None and self.size() + feats.nbytes > self.max_bytes:
            return feats  # over budget: used, not stored
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{os.getpid()}.", suffix=".npy.part", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, feats)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return feats

    def __repr__(self):
        budget = "" if self.max_bytes is None else f", max_bytes={self.max_bytes!r}"
        return f"FeatureCache({str(self.folder)!r}{budget})"


def remove_orphans(timeout=3.0):
    """:meth:`FeatureCache.remove_orphans` for every cache this process opened, waiting up to
    ``timeout`` seconds for killed workers to die. Called after a stop has killed the workers."""
    deadline = time.monotonic() + timeout
    while sum(c.remove_orphans() for c in list(_OPEN)) and time.monotonic() < deadline:
        time.sleep(0.05)


def footprint(shapes, levels, n_features):
    """Bytes a cache needs to hold every level 0..``levels`` of images of these ``shapes``."""
    return sum(2 * n_features * int(np.prod(level_shape(shape, l))) for shape in shapes for l in range(levels + 1))


def bank_features(image, bank, cache=None, scratch_key=None):
    """Filter-bank features of one level image, through ``cache`` when one is given.

    ``scratch_key``: without a cache, compute into this thread's reusable buffer of that name
    (:func:`chm._scratch.scratch`) instead of a new array, for features the caller drops before
    its next call with the same key.
    """
    if cache is not None:
        return cache.get(image, bank)
    if scratch_key is None:
        return bank(image)
    return bank(image, out=bank_scratch(scratch_key, np.shape(image), bank))


def bank_scratch(key, shape, bank):
    """This thread's reusable buffer ``key`` shaped for ``bank``'s features of an image of ``shape``."""
    return scratch(key, tuple(shape[:2]) + (bank.n_features,))


class FeatureSource:
    """Where a cascade reads its filter-bank features: the bank, through a cache or not.

    Parameters
    ----------
    bank : chm.features.FilterBank
    cache : FeatureCache or None
        Computed features are kept (float16, on disk) and reused; None computes them every time.
    """

    def __init__(self, bank, cache=None):
        self.bank, self.cache = bank, cache

    def __call__(self, image, scratch_key=None):
        """The bank's (H, W, F) features of one level image (see :func:`bank_features`)."""
        return bank_features(image, self.bank, self.cache, scratch_key)

    def many(self, images, n_threads=1, scratch_keys=None, frames=None):
        """Features of several level images; without a cache ``n_threads`` threads share them,
        each written into this thread's scratch buffer of its key when ``scratch_keys`` is given.
        ``frames``: each image's :class:`chm.features.Frame` (tiles of a larger image)."""
        if self.cache is not None:
            if frames is not None:
                # Entries are keyed by content, and a tile's features depend on its frame too.
                raise ValueError("a FeatureCache holds the features of whole images, not of framed tiles")
            return [self.cache.get(im, self.bank) for im in images]
        outs = None if scratch_keys is None else [bank_scratch(k, im.shape, self.bank)
                                                  for k, im in zip(scratch_keys, images)]
        return self.bank.many(images, n_threads, out=outs, frames=frames)
