"""Per-thread reusable buffers for large arrays that live only until the next image.

A fresh (H, W, 215) float32 filter-bank output of a 210 x 260 image is 47 MB: above glibc's
largest mmap threshold (32 MB), so every ``np.empty`` of it maps new pages and the first write to
each page faults (8.8 ms measured to allocate and touch 63 MB, against 0.4 ms to rewrite a kept
buffer's two Haar columns). Writing into a kept buffer instead saves that per level image.
"""

import threading

import numpy as np

__all__ = ["scratch"]

_local = threading.local()


def scratch(key, shape, dtype=np.float32):
    """An uninitialised array of ``shape`` in this thread's buffer ``key``.

    Valid until the next call with the same ``key`` in the same thread, which overwrites it: only
    for arrays the caller drops before that. The buffer grows to the largest size asked for.
    """
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    n, dtype = int(np.prod(shape)), np.dtype(dtype)
    buf = bufs.get(key)
    if buf is None or buf.size < n or buf.dtype != dtype:
        buf = bufs[key] = None  # release the smaller one first
        buf = bufs[key] = np.empty(n, dtype)
    return buf[:n].reshape(shape)
