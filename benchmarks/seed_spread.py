"""Test error and fit time of one CHM setting at several seeds, on the same labels (issue 37).

    python -m benchmarks.seed_spread [--semi-supervised tv] [--seeds 0,1,2] [--n-jobs 2] [--data PATH]

A speed change may change the random stream but should not move the test error beyond what the
seed alone moves it: this fits ``CHM(levels=3, stages=2, semi_supervised=...)`` (``bench_run``'s
setting) on the 164 Weizmann training horses with the 10 labelled pixels per image of
``bench_run`` (draw seed 0), once per ``random_state``, and prints each fit's seconds and test
pixel error, then their mean and sample standard deviation. Run it at two commits to compare.
"""

import argparse
import time

import numpy as np

from chm import CHM
from chm.datasets import load_weizmann_horse, sample_sparse_labels
from chm.metrics import pixel_error

from experiments._common import weizmann_root

N_LABELS = 10
LABEL_SEED = 0  # bench_run's draw


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="data folder (default: $CHM_DATA, ../shared/data)")
    ap.add_argument("--semi-supervised", default="tv", help="the method (default tv; 'none' for supervised)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated random_state values")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    method = None if args.semi_supervised == "none" else args.semi_supervised
    data = load_weizmann_horse(weizmann_root(args.data), progress=False)
    labels = sample_sparse_labels(data.train_masks, N_LABELS, np.random.default_rng(LABEL_SEED), ignore=-1)
    print(f"| seed | `semi_supervised={method!r}` fit | test error |\n|---|---|---|", flush=True)
    errors = []
    for seed in seeds:
        t0 = time.perf_counter()
        model = CHM(levels=3, stages=2, semi_supervised=method, n_jobs=args.n_jobs, progress=False,
                    random_state=seed).fit(data.train_images, labels)
        fit = time.perf_counter() - t0
        errors.append(100 * pixel_error(model.predict(data.test_images), data.test_masks, ignore=-1))
        print(f"| {seed} | {fit:.1f} s | {errors[-1]:.2f} % |", flush=True)
    if len(errors) > 1:
        print(f"| mean ± std | | {np.mean(errors):.2f} ± {np.std(errors, ddof=1):.2f} % |")


if __name__ == "__main__":
    main()
