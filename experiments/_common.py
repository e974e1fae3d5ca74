"""What the experiment and benchmark scripts share: where the data is, atomic JSON results, and running
a script given as a file (``python -m experiments.weizmann``) as the module it is.

Nothing here is imported at module level but the standard library: :func:`run_as_module` must work
before the repository is importable.
"""

import json
import os
import sys
from pathlib import Path

__all__ = ["REPO", "SHARED_DATA", "data_root", "run_as_module", "weizmann_root", "write_json"]

#: The repository root (the folder holding ``chm/``, ``experiments/`` and ``benchmarks/``).
REPO = Path(__file__).resolve().parents[1]
#: Where the data sets are on the project's machines: ``../shared/data`` beside the repository.
SHARED_DATA = REPO.parent / "shared" / "data"


def data_root(given=None):
    """The folder holding the data sets (``stanford_background/``, ``siftflow/``, ...): ``given``,
    else ``$CHM_DATA``, else :data:`SHARED_DATA`."""
    from chm.datasets import DATA_ENV

    return str(given or os.environ.get(DATA_ENV) or SHARED_DATA)


def weizmann_root(given=None):
    """The Weizmann folder for :func:`chm.datasets.load_weizmann_horse`: ``given``, else an existing copy
    (``$CHM_DATA``, :data:`SHARED_DATA`, the download cache: :func:`chm.datasets.find_data_root`),
    else None (the loader then downloads it)."""
    from chm.datasets import find_data_root

    return given or find_data_root(extra=[SHARED_DATA])


def table1_labels(masks, n, draw, seed=0, protocol="uniform", ignore=None):
    """Table 1's sparse labels of draw ``draw`` at N = ``n`` (:func:`chm.datasets.sample_sparse_labels`
    with ``protocol``): every script that compares with Table 1 (weizmann, fingerprint, clicks)
    fits on the same labels."""
    import numpy as np

    from chm.datasets import sample_sparse_labels

    return sample_sparse_labels(masks, n, np.random.default_rng([seed, n, draw]), ignore=ignore, protocol=protocol)


def table1_seed(n, draw, seed=0):
    """The ``random_state`` of the models fitted on :func:`table1_labels`' draw."""
    return seed * 1000 + n * 10 + draw


def write_json(path, obj):
    """Write ``obj`` as JSON under a temporary name, then rename: a stopped run never leaves a
    half-written result that a resumed one would trust, and processes sharing a folder never collide."""
    from chm.io.files import write_atomic

    write_atomic(path, lambda fh: fh.write(json.dumps(obj, indent=1).encode()))


def run_as_module(module):
    """Re-execute this process as ``python -m module`` when a script was started as a file.

    ``python -m experiments.weizmann ...`` puts ``experiments/`` (not the repository) on the import
    path, so ``from experiments import ...`` fails. Call this first thing under
    ``if __name__ == "__main__" and not __package__``: it replaces the process (same pid, arguments,
    working folder, hence same exit status) by ``python -m module`` with the repository root prepended
    to ``PYTHONPATH``.
    """
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + ([path] if path else [])))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], env)
