"""Dense-label ceiling of the K-class CHM on the scene datasets (paper: dense ConvNet 20.55 % on
Stanford Background, 20.78 % on SIFT Flow).

Every training pixel with a class is labelled; ``max_samples`` keeps at most that many random
labelled pixels per class and level (shared by the images), and the model's ``class_weights_``
undo that rebalancing in ``predict``. Prints test error (unknown pixels excluded), fit and
predict time (wall / CPU) and peak RSS (this process and its joblib workers), as
``scenes_budget.py budgets`` does for sparse labels.

``--per-image M`` instead keeps M random labelled pixels of every training image, drawn regardless
of their class (so the rows keep the pixels' class balance and no decision weight is needed), and
no per-class cap: the dense labels thinned the way the sparse ones are drawn.

    python -m benchmarks.bench_scenes_dense stanford [--fold 0] [--samples 40000] [--chm-params JSON]
    python -m benchmarks.bench_scenes_dense siftflow [--samples 20000]
    python -m benchmarks.bench_scenes_dense siftflow --per-image 200
"""

import argparse
import json

import numpy as np

from chm import CHM
from chm.datasets import load_siftflow, load_stanford_background, sample_sparse_labels

from benchmarks.bench_scenes_budget import measure
from experiments._common import data_root


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=("stanford", "siftflow"))
    ap.add_argument("--data", default=None)
    ap.add_argument("--fold", type=int, default=0, help="Stanford Background fold")
    ap.add_argument("--samples", type=int, default=40_000, help="labelled pixels kept per class and level")
    ap.add_argument("--per-image", type=int, default=None,
                    help="keep this many random labelled pixels per image (any class) and no per-class cap")
    ap.add_argument("--chm-params", default="{}", help="JSON of further chm.CHM parameters")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.dataset == "stanford":
        data = load_stanford_background(data_root(args.data), fold=args.fold, seed=args.seed)
    else:
        data = load_siftflow(data_root(args.data))
    if args.per_image is None:
        labels, kind = [m.astype(np.int16) for m in data.train_masks], "dense labels"  # -1 (unknown) stays unlabelled
        params = dict(n_classes=len(data.classes), max_samples=args.samples, random_state=args.seed)
    else:
        rng = np.random.default_rng([args.seed, args.per_image, 0])
        labels = sample_sparse_labels(data.train_masks, args.per_image, rng, ignore=-1)
        kind = f"{args.per_image} random labelled pixels per image from the dense labels"
        params = dict(n_classes=len(data.classes), max_samples=None, random_state=args.seed)
    params.update(json.loads(args.chm_params))
    model = CHM(n_jobs=args.n_jobs, progress=False, **params)
    r = measure(model, data, labels)
    where = f"fold {args.fold}, " if args.dataset == "stanford" else ""
    print(f"{args.dataset} ({where}{len(data.train_images)} train, {len(data.test_images)} test), {kind}, "
          f"CHM({json.dumps(params)}), n_jobs={args.n_jobs}; times in minutes, wall / CPU")
    print("| test pixel error | fit | predict | peak RSS (GB) |")
    print("|---|---|---|---|")
    print(f"| {100 * r['error']:.2f} % | {r['fit_wall'] / 60:.1f} / {r['fit_cpu'] / 60:.1f} | "
          f"{r['predict_wall'] / 60:.1f} / {r['predict_cpu'] / 60:.1f} | {r['peak_gb']:.2f} |")


if __name__ == "__main__":
    from chm.utils import run_main

    run_main(main)
