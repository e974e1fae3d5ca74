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
from pathlib import Path

import numpy as np

__all__ = ["FeatureCache", "bank_features", "footprint"]


class FeatureCache:
    """Filter-bank outputs kept as ``.npy`` files in ``folder``, keyed by image content and bank.

    Parameters
    ----------
    folder : str or Path
        Created if missing. Safe to share between processes (files are written atomically).
    max_bytes : int or None
        Stop storing new entries once the folder's ``.npy`` files hold this many bytes (a few
        processes filling it at once may pass it by an entry each); None = no limit.
    """

    def __init__(self, folder, max_bytes=None):
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def size(self):
        """Bytes held by the cache's entries."""
        if not self.folder.is_dir():
            return 0
        return sum(e.stat().st_size for e in os.scandir(self.folder) if e.name.endswith(".npy") and e.is_file())

    def _path(self, image, bank):
        h = hashlib.sha1(np.ascontiguousarray(image, dtype=np.float64).tobytes())
        h.update(repr((image.shape, tuple(bank.families))).encode())
        return self.folder / f"{h.hexdigest()}.npy"

    def get(self, image, bank):
        """``bank(image)``, from the cache when it is there (a read-only float16 memmap)."""
        path = self._path(image, bank)
        if path.exists():
            try:
                return np.load(path, mmap_mode="r")
            except (ValueError, OSError):
                path.unlink(missing_ok=True)  # a damaged entry is recomputed, never trusted
        feats = bank(image).astype(np.float16)
        if self.max_bytes is not None and self.size() + feats.nbytes > self.max_bytes:
            return feats  # over budget: used, not stored
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npy.part", dir=self.folder)
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


def footprint(shapes, levels, n_features):
    """Bytes a cache needs to hold every level 0..``levels`` of images of these ``shapes``."""
    from .pyramid import level_shape

    return sum(2 * n_features * int(np.prod(level_shape(shape, l))) for shape in shapes for l in range(levels + 1))


def bank_features(image, bank, cache=None):
    """Filter-bank features of one level image, through ``cache`` when one is given."""
    return bank(image) if cache is None else cache.get(image, bank)
