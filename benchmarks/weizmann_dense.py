"""Dense-label and sparse-label CHM on the Weizmann horse split: test error, time, memory.

    python benchmarks/weizmann_dense.py [--data PATH] [--samples 100000] [--samples-level0 N]
                                        [--levels 3] [--stages 2]
                                        [--context-radius 7] [--network original] [--classifier-params JSON]
                                        [--label-pooling max|mean] [--hflip] [--tta] [--save PATH]
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
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chm import CHM  # noqa: E402
from chm.classifiers import NETWORKS  # noqa: E402
from chm.model import LABEL_POOLINGS  # noqa: E402
from chm.datasets import load_weizmann_horse, sample_sparse_labels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402
from features import FilterBank  # noqa: E402


def peak_rss_gb():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024 ** 2  # ru_maxrss is in KiB on Linux


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


def run(name, data, labels, args, **kw):
    images = data.train_images
    if args.hflip:
        images, labels = images + mirrored(images), labels + mirrored(labels)
    t = time.perf_counter()
    model = CHM(levels=args.levels, stages=args.stages, network=args.network, context_radius=args.context_radius,
                features=tuple(args.features.split(",")), n_jobs=args.n_jobs,
                classifier_params=json.loads(args.classifier_params), label_pooling=args.label_pooling,
                progress=not args.quiet,
                random_state=args.seed, **kw).fit(images, labels)
    fit = time.perf_counter() - t
    if args.save:
        model.save(Path(args.save).with_suffix(f".{name.split()[0]}.npz"))
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
        mean = [(p + q[:, ::-1]) / 2 for p, q in zip(proba, model.predict_proba(mirrored(data.test_images)))]
        tta = [100 * pixel_error([p > t for p in mean], data.test_masks) for t in (model.threshold_, 0.5)]
    return {"run": name, "error": 100 * err, "threshold": model.threshold_, "error_half": 100 * err_half,
            "fit": fit, "predict": predict, "rss": peak_rss_gb(), "fg": 100 * fg, "stages": stages, "tta": tta}


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
    ap.add_argument("--hflip", action="store_true", help="also train on the mirror image of every training image")
    ap.add_argument("--tta", action="store_true",
                    help="also print the error of the mean of the maps of each test image and its mirror")
    ap.add_argument("--save", default=None, help="save each fitted model as PATH.<run>.npz")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--skip-sparse", action="store_true", help="only the dense run")
    ap.add_argument("--stage-errors", action="store_true",
                    help="also print the test error of every earlier stage's full-resolution output")
    args = ap.parse_args(argv)
    data = load_weizmann_horse(args.data)
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
          f"hflip={args.hflip}, n_jobs={args.n_jobs}")
    true_fg = 100 * sum(int(m.sum()) for m in data.test_masks) / sum(m.size for m in data.test_masks)
    print(f"| run | test pixel error | mask threshold (error at 0.5) | predicted foreground (true {true_fg:.1f} %) "
          "| fit time | predict time (164 images) | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['error']:.2f} % | {r['threshold']:.3f} ({r['error_half']:.2f} %) | {r['fg']:.1f} % "
              f"| {r['fit']:.0f} s | {r['predict']:.0f} s | {r['rss']:.2f} GB |")
        if r["stages"]:
            print(f"  {r['run']}: test error after stage 1..{args.stages}: "
                  + " / ".join(f"{e:.2f}" for e in r["stages"] + [r["error"]]) + " %")
        if r["tta"]:
            print(f"  {r['run']}: mean of image and mirror maps: {r['tta'][0]:.2f} % at the threshold "
                  f"({r['tta'][1]:.2f} % at 0.5)")
    print(f"\nfilter bank ({args.features}): {px_s / 1e6:.2f} Mpx/s = {feat_s / 1e6:.1f} M features/s (1 core)")


if __name__ == "__main__":
    main()
