"""A fit with joblib workers keeps each worker's memory flat: loky does not restart one mid-fit.

loky measures a worker's resident memory after its first job and restarts the worker, warning
"A worker stopped while some jobs were given to the executor ... memory leak", once that has
grown by 300 MB. The per-thread scratch buffers of the filter bank (:mod:`chm.cascade._scratch`)
used to grow to the largest image's bank and stay: a 640 x 640 image's level-0 bank alone is
350 MB.
"""

import warnings

import numpy as np
import pytest

from chm import CHM
from chm.cascade import _scratch

pytest.importorskip("psutil")  # loky checks workers' memory only with psutil


def test_fit_with_workers_restarts_none():
    rng = np.random.default_rng(0)
    # Each worker's first job is a small image (loky's reference), then a large one, then more
    # work is queued: a worker stopped for its memory would warn.
    shapes = [(40, 50), (40, 50), (640, 640), (640, 640)] + [(40, 50)] * 4
    images = [rng.random(s) for s in shapes]
    labels = []
    for im in images:
        lab = np.full(im.shape, -1, np.int8)
        lab[5:10, 5:10], lab[20:25, 30:35] = 0, 1
        labels.append(lab)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CHM(levels=1, stages=2, epochs=2, n_jobs=2, progress=False, random_state=0).fit(images, labels)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "worker stopped" in m], messages


def test_scratch_keeps_buffers_within_budget():
    import threading

    small = _scratch.scratch(("test", 0), (100, 100, 10))
    assert np.shares_memory(small, _scratch.scratch(("test", 0), (90, 100, 10)))  # reused
    big_shape = (_scratch.BUDGET // 4 + 1,)
    big = _scratch.scratch(("test", 0), big_shape)
    assert big.shape == big_shape and not np.shares_memory(big, small)
    assert np.shares_memory(small, _scratch.scratch(("test", 0), (100, 100, 10)))  # still kept
    assert _scratch.kept_bytes() <= _scratch.BUDGET
    before = _scratch.kept_bytes()
    thread = threading.Thread(target=_scratch.scratch, args=(("test", 1), (1000, 1000)))
    thread.start()
    thread.join()
    del thread
    import gc

    gc.collect()
    assert _scratch.kept_bytes() == before  # a finished thread's buffers are released
