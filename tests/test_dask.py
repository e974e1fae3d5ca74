"""CHM on a dask.distributed cluster through joblib's "dask" backend.

``CHM(n_jobs=None)`` leaves the choice to an enclosing ``joblib.parallel_config``; under
``backend="dask"`` joblib then uses the backend's default (n_jobs=-1: every worker), so the
per-image work of fit (training rows, context maps) and of predict must run on the dask workers
and give bit-for-bit the model and maps of the sequential run (``n_jobs=1``).

Needs ``dask[distributed]`` (``pip install -e ".[dask]"``); skipped otherwise. The cluster
listens on loopback only and is closed in the fixture teardown.
"""

import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

distributed = pytest.importorskip(
    "dask.distributed", reason="dask.distributed is not installed (pip install -e '.[dask]')")

from chm import CHM  # noqa: E402

from chm.datasets import make_shapes

TINY = dict(levels=1, stages=2, features=("haar", "intensity"), context_radius=3,
            classifier_params={"n_groups": 2, "n_nodes": 2}, epochs=3, progress=False, random_state=0)

# The per-image functions (chm.cascade.sampling, chm.cascade.inference, chm.model) that fit and predict
# ship to joblib workers.
PER_IMAGE_FUNCS = ("training_rows", "level_map", "_predict_one")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images, masks = make_shapes(6, shape=(24, 30), rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.1, m, -1).astype(np.int8) for m in masks]
    return images, labels


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    try:
        cl = distributed.Client(cluster)
        try:
            yield cl
        finally:
            cl.close()
    finally:
        cluster.close()


def _executed(client):
    """Tasks each worker has executed so far (address -> count)."""
    return client.run(lambda dask_worker: dask_worker.state.executed_count)


@pytest.mark.parametrize("n_jobs", [None, -1])
def test_fit_predict_on_dask_workers_equals_sequential(client, data, n_jobs):
    images, labels = data
    ref = CHM(**TINY, n_jobs=1).fit(images, labels)
    ref_proba = ref.predict_proba(images)

    before = _executed(client)
    with distributed.get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        model = CHM(**TINY, n_jobs=n_jobs).fit(images, labels)
        proba = model.predict_proba(images)
        masks = model.predict(images)
    after = _executed(client)

    # The per-image work really ran on the cluster's worker processes.
    workers = set(client.scheduler_info()["workers"])
    ran = {w: after[w] - before.get(w, 0) for w in after}
    assert sum(ran.values()) > 0, f"no task ran on the dask workers: {ran}"
    assert {t["worker"] for t in stream.data} <= workers
    keys = " ".join(str(t["key"]) for t in stream.data)
    for func in PER_IMAGE_FUNCS:
        assert func in keys, f"{func} never ran on a dask worker (task keys: {keys[:300]})"

    # ... and gave exactly the sequential model and maps.
    assert model.classifiers_.keys() == ref.classifiers_.keys()
    for key, clf in ref.classifiers_.items():
        np.testing.assert_array_equal(model.classifiers_[key].W_, clf.W_, err_msg=f"classifier {key}")
    assert len(proba) == len(ref_proba)
    for i, (p, q) in enumerate(zip(proba, ref_proba)):
        np.testing.assert_array_equal(p, q, err_msg=f"image {i}")
    for p, q in zip(masks, ref.predict(images)):
        np.testing.assert_array_equal(p, q)
