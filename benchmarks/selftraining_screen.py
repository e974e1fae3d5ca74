"""Screen semi-supervised settings on held-out *training* horses (never the test set).

Fits on the sparse labels of horses 1..123 (one draw, N per image) and scores horses 124..164
against their dense masks: the raw output at the model's threshold, and after the
contrast-sensitive MRF at several betas. This is how the recommended recipe
(``CHM(semi_supervised="auto")``) was chosen; the Table 1 experiment then chooses every weight
again from sparse labels only.

    python benchmarks/selftraining_screen.py --runs '[{}, {"semi_supervised": "self-training"}]'

Beside the dense-mask error (a diagnostic) each row has the error on an independent draw of
``--sparse`` labelled pixels per held-out horse ("sparse"): that is the number a user could
compute, and the one settings are chosen by.

``--calibrated`` adds a row per run at a threshold calibrated to the sparse labels: the one at
which the model's maps of its own training images hold the foreground fraction the labels
estimate (:func:`chm.selftraining.foreground_prior`).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import chm.model  # noqa: E402
from chm import CHM, mrf  # noqa: E402
from chm.datasets import load_weizmann_horse, sample_sparse_labels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402
from chm.selection import sparse_error  # noqa: E402
from chm.semi.selftraining import foreground_prior  # noqa: E402

BETAS = (4, 8, 16, 32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default='[{}]', help="JSON list of CHM parameter dicts, one per run")
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per training image")
    ap.add_argument("--draw", type=int, default=0)
    ap.add_argument("--held-out", type=int, default=41, help="the last K training horses are scored")
    ap.add_argument("--sparse", type=int, default=50, help="labelled pixels per held-out horse for the sparse score")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--cache", default=None, help="feature cache folder")
    ap.add_argument("--data", default=None)
    ap.add_argument("--prior-tolerance", type=float, default=None,
                    help="override chm.model.PRIOR_TOLERANCE, the self-training guard (0 = force the proposals' "
                         "foreground fraction to the labels' estimate)")
    ap.add_argument("--calibrated", action="store_true",
                    help="also score each run at the threshold that gives its training maps the labels' "
                         "foreground estimate")
    args = ap.parse_args(argv)
    if args.prior_tolerance is not None:
        chm.model.PRIOR_TOLERANCE = args.prior_tolerance
    data = load_weizmann_horse(args.data)
    k = len(data.train_images) - args.held_out
    labels = sample_sparse_labels(data.train_masks, args.n, np.random.default_rng([7, args.n, args.draw]))
    fit_x, fit_y = data.train_images[:k], labels[:k]
    val_x, val_m = data.train_images[k:], data.train_masks[k:]
    val_sparse = sample_sparse_labels(val_m, args.sparse, np.random.default_rng([8, args.sparse, args.draw]))
    truth = sum(int(m.sum()) for m in val_m) / sum(m.size for m in val_m)
    print(f"fit on horses 1..{k} (N = {args.n}, draw {args.draw}), scored on horses {k + 1}..{k + args.held_out} "
          f"(foreground {100 * truth:.1f} %); sparse: {sum(int((v >= 0).sum()) for v in val_sparse)} labels")
    print("| run | fit s | sparse | error | foreground | " + " | ".join(f"+ MRF β {b}" for b in BETAS) + " |")
    print("|---" * (5 + len(BETAS)) + "|")
    for params in json.loads(args.runs):
        t0 = time.perf_counter()
        model = CHM(random_state=args.seed, n_jobs=args.n_jobs, feature_cache=args.cache, progress=False, **params)
        model.fit(fit_x, fit_y)
        fit_time = time.perf_counter() - t0
        maps = model.predict_proba(val_x)
        rows = [(json.dumps(params), model.threshold_)]
        if args.calibrated:
            own = np.concatenate([p.ravel() for p in model.predict_proba(fit_x)])
            t = float(np.quantile(own, 1 - foreground_prior(fit_y)))
            rows.append((f"{json.dumps(params)}, threshold {t:.3f} (calibrated)", t))
        for name, t in rows:
            masks = [p > t for p in maps]
            fg = sum(int(m.sum()) for m in masks) / sum(m.size for m in masks)
            decoded = [100 * pixel_error([mrf.decode(p, b, image=im, threshold=t) for p, im in zip(maps, val_x)],
                                         val_m) for b in BETAS]
            print(f"| {name} | {fit_time:.0f} | {100 * sparse_error(masks, val_sparse):.2f} | "
                  f"{100 * pixel_error(masks, val_m):.2f} | {100 * fg:.1f} | "
                  + " | ".join(f"{e:.2f}" for e in decoded) + " |", flush=True)


if __name__ == "__main__":
    main()
