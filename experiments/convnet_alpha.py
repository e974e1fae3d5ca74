"""Choose the ConvNet's TV weight (and check its training length) on held-out *training* images.

Honest selection: only the training images of Stanford Background fold 0 take part
(``--dataset siftflow``: SIFT Flow's 2488 training images). A fifth of
them are held out; the ConvNet is trained on the rest with N sparse labels per image, once per
alpha, and scored by the error on the held-out images' own N sparse labels (no dense label and
no test image is used). The winner is ``chm.convnet.RECOMMENDED_ALPHA``.

    python experiments/convnet_alpha.py --alphas 0,0.1,0.3,1 --threads 1

``--params '{"tiles": 8}'`` passes further ConvNet parameters. ``--semi-supervised superpixels``
screens the superpixel-label variants (alpha 0: superpixels alone; alpha > 0: "superpixels+tv").
``--score-n 50`` scores on an independent draw of 50 sparse labels per held-out image instead of
their own N (5700 labels: a standard error of about 0.6 points instead of 1.4).

Writes --out/alpha<a>.json per alpha (resumable) and prints a table.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chm.datasets import load_siftflow, load_stanford_background, sample_sparse_labels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CHM_DATA", str(Path(__file__).resolve().parents[2]
                                                                      / "shared" / "data")))
    ap.add_argument("--dataset", choices=("stanford", "siftflow"), default="stanford")
    ap.add_argument("--alphas", default="0,0.1,0.3,1")
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per image")
    ap.add_argument("--semi-supervised", default=None, choices=[None, "superpixels"],
                    help="spread the labels over superpixels (alpha > 0 adds TV: 'superpixels+tv')")
    ap.add_argument("--score-n", type=int, default=None,
                    help="score on an independent draw of this many labels per held-out image (default: their own N)")
    ap.add_argument("--n-iter", type=lambda v: v if v == "auto" else int(v), default=1500,
                    help='ConvNet steps, or "auto" (its default: chm.convnet.EPOCHS passes over the labels)')
    ap.add_argument("--params", default="{}", help='JSON of further ConvNet parameters, e.g. \'{"tiles": 8}\'')
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/convnet_alpha")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from chm import ConvNet

    if args.dataset == "stanford":
        data = load_stanford_background(args.data, fold=0, seed=args.seed)
    else:
        data = load_siftflow(args.data)
    labels = sample_sparse_labels(data.train_masks, args.n, np.random.default_rng([args.seed, args.n]), ignore=-1)
    order = np.random.default_rng([args.seed, 99]).permutation(len(labels))
    held, fit = order[: len(order) // 5], order[len(order) // 5:]
    if args.score_n is None:
        score = [labels[i] for i in held]
    else:
        score = sample_sparse_labels([data.train_masks[i] for i in held], args.score_n,
                                     np.random.default_rng([args.seed, args.score_n, 1]), ignore=-1)
    params = json.loads(args.params)
    tag = ("" if args.dataset == "stanford" else f"_{args.dataset}") + (
        f"_{args.semi_supervised}" if args.semi_supervised else "") + (
        f"_score{args.score_n}" if args.score_n is not None else "") + "".join(
        f"_{k}{v}" for k, v in sorted(params.items()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for a in (float(s) for s in args.alphas.split(",")):
        path = out / f"alpha{a:g}_N{args.n}_iter{args.n_iter}{tag}.json"
        if not path.exists():
            t0 = time.perf_counter()
            method = args.semi_supervised and (args.semi_supervised + ("+tv" if a > 0 else ""))
            model = ConvNet(semi_supervised=method, alpha=a if a > 0 or not method else None,
                            n_classes=len(data.classes), n_iter=args.n_iter, n_jobs=args.threads,
                            progress=not args.quiet, random_state=args.seed, **params)
            model.fit([data.train_images[i] for i in fit], [labels[i] for i in fit])
            pred = model.predict([data.train_images[i] for i in held])
            err = pixel_error(pred, score, ignore=-1)  # the held-out sparse labels only
            path.write_text(json.dumps({"alpha": a, "semi_supervised": method, "params": params,
                                        "heldout_sparse_error": err,
                                        "n_heldout_labels": int(sum((s >= 0).sum() for s in score)),
                                        "fit_seconds": model.fit_seconds_, "seconds": time.perf_counter() - t0,
                                        "final_ce": float(np.mean([c for c, _ in model.loss_curve_[-50:]]))}))
        rows.append(json.loads(path.read_text()))
        r = rows[-1]
        print(f"{r.get('semi_supervised') or 'tv'} alpha {r['alpha']:<6g} held-out sparse error "
              f"{100 * r['heldout_sparse_error']:6.2f} % ({r['n_heldout_labels']} labels)  fit {r['fit_seconds']:.0f} s",
              flush=True)
    best = min(rows, key=lambda r: (r["heldout_sparse_error"], r["alpha"]))
    print(f"chosen alpha = {best['alpha']:g}")


if __name__ == "__main__":
    main()
