"""Screen estimator settings by k-fold cross-validation over the *training* images, scored by their
sparse labels only.

One rule for every screen (``chm.selection``): draw N sparse labels per training image (draw
``--draw``), deal the training images into ``--folds`` folds (``chm.selection.kfold``, default 5),
fit each variant on every fold's complement and score its decisions on the fold's images by the
error on their sparse labels: their own N, or an independent draw of ``--score-n`` per image (more
labels, a smaller standard error). Every training image is scored once, by a model that never saw
it, and every variant on the same folds. ``--folds 1`` is the older, 5 times cheaper screen: one
held-out fifth of the training images (``kfold(n, 1)``, the same split as before), whose score
rests on a fifth of the labels. No test image and no dense label takes part in the score; the
out-of-fold dense error is printed beside it as a diagnostic, and ``--test`` adds the test error of
a model fitted on every training image, for orientation only. The variant with the smallest score
wins (ties: the earlier variant); each score comes with its binomial standard error over the
labelled pixels scored (``chm.selection.std_error``).

    python -m experiments.screen --dataset weizmann --variants '{}' '{"semi_supervised": "tv", "alpha": 0.3}'
    python -m experiments.screen --dataset stanford --score-n 50 --variants '{}' '{"semi_supervised": "self-training"}'
    python -m experiments.screen --dataset stanford --estimator convnet --base '{"n_iter": 1500}' \\
        --variants '{"alpha": 0}' '{"alpha": 0.3}' '{"alpha": 1}'

``--variants`` are JSON dicts of the estimator's parameters (``chm.CHM`` or ``chm.ConvNet``), each
added to ``--base``. A ``semi_supervised`` given as a dict is a :class:`chm.semi.recipes.Recipe`
(``Recipe.from_dict``), e.g. the self-training guard at 0::

    --variants '{"semi_supervised": {"recipe": {"beta": 16, "rounds": 1, "prior_tolerance": 0}}}'

Further numbers per variant, from the same fits (each fold's model decides its own fold): ``--betas
4,8,16,32`` the out-of-fold sparse error after the MRF at each beta (contrast-sensitive graph cut
for two classes, alpha-expansion for K); ``--calibrated`` (two classes) the error at the threshold
that gives each fold model's maps of its own training images the foreground fraction the sparse
labels estimate; ``--sparse-prior`` (K-class self-training) the error with the decision weights
made from the sparse labels' class fractions. ``--n 0`` fits on dense labels (every pixel of the
fitted images: the one setting where the dense training masks are the labels).

Diagnostics of every variant, for the spatial-loss sweeps (issue 35): the out-of-fold maps' total
variation per pixel as the TV loss measures it (``heldout_map_tv``, :func:`chm.semi.losses.map_tv`,
pooled over the scored images' pixels), the fraction of their pixels decided as each class
(``heldout_class_fractions``) and, for a CHM fitted with a spatial loss, the loss's share of the
gradient norm in each such classifier's last epoch (``spatial_share``: ``CHM.spatial_share_``,
"s<stage>_l<level>" -> its mean over the folds).

Writes one JSON per finished variant to ``--out`` (atomically; a stopped screen resumes, and a
variant already screened with the same settings is not refitted) and prints a table.
"""

if __name__ == "__main__" and not __package__:  # python experiments/screen.py: run as the module
    from _common import run_as_module

    run_as_module("experiments.screen")

import argparse
import copy
import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from chm import mrf
from chm.datasets import load_siftflow, load_stanford_background, load_weizmann_horse, sample_sparse_labels
from chm.io.images import as_float_image, to_channels
from chm.metrics import pixel_error
from chm.selection import choose, cross_val_fits, kfold, sparse_error, std_error
from chm.semi.losses import map_tv
from experiments._common import data_root, weizmann_root, write_json

DATASETS = ("weizmann", "stanford", "stanford-bin0", "siftflow")
ESTIMATORS = ("chm", "convnet")
#: Options that change a variant's numbers: part of its result file's name.
KEYED = ("dataset", "estimator", "n", "draw", "score_n", "images", "seed", "gray", "folds")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=DATASETS, default="weizmann",
                    help="weizmann, stanford (fold 0's 572 training images), stanford-bin0 (the 143 images "
                         "of bin 0, fold 0's test images: a screen there leaves folds 1-4's test images "
                         "unseen, so their results stay honest and fold 0 leaves the reported mean) or "
                         "siftflow")
    ap.add_argument("--estimator", choices=ESTIMATORS, default="chm")
    ap.add_argument("--variants", nargs="+", default=["{}"], help="JSON dicts of estimator parameters, one per variant")
    ap.add_argument("--base", default="{}", help="JSON dict of parameters every variant shares")
    ap.add_argument("--n", type=int, default=10, help="labelled pixels per fitted image (0: dense labels)")
    ap.add_argument("--draw", type=int, default=0, help="which sparse-label draw")
    ap.add_argument("--folds", type=int, default=5,
                    help="k-fold cross-validation over the training images (default 5: every image scored "
                         "once, k fits per variant); 1 = the older single held-out fifth, k times cheaper "
                         "but scored on a fifth of the labels")
    ap.add_argument("--score-n", type=int, default=None,
                    help="score on an independent draw of this many labels per scored image "
                         "(default: their own N)")
    ap.add_argument("--images", type=int, default=None,
                    help="a random subset of this many training images (the folds are made of it)")
    ap.add_argument("--gray", action="store_true", help="the images' luminance only (no colour features)")
    ap.add_argument("--betas", default=None, help="also score the MRF decoding at these betas (comma-separated)")
    ap.add_argument("--calibrated", action="store_true",
                    help="two classes: also score at the threshold matching the labels' foreground estimate")
    ap.add_argument("--sparse-prior", action="store_true",
                    help="K-class self-training: also score the decision weights of the sparse labels' class prior")
    ap.add_argument("--test", action="store_true",
                    help="also fit on every training image and report the test error (orientation only)")
    ap.add_argument("--data", default=None, help="data folder (default: $CHM_DATA, then ../shared/data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=1, help="CHM workers, or ConvNet torch threads")
    ap.add_argument("--cache", default=None, help="CHM feature cache folder")
    ap.add_argument("--out", default="results/screen")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    return ap.parse_args(argv)


def load(args):
    """The training and test side of ``--dataset`` (Stanford: fold 0 with the experiments' seed 0, so
    ``--seed`` never changes which images are training images)."""
    if args.dataset == "weizmann":
        return load_weizmann_horse(weizmann_root(args.data))
    if args.dataset == "stanford":
        return load_stanford_background(data_root(args.data), fold=0, seed=0)
    if args.dataset == "stanford-bin0":
        # Fold 0's training images are the test images of folds 1-4; bin 0 is nobody's training
        # image but fold 0's test image, so only fold 0 is spent on the choice.
        d = load_stanford_background(data_root(args.data), fold=0, seed=0)
        return dataclasses.replace(d, train_images=d.test_images, train_masks=d.test_masks,
                                   train_names=d.test_names, test_images=[], test_masks=[], test_names=[])
    return load_siftflow(data_root(args.data))


def split(args, masks):
    """(image indices, splits, labels, score labels) of the screen: the splits are positions in
    the indices (``kfold``; the same for every variant), the score labels one entry per position
    (None for an image no split holds out)."""
    index = np.arange(len(masks))
    if args.images is not None:
        if not 5 <= args.images <= len(masks):
            raise SystemExit(f"--images must be between 5 and {len(masks)}, got {args.images}")
        index = np.sort(np.random.default_rng([args.seed, 98]).permutation(len(masks))[:args.images])
    masks = [masks[i] for i in index]
    if args.n == 0:
        labels = [np.where(np.asarray(m) < 0, -1, m).astype(np.int8) for m in masks]
    else:
        labels = sample_sparse_labels(masks, args.n, np.random.default_rng([args.seed, args.n, args.draw]), ignore=-1)
    if not 1 <= args.folds <= len(index):
        raise SystemExit(f"--folds must be between 1 and {len(index)} (the screened images), got {args.folds}")
    splits = kfold(len(index), args.folds, [args.seed, args.n, 99])
    scored = np.sort(np.concatenate([held for _, held in splits]))
    score = [None] * len(index)
    if args.score_n is None:
        for i in scored:
            score[i] = labels[i]
    else:  # --folds 1 draws exactly the labels it drew before the k-fold screen
        drawn = sample_sparse_labels([masks[i] for i in scored], args.score_n,
                                     np.random.default_rng([args.seed, args.score_n, args.draw, 1]), ignore=-1)
        for i, lab in zip(scored, drawn):
            score[i] = lab
    return index, splits, labels, score


def estimator_params(text, base):
    """The estimator parameters of one variant: ``base`` updated by ``text``; a dict in
    ``semi_supervised`` becomes a :class:`chm.semi.recipes.Recipe`."""
    params = {**base, **json.loads(text)}
    if isinstance(params.get("semi_supervised"), dict):
        from chm.semi.recipes import Recipe

        recipe = params["semi_supervised"]
        params["semi_supervised"] = Recipe.from_dict(recipe if "recipe" in recipe else {"recipe": recipe})
    return params


def make_estimator(args, params, n_classes):
    common = dict(n_jobs=args.n_jobs, progress=not args.quiet, random_state=args.seed)
    if n_classes > 2:
        common["n_classes"] = n_classes
    if args.estimator == "convnet":
        from chm import ConvNet

        return ConvNet(**common, **params)
    from chm import CHM

    if args.cache and "feature_cache" not in params:
        common["feature_cache"] = args.cache
    return CHM(**common, **params)


def sparse_prior_weights(model, labels):
    """A self-trained K-class model's decision weights with the class prior of the sparse labels.

    ``class_weights_`` is pi_k / q_k with pi the class fractions of the last round's proposals
    (``rounds_[-1]["classes"]``) and q those of the rows the refit sampled; this returns
    pi'_k / q_k with pi' the fractions of the sparse labels the model was fitted on.
    """
    K = model.n_classes_
    sparse = sum(np.bincount(lab[lab >= 0].ravel(), minlength=K) for lab in labels).astype(np.float64)
    sparse /= sparse.sum()
    props = np.asarray(model.rounds_[-1]["classes"], dtype=np.float64)
    w = model.class_weights_.copy()
    seen = props > 0  # the refit samples every class of the proposals (per-class caps)
    w[seen] *= sparse[seen] / props[seen]
    return w


def screen_variant(args, params, data, images, parts):
    """Fit one variant on every fold's complement and score it on the fold: a JSON-able dict."""
    index, splits, labels, score = parts
    n_classes = len(data.classes)
    mine = [images[i] for i in index]
    t0 = time.perf_counter()
    decisions, calibrated, scored, maps, thresholds = {"": [], "sparse_prior": []}, [], [], [], []
    per_fold = {"fold_errors": [], "n_fit": [], "alpha": [], "threshold": [], "calibrated_threshold": [],
                "final_supervised_loss": [], "spatial_share": []}
    fit_s = 0.0
    tv_sum = tv_centres = 0.0  # the held-out maps' TV, pooled over their valid 3 x 3 centres
    progress = None if args.quiet or len(splits) == 1 else \
        (lambda k, m: print(f"   fold {k + 1}/{m}", flush=True))
    fits = cross_val_fits(lambda: make_estimator(args, params, n_classes), mine, labels, splits, progress)
    t1 = time.perf_counter()
    for fit, held, model in fits:  # each fold's model decides the fold's images by every rule asked for
        fit_s += time.perf_counter() - t1
        rules = {"": model}  # the same maps, each rule's decisions
        if args.sparse_prior and getattr(model, "rounds_", None) and n_classes > 2:
            rules["sparse_prior"] = copy.copy(model)
            rules["sparse_prior"].class_weights_ = sparse_prior_weights(model, [labels[i] for i in fit])
        cut = None
        if args.calibrated and n_classes == 2:
            from chm.semi.selftraining import foreground_prior

            own = np.concatenate([p.ravel() for p in model.predict_proba([mine[i] for i in fit])])
            cut = float(np.quantile(own, 1 - foreground_prior([labels[i] for i in fit])))
            per_fold["calibrated_threshold"].append(cut)
        threshold = float(getattr(model, "threshold_", 0.5)) if n_classes == 2 else None  # K classes: class_weights_
        fold_decisions = []
        for i in held:  # one map at a time: SIFT Flow's K = 33 maps are 8.6 MB each
            p = model.predict_proba([mine[i]])
            centres = (p[0].shape[0] - 2) * (p[0].shape[1] - 2)
            tv_sum += map_tv(p[0]) * centres
            tv_centres += centres
            for k, m in rules.items():
                decisions[k] += m.decide(p)
            fold_decisions += decisions[""][-1:]
            if cut is not None:
                calibrated.append(p[0] > cut)
            if args.betas is not None:
                maps += p
                thresholds.append(threshold)
        scored += list(held)
        fold_labels = [score[i] for i in held]
        per_fold["fold_errors"].append(sparse_error(fold_decisions, fold_labels)
                                       if any((s >= 0).any() for s in fold_labels) else float("nan"))
        per_fold["n_fit"].append(len(fit))
        for name in ("alpha_", "threshold_"):
            if hasattr(model, name):
                per_fold[name.rstrip("_")].append(_jsonable(getattr(model, name)))
        if getattr(model, "loss_curve_", None):
            per_fold["final_supervised_loss"].append(float(np.mean([c for c, _ in model.loss_curve_[-50:]])))
        if getattr(model, "spatial_share_", None):
            per_fold["spatial_share"].append(model.spatial_share_)
        t1 = time.perf_counter()
    truth = [score[i] for i in scored]
    dense = [data.train_masks[index[i]] for i in scored]
    n_labels = int(sum((np.asarray(s) >= 0).sum() for s in truth))
    error = sparse_error(decisions[""], truth)
    row = {"heldout_sparse_error": error, "heldout_sparse_error_se": std_error(error, n_labels),
           "heldout_dense_error": pixel_error(decisions[""], dense, ignore=-1),
           "n_heldout_labels": n_labels, "folds": len(splits), "fold_errors": per_fold["fold_errors"],
           "n_fit": _per_fold(per_fold["n_fit"]), "n_heldout": len(scored)}
    if n_classes == 2:
        row["heldout_foreground"] = float(sum(int(np.sum(d)) for d in decisions[""]) /
                                          sum(np.size(d) for d in decisions[""]))
    counts = sum(np.bincount(np.ravel(d), minlength=n_classes) for d in decisions[""])
    row["heldout_class_fractions"] = (counts / counts.sum()).tolist()
    row["heldout_map_tv"] = tv_sum / tv_centres
    if decisions["sparse_prior"]:
        row["heldout_sparse_error_sparse_prior"] = sparse_error(decisions["sparse_prior"], truth)
    if calibrated:
        row["calibrated_threshold"] = _per_fold(per_fold["calibrated_threshold"])
        row["heldout_sparse_error_calibrated"] = sparse_error(calibrated, truth)
    if args.betas is not None:
        betas = [float(b) for b in args.betas.split(",")]
        kw = (dict(images=[mine[i] for i in scored], threshold=thresholds) if n_classes == 2
              else dict(method="expansion"))
        _, scores = mrf.select_beta(maps if n_classes == 2 else [np.clip(p, 0, 1) for p in maps], truth,
                                    betas=betas, **kw)
        row["heldout_sparse_error_mrf"] = {f"{float(b):g}": float(v) for b, v in scores.items()}
    for name in ("alpha", "threshold"):
        if per_fold[name]:
            row[name] = _per_fold(per_fold[name])
    if per_fold["final_supervised_loss"]:  # ConvNet: cross-entropy, or squared error if asked
        row["final_supervised_loss"] = float(np.mean(per_fold["final_supervised_loss"]))
    if per_fold["spatial_share"]:
        row["spatial_share"] = {f"s{s}_l{l}": float(np.mean([f[(s, l)] for f in per_fold["spatial_share"]]))
                                for s, l in per_fold["spatial_share"][0]}
    row["fit_seconds"] = fit_s
    if args.test:
        t1 = time.perf_counter()
        full = make_estimator(args, params, n_classes).fit(mine, labels)
        test_images = data.test_images if not args.gray else [_gray(im) for im in data.test_images]
        pred = full.decide(full.predict_proba(test_images))
        row["test_error"] = pixel_error(pred, data.test_masks, ignore=-1)
        row["test_seconds"] = time.perf_counter() - t1
    row["seconds"] = time.perf_counter() - t0
    return row


def _per_fold(values):
    """One fold's value as is (``--folds 1``, as before the k-fold screen), else the list of the folds'."""
    return values[0] if len(values) == 1 else values


def _jsonable(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return [float(x) for x in np.ravel(v)]
    return None if v is None else float(v)


def _gray(image):
    return to_channels(as_float_image(image), 1)


def result_path(args, params_text, base_text):
    """The result file of one variant: the settings that change its numbers, and a hash of its parameters."""
    params = {**json.loads(base_text), **json.loads(params_text)}
    tag = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    opts = vars(args)
    name = "_".join([args.dataset, args.estimator, f"N{args.n}", f"draw{args.draw}"]
                    + [f"{k.replace('_', '')}{opts[k]}" for k in ("score_n", "images") if opts[k] is not None]
                    + ([f"folds{args.folds}"] if args.folds != 1 else [])  # files of --folds 1 predate --folds
                    + ([f"seed{args.seed}"] if args.seed else []) + (["gray"] if args.gray else []) + [tag])
    return Path(args.out) / f"{name}.json"


def wanted(args, n_classes):
    """The keys a stored result must hold for this call's options (else the variant is refitted)."""
    keys = ["heldout_sparse_error"]
    keys += ["heldout_sparse_error_mrf"] if args.betas else []
    keys += ["heldout_sparse_error_calibrated"] if args.calibrated and n_classes == 2 else []
    keys += ["test_error"] if args.test else []
    return keys


def main(argv=None):
    args = parse_args(argv)
    data = load(args)
    n_classes = len(data.classes)
    if args.calibrated and n_classes > 2:
        raise SystemExit("--calibrated is for two classes (a foreground threshold)")
    if args.test and not data.test_images:
        raise SystemExit(f"--test: {args.dataset} keeps no test images (they are the screened ones)")
    images = [_gray(im) for im in data.train_images] if args.gray else data.train_images
    parts = split(args, data.train_masks)
    base = json.loads(args.base)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for text in args.variants:
        path = result_path(args, text, args.base)
        stored = json.loads(path.read_text()) if path.exists() else {}
        betas_ok = not args.betas or all(f"{float(b):g}" in stored.get("heldout_sparse_error_mrf", {})
                                         for b in args.betas.split(","))
        if not (all(k in stored for k in wanted(args, n_classes)) and betas_ok):
            row = screen_variant(args, estimator_params(text, base), data, images, parts)
            stored = {"variant": json.loads(text), "base": base,
                      **{k: v for k, v in vars(args).items() if k in KEYED}, **row}
            write_json(path, stored)
        elif "heldout_sparse_error_se" not in stored:  # a file of before the standard errors
            stored["heldout_sparse_error_se"] = std_error(stored["heldout_sparse_error"], stored["n_heldout_labels"])
            write_json(path, stored)
        rows.append(stored)
        print(_line(stored), flush=True)
    index, splits, _, _ = parts
    n_held = sum(len(h) for _, h in splits)
    how = (f"{len(splits)}-fold cross-validation over {len(index)} training images (every image scored once by "
           f"a model fitted on the other {len(index) - len(splits[0][1])} or so)" if len(splits) > 1 else
           f"fitted on {len(splits[0][0])} training images, scored on {n_held} held-out ones (--folds 1)")
    print(f"\n{args.dataset}, {args.estimator}, N = {args.n or 'dense'}, draw {args.draw}: {how}; score = "
          f"error on {rows[0]['n_heldout_labels']} sparse labels ± binomial standard error; dense = out-of-fold "
          "dense error (diagnostic only)")
    best = choose({i: r["heldout_sparse_error"] for i, r in enumerate(rows)})
    print(f"best: {json.dumps(rows[best]['variant'])}")
    return rows


def _line(r):
    extra = ""
    if "heldout_foreground" in r:
        extra += f"  foreground {100 * r['heldout_foreground']:.1f} %"
    if "heldout_map_tv" in r:  # results of before the diagnostics have none
        extra += f"  map TV {r['heldout_map_tv']:.4f}"
    if "spatial_share" in r:
        extra += "  spatial share " + ", ".join(f"{k} {v:.2f}" for k, v in r["spatial_share"].items())
    if "heldout_sparse_error_calibrated" in r:
        extra += (f"  calibrated ({np.mean(r['calibrated_threshold']):.3f}) "
                  f"{100 * r['heldout_sparse_error_calibrated']:.2f} %")
    if "heldout_sparse_error_sparse_prior" in r:
        extra += f"  sparse-label prior {100 * r['heldout_sparse_error_sparse_prior']:.2f} %"
    if "heldout_sparse_error_mrf" in r:
        extra += "  MRF " + ", ".join(f"β {b}: {100 * v:.2f} %" for b, v in r["heldout_sparse_error_mrf"].items())
    if "test_error" in r:
        extra += f"  test {100 * r['test_error']:.2f} %"
    return (f"{100 * r['heldout_sparse_error']:6.2f} ± {100 * r['heldout_sparse_error_se']:.2f} %  "
            f"(dense {100 * r['heldout_dense_error']:.2f} %, "
            f"fit {r['fit_seconds']:.0f} s)  {json.dumps(r['variant'])}{extra}")


if __name__ == "__main__":
    from chm.utils import run_main  # Ctrl-C / SIGTERM: stop the workers, keep results

    run_main(main)
