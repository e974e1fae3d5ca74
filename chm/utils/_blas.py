"""One BLAS thread for a block of work, at a cost that suits per-image calls.

``threadpoolctl.threadpool_limits`` looks up every loaded library on each use (0.7 ms measured,
about as long as a coarse level's whole map); a controller made once per process and reused costs
0.01 ms. Made after numpy's and scipy's BLAS are loaded, so it limits both.
"""

from functools import lru_cache

__all__ = ["one_blas_thread"]


@lru_cache(maxsize=None)
def _controller():
    import numpy  # noqa: F401  (their BLAS libraries must be loaded before the lookup)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """Context manager: BLAS calls inside run on one thread (the same sums for any ``n_jobs``)."""
    return _controller().limit(limits=1, user_api="blas")
