"""One benchmark run on the Weizmann horse split: speed, memory and accuracy of the CHM, and a peer.

    python -m benchmarks.bench_run [--data PATH] [--n-jobs 2] [--out benchmarks/results/run.md]
                             [--dataset weizmann|stanford] [--fold 0]
                             [--quick] [--skip-peer] [--skip-ablation] [--skip-scaling]
                             [--features F1,F2,...] [--network small|original] [--classifier-params JSON]
                             [--semi-supervised auto|self-training|tv|contrast]
                             [--records benchmarks/records] [--readme README.md]

``--semi-supervised auto --skip-peer --skip-scaling --skip-ablation`` times the recommended
semi-supervised fit alone (issue target: <= 5 min and <= 6 GB on 2 cores).

``--dataset stanford`` runs sections 2 and 3 on one Stanford Background fold instead (8 classes,
colour; 572 train / 143 test images, ``load_stanford_background(root, fold, seed=0)``) with the
labels of ``experiments/stanford.py``'s draw 0 at N = 10 and, unless ``--features`` says otherwise,
the bank recommended for scenes (the default plus ``position``); unknown pixels are not scored.
The peer reads the colour channels (``channel_axis=-1``). About 20 min on 2 cores.

Sections (each a function below), all in one process, printed as markdown on stdout and written
to ``--out`` (default ``benchmarks/results/run.md``, git-ignored):

1. filter bank: Mpx/s per family and for the whole bank, one thread, on 20 test images;
2. CHM (levels=3, stages=2, ``--semi-supervised`` as given (default: supervised), N = 10
   labelled px per training image, all training images): fit time and its breakdown (``model.timings_``), predict time per test image and
   Mpx/s, test pixel error, peak RSS of fit and of predict;
3. peer: scikit-image trainable segmentation (``multiscale_basic_features`` + a 100-tree random
   forest) on the same labelled pixels; fit + predict time, test error, ratios ours / peer;
4. scaling: CHM fit time and peak RSS for 1/4, 1/2 and all training images (41, 82, 164);
5. ablation: CHM test error and fit + predict time with each filter family of the configured
   bank (``--features``, default the CHM default) left out.

A full run with the peer and the dataset's default bank writes its numbers, date, commit and machine
to ``--records/<dataset>-<semi-supervised or supervised>.json`` (kept in git); ``--readme README.md``
then rebuilds the README's speed table from all the records (:mod:`benchmarks.records`;
``python -m benchmarks.records --readme README.md`` rebuilds it without a run). The table comes from:

    python -m benchmarks.bench_run --n-jobs 2 --readme README.md
    python -m benchmarks.bench_run --n-jobs 2 --semi-supervised auto --skip-scaling --skip-ablation --readme README.md
    python -m benchmarks.bench_run --n-jobs 2 --dataset stanford --readme README.md

Peak RSS is sampled every 0.2 s in a background thread (psutil): the sum of the RSS of this
process and all its children (joblib workers), maximum over the phase; pages shared between
processes are counted once per process, so it is an upper bound. "start" is that sum when the
phase begins (data, earlier objects). A tiny warm-up fit first loads the numba caches and starts
the joblib workers, so the timed fits do not pay for them.

Duration, full run with --n-jobs 2 on 2 cores (measured 2026-11-25): 6.2 min with the defaults,
26 min with ``--network original --features haar,hog,edge,gabor,sift,intensity``.
``--quick`` (8 train / 8 test images) takes well under a minute once the caches are warm.
"""

import argparse
import datetime
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import chm
from chm import CHM
from chm.classifiers import NETWORKS
from chm.model import DEFAULT_FEATURES
from chm.datasets import load_stanford_background, load_weizmann_horse, sample_sparse_labels
from chm.metrics import pixel_error
from chm.features import FAMILIES, FilterBank

from benchmarks._measure import PeakRSS, gb
from benchmarks.records import RECORDS, git_commit, machine, update_readme, write_record
from experiments._common import data_root, weizmann_root

N_LABELS = 10
# --quick: 8 images x 10 px hold ~20 foreground pixels, fewer than the 24 x 24 full-resolution LDNN
# needs to initialise (>= 24 per class), so the quick check labels 40 px per image instead.
N_LABELS_QUICK = 40
CHM_SETTINGS = dict(levels=3, stages=2)
CONFIG = {}  # --features / --network / --classifier-params / n_classes, set in main()
SCENE_FEATURES = DEFAULT_FEATURES + ("position",)  # the README's setting for scene photographs
LATENCY_SHAPE = (210, 260)  # rows x columns
SEED = 0


# ---------------------------------------------------------------------------------------------
# helpers

def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def log(msg):
    print(f"[bench_run {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def megapixels(images):
    return sum(im.size for im in images) / 1e6


# ---------------------------------------------------------------------------------------------
# sections

def bench_filter_bank(images):
    """Mpx/s of each family and of the whole bank, one thread, after one warm-up call each."""
    rows = []
    mpx = megapixels(images)
    with threadpool_limits(limits=1):
        banks = [(name, (name,)) for name in FAMILIES]
        banks += [("all six (original bank)", tuple(FAMILIES)), ("configured bank", CONFIG["features"])]
        for name, families in banks:
            bank = FilterBank(families)
            bank(images[0])  # warm-up: imports, numba caches, FFT plans
            t0 = time.perf_counter()
            for im in images:
                bank(im)
            dt = time.perf_counter() - t0
            rows.append({"family": name, "n_features": bank.n_features,
                         "ms_per_image": 1e3 * dt / len(images), "mpx_s": mpx / dt,
                         "mfeat_s": mpx * bank.n_features / dt})
    return rows


def warm_up(data, n_jobs):
    """A tiny fit + predict: numba caches and joblib workers are ready before anything is timed.

    Two images with 200 labelled px each (10 would not initialise the LDNNs: they need >= 10
    foreground and >= 20 background rows).
    """
    labels = sample_sparse_labels(data["train_masks"][:2], 200, np.random.default_rng(SEED), ignore=-1)
    CHM(**CHM_SETTINGS, **CONFIG, epochs=1, n_jobs=n_jobs, progress=False, random_state=SEED).fit(
        data["train_images"][:2], labels).predict(data["test_images"][:2])


def fit_predict_chm(train_images, labels, test_images, test_masks, n_jobs, predict=True, latency_image=None,
                    **overrides):
    """Fit (and predict) one CHM; times, peak RSS, timings_ and test error.

    With ``latency_image``, also the latency of ``predict_proba([latency_image])``: best of 5 after
    one warm-up call (a single image is predicted in this process, its filter bank on ``n_jobs``
    threads).
    """
    params = {**CHM_SETTINGS, **CONFIG, **overrides}
    model = CHM(**params, n_jobs=n_jobs, progress=False, random_state=SEED)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        model.fit(train_images, labels)
        fit = time.perf_counter() - t0
    res = {"fit": fit, "fit_rss": mem.peak, "fit_rss_start": mem.start, "timings": dict(model.timings_),
           "n_train": len(train_images)}
    if predict:
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            pred = model.predict(test_images)
            res["predict"] = time.perf_counter() - t0
        res["predict_rss"], res["predict_rss_start"] = mem.peak, mem.start
        res["error"] = pixel_error(pred, test_masks, ignore=-1)
        res["n_test"] = len(test_images)
        res["test_mpx"] = megapixels(test_images)
    if latency_image is not None:
        model.predict_proba([latency_image])
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            model.predict_proba([latency_image])
            times.append(time.perf_counter() - t0)
        res["latency"] = min(times)
    del model
    gc.collect()
    return res


def bench_chm(data, labels, n_jobs):
    return fit_predict_chm(data["train_images"], labels, data["test_images"], data["test_masks"], n_jobs,
                           latency_image=data["latency_image"])


def latency_image(images, shape=LATENCY_SHAPE):
    """The first test image resized to ``shape`` (the issue's 260 x 210 case)."""
    from skimage.transform import resize

    return resize(images[0], shape, order=1, anti_aliasing=True).astype(np.float32)


def bench_peer(data, labels, n_jobs):
    """scikit-image trainable segmentation: multiscale_basic_features + RandomForest(100 trees).

    Features are computed image by image; only the labelled rows of the training images are kept,
    and each test image is predicted as soon as its features exist.
    """
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    def feats(im):  # (H, W, F), channels-last
        return multiscale_basic_features(im, channel_axis=-1 if im.ndim == 3 else None, workers=n_jobs)

    res = {}
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        Xs, ys = [], []
        for im, lab in zip(data["train_images"], labels):
            F = feats(im)
            sel = lab >= 0
            Xs.append(F[sel])
            ys.append(lab[sel])
        X, y = np.concatenate(Xs), np.concatenate(ys)
        res["n_features"] = X.shape[1]
        rf = RandomForestClassifier(n_estimators=100, n_jobs=n_jobs, random_state=SEED).fit(X, y)
        res["fit"] = time.perf_counter() - t0
    res["fit_rss"] = mem.peak
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        pred = []
        for im in data["test_images"]:
            F = feats(im)
            pred.append(rf.predict(F.reshape(-1, F.shape[-1])).reshape(im.shape[:2]).astype(np.uint8))
            del F
        res["predict"] = time.perf_counter() - t0
    res["predict_rss"] = mem.peak
    res["error"] = pixel_error(pred, data["test_masks"], ignore=-1)
    del rf, X, y, Xs, pred
    gc.collect()
    return res


def bench_scaling(data, labels, n_jobs):
    n = len(data["train_images"])
    sizes = sorted({max(4, n // 4), max(4, n // 2), n})  # 41, 82, 164 on the full split
    out = []
    for k in sizes:
        log(f"scaling: fit on {k} training images")
        out.append(fit_predict_chm(data["train_images"][:k], labels[:k], None, None, n_jobs, predict=False))
    return out


def bench_ablation(data, labels, n_jobs):
    out = []
    for fam in CONFIG["features"]:
        log(f"ablation: without {fam}")
        r = fit_predict_chm(data["train_images"], labels, data["test_images"], data["test_masks"], n_jobs,
                            features=tuple(f for f in CONFIG["features"] if f != fam))
        r["left_out"] = fam
        out.append(r)
    return out


# ---------------------------------------------------------------------------------------------
# report

def report(args, data, bank, ours, peer, scaling, ablation):
    n_tr, n_te = len(data["train_images"]), len(data["test_images"])
    lines = [f"# chm benchmark run ({'quick' if args.quick else 'full'})", "",
             f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
             f"- chm {chm.__version__}, python {platform.python_version()}, numpy {np.__version__}, "
             f"os.cpu_count() = {os.cpu_count()}, --n-jobs {args.n_jobs}",
             f"- {data['name']}: {n_tr} train / {n_te} test images "
             f"({megapixels(data['train_images']):.2f} / {megapixels(data['test_images']):.2f} Mpx), "
             f"N = {data['n_labels']} labelled px per training image (seed {SEED})"
             + (" [--quick uses N = 40: 8 x 10 px cannot initialise the 24 x 24 LDNN]" if args.quick else ""),
             f"- CHM: levels={CHM_SETTINGS['levels']}, stages={CHM_SETTINGS['stages']}, "
             f"semi_supervised={CONFIG['semi_supervised']}, features={','.join(CONFIG['features'])} "
             f"({FilterBank(CONFIG['features']).n_features}) unless stated, "
             f"network={CONFIG['network']}, classifier_params={CONFIG['classifier_params']}, random_state={SEED}",
             "- peak RSS = max over the phase of RSS(this process + joblib workers), sampled every 0.2 s; "
             "start = the same sum when the phase began", ""]

    if bank:
        lines += [f"## Filter bank throughput (one thread, {len(data['bank_images'])} test images, "
                  f"{megapixels(data['bank_images']):.2f} Mpx)", ""]
        lines += table(["family", "features", "ms / image", "Mpx/s", "M features/s"],
                       [[r["family"], r["n_features"], f"{r['ms_per_image']:.0f}", f"{r['mpx_s']:.3f}",
                         f"{r['mfeat_s']:.1f}"] for r in bank])
        lines.append("")

    t = ours["timings"]
    stages = [k for k in t if isinstance(k, tuple)]  # (stage, level); named steps are the others
    sgd = sum(t[k]["sgd"] for k in stages)
    ctx = sum(t[k]["contexts"] for k in stages)
    lines += [f"## CHM, N = {data['n_labels']}, all {n_tr} training images", ""]
    rows = [["fit (total)", f"{ours['fit']:.1f} s"],
            ["↳ features (filter-bank rows, pass A)", f"{t['features']:.1f} s"],
            ["↳ SGD (incl. assembling and scaling X), all classifiers", f"{sgd:.1f} s"],
            ["↳ context maps, all classifiers", f"{ctx:.1f} s"]]
    rows += [[f"↳ stage {s} level {l}: SGD / contexts", f"{t[(s, l)]['sgd']:.1f} s / {t[(s, l)]['contexts']:.1f} s"]
             for s, l in stages]
    if "superpixels" in t:
        rows.append(["↳ superpixel labels", f"{t['superpixels']:.1f} s"])
    if "centres" in t:
        rows.append(["↳ spatial-loss centres (their filter-bank rows)", f"{t['centres']:.1f} s"])
    rows += [["↳ other (validation, bookkeeping; self-training's first fit and proposals)",
              f"{ours['fit'] - t['features'] - sgd - ctx - t.get('superpixels', 0.0) - t.get('centres', 0.0):.1f} s"],
             [f"predict ({n_te} test images)", f"{ours['predict']:.1f} s = {ours['predict'] / n_te:.2f} s/image "
              f"= {ours['test_mpx'] / ours['predict']:.3f} Mpx/s"],
             [f"predict latency, one {LATENCY_SHAPE[0]} x {LATENCY_SHAPE[1]} image, one process, "
              f"n_jobs={args.n_jobs} (best of 5)",
              f"{1e3 * ours['latency']:.0f} ms"],
             ["test pixel error", f"{100 * ours['error']:.2f} %"],
             ["↳ for scale: error of the most common test class everywhere",
              f"{100 * _one_class_error(data['test_masks']):.2f} %"],
             ["peak RSS, fit (start)", f"{gb(ours['fit_rss'])} ({gb(ours['fit_rss_start'])})"],
             ["peak RSS, predict (start)", f"{gb(ours['predict_rss'])} ({gb(ours['predict_rss_start'])})"]]
    lines += table(["quantity", "value"], rows)
    lines.append("")

    if peer:
        ours_t, peer_t = ours["fit"] + ours["predict"], peer["fit"] + peer["predict"]
        lines += [f"## Peer: scikit-image trainable segmentation, same {data['n_labels']} labelled px per image", "",
                  f"`multiscale_basic_features` ({peer['n_features']} features, workers={args.n_jobs}) + "
                  f"`RandomForestClassifier(n_estimators=100, n_jobs={args.n_jobs})`; "
                  "features computed image by image.", ""]
        lines += table(["method", "fit", "predict", "fit + predict", "test pixel error", "peak RSS fit / predict"],
                       [["CHM (ours)", f"{ours['fit']:.1f} s", f"{ours['predict']:.1f} s", f"{ours_t:.1f} s",
                         f"{100 * ours['error']:.2f} %", f"{gb(ours['fit_rss'])} / {gb(ours['predict_rss'])}"],
                        ["skimage + RF (peer)", f"{peer['fit']:.1f} s", f"{peer['predict']:.1f} s", f"{peer_t:.1f} s",
                         f"{100 * peer['error']:.2f} %", f"{gb(peer['fit_rss'])} / {gb(peer['predict_rss'])}"],
                        ["ratio ours / peer", f"{ours['fit'] / peer['fit']:.2f}", f"{ours['predict'] / peer['predict']:.2f}",
                         f"{ours_t / peer_t:.2f}",
                         f"{ours['error'] / peer['error']:.2f}" if peer["error"] > 0 else "n/a", ""]])
        lines.append("")

    if scaling:
        lines += ["## Scaling of the CHM fit with the number of training images", ""]
        lines += table(["training images", "fit", "s / image", "features / SGD / contexts", "peak RSS (start)"],
                       [[r["n_train"], f"{r['fit']:.1f} s", f"{r['fit'] / r['n_train']:.2f}",
                         " / ".join(f"{v:.1f} s" for v in _breakdown(r["timings"])),
                         f"{gb(r['fit_rss'])} ({gb(r['fit_rss_start'])})"] for r in scaling])
        lines.append("")

    if ablation:
        base_t = ours["fit"] + ours["predict"]
        lines += ["## Ablation: one filter family left out", "",
                  "Δ = change vs the configured bank (first row). 'pp per min saved' = Δ error / minutes of fit + predict "
                  "saved by leaving the family out: the error (percentage points) the family prevents per minute "
                  "it costs; near 0 or negative = the family costs time without buying accuracy.", ""]
        rows = [["none (configured bank)", FilterBank(CONFIG["features"]).n_features, f"{100 * ours['error']:.2f} %", "",
                 f"{ours['fit']:.1f} s", f"{ours['predict']:.1f} s", f"{base_t:.1f} s", "", ""]]
        for r in ablation:
            tot = r["fit"] + r["predict"]
            d_err = 100 * (r["error"] - ours["error"])
            saved = base_t - tot
            rows.append([r["left_out"], FilterBank(tuple(f for f in CONFIG["features"] if f != r["left_out"])).n_features,
                         f"{100 * r['error']:.2f} %", f"{d_err:+.2f} pp", f"{r['fit']:.1f} s", f"{r['predict']:.1f} s",
                         f"{tot:.1f} s", f"{-saved:+.1f} s",
                         f"{d_err / (saved / 60):+.2f}" if saved > 0 else "n/a (no time saved)"])
        lines += table(["left out", "features", "test error", "Δ error", "fit", "predict", "fit + predict",
                        "Δ time", "pp per min saved"], rows)
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
def record(args, data, ours, peer):
    """The numbers of one run that the README's table shows, with when, where and what code."""
    return {"key": f"{args.dataset}-{args.semi_supervised or 'supervised'}", "dataset": data["name"],
            "fold": args.fold if args.dataset == "stanford" else None,
            "semi_supervised": args.semi_supervised, "features": list(CONFIG["features"]),
            "date": datetime.date.today().isoformat(), "commit": git_commit(), "machine": machine(),
            "n_jobs": args.n_jobs, "n_train": len(data["train_images"]), "n_test": len(data["test_images"]),
            "n_labels": data["n_labels"], "latency_shape": list(LATENCY_SHAPE),
            "ours": {k: ours[k] for k in ("fit", "predict", "latency", "error", "fit_rss", "predict_rss")},
            "peer": {k: peer[k] for k in ("fit", "predict", "error")}}


def _one_class_error(masks):
    counts = sum(np.bincount(m[m >= 0].ravel().astype(np.int64), minlength=256) for m in masks)
    return 1 - counts.max() / counts.sum()


def _breakdown(t):
    keys = [k for k in t if isinstance(k, tuple)]  # (stage, level)
    return t["features"], sum(t[k]["sgd"] for k in keys), sum(t[k]["contexts"] for k in keys)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None,
                    help="data folder (default: $CHM_DATA, ../shared/data, for Weizmann the cache, else download)")
    ap.add_argument("--dataset", default="weizmann", choices=("weizmann", "stanford"),
                    help="stanford: one Stanford Background fold, CHM and peer only (no scaling / ablation)")
    ap.add_argument("--fold", type=int, default=0, help="--dataset stanford: the fold (0..4)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="8 train / 8 test images, to check the script")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-ablation", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--features", default=None,
                    help="filter families of the CHM, comma-separated (default: the CHM default bank; "
                         "Stanford: plus position)")
    ap.add_argument("--network", default="small", choices=tuple(NETWORKS),
                    help="LDNN sizes (CHM network=; default: small, the CHM default)")
    ap.add_argument("--classifier-params", default="{}", help="JSON overrides of every classifier")
    ap.add_argument("--semi-supervised", default=None, help="CHM semi_supervised= (default: None, supervised)")
    ap.add_argument("--out", default=str(RECORDS.parent / "results" / "run.md"))
    ap.add_argument("--records", default=str(RECORDS),
                    help="folder of the JSON records the README's speed table is built from (a full run "
                         "with the peer and the dataset's default bank writes its record there)")
    ap.add_argument("--readme", default=None,
                    help="rebuild this README's speed table from --records after the run")
    args = ap.parse_args(argv)
    run(args)
    if args.readme:
        update_readme(Path(args.readme), args.records)
        log(f"speed table of {args.readme} rebuilt from {args.records}")


def run(args):
    """The benchmark itself: measure, print and write the report, and the record of a full run."""
    CONFIG["semi_supervised"] = args.semi_supervised
    scene = args.dataset == "stanford"
    CONFIG["features"] = (tuple(args.features.split(",")) if args.features
                          else SCENE_FEATURES if scene else DEFAULT_FEATURES)
    CONFIG["network"] = args.network
    CONFIG["classifier_params"] = json.loads(args.classifier_params) or None

    # like the tests: an explicit --data, else $CHM_DATA, ../shared/data next to the repo, the cache
    n = 8 if args.quick else None
    if scene:
        d = load_stanford_background(data_root(args.data), fold=args.fold, seed=0)
        CONFIG["n_classes"] = len(d.classes)  # a small draw may miss a class; the maps keep K channels
        name = f"Stanford Background fold {args.fold} ({len(d.classes)} classes, colour)"
    else:
        d = load_weizmann_horse(weizmann_root(args.data))
        name = "Weizmann horses"
    data = {"name": name, "train_images": d.train_images[:n], "train_masks": d.train_masks[:n],
            "test_images": d.test_images[:n], "test_masks": d.test_masks[:n]}
    data["bank_images"] = data["test_images"][:20]
    data["latency_image"] = latency_image(data["test_images"])
    data["n_labels"] = N_LABELS_QUICK if args.quick else N_LABELS
    # Stanford: the labels of experiments/stanford.py's draw 0 (its seed 0), so the errors compare
    rng = np.random.default_rng([0, data["n_labels"], 0] if scene else SEED)
    labels = sample_sparse_labels(data["train_masks"], data["n_labels"], rng, ignore=-1)

    bank = None
    if not scene:  # the gray bank; a colour model adds its colour family
        log(f"filter bank throughput on {len(data['bank_images'])} images")
        bank = bench_filter_bank(data["bank_images"])
    log("warm-up")
    warm_up(data, args.n_jobs)
    log(f"CHM fit on {len(labels)} images, predict {len(data['test_images'])}")
    ours = bench_chm(data, labels, args.n_jobs)
    peer = scaling = ablation = None
    if not args.skip_peer:
        log("peer: skimage multiscale_basic_features + random forest")
        peer = bench_peer(data, labels, args.n_jobs)
    if scene and not (args.skip_scaling and args.skip_ablation):
        log("--dataset stanford: no scaling or ablation sections (an hour more of fits)")
    if not args.skip_scaling and not scene:
        scaling = bench_scaling(data, labels, args.n_jobs)
    if not args.skip_ablation and not scene:
        ablation = bench_ablation(data, labels, args.n_jobs)

    text = report(args, data, bank, ours, peer, scaling, ablation)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    log(f"written to {out}")
    default_bank = CONFIG["features"] == (SCENE_FEATURES if scene else DEFAULT_FEATURES)
    if peer and not args.quick and default_bank and args.network == "small" and not CONFIG["classifier_params"]:
        rec = record(args, data, ours, peer)
        path = write_record(rec, args.records)
        log(f"record written to {path}")
    else:
        log("no record written (only full runs with the peer and the default bank and network make one)")


if __name__ == "__main__":
    from chm.utils import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
