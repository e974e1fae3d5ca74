"""The cascade's training loop (chm-reference 1.1, 1.5).

:func:`train` is the whole fit of a :class:`chm.cascade.spec.CascadeSpec` under a
:class:`chm.semi.recipes.Recipe`: optionally spread the sparse labels over superpixels, fit the
cascade (:func:`fit_cascade`), optionally self-train it (:func:`self_train`).

Pass A computes, image by image, the filter-bank features of the labelled pixels at every
level. Then each classifier in
training order: its training matrix with context features (:mod:`chm.cascade.sampling`), robust
scaling (:mod:`chm.cascade.normalisation`), SGD with the spatial loss where asked, and its output
map over every training image, the context of the classifiers after it
(:mod:`chm.cascade.inference`). Self-training then refits the whole cascade on graph-cut
proposals of the training images (:mod:`chm.semi.selftraining`).
"""

import time
import warnings

import numpy as np
from joblib import delayed

from ..classifiers import shrink_to_labels
from ..semi.selftraining import class_proposal, foreground_prior, keep_confident, proposals
from ..semi.superpixels import expand_labels
from ..thresholds import calibrate, calibrated, class_weights, decision_threshold, em_prior
from ..utils._blas import one_blas_thread
from ..utils._progress import bar
from . import pyramid
from .cache import FeatureSource
from .contexts import ContextProjection, context_maps
from .inference import level_map
from .normalisation import normalise, robust_scaling
from .sampling import CentrePool, ImageCentres, assemble, draw_centres, neighbourhood_features, training_rows
from .spec import FittedCascade

__all__ = ["EM_IMAGES", "FewLabelsWarning", "FlatOutputWarning", "fit_cascade", "self_train", "train"]

#: Training images (at most) whose maps estimate the class prior when ``class_prior="em"``:
#: ~50 k pixels each, far more than the prior's few digits need, at one prediction each.
EM_IMAGES = 32


class FewLabelsWarning(UserWarning):
    """:meth:`chm.CHM.fit` made some classifiers smaller to fit the few labelled pixels it was given."""


class FlatOutputWarning(UserWarning):
    """A spatial loss flattened the fitted map: every labelled training pixel gets one class."""


def train(spec, recipe, bank, images, labels, rng, par, cache=None, progress=None, channels=None):
    """Fit a cascade from sparse labels as ``recipe`` says.

    Parameters
    ----------
    spec : CascadeSpec
    recipe : chm.semi.recipes.Recipe
    bank : chm.features.FilterBank
    images, labels : lists of arrays
        Validated images (any dtype :func:`chm.io.images.as_float_image` takes) and int label
        maps (-1 = unlabelled).
    rng : numpy.random.Generator
        Drives every random choice.
    par : joblib.Parallel
        Returning a generator; runs the per-image work.
    cache : FeatureCache or None
        Filter-bank features kept between fits.
    progress : bool or None
        As ``CHM(progress=...)``.
    channels : list of (H, W, E) arrays or None
        The images' feature channels (:func:`chm.features.check_channels`), which ``bank``
        reads (:attr:`chm.features.FilterBank.channels`); superpixels, proposals and
        contrast-sensitive losses see the images only.

    Returns
    -------
    FittedCascade
        With ``rounds`` (one dict per self-training round) and ``timings``.
    """
    seeds = rng.integers(0, 2**63 - 1, size=len(images))
    caps = spec.level_caps(len(images))
    timings = {}
    sparse = labels  # the user's labels: they, not the spread ones, set the decision rule and the clamps
    if recipe.scale is not None:
        t0 = time.perf_counter()
        jobs = (delayed(expand_labels)(spec.prepare(im), lab, recipe.scale) for im, lab in zip(images, labels))
        labels = list(bar(par(jobs), total=len(images), desc="superpixel labels", enabled=progress))
        timings["superpixels"] = time.perf_counter() - t0
        caps = spec.level_caps(len(images), recipe.proposal_samples)  # like proposals, too many to keep all
    source = FeatureSource(bank, cache)
    loss = recipe.loss if recipe.spatial else None
    fitted = fit_cascade(spec, source, images, labels, seeds, caps, rng, par, loss, recipe.alpha,
                         spec.label_pooling or "max", progress, prior_labels=sparse, prior=spec.class_prior,
                         channels=channels)
    fitted.timings = {**timings, **fitted.timings}
    if recipe.rounds:
        fitted = self_train(fitted, source, images, sparse, recipe, rng, par, progress, channels)
    return fitted


def fit_cascade(spec, source, images, labels, seeds, caps, rng, par, loss=None, alpha=0.0, pooling="max",
                progress=None, prior_labels=None, prior="labels", channels=None):
    """Train every classifier of ``spec``; returns the :class:`FittedCascade`.

    ``source`` is the bank (through a cache or not); ``seeds`` (one per image) and ``rng`` drive
    every random choice; ``caps`` are the per-level sample caps; ``loss`` / ``alpha`` the
    spatial loss of the ``spec.tv_levels``; ``pooling`` the coarse levels' label rule;
    ``par`` a joblib ``Parallel`` returning a generator. The decision rule undoes the caps'
    rebalancing towards the class balance of ``prior_labels`` (default ``labels``), or, with
    ``prior="em"``, towards the prior :func:`chm.thresholds.em_prior` estimates from the fitted
    cascade's maps of (up to :data:`EM_IMAGES` of) the training images. ``channels``: each
    image's feature channels, or None (as :func:`train`).
    """
    K = spec.n_classes
    fitted = FittedCascade(spec=spec, bank=source.bank)
    channels = [None] * len(images) if channels is None else channels
    # Pass A: filter-bank rows at every level, only where SGD will look.
    t0 = time.perf_counter()
    jobs = (delayed(training_rows)(spec.prepare(im, ch), lab, spec.levels, caps, source, sd, pooling, K)
            for im, ch, lab, sd in zip(images, channels, labels, seeds))
    rows = list(bar(par(jobs), total=len(images), desc="features", enabled=progress))
    fitted.timings["features"] = time.perf_counter() - t0

    maps = [dict() for _ in images]
    few_labels = []  # classifiers made smaller to fit a handful of labelled pixels
    shares = {}  # the spatial loss's share of the gradient, per classifier trained with it
    flat_check = None  # the final output on its labelled rows, when a spatial loss shaped it
    schedule = spec.schedule()
    pools = {}  # level -> the spatial loss's CentrePool, shared by the level's classifiers
    for s, l in schedule:
        t0 = time.perf_counter()
        X, y, soft = assemble(rows, maps, s, l, spec.levels, spec.stencil(s, l),
                              release=(s, l) == schedule[-1] and loss is None)
        offset, scale = robust_scaling(X, source.bank)
        normalise(X, offset, scale)
        clf, shrunk = shrink_to_labels(spec.make_classifier(s, l, int(rng.integers(0, 2**63 - 1))), y)
        if shrunk:
            few_labels.append(f"stage {s} level {l}: {shrunk}")
        spatial, pooling_time = None, 0.0
        if loss is not None and alpha > 0 and l in spec.tv_levels:
            if l not in pools:  # every centre of this level's classifiers, fresh for each epoch (eq. 2)
                pooling_time = time.perf_counter()
                n_sup = int(np.count_nonzero(y >= 0))
                n = max(spec.make_classifier(t, m, 0).spatial_centres(n_sup) for t, m in schedule if m == l)
                pools[l] = _centre_pool(spec, source, images, channels, l, n, rng, par, progress) if n else None
                pooling_time = time.perf_counter() - pooling_time
                fitted.timings["centres"] = fitted.timings.get("centres", 0.0) + pooling_time
            if pools[l] is not None:
                weight_images = None  # the level images, for a contrast-sensitive loss's weights only
                if loss.contrast is not None:
                    weight_images = [spec.image_of(pyramid.downsample_n(spec.prepare(im, ch), l))
                               for im, ch in zip(images, channels)]
                spatial = ImageCentres(pools[l], (context_maps(m, s, l, spec.levels, shape)
                                                  for m, shape in zip(maps, pools[l].shapes)),
                                       spec.stencil(s, l), offset, scale, weight_images, loss)
        key = "rms" if K == 2 else "ce"
        with bar(total=clf.epochs, desc=f"stage {s} level {l} SGD", enabled=progress) as pbar:
            clf.fit(X, y, spatial=spatial, spatial_loss=loss, soft_targets=soft,
                    alpha=alpha if spatial is not None else 0.0,
                    progress=lambda e, err, sp: (pbar.update(1), pbar.set_postfix(**{key: f"{err:.3f}"})))
        if clf.spatial_share_ is not None:
            shares[(s, l)] = clf.spatial_share_
        last = (s, l) == schedule[-1]
        if last and spatial is not None:
            lab = np.flatnonzero(y >= 0)[:: max(1, int((y >= 0).sum()) // 100_000)]
            flat_check = (clf.predict_proba(X[lab].astype(np.float32)), y[lab])
        if K > 2 and not last:
            # Compress the K-class map for the classifiers that take it as context, from its
            # outputs on (up to 100k of) the training rows.
            sample = X[::max(1, len(X) // 100_000)].astype(np.float32)
            fitted.projections[(s, l)] = ContextProjection.fit(clf.predict_proba(sample), spec.context_channels)
        del X, y, soft, spatial  # before the next level's matrix is built
        clf.fold_affine(offset, scale)
        fitted.classifiers[(s, l)] = clf
        t1 = time.perf_counter()
        if not last:  # the final output is not a context for anything
            jobs = (delayed(level_map)(spec.prepare(im, ch), l, source,
                                       context_maps(m, s, l, spec.levels, pyramid.level_shape(im.shape[:2], l)),
                                       clf, spec.stencil(s, l), fitted.projections.get((s, l)))
                    for im, ch, m in zip(images, channels, maps))
            for m, p in zip(maps, bar(par(jobs), total=len(images), desc=f"stage {s} level {l} contexts",
                                      enabled=progress)):
                m[(s, l)] = p
        fitted.timings[(s, l)] = {"sgd": t1 - t0 - pooling_time, "contexts": time.perf_counter() - t1}
    fitted.spatial_share = shares or None
    sampled = [r[0]["y"] for r in rows]
    prior_labels = labels if prior_labels is None else prior_labels
    counts = sum(np.bincount(lab[lab >= 0].astype(np.int64), minlength=K) for lab in prior_labels)
    fitted.prior = counts[1] / counts.sum() if K == 2 else counts / counts.sum()
    if K == 2:
        fitted.threshold = decision_threshold(prior_labels, sampled, clf.targets)
    else:
        fitted.class_weights = class_weights(prior_labels, sampled, K)
    if prior == "em":
        rule = _em_rule(fitted, source, images, prior_labels, rng, par, channels)
        if rule is not None:
            fitted.prior, decision = rule
            if K == 2:
                fitted.threshold = decision
            else:
                fitted.class_weights = decision
    if flat_check is not None:
        _warn_if_flat(fitted, *flat_check, alpha)
    if few_labels:
        warnings.warn("few labelled pixels: an LDNN has at most one group per labelled foreground pixel "
                      "and one node per background pixel of its level, so these were made smaller: "
                      + "; ".join(few_labels), FewLabelsWarning, stacklevel=4)
    return fitted


def _centre_pool(spec, source, images, channels, level, n, rng, par, progress):
    """A :class:`CentrePool` of ``n`` centres drawn uniformly over the training images at
    ``level``, their neighbourhoods' features read in one pass over the images."""
    shapes = [pyramid.level_shape(im.shape[:2], level) for im in images]
    pool = CentrePool(*draw_centres(shapes, n, rng), shapes, source.bank.n_features)
    todo = [i for i in range(len(images)) if pool.bounds[i + 1] > pool.bounds[i]]
    jobs = (delayed(_neighbourhood_rows)(spec.prepare(images[i], channels[i]), level, source,
                                         pool.ys[pool.of_image(i)], pool.xs[pool.of_image(i)]) for i in todo)
    for i, rows in zip(todo, bar(par(jobs), total=len(todo), desc=f"level {level} spatial centres",
                                 enabled=progress)):
        pool.write(i, rows)
    return pool


def _neighbourhood_rows(image, level, source, ys, xs):
    """One prepared image's filter-bank rows at the 3 x 3 neighbourhoods of its centres at ``level``."""
    return neighbourhood_features(source(pyramid.downsample_n(image, level), scratch_key=("bank", level)), ys, xs)


def _warn_if_flat(fitted, proba, y, alpha):
    """Warn when the decision rule gives every labelled training row of the final classifier one
    class although they hold several: the spatial loss's weight left no room for the labels."""
    decided = fitted.decide([proba.reshape(len(proba), 1, -1)])[0].ravel()
    present = np.unique(y)
    if len(present) > 1 and len(np.unique(decided)) == 1:
        warnings.warn(f"the spatial loss (alpha={alpha:g}) flattened the output: every labelled training pixel "
                      f"is decided class {int(decided[0])} although the labels hold {len(present)} classes, so "
                      "the maps are (nearly) one class; lower alpha (docs/results.md, 'The TV weight over six "
                      "decades')", FlatOutputWarning, stacklevel=5)


def self_train(fitted, source, images, labels, recipe, rng, par, progress=None, channels=None):
    """Refit the cascade of ``fitted`` on MRF proposals of its training images, ``recipe.rounds``
    times (:mod:`chm.semi.selftraining`); returns the last refit, whose ``rounds`` hold each
    round's seconds and proposals' class fractions (two classes: also the bias and foreground
    fraction).

    ``labels`` are the user's sparse labels (not superpixel-spread ones): the proposals keep them
    fixed, and a binary model's guard takes its foreground prior from them.
    ``recipe.beta`` is the Potts weight of the proposals' MRF; ``recipe.prior_tolerance`` bounds a
    binary model's proposals' foreground fraction relative to the sparse labels' estimate;
    ``recipe.proposal_samples`` caps the labelled pixels per class and level taken from the
    (dense) proposals when ``max_samples`` is None. ``channels``: each image's feature channels,
    or None (as :func:`train`); the proposals' MRF sees the images only.
    """
    spec = fitted.spec
    K = spec.n_classes
    if K == 2:
        pi = fitted.prior if spec.class_prior == "em" else foreground_prior(labels)
        bounds = (pi * (1 - recipe.prior_tolerance), min(0.999, pi * (1 + recipe.prior_tolerance)))
    caps = spec.level_caps(len(images), recipe.proposal_samples)
    channels = [None] * len(images) if channels is None else channels
    # once: the maps and the proposals both read them
    prepared = [spec.prepare(im, ch) for im, ch in zip(images, channels)]
    timings, rounds = fitted.timings, []
    for r in range(recipe.rounds):
        t0 = time.perf_counter()
        info = {}
        if K == 2:
            # The fraction guard shifts every map by one bias: all maps first (H x W floats each).
            jobs = (delayed(_training_map)(im, fitted, source.cache) for im in prepared)
            maps = list(bar(par(jobs), total=len(images), desc=f"round {r + 1} training maps", enabled=progress))
            props, info["bias"] = proposals(maps, [spec.image_of(x) for x in prepared], labels, recipe.beta,
                                            fitted.threshold, bounds)
            props = [keep_confident(p, np.dstack([1 - m, m]), lab, recipe.proposal_confidence)
                     for p, m, lab in zip(props, maps, labels)]
            del maps
        else:
            # Map and proposal in one job per image: the K-channel map never leaves the worker
            # (SIFT Flow's 2488 training maps at K = 33 would be 21 GB).
            jobs = (delayed(_map_and_proposal)(im, lab, fitted, source.cache, recipe.beta, recipe.proposal_confidence)
                    for im, lab in zip(prepared, labels))
            props = list(bar(par(jobs), total=len(images), desc=f"round {r + 1} maps and proposals",
                             enabled=progress))
        counts = sum(np.bincount(p[p >= 0].ravel(), minlength=K) for p in props)
        info["classes"] = (counts / counts.sum()).tolist()
        if K == 2:
            info["foreground"] = info["classes"][1]
        seeds = rng.integers(0, 2**63 - 1, size=len(images))
        # Proposals are dense labels: unless the user chose a pooling, coarse levels regress their
        # blocks' fractions. The recipe's spatial loss stays: a combined method keeps its loss.
        fitted = fit_cascade(spec, source, images, props, seeds, caps, rng, par,
                             recipe.loss if recipe.spatial else None, recipe.alpha, spec.label_pooling or "mean",
                             progress, channels=channels)
        timings = {**timings, **fitted.timings}  # a refit's stages replace the first fit's
        rounds.append({**info, "seconds": time.perf_counter() - t0})
    fitted.timings, fitted.rounds = timings, rounds
    return fitted


def _em_rule(fitted, source, images, labels, rng, par, channels):
    """The class prior of the training images' pixels and the decision rule for it.

    EM (:func:`chm.thresholds.em_prior`) on the cascade's own maps of (up to :data:`EM_IMAGES`
    of) the training images, after calibrating the maps on their labelled pixels
    (:func:`chm.thresholds.calibrate`); the rule decides for the estimated prior on the
    calibrated scale. Returns (prior, threshold or class weights), or None when the picked
    images' labels do not hold every class.
    """
    K = fitted.spec.n_classes
    pick = np.sort(rng.choice(len(images), size=min(len(images), EM_IMAGES), replace=False))
    jobs = (delayed(_training_map)(fitted.spec.prepare(images[i], channels[i]), fitted, source.cache) for i in pick)
    maps = list(par(jobs))
    if K == 2:
        t0, t1 = fitted.classifiers[fitted.spec.schedule()[-1]].targets
        # the LDNN regresses t0 + (t1 - t0) P(foreground | x)
        maps = [np.clip((m - t0) / (t1 - t0), 0.0, 1.0) for m in maps]
    known = [labels[i] >= 0 for i in pick]
    y = np.concatenate([labels[i][k] for i, k in zip(pick, known)]).astype(np.int64)
    pi_l = np.bincount(y, minlength=K) / max(len(y), 1)
    if np.any(pi_l == 0):
        return None
    a, b = calibrate(np.concatenate([m[k] for m, k in zip(maps, known)]), y)
    if a <= 0:  # outputs that anti-correlate with the labels: nothing to calibrate
        return None
    post = calibrated(np.concatenate([m[::2, ::2].reshape(-1, K) if K > 2 else m[::2, ::2].ravel() for m in maps]),
                      a, b)
    prior = np.atleast_1d(em_prior(post, pi_l if K > 2 else pi_l[1]))
    prior = np.r_[1.0 - prior[0], prior[0]] if K == 2 else prior
    # decide argmax_k of a log p_k + b_k + log(prior_k / pi_l_k), i.e. of p_k times these weights
    shift = (b + np.log(np.maximum(prior, 1e-12) / pi_l)) / a
    if K == 2:
        return float(prior[1]), float(t0 + (t1 - t0) / (1.0 + np.exp(shift[1] - shift[0])))
    w = np.exp(shift - shift.max())
    return prior, w


def _training_map(image, fitted, cache):
    """The final map of one training image, on one BLAS thread: as for
    :func:`chm.cascade.inference.level_map`, the same model for any ``n_jobs`` (and no BLAS
    threads spinning against the other jobs of a busy machine: with ``n_jobs=1`` this runs in the
    calling process)."""
    with one_blas_thread():
        return fitted.predict_image(image, cache=cache)


def _map_and_proposal(image, labels, fitted, cache, beta, confidence):
    """One training image's K-class proposal (:func:`chm.semi.selftraining.class_proposal`) from its map
    (``image`` prepared, with its feature channels if any; the MRF sees the image only)."""
    return class_proposal(_training_map(image, fitted, cache), fitted.spec.image_of(image), labels, beta,
                          fitted.class_weights, confidence)
