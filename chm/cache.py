"""A disk cache of filter-bank features for images that are used again and again.

Experiments train dozens of models on the same images (one per sparse-label draw and method):
the filter bank of each (image, level) is then computed once and memory-mapped afterwards.
Features are stored as float16 (about 3 significant digits: far below the noise of the
features), so a model trained through the cache differs slightly from one trained without it;
the same cache and seed still give the same model.
"""

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["FeatureCache", "bank_features"]


class FeatureCache:
    """Filter-bank outputs kept as ``.npy`` files in ``folder``, keyed by image content and bank.

    Parameters
    ----------
    folder : str or Path
        Created if missing. Safe to share between processes (files are written atomically).
    """

    def __init__(self, folder):
        self.folder = Path(folder)

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
        return f"FeatureCache({str(self.folder)!r})"


def bank_features(image, bank, cache=None):
    """Filter-bank features of one level image, through ``cache`` when one is given."""
    return bank(image) if cache is None else cache.get(image, bank)
