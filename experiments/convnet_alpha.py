"""Choose the ConvNet's TV weight (and check its training length) on held-out *training* images.

Honest selection: only the training images of Stanford Background fold 0 take part. A fifth of
them are held out; the ConvNet is trained on the rest with N sparse labels per image, once per
alpha, and scored by the error on the held-out images' own N sparse labels (no dense label and
no test image is used). The winner is ``chm.convnet.RECOMMENDED_ALPHA``.

    python experiments/convnet_alpha.py --alphas 0,0.1,0.3,1 --threads 1

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

from chm.datasets import load_stanford_background, sample_sparse_labels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CHM_DATA", str(Path(__file__).resolve().parents[2]
                                                                      / "shared" / "data")))
    ap.add_argument("--alphas", default="0,0.1,0.3,1")
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per image")
    ap.add_argument("--n-iter", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/convnet_alpha")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from chm import ConvNet

    data = load_stanford_background(args.data, fold=0, seed=args.seed)
    labels = sample_sparse_labels(data.train_masks, args.n, np.random.default_rng([args.seed, args.n]), ignore=-1)
    order = np.random.default_rng([args.seed, 99]).permutation(len(labels))
    held, fit = order[: len(order) // 5], order[len(order) // 5:]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for a in (float(s) for s in args.alphas.split(",")):
        path = out / f"alpha{a:g}_N{args.n}_iter{args.n_iter}.json"
        if not path.exists():
            t0 = time.perf_counter()
            model = ConvNet(alpha=a, n_classes=len(data.classes), n_iter=args.n_iter, n_jobs=args.threads,
                            progress=not args.quiet, random_state=args.seed)
            model.fit([data.train_images[i] for i in fit], [labels[i] for i in fit])
            pred = model.predict([data.train_images[i] for i in held])
            err = pixel_error(pred, [labels[i] for i in held], ignore=-1)  # the held-out sparse labels only
            path.write_text(json.dumps({"alpha": a, "heldout_sparse_error": err, "n_heldout_labels":
                                        int(sum((labels[i] >= 0).sum() for i in held)),
                                        "fit_seconds": model.fit_seconds_, "seconds": time.perf_counter() - t0,
                                        "final_ce": float(np.mean([c for c, _ in model.loss_curve_[-50:]]))}))
        rows.append(json.loads(path.read_text()))
        r = rows[-1]
        print(f"alpha {r['alpha']:<6g} held-out sparse error {100 * r['heldout_sparse_error']:6.2f} % "
              f"({r['n_heldout_labels']} labels)  fit {r['fit_seconds']:.0f} s", flush=True)
    best = min(rows, key=lambda r: (r["heldout_sparse_error"], r["alpha"]))
    print(f"chosen alpha = {best['alpha']:g}")


if __name__ == "__main__":
    main()
