"""The scikit-image peer on the scene datasets: ``multiscale_basic_features`` + a random forest,
trained on the same sparse labels as the CHM of experiments/stanford.py / siftflow.py, beside it.

The peer is the whole workflow of ``skimage.future.trainable_segmentation``: per-pixel colour
intensity, edge and texture features at 6 scales (sigma 0.5 .. 16, 72 features for RGB), a
100-tree random forest on the labelled pixels, the most probable class everywhere. Labels are
the draw the experiments use (``sample_sparse_labels(masks, N, default_rng([seed, N, draw]),
ignore=-1)``), so its test error is comparable run by run. The CHM's error is read from the
experiment's runs/ folder (``--chm-runs``), or, when that run is missing, the CHM is fitted here.

    python benchmarks/scenes_peer.py stanford --chm-runs results/stanford_chm/runs [--fold 0] [--n 10]
    python benchmarks/scenes_peer.py siftflow --chm-runs results/siftflow_chm/runs [--n 10]

Needs the bench extra (scikit-learn).
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

DEFAULT_DATA = os.environ.get("CHM_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))


def peer_features(image):
    from skimage.feature import multiscale_basic_features
    from skimage.util import img_as_float

    return multiscale_basic_features(img_as_float(image), sigma_min=0.5, sigma_max=16, channel_axis=-1)


def fit_peer(images, labels, seed, n_jobs):
    from sklearn.ensemble import RandomForestClassifier

    X, y = [], []
    for im, lab in zip(images, labels):
        known = lab >= 0
        if known.any():
            X.append(peer_features(im)[known])
            y.append(lab[known])
    rf = RandomForestClassifier(n_estimators=100, n_jobs=n_jobs, random_state=seed)
    return rf.fit(np.concatenate(X), np.concatenate(y))


def predict_peer(rf, images):
    out = []
    for im in images:
        f = peer_features(im)
        out.append(rf.predict(f.reshape(-1, f.shape[-1])).reshape(f.shape[:2]).astype(np.int16))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=("stanford", "siftflow"))
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per training image")
    ap.add_argument("--draw", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chm-runs", default=None, help="runs/ folder of the CHM experiment with the same seed")
    ap.add_argument("--chm-params", default="{}", help="JSON of chm.CHM parameters when the CHM is fitted here")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    if args.dataset == "stanford":
        data, split = load_stanford_background(args.data, fold=args.fold, seed=args.seed), f"fold{args.fold}"
    else:
        data, split = load_siftflow(args.data), "siftflow"
    labels = sample_sparse_labels(data.train_masks, args.n, np.random.default_rng([args.seed, args.n, args.draw]),
                                  ignore=-1)
    rows = []
    t = time.perf_counter()
    rf = fit_peer(data.train_images, labels, args.seed, args.n_jobs)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    err = pixel_error(predict_peer(rf, data.test_images), data.test_masks, ignore=-1)
    rows.append(("skimage multiscale_basic_features + random forest (100 trees)", err, fit_s, time.perf_counter() - t))
    key = f"{split}_N{args.n}_draw{args.draw}"
    for method in ("supervised", "tv", "contrast"):
        path = Path(args.chm_runs or "/nonexistent") / f"{key}_{method}.json"
        if path.exists():
            r = json.loads(path.read_text())
            rows.append((f"CHM {method} (experiment run {path.name})", r["error"], r.get("fit_seconds"), None))
    if len(rows) == 1:
        from chm import CHM

        model = CHM(n_classes=len(data.classes), n_jobs=args.n_jobs, random_state=args.seed,
                    **json.loads(args.chm_params))
        t = time.perf_counter()
        model.fit(data.train_images, labels)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        pred = model.predict(data.test_images)
        rows.append(("CHM supervised (fitted here)", pixel_error(pred, data.test_masks, ignore=-1), fit_s,
                     time.perf_counter() - t))
    print(f"{args.dataset} {split}, N = {args.n}, draw {args.draw} (seed {args.seed}): test pixel error, "
          "unknown pixels excluded")
    print("| method | test pixel error | fit (s) | predict (s) |")
    print("|---|---|---|---|")
    for name, e, f, p in rows:
        print(f"| {name} | {100 * e:.2f} % | {'–' if f is None else f'{f:.0f}'} | {'–' if p is None else f'{p:.0f}'} |")


if __name__ == "__main__":
    from chm._signals import run_main

    run_main(main)
