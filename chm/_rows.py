"""Row-chunked evaluation of a classifier on threads.

A prediction evaluates each classifier on every pixel of an image in chunks of rows small enough
to stay in cache. The chunks are independent, so ``n_threads`` threads can share them: the matrix
products, numpy's element-wise work and the numba stencil gather all release the GIL. Every chunk
runs its product on one BLAS thread whatever ``n_threads`` is, so the result is the same bit for
bit for any number of threads (and the same as the fit's own maps, which run on one BLAS thread).
"""

from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits

__all__ = ["for_row_chunks"]


def for_row_chunks(fn, n, chunk, n_threads=1):
    """Call ``fn(start, stop)`` for consecutive ranges of ``chunk`` rows covering ``range(n)``.

    ``n_threads`` > 1 runs the calls on that many threads (in no fixed order; ``fn`` must write
    disjoint outputs). Errors propagate.
    """
    ranges = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    with threadpool_limits(1, user_api="blas"):
        if n_threads <= 1 or len(ranges) < 2:
            for a, b in ranges:
                fn(a, b)
            return
        with ThreadPoolExecutor(min(n_threads, len(ranges))) as pool:
            for f in [pool.submit(fn, a, b) for a, b in ranges]:
                f.result()
