"""Per-thread reusable buffers for large arrays that live only until the next image.

A fresh (H, W, 215) float32 filter-bank output of a 210 x 260 image is 47 MB: above glibc's
largest mmap threshold (32 MB), so every ``np.empty`` of it maps new pages and the first write to
each page faults (8.8 ms measured to allocate and touch 63 MB, against 0.4 ms to rewrite a kept
buffer's two Haar columns). Writing into a kept buffer instead saves that per level image.

The buffers a process keeps, all threads together, hold at most :data:`BUDGET` bytes; a larger
request gets a fresh array that is freed with its last reference. Kept buffers would otherwise
grow to the largest image's bank and stay: joblib's loky restarts a worker whose memory has grown
by 300 MB since its first job, warning of a memory leak mid-fit (a 508 x 560 horse's level-0 bank
is 245 MB; 640 x 640 is 352 MB).
"""

import threading
import weakref

import numpy as np

__all__ = ["BUDGET", "kept_bytes", "scratch"]

BUDGET = 128 * 2**20  # bytes: the bank of every level of a 300 x 380 image, far below loky's 300 MB

_local = threading.local()
_lock = threading.Lock()
_kept = 0  # bytes of kept buffers still allocated (a dead thread's are released with it)


def _release(nbytes):
    global _kept
    with _lock:
        _kept -= nbytes


def kept_bytes():
    """Bytes held by this process's kept buffers."""
    return _kept


def scratch(key, shape, dtype=np.float32):
    """An uninitialised array of ``shape`` in this thread's buffer ``key``.

    Valid until the next call with the same ``key`` in the same thread, which overwrites it: only
    for arrays the caller drops before that. The buffer grows to the largest size asked for
    while all kept buffers fit in :data:`BUDGET`; beyond it the array is a new one, not kept.
    """
    global _kept
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    n, dtype = int(np.prod(shape)), np.dtype(dtype)
    buf = bufs.get(key)
    if buf is not None and buf.size >= n and buf.dtype == dtype:
        return buf[:n].reshape(shape)
    nbytes = n * dtype.itemsize
    with _lock:  # reserve the bytes, counting the smaller buffer as released
        keep = _kept - (0 if buf is None else buf.nbytes) + nbytes <= BUDGET
        if keep:
            _kept += nbytes
    if not keep:
        return np.empty(shape, dtype)  # the kept (smaller) buffer stays for the next image
    if buf is not None:
        del bufs[key], buf  # release the smaller one first
    try:
        buf = np.empty(n, dtype)
    except BaseException:
        _release(nbytes)
        raise
    weakref.finalize(buf, _release, nbytes)
    bufs[key] = buf
    return buf[:n].reshape(shape)
