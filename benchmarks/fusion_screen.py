"""Screen settings of the last fusion classifier on held-out training horses, without a full fit.

    python benchmarks/fusion_screen.py MODEL.npz [--data PATH] [--train 123] [--samples 150000]
                                       [--held N] [--epochs 6,15] [--n-jobs 2] [--seed 0]

``MODEL.npz`` must have been fitted on the first ``--train`` Weizmann training horses only, e.g. the
validation model that ``weizmann_dense.py --mrf --models PREFIX`` saves as
``PREFIX.dense-validation.npz``. Every classifier but the last is kept; the last one (level 0 of
the last stage, whose output is the segmentation) is refitted on horses 1..train with each
``fusion_context`` and epoch count, ``--samples`` labelled pixels per class as in a dense fit, and
scored on the remaining training horses. Test images play no part, so the table can choose
settings for a full fit. A full fit takes ~45 minutes; this takes a few minutes per setting.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import chm  # noqa: E402
from chm.classifiers import make_classifier  # noqa: E402
from chm.datasets import load_weizmann_horse  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402
from chm.cascade.contexts import context_maps, stencil_rows, stencil_spec  # noqa: E402
from chm.cascade.inference import cascade, evaluate  # noqa: E402
from chm.model import FUSION_CONTEXTS  # noqa: E402
from chm.cascade.normalisation import normalise, robust_scaling  # noqa: E402
from chm.thresholds import decision_threshold  # noqa: E402


def fusion_inputs(model, image):
    """Level-0 filter-bank features and the context maps of the last classifier."""
    schedule = model._schedule()
    with threadpool_limits(1, user_api="blas"):
        maps, feats = cascade(image, model.bank_, model.classifiers_, schedule[:-1], model.levels,
                               {sl: model._stencil(*sl) for sl in schedule[:-1]})
    s, l = schedule[-1]
    return feats[0], context_maps(maps, s, l, model.levels, image.shape)


def stencils(model, kind):
    """(radius, dilations) of the last classifier under fusion_context ``kind``."""
    return stencil_spec(kind, model.context_radius, *model._schedule()[-1], model.levels)


def training_rows(model, image, mask, cap, seed):
    """Per fusion_context: rows of up to ``cap`` random pixels per class of one training image."""
    feats, ctx = fusion_inputs(model, image)
    rng = np.random.default_rng(seed)
    lab = mask.ravel().astype(np.int8)
    flat = np.sort(np.concatenate([rng.permutation(np.flatnonzero(lab == c))[:cap] for c in (0, 1)]))
    bank = feats.reshape(-1, feats.shape[2])[flat]
    out = {}
    for kind in FUSION_CONTEXTS:
        radius, dil = stencils(model, kind)
        out[kind] = np.concatenate([bank] + [stencil_rows(c, flat, radius, d) for c, d in zip(ctx, dil)],
                                   axis=1).astype(np.float16)
    return out, lab[flat]


def held_out_maps(model, image, fits):
    feats, ctx = fusion_inputs(model, image)
    return {name: evaluate(feats, ctx, clf, stencils(model, kind)) for name, (kind, clf) in fits.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--data", default=None)
    ap.add_argument("--train", type=int, default=123, help="the model saw horses 1..TRAIN (default: 123)")
    ap.add_argument("--held", type=int, default=None, help="score only the first HELD of the other horses")
    ap.add_argument("--samples", type=int, default=150_000, help="labelled px per class for the refits")
    ap.add_argument("--epochs", default="6,15", help="comma-separated epoch counts to try")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    data = load_weizmann_horse(args.data)
    model = chm.load(args.model)
    k = args.train
    if not 0 < k < len(data.train_images):
        raise SystemExit(f"--train must lie in 1..{len(data.train_images) - 1}, got {k}")
    train, train_masks = data.train_images[:k], data.train_masks[:k]
    end = len(data.train_images) if args.held is None else min(len(data.train_images), k + args.held)
    held, held_masks = data.train_images[k:end], data.train_masks[k:end]
    cap = -(-args.samples // k)
    par = Parallel(n_jobs=args.n_jobs)
    t = time.perf_counter()
    rows = par(delayed(training_rows)(model, im, m, cap, args.seed + i) for i, (im, m) in enumerate(zip(train, train_masks)))
    print(f"context maps of {k} training images: {time.perf_counter() - t:.0f} s", flush=True)
    y = np.concatenate([r[1] for r in rows])
    threshold = decision_threshold([m.astype(np.int8) for m in train_masks], [y], (0.1, 0.9))
    s, l = model._schedule()[-1]
    fits = {"the model's own": (model.fusion_context, model.classifiers_[(s, l)])}
    fit_time = {"the model's own": None}
    for kind in FUSION_CONTEXTS:
        X = np.concatenate([r[0][kind] for r in rows])
        offset, scale = robust_scaling(X, model.bank_)
        normalise(X, offset, scale)
        for epochs in (int(e) for e in args.epochs.split(",")):
            t = time.perf_counter()
            clf = make_classifier(model.classifier, coarse=False, network=model.network, random_state=args.seed,
                                  **{**(model.classifier_params or {}), "epochs": epochs})
            clf.fit(X, y)
            clf.fold_affine(offset, scale)
            name = f"refit, fusion_context={kind}, {epochs} epochs"
            fits[name], fit_time[name] = (kind, clf), time.perf_counter() - t
            print(f"{name}: {fit_time[name]:.0f} s", flush=True)
        del X
    del rows
    maps = par(delayed(held_out_maps)(model, im, fits) for im in held)
    print(f"\n{args.model}: last classifier refitted on horses 1..{k} ({len(y):,} px), scored on horses "
          f"{k + 1}..{end}")
    print("| last classifier | held-out error (threshold) | at 0.5 | fit time |")
    print("|---|---|---|---|")
    for name, (kind, clf) in fits.items():
        t = model.threshold_ if fit_time[name] is None else threshold
        e = pixel_error([m[name] > t for m in maps], held_masks)
        e5 = pixel_error([m[name] > 0.5 for m in maps], held_masks)
        ft = "–" if fit_time[name] is None else f"{fit_time[name]:.0f} s"
        print(f"| {name} | {100 * e:.2f} % ({t:.3f}) | {100 * e5:.2f} % | {ft} |")


if __name__ == "__main__":
    from chm.utils._signals import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
