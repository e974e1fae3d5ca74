"""Choose K-class CHM settings on held-out *training* images (Stanford Background fold 0, or SIFT Flow).

Honest selection: only the 572 training images of fold 0 take part (``--dataset siftflow``: its
2488 training images, or a random ``--images`` of them). A fifth of them (114 on Stanford) are
held out; each variant is fitted on the other 458 with N = 10 sparse labels per image and scored
by its error on the held-out images' own sparse labels (``--score-n`` per image, 50 by default:
the largest N of the protocol, so the score's standard error is about 0.6 points instead of 1.4
with 10). No dense label and no test image is used. This is the rule for the K-class defaults
(``chm.model.SEMI_SUPERVISED_MULTICLASS`` and the SoftmaxMLP's settings); what it has screened so far
is in docs/results.md.

    python experiments/scenes_select.py --variants '{}' '{"semi_supervised": "tv", "alpha": 0.3}'

Writes --out/<variant>.json (resumable) and prints a table.
"""

import argparse
import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chm import CHM  # noqa: E402
from chm.datasets import load_siftflow, load_stanford_background, sample_sparse_labels  # noqa: E402
from chm.io.images import as_float_image, to_channels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CHM_DATA", str(Path(__file__).resolve().parents[2]
                                                                      / "shared" / "data")))
    ap.add_argument("--dataset", choices=("stanford", "siftflow"), default="stanford")
    ap.add_argument("--images", type=int, default=None,
                    help="use a random subset of this many training images (fit and held out together)")
    ap.add_argument("--variants", nargs="+", default=["{}"], help="JSON dicts of CHM parameters")
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per fitted image")
    ap.add_argument("--score-n", type=int, default=50, help="sparse labels per held-out image for the score")
    ap.add_argument("--gray", action="store_true", help="use the images' luminance (no colour features)")
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/scenes_select")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--sparse-prior", action="store_true",
                    help="self-trained variants: also score the decision weights made from the sparse labels' "
                         "class fractions instead of the proposals' (the fit is the same)")
    return ap.parse_args(argv)


def sparse_prior_weights(model, labels):
    """A self-trained K-class model's decision weights with the class prior of the sparse labels.

    ``class_weights_`` is pi_k / q_k with pi the class fractions of the last round's proposals
    (``rounds_[-1]["classes"]``) and q those of the rows the refit sampled; this returns
    pi'_k / q_k with pi' the fractions of the sparse labels the model was fitted on.
    """
    K = model.n_classes_
    sparse = sum(np.bincount(lab[lab >= 0].ravel(), minlength=K) for lab in labels).astype(np.float64)
    sparse /= sparse.sum()
    props = np.asarray(model.rounds_[-1]["classes"], dtype=np.float64)
    w = model.class_weights_.copy()
    seen = props > 0  # the refit samples every class of the proposals (per-class caps)
    w[seen] *= sparse[seen] / props[seen]
    return w


def main(argv=None):
    args = parse_args(argv)
    if args.dataset == "stanford":
        # The folds of the experiments (seed 0) whatever --seed is: --seed changes the held-out fifth,
        # the label draws and the model's seed, never which images are training images.
        data = load_stanford_background(args.data, fold=0, seed=0)
    else:
        data = load_siftflow(args.data)
    images = [to_channels(as_float_image(im), 1) for im in data.train_images] if args.gray else data.train_images
    order = np.random.default_rng([args.seed, 99]).permutation(len(data.train_images))
    if args.images is not None:
        if not 5 <= args.images <= len(order):
            raise SystemExit(f"--images must be between 5 and {len(order)}, got {args.images}")
        order = order[: args.images]
    held, fit = order[: len(order) // 5], order[len(order) // 5:]
    labels = sample_sparse_labels([data.train_masks[i] for i in fit], args.n,
                                  np.random.default_rng([args.seed, args.n]), ignore=-1)
    score = sample_sparse_labels([data.train_masks[i] for i in held], args.score_n,
                                 np.random.default_rng([args.seed, args.score_n, 1]), ignore=-1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for text in args.variants:
        params = json.loads(text)
        tag = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10] + ("_gray" if args.gray else "")
        subset = ("" if args.dataset == "stanford" else f"{args.dataset}_") + (
            "" if args.images is None else f"img{args.images}_") + ("" if args.seed == 0 else f"seed{args.seed}_")
        path = out / f"{subset}N{args.n}_score{args.score_n}_{tag}.json"
        if not path.exists():
            t0 = time.perf_counter()
            model = CHM(n_classes=len(data.classes), n_jobs=args.n_jobs, progress=not args.quiet,
                        random_state=args.seed, **params)
            model.fit([images[i] for i in fit], labels)
            fit_s = time.perf_counter() - t0
            rules = {"": model}  # the same maps, each variant's decision rule
            if args.sparse_prior and getattr(model, "rounds_", None):
                rules["_sparse_prior"] = copy.copy(model)
                rules["_sparse_prior"].class_weights_ = sparse_prior_weights(model, labels)
            preds = {k: [] for k in rules}
            for i in held:  # one map at a time: SIFT Flow's K = 33 maps are 8.6 MB each
                p = model.predict_proba([images[i]])
                for k, m in rules.items():
                    preds[k] += m.decide(p)
            # the held-out sparse labels only
            errs = {f"heldout_sparse_error{k}": pixel_error(v, score, ignore=-1) for k, v in preds.items()}
            path.write_text(json.dumps({"params": params, "gray": args.gray, **errs,
                                        "alpha": model.alpha_,
                                        "n_heldout_labels": int(sum((s >= 0).sum() for s in score)),
                                        "fit_seconds": fit_s, "seconds": time.perf_counter() - t0}))
        r = json.loads(path.read_text())
        rows.append(r)
        extra = (f"  (sparse-label class prior: {100 * r['heldout_sparse_error_sparse_prior']:.2f} %)"
                 if "heldout_sparse_error_sparse_prior" in r else "")
        print(f"{100 * r['heldout_sparse_error']:6.2f} %  ({r['n_heldout_labels']} labels, fit {r['fit_seconds']:.0f} s)"
              f"  {json.dumps(r['params'])}{' gray' if r.get('gray') else ''}{extra}", flush=True)
    best = min(rows, key=lambda r: r["heldout_sparse_error"])
    print(f"best: {json.dumps(best['params'])}")


if __name__ == "__main__":
    from chm.utils._signals import run_main

    run_main(main)
