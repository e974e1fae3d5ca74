"""Sweep the TV weight (and other knobs) on one sparse-label draw of the Weizmann split.

    python experiments/alpha_sweep.py --alphas 0,0.03,0.1,0.3 [--n 10] [--seed 0]
    python experiments/alpha_sweep.py --classifier logistic --n-train 60 --n-test 60

Prints one markdown row per alpha: pooled test pixel error, the predicted foreground fraction
(TV's trivial minimiser is a constant map, so a shrinking foreground is the first sign of too
much TV) and fit/predict seconds. Model settings default to those of experiments/weizmann.py.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chm import CHM  # noqa: E402
from chm.datasets import load_weizmann_horse, sample_sparse_labels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alphas", default="0,0.03,0.1,0.3")
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per training image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None)
    ap.add_argument("--n-train", type=int, default=None, help="use the first n training images")
    ap.add_argument("--n-test", type=int, default=None, help="use the first n test images")
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--classifier", default="ldnn", choices=("ldnn", "logistic"))
    ap.add_argument("--features", default="haar,hog,edge,gabor,sift,intensity")
    ap.add_argument("--classifier-params", default='{"n_groups": 6, "n_nodes": 6}')
    ap.add_argument("--spatial-rate", type=float, default=4.0)
    ap.add_argument("--cache", default=None, help="feature cache folder")
    ap.add_argument("--n-jobs", type=int, default=-1)
    args = ap.parse_args(argv)
    data = load_weizmann_horse(args.data)
    train, train_m = data.train_images[:args.n_train], data.train_masks[:args.n_train]
    test, test_m = data.test_images[:args.n_test], data.test_masks[:args.n_test]
    labels = sample_sparse_labels(train_m, args.n, np.random.default_rng(args.seed))
    print(f"N = {args.n}, seed {args.seed}, {len(train)} train / {len(test)} test images, "
          f"classifier {args.classifier} {args.classifier_params}, spatial_rate {args.spatial_rate}")
    print("| alpha | test pixel error | predicted foreground | fit s | predict s |")
    print("|---|---|---|---|---|")
    for alpha in (float(a) for a in args.alphas.split(",")):
        t = time.perf_counter()
        model = CHM(levels=args.levels, classifier=args.classifier, features=tuple(args.features.split(",")),
                    alpha=alpha, classifier_params=json.loads(args.classifier_params),
                    spatial_rate=args.spatial_rate, feature_cache=args.cache,
                    n_jobs=args.n_jobs, progress=False, random_state=args.seed).fit(train, labels)
        fit = time.perf_counter() - t
        pred = model.predict(test)
        fg = sum(p.sum() for p in pred) / sum(p.size for p in pred)
        print(f"| {alpha:g} | {100 * pixel_error(pred, test_m):.2f} % | {100 * fg:.1f} % | {fit:.0f} | "
              f"{time.perf_counter() - t - fit:.0f} |", flush=True)


if __name__ == "__main__":
    from chm._signals import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
