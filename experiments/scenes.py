"""Shared driver of the scene-labelling experiments (paper Tables 2 and 3): :mod:`experiments.stanford`,
:mod:`experiments.siftflow`.

For every split (a Stanford fold, or SIFT Flow's one split), labelled-pixel count N and sparse-label
draw, a supervised and a TV-trained classifier are fitted on the same draw; the supervised
probabilities are also decoded by a multi-label Potts MRF (alpha-expansion) whose beta is chosen
per (split, N) on held-out *training* images of the split with their sparse labels only (a fifth of
them, at most ``--beta-images`` scored). Test scores: pooled pixel error and, beside it, the mean
IoU over the classes (the foreground IoU for two classes), unknown/unlabelled pixels excluded.
``--clicks`` draws the N labelled pixels uniformly (the paper's, the default) or ``balanced`` (N
split over the classes present in each image, as a user clicking every class in view would); it is
part of the configuration of OUT, and the default OUT of a balanced run ends in ``_balanced``.
Every finished (split, N, draw, method) is a JSON
file in OUT/runs, so an interrupted run resumes; a different configuration in the same OUT is
refused. Several processes may share OUT (e.g. the same command started once per core, with
``--threads 1``): each claims a run before it starts it and leaves the others' claimed runs alone.

``--classifier chm`` fits the K-class colour CHM (``chm.CHM``, settings from ``--chm-params``) with
the methods supervised, tv (the paper's loss on the K-channel probability image), contrast (the
contrast-sensitive pairwise loss, ``semi_supervised="contrast"``), superpixels (the sparse labels
spread over superpixels, ``semi_supervised="superpixels"``) and self-training (alpha-expansion
proposals, ``semi_supervised="self-training"``); the ConvNet takes supervised, tv and superpixels;
the filter bank of every image is cached in OUT/feature_cache up to ``--cache-gb``.
"""

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from chm import mrf
from chm.datasets import CLICK_PROTOCOLS, sample_sparse_labels
from chm.io.files import write_atomic
from chm.metrics import class_iou, pixel_error
from experiments._common import data_root, write_json
from experiments.claims import claimed

METHODS = ("supervised", "mrf", "tv", "contrast", "superpixels", "self-training")
SEMI = ("tv", "contrast", "superpixels", "self-training")  # the semi-supervised fits
LOSSES = ("tv", "contrast")  # the methods weighted by --alpha
# 10 since SIFT Flow's ConvNet chose 3, the top of the grid before (a beta already chosen is kept in runs/)
BETAS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
TITLES = {"mrf": "MRF", "tv": "TV"}  # column titles where they differ from the method's name
COLORS = dict(zip(METHODS, ("tab:red", "tab:green", "tab:blue", "tab:purple", "black", "tab:orange")))
FIG_IMAGES = 4
#: Settings added since results were first written, at the value those results had.
OLD_DEFAULTS = {"clicks": "uniform"}


def parse_args(argv, description, folds=False):
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classifier", default="convnet", choices=("convnet", "chm"))
    ap.add_argument("--data", default=data_root(), help="folder holding the dataset (or the dataset folder)")
    ap.add_argument("--out", required=False)
    ap.add_argument("--sizes", default="10,20,30,40,50", help="labelled pixels per image, comma-separated")
    ap.add_argument("--draws", type=int, default=5, help="sparse-label draws per N")
    if folds:
        ap.add_argument("--folds", default="0,1,2,3,4", help="cross-validation folds to run")
    ap.add_argument("--clicks", choices=CLICK_PROTOCOLS, default="uniform",
                    help="how the N labelled pixels are drawn: uniform (the paper's) or balanced (N split over "
                         "the classes present in each image)")
    ap.add_argument("--alpha", type=float, default=None, help="TV weight (default: the recommended one)")
    ap.add_argument("--n-iter", type=int, default=None, help="ConvNet mini-batch steps (default: ConvNet's)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (ConvNet), joblib workers (CHM)")
    ap.add_argument("--chm-params", default="{}", help="JSON of chm.CHM parameters (--classifier chm)")
    ap.add_argument("--cache-gb", type=float, default=4.0, help="CHM filter-bank cache budget in OUT (GB)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="supervised,tv,mrf",
                    help="columns to compute in this call (others are read from runs/ if there)")
    ap.add_argument("--beta-images", type=int, default=20, help="held-out training images for choosing beta")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--quick", action="store_true", help="a few small images, one draw, N=10: a smoke run")
    return ap.parse_args(argv)


def default_out(args, name):
    """OUT when ``--out`` is not given: results/NAME_CLASSIFIER, with ``_balanced`` for balanced clicks."""
    return args.out or f"results/{name}_{args.classifier}" + ("" if args.clicks == "uniform" else f"_{args.clicks}")


def sparse_labels(data, n, seed, args):
    """The training images' sparse labels at N = ``n``, drawn by ``--clicks`` with rng ``seed``."""
    return sample_sparse_labels(data.train_masks, n, np.random.default_rng(seed), ignore=-1, protocol=args.clicks)


def scores(pred, truth, n_classes):
    """The run's test scores: pooled pixel error, IoU per class, and the IoU of the table (the
    foreground's for two classes, else the mean over the classes), unknown pixels excluded."""
    per = class_iou(pred, truth, n_classes, ignore=-1)
    iou = per[1] if n_classes == 2 else np.nanmean(per) if np.isfinite(per).any() else np.nan
    return {"error": pixel_error(pred, truth, ignore=-1), "iou": None if np.isnan(iou) else float(iou),
            "iou_kind": "foreground" if n_classes == 2 else "mean",
            "class_iou": [None if np.isnan(v) else float(v) for v in per]}


def subsample(data, n_train, n_test):
    """The first images of each side: a smoke-test dataset."""
    import dataclasses

    return dataclasses.replace(data, train_images=data.train_images[:n_train], train_masks=data.train_masks[:n_train],
                               train_names=data.train_names[:n_train], test_images=data.test_images[:n_test],
                               test_masks=data.test_masks[:n_test], test_names=data.test_names[:n_test])


def make_model(args, n_classes, method):
    """The classifier of ``method`` ("supervised" or one of ``SEMI``)."""
    semi = method != "supervised"
    alpha = args.alpha if method in LOSSES else None
    if args.classifier == "chm":
        from chm import CHM
        from chm.cascade.cache import FeatureCache

        params = dict(levels=1, stages=2, epochs=3) if args.quick else {}
        params.update(json.loads(args.chm_params))
        cache = FeatureCache(Path(args.out) / "feature_cache", max_bytes=int(args.cache_gb * 1e9))
        return CHM(semi_supervised=method if semi else None, alpha=alpha, n_classes=n_classes,
                   feature_cache=cache, n_jobs=args.threads, progress=not args.quiet, random_state=args.seed,
                   **params)
    if method in ("contrast", "self-training"):
        raise SystemExit(f"the ConvNet has no {method} method: drop '{method}' from --methods")
    from chm import ConvNet

    extra = {} if args.n_iter is None else {"n_iter": args.n_iter}
    if args.quick:
        extra.update(n_iter=args.n_iter or 10, batch_size=16, tile_size=8)
    return ConvNet(semi_supervised=method if semi else None, alpha=alpha, n_classes=n_classes,
                   n_jobs=args.threads, progress=not args.quiet, random_state=args.seed, **extra)


def choose_beta(data, n, split, args, runs):
    """Beta of the MRF for (split, N): supervised fit on 4/5 of the training images (draw 0), decode
    ``--beta-images`` of the held-out fifth, score by their N sparse labels (no dense label)."""
    path = runs / f"{split}_N{n}_beta.json"
    if path.exists():
        return json.loads(path.read_text())["beta"]
    with claimed(path) as mine:
        if not mine:
            return None
        t0 = time.perf_counter()
        labels = sparse_labels(data, n, [args.seed, n, 0, 7], args)
        order = np.random.default_rng([args.seed, n, 99]).permutation(len(labels))
        k = max(1, len(order) // 5)
        held, fit = order[:min(k, args.beta_images)], order[k:]
        model = make_model(args, len(data.classes), "supervised")
        model.fit([data.train_images[i] for i in fit], [labels[i] for i in fit])
        probas = model.predict_proba([data.train_images[i] for i in held])
        beta, scores = mrf.select_beta(probas, [labels[i] for i in held], betas=BETAS, method="expansion")
        write_json(path, {"beta": float(beta), "heldout_sparse_errors": {str(b): v for b, v in scores.items()},
                           "seconds": time.perf_counter() - t0})
    return json.loads(path.read_text())["beta"]


def run_draw(data, split, n, draw, args, runs):
    """Supervised, TV and MRF results of one (split, N, draw), each cached in runs/.

    Skips the runs another process sharing ``--out`` has claimed (:mod:`experiments.claims`) and returns them."""
    key = f"{split}_N{n}_draw{draw}"
    paths = {m: runs / f"{key}_{m}.json" for m in METHODS}
    labels = sparse_labels(data, n, [args.seed, n, draw], args)
    proba_file = runs / f"{key}_supervised_proba.npz"
    wanted = args.methods.split(",")
    left = []
    for method in ("supervised",) + SEMI:
        done = lambda: paths[method].exists() and (method != "supervised" or proba_file.exists())
        if method not in wanted or done():
            continue
        with claimed(paths[method]) as mine:
            if not mine or done():
                left += [] if done() else [paths[method]]
                continue
            _fit(data, split, n, draw, args, runs, method, labels, paths[method], proba_file)
    if "mrf" not in wanted or paths["mrf"].exists():
        return left
    if not proba_file.exists():  # the supervised fit is another process's (or not asked for)
        return left + ([paths["mrf"]] if "supervised" in wanted else [])
    beta = choose_beta(data, n, split, args, runs)
    with claimed(paths["mrf"]) as mine:
        if beta is None or not mine or paths["mrf"].exists():
            return left + ([] if paths["mrf"].exists() else [paths["mrf"]])
        print(f"   {key}: mrf (beta {beta:g})", flush=True)
        t1 = time.perf_counter()
        with np.load(proba_file) as z:
            probas = [z[f"arr_{i}"].astype(np.float32) for i in range(len(z.files))]
        pred = [mrf.decode(np.clip(p, 0, 1), beta, method="expansion") for p in probas]
        write_json(paths["mrf"], {"split": split, "N": n, "draw": draw, "method": "mrf", "beta": beta,
                                   "clicks": args.clicks, **scores(pred, data.test_masks, len(data.classes)),
                                   "seconds": time.perf_counter() - t1})
    return left


def _fit(data, split, n, draw, args, runs, method, labels, path, proba_file):
    """One fitted column of one (split, N, draw): its test error in ``path``."""
    print(f"   {split}_N{n}_draw{draw}: {method}", flush=True)
    t0 = time.perf_counter()
    model = make_model(args, len(data.classes), method).fit(data.train_images, labels)
    fit_time = time.perf_counter() - t0
    probas = model.predict_proba(data.test_images)
    pred = model.decide(probas)  # the model's decision rule, as predict() would apply it
    if method == "supervised":  # kept so the MRF column never needs a refit
        write_atomic(proba_file, lambda fh: np.savez_compressed(fh, *[p.astype(np.float16) for p in probas]))
    write_json(path, {"split": split, "N": n, "draw": draw, "method": method, "clicks": args.clicks,
                       **scores(pred, data.test_masks, len(data.classes)),
                       "alpha": model.alpha_, "rounds": getattr(model, "rounds_", None) or None,
                       "fit_seconds": fit_time, "seconds": time.perf_counter() - t0})
    if draw == 0:
        write_atomic(runs / f"{split}_N{n}_{method}_fig.npz", lambda fh: np.savez_compressed(fh, *pred[:FIG_IMAGES]))


def check_config(args, out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    # Settings that do not change a result may differ between calls (older files may still hold them).
    free = ("quiet", "threads", "folds", "draws", "sizes", "methods", "data", "out", "cache_gb")
    config = {k: v for k, v in vars(args).items() if k not in free}
    path = out / "config.json"
    old = {**OLD_DEFAULTS, **json.loads(path.read_text())} if path.exists() else None  # older OUTs: uniform clicks
    if old is not None and {k: v for k, v in old.items() if k not in free} != config:
        raise SystemExit(f"{out} holds results of another configuration ({path}); use another --out")
    write_json(path, config)
    return out / "runs"


def collect(runs, sizes):
    """{(N, method): array of (error %, IoU %) over every finished (split, draw)}; the IoU is NaN
    for a run written before it was recorded."""
    res = {}
    for n in sizes:
        for m in METHODS:
            rows = [json.loads(p.read_text()) for p in sorted(runs.glob(f"*_N{n}_draw*_{m}.json"))]
            res[(n, m)] = 100 * np.array([(r["error"], np.nan if r.get("iou") is None else r["iou"])
                                          for r in rows], dtype=np.float64).reshape(-1, 2)
    return res


def write_table(res, sizes, paper, out, name, note, heading="", iou_name="mean IoU"):
    """``name``.md (error table, then IoU table) and ``name``.csv; ``heading`` opens the text."""
    titles = [TITLES.get(m, m) for m in METHODS]
    lines = ["| N | " + " | ".join(titles) + " | paper: supervised | paper: MRF | paper: TV |",
             "|---" * (len(METHODS) + 4) + "|"]
    ious = ["| N | " + " | ".join(titles) + " |", "|---" * (len(METHODS) + 1) + "|"]
    rows = []
    for n in sizes:
        cells, iou_cells, row = [], [], {"N": n}
        for m in METHODS:
            e, iou = res[(n, m)][:, 0], res[(n, m)][:, 1]
            iou = iou[np.isfinite(iou)]
            row[f"{m}_mean"] = f"{e.mean():.2f}" if len(e) else ""
            row[f"{m}_std"] = f"{e.std():.2f}" if len(e) else ""
            row[f"{m}_iou"] = f"{iou.mean():.2f}" if len(iou) else ""
            row[f"{m}_iou_std"] = f"{iou.std():.2f}" if len(iou) else ""
            row[f"{m}_runs"] = len(e)
            cells.append(f"{e.mean():.2f} ± {e.std():.2f} ({len(e)})" if len(e) else "–")
            iou_cells.append(f"{iou.mean():.2f} ± {iou.std():.2f} ({len(iou)})" if len(iou) else "–")
        p = paper.get(n)
        cells += [f"{a:.2f} ± {s:.2f}" for a, s in p] if p else ["–"] * 3
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
        ious.append(f"| {n} | " + " | ".join(iou_cells) + " |")
        rows.append(row)
    text = "\n".join(([heading, ""] if heading else [])
                     + [f"Test pixel error (%), mean ± std (population, n) over runs (count in brackets). {note}", ""]
                     + lines + ["", f"Test {iou_name} (%), pooled over the test images, mean ± std over runs.", ""]
                     + ious)
    (out / f"{name}.md").write_text(text + "\n")
    with open(out / f"{name}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return text


def plot(res, sizes, paper, out, data, runs, split, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (m, color) in enumerate(COLORS.items()):
        ok = [n for n in sizes if len(res[(n, m)])]
        if ok:
            ax.errorbar(ok, [res[(n, m)][:, 0].mean() for n in ok], yerr=[res[(n, m)][:, 0].std() for n in ok],
                        label=f"ours: {m}", color=color, capsize=3, marker="o")
        pn = [n for n in sizes if n in paper and i < len(paper[n])]  # the paper has no contrast column
        if pn:
            ax.plot(pn, [paper[n][i][0] for n in pn], "--", color=color, alpha=0.5, label=f"paper: {m}")
    ax.set_xlabel("labelled pixels per training image")
    ax.set_ylabel("test pixel error (%)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fig_error.png", dpi=120)
    plt.close(fig)

    n = sizes[0]
    panels = [(f"{m}, N={n}", runs / f"{split}_N{n}_{m}_fig.npz") for m in ("supervised",) + SEMI]
    panels = [(t, np.load(p)) for t, p in panels if p.exists()]
    k = min(FIG_IMAGES, len(data.test_images))
    from matplotlib.colors import ListedColormap

    colours = [c for name in ("tab20", "tab20b", "tab20c") for c in plt.get_cmap(name).colors]  # 60 distinct
    cmap = ListedColormap(colours[:len(data.classes)])
    show = lambda lab: np.ma.masked_less(lab, 0)  # noqa: E731 - unknown pixels stay blank
    fig, axes = plt.subplots(k, 2 + len(panels), figsize=(2.4 * (2 + len(panels)), 1.9 * k + 0.8), squeeze=False)
    for r in range(k):
        cols = [("image", data.test_images[r])] + [(t, show(z[f"arr_{r}"])) for t, z in panels] + \
               [("ground truth", show(data.test_masks[r]))]
        for c, (t, im) in enumerate(cols):
            ax = axes[r, c]
            if c == 0:
                ax.imshow(im, cmap="gray" if np.ndim(im) == 2 else None)
            else:
                ax.imshow(im, cmap=cmap, vmin=-0.5, vmax=len(data.classes) - 0.5, interpolation="nearest")
            ax.axis("off")
            if r == 0:
                ax.set_title(t, fontsize=8)
    shown = [data.test_masks[r] for r in range(k)] + [z[f"arr_{r}"] for _, z in panels for r in range(k)]
    present = sorted(set(np.concatenate([m.ravel() for m in shown]).tolist()) - {-1})
    fig.legend(handles=[Patch(color=cmap(c), label=data.classes[c]) for c in present], loc="lower center",
               ncol=min(9, len(present)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(out / "fig_samples.png", dpi=100)
    plt.close(fig)


def run(args, splits, paper, name, title, note):
    """Run every (split, N, draw) and write the table and figures; ``splits`` yields (id, data)."""
    t0 = time.perf_counter()
    out = Path(args.out)
    runs = check_config(args, out)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        sizes, args.draws = sizes[:1], 1
    first, left = None, []
    for split, data in splits:
        first = first or (split, data)
        for n in sizes:
            for d in range(args.draws):
                print(f"== {split}, N = {n}, draw {d + 1}/{args.draws}", flush=True)
                left += run_draw(data, split, n, d, args, runs)
    if left:
        print(f"{len(left)} run(s) left to other processes sharing {out} (claimed, e.g. {left[0].name}): the "
              "table below lacks them; the last process to finish writes the whole table", flush=True)
    res = collect(runs, sizes)
    # The table pools every finished run in --out, also those of earlier calls with other --folds.
    present = sorted({p.name.split("_N")[0] for p in runs.glob("*_N*_draw*.json")})
    clicks = {"uniform": "uniform clicks (the paper's: N pixels at random, whatever their class)",
              "balanced": "balanced clicks (N split over the classes present in each image)"}[args.clicks]
    two = len(first[1].classes) == 2
    text = write_table(res, sizes, paper, out, name, f"{note} Splits with finished runs: {', '.join(present)}.",
                       heading=f"{title}, {clicks}.",
                       iou_name="foreground IoU" if two else "mean IoU (over the classes)")
    plot(res, sizes, paper, out, first[1], runs, first[0], title)
    print(text)
    print(f"wrote {out}/{name}.md, {name}.csv, fig_error.png, fig_samples.png "
          f"({time.perf_counter() - t0:.0f} s this call)")
    return res
