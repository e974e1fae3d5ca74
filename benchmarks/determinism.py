"""Does ``n_jobs`` change the fitted model? Trains one dense CHM with n_jobs 1 and 2 and compares.

    python benchmarks/determinism.py [--data PATH] [--images 16] [--levels 3] [--seed 1]

Prints, per classifier (stage, level), the largest absolute difference between the weights of
the two fits (all zeros means the models are bit-identical), and how far one model's
``predict_proba`` maps of a few test images move between n_jobs 1 and 2.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chm import CHM  # noqa: E402
from chm.datasets import load_weizmann_horse  # noqa: E402
from chm.features import FAMILIES  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    data = load_weizmann_horse(args.data)
    images = data.train_images[:args.images]
    labels = [m.astype(np.int8) for m in data.train_masks[:args.images]]
    fits = [CHM(levels=args.levels, stages=2, network="original", features=tuple(FAMILIES),
                max_samples=[20_000] + [40_000] * args.levels, label_pooling="mean",
                classifier_params={"epochs": 2}, n_jobs=n_jobs, random_state=args.seed,
                progress=False).fit(images, labels) for n_jobs in (1, 2)]
    print(f"dense CHM on {args.images} horse images, full bank, levels={args.levels}, stages=2, seed={args.seed}")
    print("| classifier (stage, level) | max abs weight difference, n_jobs 1 vs 2 |")
    print("|---|---|")
    for key, a in fits[0].classifiers_.items():
        b = fits[1].classifiers_[key]
        print(f"| {key} | {float(np.abs(a.W_.astype(float) - b.W_.astype(float)).max()):.3g} |")
    model, test = fits[0], data.test_images[:4]
    maps = []
    for n_jobs in (1, 2):
        model.n_jobs = n_jobs
        maps.append(model.predict_proba(test))
    diff = max(float(np.abs(p - q).max()) for p, q in zip(*maps))
    print(f"\npredict_proba of {len(test)} test images, n_jobs 1 vs 2: max abs difference {diff:.3g}")


if __name__ == "__main__":
    from chm.utils._signals import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
