"""Scene-labelling budgets and how the K-class CHM's cost grows with K.

``budgets``: one fit per dataset and method at N = 10 labelled pixels per image (the draw of the
experiments: seed 0, draw 0), then the test prediction: wall and CPU time (this process and its
joblib workers), peak RSS (the same processes, sampled every 0.2 s) and test error, beside the
issue's budgets (2 cores: Stanford fold 572 images <= 20 min, SIFT Flow 2488 images <= 60 min,
peak RSS <= 8 GB). On a machine shared with other jobs the CPU time is the steadier number.

``scaling``: on a subset of SIFT Flow (K = 33), what the K-class design saves. Context maps are
compressed to c principal components (``context_channels``): per c, the fusion classifier's
input width, fit time, peak RSS and the error on held-out *training* images' sparse labels
(no test image). And one softmax network against K one-vs-rest LDNNs for the same rows: the SGD
and evaluation cost of one full-resolution classifier, and the context width each would feed on.

    python -m benchmarks.bench_scenes_budget budgets [--datasets stanford,siftflow] [--methods supervised,tv]
    python -m benchmarks.bench_scenes_budget scaling [--images 300] [--channels 2,4,8,32]
"""

import argparse
import json
import time

import numpy as np

from chm import CHM
from chm.datasets import load_siftflow, load_stanford_background, sample_sparse_labels
from chm.metrics import pixel_error

from benchmarks._measure import PeakRSS, cpu_seconds
from experiments._common import data_root

BUDGET_MIN = {"stanford": 20, "siftflow": 60}
BUDGET_GB = 8


def load(name, root=None):
    if name == "stanford":
        return load_stanford_background(data_root(root), fold=0, seed=0), "fold0"
    return load_siftflow(data_root(root)), "siftflow"


def measure(model, data, labels):
    """Fit and predict with time, CPU and memory; returns a dict."""
    with PeakRSS() as mem:
        t, c = time.perf_counter(), cpu_seconds()
        model.fit(data.train_images, labels)
        fit_wall, fit_cpu = time.perf_counter() - t, cpu_seconds() - c
        t, c = time.perf_counter(), cpu_seconds()
        pred = model.predict(data.test_images)
        pred_wall, pred_cpu = time.perf_counter() - t, cpu_seconds() - c
    return {"fit_wall": fit_wall, "fit_cpu": fit_cpu, "predict_wall": pred_wall, "predict_cpu": pred_cpu,
            "peak_gb": mem.peak / 1e9, "error": pixel_error(pred, data.test_masks, ignore=-1),
            "timings": {str(k): v for k, v in model.timings_.items()}}


def budgets(args):
    rows = []
    for name in args.datasets.split(","):
        data, split = load(name, args.data)
        labels = sample_sparse_labels(data.train_masks, 10, np.random.default_rng([0, 10, 0]), ignore=-1)
        for method in args.methods.split(","):
            model = CHM(n_classes=len(data.classes), semi_supervised=None if method == "supervised" else method,
                        n_jobs=args.n_jobs, progress=not args.quiet, random_state=0, **json.loads(args.chm_params))
            r = measure(model, data, labels)
            print(f"# {name} {method}: {json.dumps(r)}", flush=True)
            ok = r["fit_wall"] / 60 <= BUDGET_MIN[name] and r["peak_gb"] <= BUDGET_GB
            rows.append(f"| {name} ({len(data.train_images)} train, {len(data.test_images)} test) | {method} | "
                        f"{r['fit_wall'] / 60:.1f} / {r['fit_cpu'] / 60:.1f} | {BUDGET_MIN[name]} | "
                        f"{r['predict_wall'] / 60:.1f} / {r['predict_cpu'] / 60:.1f} | {r['peak_gb']:.2f} | "
                        f"{100 * r['error']:.2f} % | {'met' if ok else 'MISSED'} |")
    print(f"\nN = 10, seed 0, draw 0, n_jobs={args.n_jobs}, CHM({args.chm_params}); times in minutes, wall / CPU")
    print("| dataset | method | fit | budget | predict | peak RSS (GB) | test error | fit and RSS budget |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def heldout_split(data, n_images, seed=0):
    """The first ``n_images`` training images: 4/5 to fit, 1/5 held out (a training-set split)."""
    order = np.random.default_rng(seed).permutation(len(data.train_images))[:n_images]
    k = len(order) // 5
    return order[k:], order[:k]


def scaling(args):
    from chm.classifiers import make_classifier
    from chm.classifiers.softmax import SoftmaxMLP

    data, _ = load("siftflow", args.data)
    K = len(data.classes)
    labels = sample_sparse_labels(data.train_masks, 10, np.random.default_rng([0, 10, 0]), ignore=-1)
    fit_idx, held_idx = heldout_split(data, args.images)
    fit_im = [data.train_images[i] for i in fit_idx]
    fit_lab = [labels[i] for i in fit_idx]
    held_im = [data.train_images[i] for i in held_idx]
    held_lab = [labels[i] for i in held_idx]
    rows = []
    for c in (int(x) for x in args.channels.split(",")):
        model = CHM(n_classes=K, context_channels=c, n_jobs=args.n_jobs, progress=False, random_state=0,
                    **json.loads(args.chm_params))
        with PeakRSS() as mem:
            t, cpu = time.perf_counter(), cpu_seconds()
            model.fit(fit_im, fit_lab)
            fit_wall, fit_cpu = time.perf_counter() - t, cpu_seconds() - cpu
            t = time.perf_counter()
            pred = model.predict(held_im)
            pred_wall = time.perf_counter() - t
        known = np.concatenate([lab.ravel() >= 0 for lab in held_lab])
        err = np.mean(np.concatenate([p.ravel() for p in pred])[known] != np.concatenate([lab.ravel()
                                                                                           for lab in held_lab])[known])
        width = model.classifiers_[(model.stages, 0)].n_features_in_
        rows.append(f"| {min(c, K - 1)} | {width} | {fit_wall:.0f} / {fit_cpu:.0f} | {pred_wall:.0f} | "
                    f"{mem.peak / 1e9:.2f} | {100 * err:.1f} % ({known.sum()} px) |")
        print(f"# channels {c}: {rows[-1]}", flush=True)
    print(f"\nSIFT Flow subset: {len(fit_im)} training images fit, {len(held_im)} held-out training images scored on "
          f"their N = 10 sparse labels; K = {K}; CHM({args.chm_params}), n_jobs={args.n_jobs}")
    print("| context channels c | fusion input width | fit wall / CPU (s) | predict held-out (s) | peak RSS (GB) | "
          "held-out sparse error |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))

    # One classifier's cost: softmax vs K one-vs-rest LDNNs, on rows of the fusion's width.
    rng = np.random.default_rng(0)
    n, d = 10 * len(fit_im), width
    X = rng.random((n, d), dtype=np.float32)
    y = rng.integers(0, K, size=n)
    Xe = rng.random((256 * 256, d), dtype=np.float32)
    t = time.process_time()
    soft = SoftmaxMLP(n_classes=K, n_hidden=36, epochs=6, random_state=0).fit(X, y)
    soft_fit = time.process_time() - t
    t = time.process_time()
    soft.predict_proba(Xe)
    soft_eval = time.process_time() - t
    t = time.process_time()
    ldnn = make_classifier("ldnn", coarse=False, random_state=0, epochs=6).fit(X, (y == 0).astype(int))
    one_fit = time.process_time() - t
    t = time.process_time()
    ldnn.predict_proba(Xe)
    one_eval = time.process_time() - t
    print(f"\nOne full-resolution classifier, {n} rows x {d} features, 6 epochs; evaluation of one 256 x 256 image "
          "(CPU s):")
    print("| classifier | fit | evaluate | context features per map for the next classifiers |")
    print("|---|---|---|---|")
    print(f"| softmax, 36 hidden units, K = {K} | {soft_fit:.2f} | {soft_eval:.2f} | 57 x min(K - 1, c) |")
    print(f"| one-vs-rest: {K} LDNNs 6 x 6 | {K * one_fit:.2f} (measured 1 x {K}) | {K * one_eval:.2f} | "
          f"57 x {K} = {57 * K} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("budgets", "scaling"))
    ap.add_argument("--data", default=None)
    ap.add_argument("--datasets", default="stanford,siftflow")
    ap.add_argument("--methods", default="supervised,tv")
    ap.add_argument("--images", type=int, default=300, help="scaling: SIFT Flow training images used")
    ap.add_argument("--channels", default="2,4,8,32", help="scaling: context channels to compare")
    ap.add_argument("--chm-params", default="{}", help="JSON of further chm.CHM parameters")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    budgets(args) if args.what == "budgets" else scaling(args)


if __name__ == "__main__":
    from chm.utils import run_main

    run_main(main)
