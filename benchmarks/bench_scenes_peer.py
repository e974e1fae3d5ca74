"""The scikit-image peer on the scene datasets: ``multiscale_basic_features`` + a random forest,
trained on the same sparse labels as the CHM of experiments/stanford.py / siftflow.py, beside it.

The peer is the whole workflow of ``skimage.future.trainable_segmentation``: per-pixel colour
intensity, edge and texture features at 6 scales (sigma 0.5 .. 16, 72 features for RGB), a
100-tree random forest on the labelled pixels, the most probable class everywhere. Labels are
the draw the experiments use (``sample_sparse_labels(masks, N, default_rng([seed, N, draw]),
ignore=-1)``), so its test error is comparable run by run. The CHM's error is read from the
experiment's runs/ folder (``--chm-runs``); a CHM run that is missing is shown as "–".

Each image's features are computed once per split: the labelled rows of every N are taken in one
pass over the training images, and every N's forest predicts each test image in one pass.

    python -m benchmarks.bench_scenes_peer stanford --chm-runs results/stanford_chm/runs --folds 0 --sizes 10,20,30,40,50
    python -m benchmarks.bench_scenes_peer siftflow --chm-runs results/siftflow_chm/runs --sizes 10

Needs the bench extra (scikit-learn).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from chm.datasets import load_siftflow, load_stanford_background, sample_sparse_labels
from chm.metrics import pixel_error

from experiments._common import data_root

CHM_METHODS = ("supervised", "mrf", "tv", "contrast", "superpixels")


def peer_features(image):
    from skimage.feature import multiscale_basic_features
    from skimage.util import img_as_float

    return multiscale_basic_features(img_as_float(image), sigma_min=0.5, sigma_max=16, channel_axis=-1)


def run_split(data, sizes, draw, seed, n_jobs):
    """Peer test error, fit and predict seconds for every N in ``sizes`` on one split."""
    from sklearn.ensemble import RandomForestClassifier

    labels = {n: sample_sparse_labels(data.train_masks, n, np.random.default_rng([seed, n, draw]), ignore=-1)
              for n in sizes}
    X = {n: [] for n in sizes}
    y = {n: [] for n in sizes}
    t = time.perf_counter()
    for i, im in enumerate(data.train_images):
        f = peer_features(im)
        for n in sizes:
            known = labels[n][i] >= 0
            X[n].append(f[known])
            y[n].append(labels[n][i][known])
    shared = (time.perf_counter() - t) / len(sizes)  # the features, shared by the N
    forests, fit_s = {}, {}
    for n in sizes:
        t = time.perf_counter()
        forests[n] = RandomForestClassifier(n_estimators=100, n_jobs=n_jobs, random_state=seed).fit(
            np.concatenate(X[n]), np.concatenate(y[n]))
        fit_s[n] = shared + time.perf_counter() - t
    del X, y
    preds = {n: [] for n in sizes}
    pred_s = dict.fromkeys(sizes, 0.0)
    for im in data.test_images:
        t = time.perf_counter()
        f = peer_features(im)
        flat = f.reshape(-1, f.shape[-1])
        share = (time.perf_counter() - t) / len(sizes)
        for n in sizes:
            t = time.perf_counter()
            preds[n].append(forests[n].predict(flat).reshape(f.shape[:2]).astype(np.int16))
            pred_s[n] += share + time.perf_counter() - t
    return {n: (pixel_error(preds[n], data.test_masks, ignore=-1), fit_s[n], pred_s[n]) for n in sizes}


def chm_errors(runs, key):
    """Test errors of the CHM experiment's finished runs for one (split, N, draw)."""
    out = {}
    for method in CHM_METHODS:
        path = Path(runs or "/nonexistent") / f"{key}_{method}.json"
        if path.exists():
            out[method] = json.loads(path.read_text())["error"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=("stanford", "siftflow"))
    ap.add_argument("--data", default=None)
    ap.add_argument("--folds", default="0", help="Stanford Background folds, comma-separated")
    ap.add_argument("--sizes", default="10", help="labelled pixels per training image, comma-separated")
    ap.add_argument("--draw", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chm-runs", default=None, help="runs/ folder of the CHM experiment with the same seed")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.dataset == "stanford":
        splits = [(f"fold{f}", lambda f=f: load_stanford_background(data_root(args.data), fold=f, seed=args.seed))
                  for f in (int(x) for x in args.folds.split(","))]
    else:
        splits = [("siftflow", lambda: load_siftflow(data_root(args.data)))]
    rows = []
    for split, load in splits:
        for n, (err, fit_s, pred_s) in run_split(load(), sizes, args.draw, args.seed, args.n_jobs).items():
            chm = chm_errors(args.chm_runs, f"{split}_N{n}_draw{args.draw}")
            rows.append((split, n, err, fit_s, pred_s, chm))
            print(f"# {split} N={n}: peer {100 * err:.2f} % (fit {fit_s:.0f} s, predict {pred_s:.0f} s); "
                  f"CHM {json.dumps(chm)}", flush=True)
    methods = [m for m in CHM_METHODS if any(m in r[5] for r in rows)]
    print(f"\n{args.dataset}, draw {args.draw} (seed {args.seed}): test pixel error, unknown pixels excluded; "
          f"peer = skimage multiscale_basic_features + 100-tree random forest, n_jobs={args.n_jobs}")
    print("| split | N | peer | " + " | ".join(f"CHM {m}" for m in methods) + " | peer fit (s) | peer predict (s) |")
    print("|---|---|---|" + "---|" * len(methods) + "---|---|")
    for split, n, err, fit_s, pred_s, chm in rows:
        cells = [f"{100 * chm[m]:.2f} %" if m in chm else "–" for m in methods]
        print(f"| {split} | {n} | {100 * err:.2f} % | " + " | ".join(cells) + f" | {fit_s:.0f} | {pred_s:.0f} |")


if __name__ == "__main__":
    from chm.utils import run_main

    run_main(main)
