"""Row-chunked evaluation of a classifier on threads.

A prediction evaluates each classifier on every pixel of an image in chunks of rows small enough
to stay in cache. The chunks are independent, so ``n_threads`` threads can share them: the matrix
products, numpy's element-wise work and the numba stencil gather all release the GIL. Every chunk
runs its product on one BLAS thread whatever ``n_threads`` is, so the result is the same bit for
bit for any number of threads (and the same as the fit's own maps, which run on one BLAS thread).
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..utils._blas import one_blas_thread

__all__ = ["for_row_chunks", "predict_rows"]


def for_row_chunks(fn, n, chunk, n_threads=1):
    """Call ``fn(start, stop)`` for consecutive ranges of ``chunk`` rows covering ``range(n)``.

    ``n_threads`` > 1 runs the calls on that many threads (in no fixed order; ``fn`` must write
    disjoint outputs). Errors propagate.
    """
    ranges = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    with one_blas_thread():
        if n_threads <= 1 or len(ranges) < 2:
            for a, b in ranges:
                fn(a, b)
            return
        with ThreadPoolExecutor(min(n_threads, len(ranges))) as pool:
            for f in [pool.submit(fn, a, b) for a, b in ranges]:
                f.result()


def predict_rows(X, W, head, width=None, chunk=4096, n_threads=1):
    """``head(z)`` for the first layer's outputs ``z = X @ W[:, :-1].T + W[:, -1]`` of every row.

    Parameters
    ----------
    X : (n, d) array, or a list of (n, d_k) column blocks whose widths add up to d
        A block may be a :class:`features.StencilRows` (rows made when sliced), which saves
        building and concatenating the whole matrix.
    W : (units, d + 1) float32 ndarray
        First-layer weights, bias last.
    head : callable
        Maps a chunk's (rows, units) float32 ``z`` (its own array: it may work in place) to the
        chunk's outputs.
    width : int or None
        Outputs per row: None gives an (n,) result, an int (n, width).
    chunk, n_threads
        As :func:`for_row_chunks`.

    Returns
    -------
    float32 ndarray
    """
    blocks = list(X) if isinstance(X, (list, tuple)) else [X]
    blocks = [b if hasattr(b, "shape") else np.asarray(b) for b in blocks]
    widths = [b.shape[1] if b.ndim == 2 else -1 for b in blocks]
    if any(b.ndim != 2 or len(b) != len(blocks[0]) for b in blocks) or sum(widths) != W.shape[1] - 1:
        raise ValueError(f"X must have shape (n, {W.shape[1] - 1}), got blocks of widths {widths}")
    edges = np.cumsum([0] + widths)
    Wts = [np.ascontiguousarray(W[:, a:b].T) for a, b in zip(edges[:-1], edges[1:])]
    n = len(blocks[0])
    out = np.empty(n if width is None else (n, width), dtype=np.float32)

    def rows(s, e):
        z = np.zeros((e - s, W.shape[0]), dtype=np.float32)
        for b, Wt in zip(blocks, Wts):
            z += b[s:e].astype(np.float32, copy=False) @ Wt
        z += W[:, -1]
        out[s:e] = head(z)

    for_row_chunks(rows, n, chunk, n_threads)
    return out
