"""What the feature cache's disk budget buys in the main job (experiments/weizmann.py).

    python -m benchmarks.bench_cache_budget [--data PATH] [--budgets 0,4] [--fits 2] [--n-jobs 1]

Runs the main job's supervised fit + test prediction (N = 10, the full 476-feature bank, 6 x 6
LDNN, levels 3) ``--fits`` times in a row per budget, each budget with a fresh cache folder, and
prints wall and CPU seconds of each fit + predict (CPU time of this process: use --n-jobs 1 on a
shared machine, where it is steadier than wall time) and the cache's size on disk. The first fit fills the
cache; the later ones show what every further fit of the experiment (about 80 of them) costs.
Budget 0 stores nothing (no cache); a budget at or above the printed footprint stores everything.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from chm import CHM
from chm.cascade.cache import FeatureCache, footprint
from experiments._common import weizmann_root
from chm.datasets import load_weizmann_horse, sample_sparse_labels
from chm.features import FAMILIES, FilterBank


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--budgets", default="0,4", help="cache budgets in GB, comma-separated")
    ap.add_argument("--fits", type=int, default=2, help="fits in a row per budget (the first fills the cache)")
    ap.add_argument("--n-jobs", type=int, default=1)
    args = ap.parse_args(argv)
    data = load_weizmann_horse(weizmann_root(args.data))
    labels = sample_sparse_labels(data.train_masks, 10, np.random.default_rng([0, 10, 0]))
    shapes = [im.shape for im in list(data.train_images) + list(data.test_images)]
    need = footprint(shapes, 3, FilterBank(tuple(FAMILIES)).n_features)
    print(f"{len(shapes)} images; caching every level of all of them takes {need / 1e9:.1f} GB; n_jobs {args.n_jobs}")
    print("| budget | fit | fit + predict, wall s | CPU s | cache on disk |")
    print("|---|---|---|---|---|")
    for gb in (float(b) for b in args.budgets.split(",")):
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:
            cache = FeatureCache(folder, max_bytes=int(gb * 1e9))
            for k in range(args.fits):
                t, cpu = time.perf_counter(), time.process_time()
                model = CHM(levels=3, features=tuple(FAMILIES), classifier_params={"n_groups": 6, "n_nodes": 6},
                            feature_cache=cache, n_jobs=args.n_jobs, progress=False, random_state=10)
                model.fit(data.train_images, labels).predict_proba(data.test_images)
                print(f"| {gb:g} GB | {k + 1} | {time.perf_counter() - t:.0f} | {time.process_time() - cpu:.0f} | "
                      f"{cache.size() / 1e9:.1f} GB |", flush=True)


if __name__ == "__main__":
    from chm.utils import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
