"""Dense-label and sparse-label CHM on the Weizmann horse split: test error, time, memory.

    python -m benchmarks.bench_weizmann_dense [--data PATH] [--samples 100000] [--samples-level0 N]
                                        [--levels 3] [--stages 2]
                                        [--context-radius 7] [--network original] [--classifier-params JSON]
                                        [--label-pooling max|mean] [--fusion-context original|scaled]
                                        [--hflip] [--tta] [--mrf]
                                        [--models PREFIX]
                                        [--skip-sparse]

Prints a markdown table: the dense model (all 164 training images, every pixel labelled, a random
subsample of labelled pixels per class and level as the original CHM does above 6 M pixels),
and the sparse supervised baseline (N = 10 labelled pixels per image, alpha = 0). Peak RSS is
the larger of this process and its joblib workers. Filter-bank throughput is measured on its own.
Masks use the model's ``threshold_``, which undoes the class balancing of the per-class caps
(the error at the plain 0.5 threshold is printed beside it).

``--hflip`` adds the left-right mirror of every training image and label map to the training set
(horses face both ways, so the mirror is as likely as the original). ``--tta`` also prints the
error of the mean of the model's maps of each test image and of its mirror.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

import chm
from chm import CHM
from chm.classifiers import NETWORKS
from chm.cascade.spec import FUSION_CONTEXTS, LABEL_POOLINGS
from chm.datasets import load_weizmann_horse, sample_sparse_labels
from chm.metrics import pixel_error
from chm.mrf import decode, select_beta
from chm.features import FilterBank

from benchmarks._measure import peak_rss_gb
from experiments._common import weizmann_root


MRF_BETAS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def bank_throughput(images, families):
    bank = FilterBank(families)
    bank(images[0])  # warm up
    t = time.perf_counter()
    px = 0
    for im in images:
        bank(im)
        px += im.size
    dt = time.perf_counter() - t
    return px / dt, px * bank.n_features / dt


def mirrored(images):
    return [im[:, ::-1] for im in images]


def model_path(args, key):
    """Where ``--models`` keeps the model of run ``key`` (None without ``--models``)."""
    return None if args.models is None else Path(args.models).with_suffix(f".{key}.npz")


def fit_model(images, labels, args, path, **kw):
    """Fit a CHM, or read it back from ``path`` (``--models``) if a run saved it; returns (model, fit s)."""
    if path is not None and path.exists():
        model = chm.load(path)
        model.n_jobs, model.progress = args.n_jobs, False if args.quiet else None
        return model, None
    if args.hflip:
        images, labels = images + mirrored(images), labels + mirrored(labels)
    t = time.perf_counter()
    model = CHM(levels=args.levels, stages=args.stages, network=args.network, context_radius=args.context_radius,
                features=tuple(args.features.split(",")), n_jobs=args.n_jobs,
                classifier_params=json.loads(args.classifier_params), label_pooling=args.label_pooling,
                fusion_context=args.fusion_context, progress=False if args.quiet else None,
                random_state=args.seed, **kw).fit(images, labels)
    fit = time.perf_counter() - t
    if path is not None:
        model.save(path)
    return model, fit


def shift(proba, t):
    """Bayes-shift P(foreground) so that 0.5 on the result is ``t`` on ``proba``."""
    return proba * (1 - t) / (proba * (1 - t) + (1 - proba) * t)


def mrf_setting(data, labels, args, path, **kw):
    """(threshold rule, beta) of a contrast-sensitive Potts MRF, chosen on held-out training images.

    A validation model with the run's settings learns from the first 3/4 of the training images;
    its maps of the last quarter are decoded with every candidate (mask threshold 0.5 or the
    model's ``threshold_``, times ``MRF_BETAS``), and the candidate with the fewest wrong pixels
    wins. Test images play no part.
    """
    k = len(data.train_images) * 3 // 4
    val, _ = fit_model(data.train_images[:k], labels[:k], args, path, **kw)
    maps = val.predict_proba(data.train_images[k:])
    best = None
    for rule, t in (("0.5", 0.5), ("threshold_", val.threshold_)):
        beta, errors = select_beta([shift(p, t) for p in maps], labels[k:], betas=MRF_BETAS,
                                   images=data.train_images[k:])
        print(f"  MRF on held-out training images {k + 1}..{len(data.train_images)}, threshold {rule}: "
              + ", ".join(f"beta {b:g}: {100 * e:.2f} %" for b, e in errors.items()))
        if best is None or errors[beta] < best[2]:
            best = (rule, beta, errors[beta])
    return best[:2]


def run(name, data, labels, args, **kw):
    key = name.split()[0]
    model, fit = fit_model(data.train_images, labels, args, model_path(args, key), **kw)
    t = time.perf_counter()
    proba = model.predict_proba(data.test_images)
    predict = time.perf_counter() - t
    pred = [p > model.threshold_ for p in proba]
    err = pixel_error(pred, data.test_masks)
    err_half = pixel_error([p > 0.5 for p in proba], data.test_masks)
    fg = sum(int(p.sum()) for p in pred) / sum(p.size for p in pred)
    stages = [100 * pixel_error(model.predict(data.test_images, stage=s), data.test_masks)
              for s in range(1, args.stages)] if args.stage_errors else []
    tta = None
    if args.tta:
        back = mirrored(model.predict_proba(mirrored(data.test_images)))
        mean = [(p + q) / 2 for p, q in zip(proba, back)]
        tta = [100 * pixel_error([p > t for p in mean], data.test_masks) for t in (model.threshold_, 0.5)]
    mrf = None
    if args.mrf and key == "dense":
        rule, beta = mrf_setting(data, labels, args, model_path(args, f"{key}-validation"), **kw)
        t = model.threshold_ if rule == "threshold_" else 0.5
        masks = Parallel(n_jobs=args.n_jobs)(delayed(decode)(shift(p, t), beta, image=im)
                                             for p, im in zip(proba, data.test_images))
        mrf = (rule, beta, 100 * pixel_error(masks, data.test_masks))
    return {"run": name, "error": 100 * err, "threshold": model.threshold_, "error_half": 100 * err_half,
            "fit": fit, "predict": predict, "rss": peak_rss_gb(), "fg": 100 * fg, "stages": stages, "tta": tta,
            "mrf": mrf}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--stages", type=int, default=2)
    ap.add_argument("--context-radius", type=int, default=7)
    ap.add_argument("--features", default="haar,hog,edge,gabor,sift,intensity")
    ap.add_argument("--samples", type=int, default=100_000, help="dense: labelled px kept per class and level")
    ap.add_argument("--samples-level0", type=int, default=None,
                    help="dense: labelled px kept per class at full resolution (default: --samples)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--network", default="original", choices=tuple(NETWORKS),
                    help="LDNN sizes (default: original, 10 x 20 / 24 x 24, which dense labels need)")
    ap.add_argument("--classifier-params", default="{}", help="JSON overrides of every LDNN")
    ap.add_argument("--label-pooling", default="max", choices=LABEL_POOLINGS,
                    help="coarse-level labels: max-pooled classes (original) or foreground fractions")
    ap.add_argument("--fusion-context", default="original", choices=FUSION_CONTEXTS,
                    help="how the fusion classifiers sample the upsampled coarse maps (see CHM)")
    ap.add_argument("--hflip", action="store_true", help="also train on the mirror image of every training image")
    ap.add_argument("--tta", action="store_true",
                    help="also print the error of the mean of the maps of each test image and its mirror")
    ap.add_argument("--models", default=None, metavar="PREFIX",
                    help="save each fitted model as PREFIX.<run>.npz, or load it from there if it exists")
    ap.add_argument("--mrf", action="store_true",
                    help="dense run: also print the error after a contrast-sensitive Potts MRF whose beta and "
                         "threshold are chosen on held-out training images (fits a validation model on 3/4 of them)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--skip-sparse", action="store_true", help="only the dense run")
    ap.add_argument("--stage-errors", action="store_true",
                    help="also print the test error of every earlier stage's full-resolution output")
    args = ap.parse_args(argv)
    data = load_weizmann_horse(weizmann_root(args.data))
    px_s, feat_s = bank_throughput(data.test_images[:20], tuple(args.features.split(",")))
    fine = args.samples if args.samples_level0 is None else args.samples_level0
    caps = [fine] + [args.samples] * args.levels
    name = (f"dense ({args.samples:,} px/class/level)" if fine == args.samples else
            f"dense ({fine:,} px/class at level 0, {args.samples:,} above)")
    rows = [run(name, data, [m.astype(np.int8) for m in data.train_masks], args, max_samples=caps)]
    if not args.skip_sparse:
        rows.append(run("sparse N=10, alpha=0", data,
                        sample_sparse_labels(data.train_masks, 10, np.random.default_rng(args.seed)), args))
    print(f"\nWeizmann horses, {len(data.train_images)} train / {len(data.test_images)} test images, "
          f"levels={args.levels}, stages={args.stages}, context_radius={args.context_radius}, "
          f"network={args.network}, classifier_params={args.classifier_params}, label_pooling={args.label_pooling}, "
          f"fusion_context={args.fusion_context}, "
          f"hflip={args.hflip}, n_jobs={args.n_jobs}")
    true_fg = 100 * sum(int(m.sum()) for m in data.test_masks) / sum(m.size for m in data.test_masks)
    print(f"| run | test pixel error | mask threshold (error at 0.5) | predicted foreground (true {true_fg:.1f} %) "
          f"| fit time | predict time ({len(data.test_images)} images) | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        fit = "loaded" if r["fit"] is None else f"{r['fit']:.0f} s"
        print(f"| {r['run']} | {r['error']:.2f} % | {r['threshold']:.3f} ({r['error_half']:.2f} %) | {r['fg']:.1f} % "
              f"| {fit} | {r['predict']:.0f} s | {r['rss']:.2f} GB |")
        if r["stages"]:
            print(f"  {r['run']}: test error after stage 1..{args.stages}: "
                  + " / ".join(f"{e:.2f}" for e in r["stages"] + [r["error"]]) + " %")
        if r["tta"]:
            print(f"  {r['run']}: mean of image and mirror maps: {r['tta'][0]:.2f} % at the threshold "
                  f"({r['tta'][1]:.2f} % at 0.5)")
        if r["mrf"]:
            print(f"  {r['run']}: + contrast-sensitive Potts MRF (mask threshold {r['mrf'][0]}, beta {r['mrf'][1]:g}, "
                  f"chosen on held-out training images): {r['mrf'][2]:.2f} %")
    print(f"\nfilter bank ({args.features}): {px_s / 1e6:.2f} Mpx/s = {feat_s / 1e6:.1f} M features/s (1 core)")


if __name__ == "__main__":
    from chm.utils import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
