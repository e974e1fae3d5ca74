"""Table 1 of the paper: Weizmann horses, N labelled pixels per training image.

Columns, all on the same sparse-label draws (5 per N):

* supervised: the CHM on the labelled pixels only;
* MRF: the supervised output post-processed by a contrast-sensitive Potts MRF (exact graph cut);
* TV: the paper's total-variation loss (eq. 8-15), fresh centres from every pixel each epoch;
* L2: weight decay (Tikhonov) instead of an unsupervised term, the paper's other comparison;
* recommended: ``semi_supervised="auto"`` (the labels spread over superpixels, then self-training
  on graph-cut proposals), its own output,
  and "+ MRF": the same output decoded by the MRF, so learning and post-processing stay apart.

Every weight (MRF beta, TV alpha, L2 weight decay, the recommended method's MRF beta) is chosen
per N by k-fold cross-validation over the *training* images, scored by their sparse labels at that
N only (``chm.selection``: ``--folds`` folds, default 5, the same folds for every candidate); no
test image and no dense mask takes part. Cost: each candidate weight is fitted once per fold on
(k - 1)/k of the training images, so choosing the weights of one N takes k x (3 TV + 3 L2 +
supervised + recommended) = 40 fits at k = 5 (the recommended fit is a few supervised ones), about
as much as 5 draws of every column; ``--folds 1`` scores on one held-out fifth instead (8 fits,
the protocol before k-fold; its score rests on 330 labels at N = 10, one standard error ~1.7
points). The pooled test pixel error is reported as mean +- std over the draws, with the predicted
foreground fraction and the foreground IoU beside it (the truth's foreground is 24.8 %).

``--clicks`` says how the N labelled pixels are drawn: ``uniform`` (the paper's: uniformly at
random, whatever their class) or ``balanced`` (N / 2 per class, as a user clicking both horse and
background would); the default folder of a balanced run is results/weizmann_balanced.

    python -m experiments.weizmann --alpha 0.3              # the TV weight fixed (the paper gives no value)
    python -m experiments.weizmann                          # every weight chosen by the rule
    python -m experiments.weizmann --clicks balanced        # N / 2 clicks per class
    python -m experiments.weizmann --quick                  # smoke run in a few minutes
    python -m experiments.weizmann --classifier convnet     # the paper's ConvNet instead of the CHM

from the repository root; ``python -m experiments.weizmann ...`` does the same (it re-executes itself
as the module).

``--classifier convnet`` fits ``chm.ConvNet`` (PyTorch, the ``convnet`` extra) through the driver of
the scene experiments (:mod:`experiments.scenes`, whose options it takes: ``--methods``,
``--threads``, ``--alpha``, ``--n-iter``, ``--draws`` as a count, ...): columns supervised, MRF
(multi-label Potts, beta chosen on held-out training images' sparse labels) and TV, written to
``--out`` (default results/weizmann_convnet) as table1.md, table1.csv, fig_error.png and
fig_samples.png. The paper has no ConvNet on Weizmann; its CHM numbers are shown beside ours.

Writes to --out: table1.md, table1.csv, fig1.png, fig2.png, weights.png (each weight's
cross-validated curve), and runs/ (one JSON per finished
(N, draw, method) and per N's weight choice, each candidate's score stored as soon as it is known:
an interrupted run resumes where it stopped).
Several processes may share --out: the same command started twice with ``--n-jobs 1`` keeps both
cores of a 2-core machine busy, each process claiming the runs it starts (:mod:`experiments.claims`)
and waiting at the end for those of the other, so both write the whole table.
Filter-bank features are cached in OUT/feature_cache up to --cache-gb, printed before the start.
"""

if __name__ == "__main__" and not __package__:  # python -m experiments.weizmann: run as the module
    from _common import run_as_module

    run_as_module("experiments.weizmann")

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import chm
from chm import CHM, mrf
from chm.cascade.cache import FeatureCache, footprint
from chm.datasets import CLICK_PROTOCOLS, load_weizmann_horse
from chm.features import FilterBank
from chm.io.files import write_atomic
from chm.metrics import class_iou, pixel_error
from chm.model import DEFAULT_FEATURES
from chm.selection import cross_val_predict, kfold, select, std_error
from experiments._common import table1_labels, table1_seed, weizmann_root, write_json
from experiments.claims import claimed, wait

# Paper Table 1 (mean, std) in %: supervised, MRF post-processing, semi-supervised (TV).
PAPER = {10: ((23.81, 1.50), (19.92, 1.28), (11.98, 0.24)), 20: ((16.63, 0.67), (14.24, 0.36), (11.03, 0.21)),
         30: ((14.20, 0.80), (12.27, 0.29), (10.30, 0.41)), 40: ((12.35, 0.16), (11.21, 0.12), (9.96, 0.35)),
         50: ((11.86, 0.19), (11.01, 0.17), (9.78, 0.20))}
FITTED = ("supervised", "tv", "l2", "auto")               # methods that train a model
COLUMNS = ("supervised", "mrf", "tv", "l2", "auto", "auto+mrf")
TITLES = {"supervised": "supervised", "mrf": "MRF post-processing", "tv": "TV (paper)", "l2": "L2 weight decay",
          "auto": "recommended", "auto+mrf": "recommended + MRF"}
CANDIDATES = {"tv": (0.1, 0.3, 1.0), "l2": (1e-4, 1e-3, 1e-2), "beta": (0, 1, 2, 4, 8, 16, 32, 64)}
FIG_IMAGES = 4
#: Settings added since results were first written, at the value those results had.
OLD_DEFAULTS = {"folds": 1, "clicks": "uniform"}


def model_params(args):
    """CHM settings shared by every run."""
    return dict(levels=args.levels, stages=2, classifier=args.classifier, features=tuple(args.features.split(",")),
                epochs=args.epochs, classifier_params=json.loads(args.classifier_params) or None,
                spatial_rate=args.spatial_rate, n_jobs=args.n_jobs, feature_cache=feature_cache(args),
                progress=False if args.quiet else True if args.progress else None)


def method_params(method, weight):
    """The CHM parameters of one method at one weight."""
    return {"supervised": {}, "tv": {"semi_supervised": "tv", "alpha": weight},
            "l2": {"weight_decay": weight}, "auto": {"semi_supervised": "auto"}}[method]


def feature_cache(args):
    """The filter-bank cache every fit shares: at most --cache-gb GB in --cache (None with --no-cache)."""
    if args.no_cache:
        return None
    return FeatureCache(args.cache or Path(args.out) / "feature_cache", max_bytes=int(args.cache_gb * 1e9))


def describe_cache(args, data):
    """One line on the cache's disk footprint, printed before any work."""
    cache = feature_cache(args)
    images = list(data.train_images) + list(data.test_images)
    need = footprint([im.shape for im in images], args.levels, FilterBank(tuple(args.features.split(","))).n_features)
    if cache is None:
        return f"feature cache: off; every fit recomputes the filter bank ({need / 1e9:.1f} GB would cache it all)"
    return (f"feature cache '{cache.folder}': at most {args.cache_gb:g} GB on disk ({cache.size() / 1e9:.1f} GB there "
            f"now); all {len(images)} images would take {need / 1e9:.1f} GB (--cache-gb {math.ceil(need / 1e9)} "
            "caches them all and saves the most time, --no-cache none)")


def _savez(path, arrays):
    write_atomic(path, lambda fh: np.savez_compressed(fh, *arrays))


def _loadz(path):
    with np.load(path) as z:
        return [z[f"arr_{i}"].astype(np.float32) for i in range(len(z.files))]


def candidates(args):
    """Candidate weights; --quick tries two per method."""
    return {k: v[:2] if k != "beta" else v[3:5] for k, v in CANDIDATES.items()} if args.quick else CANDIDATES


def sparse_labels(data, n, draw, args):
    """The sparse labels of draw ``draw`` at N = ``n`` (``--clicks`` protocol); draw 0 also chooses the weights."""
    return table1_labels(data.train_masks, n, draw, args.seed, args.clicks)


def choose_weights(data, n, args, runs):
    """Every weight for N labels per image, by k-fold cross-validation over the training images (draw 0).

    The training images are dealt into ``--folds`` folds (the same for every weight); each method
    is fitted on every fold's complement at every candidate weight and scored by the error of its
    decisions on the fold's sparse labels (``chm.selection.select``). The MRF betas are scored by
    the graph-cut decoding error of the out-of-fold maps (``chm.mrf.select_beta``).
    Returns None when another process sharing ``--out`` is choosing them (:mod:`claims`).
    """
    path = runs / f"N{n}_weights.json"
    keys = ("tv", "l2", "mrf", "auto+mrf")
    out = json.loads(path.read_text()) if path.exists() else {}
    if all(k in out for k in keys):
        return out
    with claimed(path) as mine:
        # re-read under the claim: another process may have chosen some since
        return _choose_weights(data, n, args, path, json.loads(path.read_text()) if path.exists() else {}) \
            if mine else None


class _Stored(dict):
    """A dict that saves the weights file whenever an entry is set: ``select``'s memo, so a
    stopped choice keeps the candidates already scored."""

    def __init__(self, entries, save):
        super().__init__(entries)
        self._save = save

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self._save()


def _choose_weights(data, n, args, path, out):
    # Each weight is written as soon as it is chosen (and each candidate's score as soon as it is
    # known): a stopped run, or a column whose method changed (its key deleted from the file),
    # redoes only what is missing.
    t0 = time.perf_counter()
    images, labels = data.train_images, sparse_labels(data, n, 0, args)
    splits = kfold(len(labels), args.folds, [args.seed, n, 99])
    n_labels = sum(int((labels[i] >= 0).sum()) for _, held in splits for i in held)
    out.update(folds=args.folds, clicks=args.clicks, n_labels=n_labels)
    for key in ("scores", "std_errors", "memo"):  # memo: each candidate's score and per-fold scores
        out.setdefault(key, {})

    def make(method, w=None):
        return lambda: CHM(random_state=args.seed, **model_params(args), **method_params(method, w))

    def done(key, value, scores, errors):
        nonlocal t0
        out[key], out["scores"][key] = value, {str(k): v for k, v in scores.items()}
        out["std_errors"][key] = {str(k): v for k, v in errors.items()}
        out["seconds"] = out.get("seconds", 0.0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        write_json(path, out)

    for method in ("tv", "l2"):
        if method in out:
            continue
        if method == "tv" and args.alpha is not None:
            done("tv", args.alpha, {}, {})
            continue
        memo = out["memo"][method] = _Stored(out["memo"].get(method, {}), lambda: write_json(path, out))
        result = select({w: make(method, w) for w in candidates(args)[method]}, images, labels, splits=splits,
                        memo=memo)
        done(method, result.best, result.scores, result.std_errors)
    for key, method in (("mrf", "supervised"), ("auto+mrf", "auto")):
        if key in out:
            continue
        oof = cross_val_predict(make(method), images, labels, splits=splits)
        held = oof.held
        beta, scores = mrf.select_beta([oof.maps[i] for i in held], [labels[i] for i in held],
                                       betas=candidates(args)["beta"], images=[images[i] for i in held],
                                       threshold=[oof.thresholds[i] for i in held])
        done(key, float(beta), scores, {b: std_error(e, n_labels) for b, e in scores.items()})
    return out


def run_draw(data, n, draw, args, runs, weights):
    """Train and evaluate every method of one (N, draw); each result is cached in runs/.

    Skips the runs another process sharing ``--out`` has claimed; returns the results still
    missing after this call.
    """
    labels = sparse_labels(data, n, draw, args)
    seed = table1_seed(n, draw, args.seed)
    missing = []
    for method in FITTED:
        path = runs / f"N{n}_draw{draw}_{method}.json"
        if path.exists():
            continue
        with claimed(path) as mine:
            if not mine or path.exists():  # claimed, or finished by another process just now
                missing += [] if path.exists() else [path]
                continue
            t0 = time.perf_counter()
            weight = weights.get(method)
            model = CHM(random_state=seed, **model_params(args), **method_params(method, weight))
            model.fit(data.train_images, labels)
            fit_time = time.perf_counter() - t0
            maps = model.predict_proba(data.test_images)
            masks = [p > model.threshold_ for p in maps]
            if method in ("supervised", "auto"):  # kept (float16) for the MRF columns
                _savez(runs / f"N{n}_draw{draw}_{method}_maps.npz", [p.astype(np.float16) for p in maps])
            if draw == 0:
                _savez(runs / f"N{n}_{method}_fig.npz", maps[:FIG_IMAGES])
            write_json(path, {"N": n, "draw": draw, "method": method, "weight": weight, "clicks": args.clicks,
                               "threshold": model.threshold_, "error": pixel_error(masks, data.test_masks),
                               "foreground": _fraction(masks), "iou": _iou(masks, data.test_masks),
                               "rounds": getattr(model, "rounds_", []),
                               "fit_seconds": fit_time, "seconds": time.perf_counter() - t0})
    for key, method in (("mrf", "supervised"), ("auto+mrf", "auto")):
        path = runs / f"N{n}_draw{draw}_{key}.json"
        fitted = runs / f"N{n}_draw{draw}_{method}.json"
        if path.exists():
            continue
        with claimed(path) as mine:
            if not mine or not fitted.exists() or path.exists():  # the fit is another process's, still running
                missing += [] if path.exists() else [path]
                continue
            t0 = time.perf_counter()
            t = json.loads(fitted.read_text())["threshold"]
            maps = _loadz(runs / f"N{n}_draw{draw}_{method}_maps.npz")
            masks = [mrf.decode(p, weights[key], image=im, threshold=t) for p, im in zip(maps, data.test_images)]
            write_json(path, {"N": n, "draw": draw, "method": key, "weight": weights[key], "clicks": args.clicks,
                               "error": pixel_error(masks, data.test_masks), "foreground": _fraction(masks),
                               "iou": _iou(masks, data.test_masks), "seconds": time.perf_counter() - t0})
    return missing


def _fraction(masks):
    return float(sum(int(np.sum(m)) for m in masks) / sum(np.size(m) for m in masks))


def _iou(masks, truth):
    """The foreground's IoU, pooled over the test images."""
    return float(class_iou(masks, truth, 2)[1])


def collect(runs, sizes, trials):
    """{(N, column): array of (error %, foreground %, foreground IoU %) per finished draw}; the IoU
    is NaN for a run written before it was recorded."""
    res = {}
    for n in sizes:
        for m in COLUMNS:
            rows = [json.loads(p.read_text()) for p in (runs / f"N{n}_draw{d}_{m}.json" for d in range(trials))
                    if p.exists()]
            res[(n, m)] = 100 * np.array([(r["error"], r["foreground"], r.get("iou", np.nan))
                                          for r in rows]).reshape(-1, 3)
    return res


def write_table(res, sizes, out, total_px, n_train, weights, wall, compute, args):
    rows = []
    for n in sizes:
        row = {"N": n, "percent_labelled": f"{100 * n * n_train / total_px:.4f}"}
        for m in COLUMNS:
            e = res[(n, m)]
            row[f"{m}_mean"] = f"{e[:, 0].mean():.2f}" if len(e) else ""
            row[f"{m}_std"] = f"{e[:, 0].std(ddof=1) if len(e) > 1 else 0:.2f}"
            row[f"{m}_foreground"] = f"{e[:, 1].mean():.1f}" if len(e) else ""
            iou = e[:, 2][np.isfinite(e[:, 2])]
            row[f"{m}_iou"] = f"{iou.mean():.2f}" if len(iou) else ""
            row[f"{m}_iou_std"] = f"{iou.std(ddof=1) if len(iou) > 1 else 0:.2f}" if len(iou) else ""
            row[f"{m}_draws"] = len(e)
        w = weights.get(n, {})
        row.update({f"weight_{k}": w.get(k, "") for k in ("mrf", "tv", "l2", "auto+mrf")})
        row["clicks"], row["weight_folds"] = args.clicks, w.get("folds", 1)  # files before --folds: one held-out fifth
        for i, m in enumerate(("supervised", "mrf", "semi")):
            row[f"paper_{m}"] = "{:.2f} ± {:.2f}".format(*PAPER[n][i]) if n in PAPER else ""
        rows.append(row)
    with open(out / "table1.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    head = " | ".join(TITLES[m] for m in COLUMNS)
    clicks = {"uniform": "uniform clicks (the paper's: N pixels at random, whatever their class)",
              "balanced": "balanced clicks (N / 2 pixels per class)"}[args.clicks]
    lines = [f"Weizmann horses, {clicks}.", "",
             f"| N (% labelled) | {head} | paper: sup. / MRF / semi |", "|---" * (len(COLUMNS) + 2) + "|"]
    for r in rows:
        cells = [f"{r[m + '_mean']} ± {r[m + '_std']} ({r[m + '_foreground']})" if r[m + "_mean"] else "–"
                 for m in COLUMNS]
        paper = " / ".join(r[f"paper_{m}"] or "–" for m in ("supervised", "mrf", "semi"))
        lines.append(f"| {r['N']} ({r['percent_labelled']} %) | " + " | ".join(cells) + f" | {paper} |")
    lines.append("\nPooled test pixel error (%), mean ± sample std (n − 1) over the draws, and in brackets the "
                 "predicted foreground (%; truth 24.8 %).")
    lines += ["", f"| N | {head} |", "|---" * (len(COLUMNS) + 1) + "|"]
    for r in rows:
        cells = [f"{r[m + '_iou']} ± {r[m + '_iou_std']}" if r[m + "_iou"] else "–" for m in COLUMNS]
        lines.append(f"| {r['N']} | " + " | ".join(cells) + " |")
    folds = sorted({r["weight_folds"] for r in rows})
    how = " / ".join("one held-out fifth of" if k == 1 else f"{k}-fold cross-validation over" for k in folds)
    lines.append("\nForeground IoU (%) pooled over the test images, mean ± sample std over the draws."
                 f"\nWeights chosen by {how} the training images (their sparse labels at N only): "
                 + "; ".join(f"N = {r['N']}: MRF β {r['weight_mrf']}, TV α {r['weight_tv']}, L2 {r['weight_l2']}, "
                             f"recommended + MRF β {r['weight_auto+mrf']}" for r in rows)
                 + f".\nWall time of this invocation {wall / 60:.1f} min; compute summed over all runs "
                 f"{compute / 60:.1f} min.")
    (out / "table1.md").write_text("\n".join(lines) + "\n")
    return "\n".join(lines)


def plot(res, sizes, out, data, runs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = dict(zip(COLUMNS, ("tab:red", "tab:green", "tab:blue", "tab:gray", "tab:purple", "black")))
    for m in COLUMNS:
        ok = [n for n in sizes if len(res[(n, m)])]
        if ok:
            ax.errorbar(ok, [res[(n, m)][:, 0].mean() for n in ok], yerr=[res[(n, m)][:, 0].std() for n in ok],
                        label=f"ours: {TITLES[m]}", color=colors[m], capsize=3, marker="o")
    pn = [n for n in sizes if n in PAPER]
    for i, (title, color) in enumerate((("supervised", "tab:red"), ("MRF", "tab:green"), ("TV", "tab:blue"))):
        ax.plot(pn, [PAPER[n][i][0] for n in pn], "--", color=color, alpha=0.5, label=f"paper: {title}")
    ax.set_xlabel("labelled pixels per training image")
    ax.set_ylabel("test pixel error (%)")
    ax.set_title("Weizmann horses (Table 1)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "fig1.png", dpi=120)
    plt.close(fig)

    n = sizes[0]
    panels = [(TITLES[m], runs / f"N{n}_{m}_fig.npz") for m in ("supervised", "tv", "auto")]
    panels += [("dense labels", runs / "dense_fig.npz")]
    panels = [(t, _loadz(p)) for t, p in panels if p.exists()]
    k = min(FIG_IMAGES, len(data.test_images))
    fig, axes = plt.subplots(k, 2 + len(panels), figsize=(2.2 * (2 + len(panels)), 1.9 * k), squeeze=False)
    for r in range(k):
        cols = [("image", data.test_images[r], "gray")] + [(t, z[r], "viridis") for t, z in panels] + \
               [("ground truth", data.test_masks[r], "gray")]
        for c, (title, im, cmap) in enumerate(cols):
            axes[r, c].imshow(im, cmap=cmap, vmin=0, vmax=1)
            axes[r, c].axis("off")
            if r == 0:
                axes[r, c].set_title(title if title in ("image", "ground truth", "dense labels") else f"{title}, N={n}",
                                     fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fig2.png", dpi=100)
    plt.close(fig)


def plot_weights(weights, sizes, out):
    """The selection rule's view: cross-validated sparse-label error (± binomial standard error)
    against each candidate weight, per N."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("tv", "l2", "mrf", "auto+mrf") if any(k in weights[n]["scores"] for n in sizes)]
    names = {"tv": "TV alpha", "l2": "L2 weight decay", "mrf": "MRF beta (supervised)",
             "auto+mrf": "MRF beta (recommended)"}
    fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for n in sizes:
            scores = weights[n]["scores"].get(key)
            if scores:
                ws = sorted(scores, key=float)
                se = weights[n].get("std_errors", {}).get(key, {})
                line = ax.errorbar(range(len(ws)), [100 * scores[w] for w in ws],
                                   yerr=[100 * se.get(w, 0.0) for w in ws], marker="o", capsize=2,
                                   label=f"N = {n}").lines[0]
                ax.plot([ws.index(next(w for w in ws if float(w) == float(weights[n][key])))],
                        [100 * scores[next(w for w in ws if float(w) == float(weights[n][key]))]], "*",
                        color=line.get_color(), markersize=11)
                ax.set_xticks(range(len(ws)), [f"{float(w):g}" for w in ws], fontsize=7)
        ax.set_title(names[key], fontsize=9)
        ax.set_ylabel("out-of-fold sparse-label error (%)", fontsize=8)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Weights chosen by cross-validation over the training images (star = chosen)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "weights.png", dpi=110)
    plt.close(fig)


def dense_model(data, args, runs):
    """The model trained on dense labels (Figure 2's last map column), once; returns its file
    (in a list) while another process is still making it."""
    path = runs / "dense_fig.npz"
    if path.exists():
        return []
    with claimed(path) as mine:
        if not mine or path.exists():
            return [] if path.exists() else [path]
        t = time.perf_counter()
        labels = [m.astype(np.int8) for m in data.train_masks]
        model = CHM(random_state=args.seed, max_samples=args.dense_samples, **model_params(args))
        model.fit(data.train_images, labels)
        _savez(path, model.predict_proba(data.test_images[:FIG_IMAGES]))
        write_json(runs / "dense.json", {"max_samples": args.dense_samples, "seconds": time.perf_counter() - t})
    return []


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=None,
                    help="fix the TV weight instead of choosing it by cross-validation (the paper gives no value)")
    ap.add_argument("--folds", type=int, default=5,
                    help="k of the k-fold cross-validation over the training images that chooses every weight "
                         "(default 5: 40 fits per N; 1 = one held-out fifth, 8 fits, noisier; --quick: at most 2)")
    ap.add_argument("--clicks", choices=CLICK_PROTOCOLS, default="uniform",
                    help="how the N labelled pixels are drawn: uniform (the paper's) or balanced (N / 2 per class)")
    ap.add_argument("--sizes", default="10,20,30,40,50", help="labelled pixels per image, comma-separated")
    ap.add_argument("--trials", type=int, default=5, help="sparse-label draws per size")
    ap.add_argument("--draws", default=None,
                    help="which draws to run, in this order (e.g. 4,3; default: all --trials): several "
                         "processes sharing --out can split one N's draws")
    ap.add_argument("--data", default=None, help="Weizmann folder (default: $CHM_DATA, then the cache/download)")
    ap.add_argument("--out", default=None, help="default results/weizmann (results/weizmann_balanced for "
                                                "--clicks balanced)")
    ap.add_argument("--n-jobs", type=int, default=-1, help="parallel workers over images (-1 = all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classifier", default="ldnn", choices=("ldnn", "logistic", "convnet"),
                    help="the CHM's classifier, or convnet: the paper's ConvNet instead of the CHM (see above)")
    ap.add_argument("--features", default=",".join(DEFAULT_FEATURES))
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--classifier-params", default="{}", help="JSON overrides of every classifier")
    ap.add_argument("--spatial-rate", type=float, default=4.0)
    ap.add_argument("--dense-samples", type=int, default=20_000,
                    help="labelled px per class and level for the dense-label model of Figure 2")
    ap.add_argument("--cache", default=None, help="feature cache folder (default OUT/feature_cache)")
    ap.add_argument("--cache-gb", type=float, default=4.0,
                    help="disk budget of the feature cache in GB (default 4; all 328 images need about 17 GB "
                         "with the default bank)")
    ap.add_argument("--no-cache", action="store_true", help="recompute filter-bank features in every fit")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    ap.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a terminal "
                                                            "(default: bars on a terminal, else a few lines per stage)")
    ap.add_argument("--quick", action="store_true",
                    help="8 images, one draw, N=10, a cheap filter bank, two candidates per weight, at most 2 folds: "
                         "a smoke run")
    return ap.parse_args(argv)


def convnet_main(argv):
    """``--classifier convnet``: the ConvNet rows, through the scene experiments' driver."""
    from experiments import scenes

    args = scenes.parse_args(argv, __doc__)
    args.out = scenes.default_out(args, "weizmann")
    data = load_weizmann_horse(weizmann_root(args.data))
    if args.quick:
        data = scenes.subsample(data, 8, 2)
        args.beta_images = 2
    return scenes.run(args, [("weizmann", data)], PAPER, "table1", "Weizmann horses (ConvNet)",
                      "The ConvNet on the Weizmann horses; the paper's columns are its CHM (it has no "
                      "ConvNet on Weizmann).")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    pick = argparse.ArgumentParser(add_help=False)
    pick.add_argument("--classifier")
    if pick.parse_known_args(argv)[0].classifier == "convnet":
        return convnet_main(argv)
    args = parse_args(argv)
    t0 = time.perf_counter()
    draws = range(args.trials) if args.draws is None else [int(d) for d in args.draws.split(",")]
    if any(not 0 <= d < args.trials for d in draws):
        raise SystemExit(f"--draws must be in 0..{args.trials - 1} (--trials {args.trials}), got {args.draws}")
    data = load_weizmann_horse(weizmann_root(args.data))
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:  # a smoke run: few images, a cheap bank, one draw, two candidates per weight
        k = 8
        data = dataclasses.replace(data, train_images=data.train_images[:k], train_masks=data.train_masks[:k],
                                   test_images=data.test_images[:k], test_masks=data.test_masks[:k])
        sizes, args.trials, args.dense_samples, args.features = sizes[:1], 1, 5000, "haar,hog,intensity"
        draws, args.folds = range(1), min(args.folds, 2)
    if not 1 <= args.folds <= len(data.train_images):
        raise SystemExit(f"--folds must be in 1..{len(data.train_images)} (the training images), got {args.folds}")
    args.out = args.out or ("results/weizmann" if args.clicks == "uniform" else f"results/weizmann_{args.clicks}")
    out = Path(args.out)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    # Settings that change no result may differ between invocations sharing --out (e.g. two
    # processes, one per subset of --sizes).
    volatile = ("quiet", "progress", "n_jobs", "no_cache", "cache", "cache_gb", "sizes", "trials", "draws")
    config = {k: v for k, v in vars(args).items() if k not in volatile}
    config_file = out / "config.json"
    # a folder of before --folds / --clicks chose on one held-out fifth with uniform clicks
    if config_file.exists() and {**OLD_DEFAULTS, **json.loads(config_file.read_text())} != config:
        raise SystemExit(f"{out} holds results of another configuration ({config_file}); use another --out")
    write_json(config_file, config)
    print(describe_cache(args, data), flush=True)
    weights, said = {}, set()

    def say(line):  # each heading once, however many passes
        if line not in said:
            said.add(line)
            print(line, flush=True)

    def one_pass():  # everything this process can claim; returns what is left to others
        missing = []
        for n in sizes:
            if n not in weights:
                say(f"== N = {n}: choosing weights by {args.folds}-fold cross-validation over the training images"
                    if args.folds > 1 else f"== N = {n}: choosing weights on held-out training images")
                w = choose_weights(data, n, args, runs)
                if w is None:  # another process is choosing them: its other N first
                    missing.append(runs / f"N{n}_weights.json")
                    continue
                weights[n] = w
            for d in draws:
                say(f"== N = {n}, draw {d + 1}/{args.trials}")
                missing += run_draw(data, n, d, args, runs, weights[n])
        return missing + dense_model(data, args, runs)

    wait(one_pass)
    res = collect(runs, sizes, args.trials)
    total_px = sum(m.size for m in data.train_masks)
    compute = sum(json.loads(p.read_text()).get("seconds", 0) for p in runs.glob("*.json"))
    table = write_table(res, sizes, out, total_px, len(data.train_masks), weights, time.perf_counter() - t0, compute,
                        args)
    plot(res, sizes, out, data, runs)
    plot_weights(weights, sizes, out)
    print(table)
    print(f"wrote {out}/table1.md, table1.csv, fig1.png, fig2.png, weights.png (chm {chm.__version__})")


if __name__ == "__main__":
    from chm.utils import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
