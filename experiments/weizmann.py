"""Table 1 of the paper: Weizmann horses, N labelled pixels per training image.

For every N and sparse-label draw, a supervised CHM (alpha = 0) and a semi-supervised CHM
(alpha > 0, TV loss) are trained on the same draw; the supervised output is also post-processed
with an MRF. The pooled test pixel error is reported as mean +- std over the draws.

    python experiments/weizmann.py --levels 3 --alpha 0.1
    python experiments/weizmann.py --quick            # smoke run in a minute or two

Writes to --out: table1.md, table1.csv, fig1.png, fig2.png, and runs/ (one JSON per finished
(N, draw, method): an interrupted run resumes where it stopped). Filter-bank features are cached
in OUT/feature_cache up to --cache-gb (4 GB; all of them take 24 GB), printed before the start.
"""

import argparse
import csv
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import chm  # noqa: E402
from chm import CHM, mrf  # noqa: E402
from chm.cache import FeatureCache, footprint  # noqa: E402
from chm.datasets import load_weizmann_horse, sample_sparse_labels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402
from features import FilterBank  # noqa: E402

# Paper Table 1 (mean, std) in %.
PAPER = {10: ((23.81, 1.50), (19.92, 1.28), (11.98, 0.24)), 20: ((16.63, 0.67), (14.24, 0.36), (11.03, 0.21)),
         30: ((14.20, 0.80), (12.27, 0.29), (10.30, 0.41)), 40: ((12.35, 0.16), (11.21, 0.12), (9.96, 0.35)),
         50: ((11.86, 0.19), (11.01, 0.17), (9.78, 0.20))}
METHODS = ("supervised", "mrf", "semi-supervised")
FIG_IMAGES = 4
BETAS = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def model_params(args):
    """CHM settings of the experiment (shared by every run)."""
    return dict(levels=args.levels, stages=2, classifier=args.classifier, features=tuple(args.features.split(",")),
                epochs=args.epochs, classifier_params=json.loads(args.classifier_params),
                spatial_rate=args.spatial_rate, n_jobs=args.n_jobs,
                feature_cache=feature_cache(args),
                progress=False if args.quiet else True if args.progress else None)


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


def _write_atomic(path, write, mode="w"):
    """Write through ``write(file)`` to ``path.part``, then rename: a stopped run never leaves a
    half-written result that a resumed run would trust."""
    tmp = f"{path}.part"
    with open(tmp, mode) as fh:
        write(fh)
    os.replace(tmp, path)


def _write_json(path, obj):
    _write_atomic(path, lambda fh: json.dump(obj, fh, indent=1))


def _savez(path, arrays):
    _write_atomic(path, lambda fh: np.savez_compressed(fh, *arrays), "wb")


def choose_beta(data, n, args, seed):
    """The MRF weight for N labels per image, chosen without dense labels.

    Rule: hold out a fifth of the training *images*; train the supervised CHM on the others
    with their N sparse labels (draw 0); predict the held-out images and pick the beta whose
    graph-cut labelling best matches their N sparse labels each (ties: the smallest beta).
    Held-out images, not held-out pixels of the training images: the cascade's outputs on
    images it was trained on are better than on new images, which would favour beta = 0.
    """
    labels = sample_sparse_labels(data.train_masks, n, np.random.default_rng([seed, n, 0]))
    order = np.random.default_rng([seed, n, 99]).permutation(len(labels))
    held, fit = order[: max(1, len(order) // 5)], order[max(1, len(order) // 5):]
    model = CHM(alpha=0.0, random_state=seed, **model_params(args))
    model.fit([data.train_images[i] for i in fit], [labels[i] for i in fit])
    probas = model.predict_proba([data.train_images[i] for i in held])
    beta, errors = mrf.select_beta(probas, [labels[i] for i in held], betas=BETAS)
    return float(beta), {str(b): float(v) for b, v in errors.items()}


def run_draw(data, n, draw, args, runs):
    """Train/evaluate every method of one (N, draw); cached in runs/."""
    paths = {m: runs / f"N{n}_draw{draw}_{m}.json" for m in METHODS}
    if all(p.exists() for p in paths.values()):
        return
    labels = sample_sparse_labels(data.train_masks, n, np.random.default_rng([args.seed, n, draw]))
    seed = args.seed * 1000 + n * 10 + draw
    proba_file = runs / f"N{n}_draw{draw}_supervised_proba.npz"
    for method, alpha in (("supervised", 0.0), ("semi-supervised", args.alpha)):
        if paths[method].exists() and (method != "supervised" or proba_file.exists()):
            continue
        t0 = time.perf_counter()
        model = CHM(alpha=alpha, random_state=seed, **model_params(args)).fit(data.train_images, labels)
        fit_time = time.perf_counter() - t0
        probas = model.predict_proba(data.test_images)
        err = pixel_error([p > 0.5 for p in probas], data.test_masks)
        if method == "supervised":  # kept (float16) so the MRF column never needs a refit
            _savez(proba_file, [p.astype(np.float16) for p in probas])
        _write_json(paths[method], {"N": n, "draw": draw, "method": method, "alpha": alpha, "error": err,
                                    "fit_seconds": fit_time, "seconds": time.perf_counter() - t0})
        if draw == 0:
            _savez(runs / f"N{n}_{method}_fig.npz", probas[:FIG_IMAGES])
    if not paths["mrf"].exists():
        beta_file = runs / f"N{n}_beta.json"
        if not beta_file.exists():
            tb = time.perf_counter()
            beta, scores = choose_beta(data, n, args, args.seed)
            _write_json(beta_file, {"beta": beta, "heldout_errors": scores, "seconds": time.perf_counter() - tb})
        beta = json.loads(beta_file.read_text())["beta"]
        t1 = time.perf_counter()
        with np.load(proba_file) as z:
            probas = [z[f"arr_{i}"].astype(np.float32) for i in range(len(z.files))]
        pred = [mrf.decode(p, beta) for p in probas]
        _write_json(paths["mrf"], {"N": n, "draw": draw, "method": "mrf", "beta": beta,
                                   "error": pixel_error(pred, data.test_masks), "seconds": time.perf_counter() - t1})


def collect(runs, sizes, trials):
    res = {}
    for n in sizes:
        for m in METHODS:
            errs = [json.loads((runs / f"N{n}_draw{d}_{m}.json").read_text())["error"] for d in range(trials)
                    if (runs / f"N{n}_draw{d}_{m}.json").exists()]
            res[(n, m)] = 100 * np.array(errs)
    return res


def write_table(res, sizes, out, total_px, n_train, wall, compute):
    rows = []
    for n in sizes:
        pct = 100 * n * n_train / total_px
        row = {"N": n, "percent_labelled": f"{pct:.4f}"}
        for i, m in enumerate(METHODS):
            e = res[(n, m)]
            row[f"{m}_mean"], row[f"{m}_std"], row[f"{m}_draws"] = (f"{e.mean():.2f}" if len(e) else "",
                                                                    f"{e.std(ddof=1) if len(e) > 1 else 0:.2f}",
                                                                    len(e))
            if n in PAPER:
                row[f"paper_{m}"] = "{:.2f} ± {:.2f}".format(*PAPER[n][i])
        rows.append(row)
    with open(out / "table1.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = ["| N (% labelled) | supervised | MRF post-processing | semi-supervised (TV) | paper: sup. / MRF / semi |",
             "|---|---|---|---|---|"]
    for r in rows:
        cell = lambda m: f"{r[m + '_mean']} ± {r[m + '_std']}" if r[m + "_mean"] else "–"
        paper = " / ".join(r.get(f"paper_{m}", "–") for m in METHODS)
        lines.append(f"| {r['N']} ({r['percent_labelled']} %) | {cell('supervised')} | {cell('mrf')} | "
                     f"{cell('semi-supervised')} | {paper} |")
    lines.append(f"\nPooled test pixel error (%), mean ± std over draws; wall time of this invocation "
                 f"{wall / 60:.1f} min, compute summed over all runs {compute / 60:.1f} min.")
    (out / "table1.md").write_text("\n".join(lines) + "\n")
    return "\n".join(lines)


def plot(res, sizes, out, data, runs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (m, color) in enumerate(zip(METHODS, ("tab:red", "tab:green", "tab:blue"))):
        ok = [n for n in sizes if len(res[(n, m)])]
        if ok:
            ax.errorbar(ok, [res[(n, m)].mean() for n in ok], yerr=[res[(n, m)].std() for n in ok],
                        label=f"ours: {m}", color=color, capsize=3, marker="o")
        pn = [n for n in sizes if n in PAPER]
        ax.plot(pn, [PAPER[n][i][0] for n in pn], "--", color=color, alpha=0.5, label=f"paper: {m}")
    ax.set_xlabel("labelled pixels per training image")
    ax.set_ylabel("test pixel error (%)")
    ax.set_title("Weizmann horses (Table 1)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fig1.png", dpi=120)
    plt.close(fig)

    n = sizes[0]
    panels = [("supervised", runs / f"N{n}_supervised_fig.npz"), ("semi-supervised", runs / f"N{n}_semi-supervised_fig.npz"),
              ("dense labels", runs / "dense_fig.npz")]
    panels = [(t, np.load(p)) for t, p in panels if p.exists()]
    k = min(FIG_IMAGES, len(data.test_images))
    fig, axes = plt.subplots(k, 2 + len(panels), figsize=(2.2 * (2 + len(panels)), 1.9 * k), squeeze=False)
    for r in range(k):
        cols = [("image", data.test_images[r], "gray")] + [(t, z[f"arr_{r}"], "viridis") for t, z in panels] + \
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


def dense_model(data, args, runs):
    """The model trained on dense labels (Figure 2's fourth column), once."""
    path = runs / "dense_fig.npz"
    if path.exists():
        return
    t = time.perf_counter()
    labels = [m.astype(np.int8) for m in data.train_masks]
    model = CHM(alpha=0.0, random_state=args.seed, max_samples=args.dense_samples, **model_params(args))
    model.fit(data.train_images, labels)
    _savez(path, model.predict_proba(data.test_images[:FIG_IMAGES]))
    _write_json(runs / "dense.json", {"max_samples": args.dense_samples, "seconds": time.perf_counter() - t})


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--sizes", default="10,20,30,40,50", help="labelled pixels per image, comma-separated")
    ap.add_argument("--trials", type=int, default=5, help="sparse-label draws per size")
    ap.add_argument("--data", default=None, help="Weizmann folder (default: $CHM_DATA, then the cache/download)")
    ap.add_argument("--out", default="results/weizmann")
    ap.add_argument("--n-jobs", type=int, default=-1, help="parallel workers over images (-1 = all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classifier", default="ldnn", choices=("ldnn", "logistic"))
    ap.add_argument("--features", default="haar,hog,edge,gabor,sift,intensity")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--classifier-params", default='{"n_groups": 6, "n_nodes": 6}',
                    help="JSON overrides of every LDNN (default 6 x 6: as accurate as the original 10 x 20 / 24 x 24 "
                         "with 10 labels per image, at a sixth of the cost)")
    ap.add_argument("--spatial-rate", type=float, default=4.0)
    ap.add_argument("--dense-samples", type=int, default=20_000,
                    help="labelled px per class and level for the dense-label model of Figure 2")
    ap.add_argument("--cache", default=None, help="feature cache folder (default OUT/feature_cache)")
    ap.add_argument("--cache-gb", type=float, default=4.0,
                    help="disk budget of the feature cache in GB (default 4; the full bank on all 328 images "
                         "needs 24 GB to cache everything)")
    ap.add_argument("--no-cache", action="store_true", help="recompute filter-bank features in every fit")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    ap.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a terminal "
                                                            "(default: bars on a terminal, else a few lines per stage)")
    ap.add_argument("--quick", action="store_true", help="a few images, one draw, N=10: a smoke run")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    data = load_weizmann_horse(args.data)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        k = 12
        data = dataclasses.replace(data, train_images=data.train_images[:k], train_masks=data.train_masks[:k],
                                   test_images=data.test_images[:k], test_masks=data.test_masks[:k])
        sizes, args.trials, args.dense_samples = sizes[:1], 1, 5000
    out = Path(args.out)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k not in ("quiet", "progress", "n_jobs", "no_cache", "cache", "cache_gb")}
    config_file = out / "config.json"
    if config_file.exists() and json.loads(config_file.read_text()) != config:
        raise SystemExit(f"{out} holds results of another configuration ({config_file}); use another --out")
    _write_json(config_file, config)
    print(describe_cache(args, data), flush=True)
    for n in sizes:
        for d in range(args.trials):
            print(f"== N = {n}, draw {d + 1}/{args.trials}", flush=True)
            run_draw(data, n, d, args, runs)
    dense_model(data, args, runs)
    res = collect(runs, sizes, args.trials)
    total_px = sum(m.size for m in data.train_masks)
    compute = sum(json.loads(p.read_text()).get("seconds", 0) for p in runs.glob("*.json"))
    table = write_table(res, sizes, out, total_px, len(data.train_masks), time.perf_counter() - t0, compute)
    plot(res, sizes, out, data, runs)
    print(table)
    print(f"wrote {out}/table1.md, table1.csv, fig1.png, fig2.png (chm {chm.__version__})")


if __name__ == "__main__":
    from chm._signals import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
