"""The cascade's training loop (chm-reference 1.1, 1.5).

Pass A computes, image by image, the filter-bank features of the labelled pixels at every
level (and of a pool of spatial-loss centres for a K-class model). Then each classifier in
training order: its training matrix with context features (:mod:`chm.sampling`), robust
scaling (:mod:`chm.normalisation`), SGD with the spatial loss where asked, and its output map
over every training image, the context of the classifiers after it (:mod:`chm.inference`).
Self-training (:func:`self_train`) then refits the whole cascade on graph-cut proposals of the
training images (:mod:`chm.selftraining`).
"""

import time
import warnings

import numpy as np
from joblib import delayed

from . import pyramid
from ..utils._blas import one_blas_thread
from ..utils._progress import bar
from .cache import bank_features
from ..classifiers import shrink_to_labels
from .contexts import ContextProjection, context_maps
from .inference import level_map, predict_image
from .normalisation import normalise, robust_scaling
from .sampling import ImageCentres, NeighbourhoodPool, assemble, training_rows
from ..semi.selftraining import class_proposal, foreground_prior, proposals
from ..thresholds import class_weights, decision_threshold

__all__ = ["FewLabelsWarning", "fit_cascade", "self_train"]


class FewLabelsWarning(UserWarning):
    """:meth:`chm.CHM.fit` made some classifiers smaller to fit the few labelled pixels it was given."""


def fit_cascade(model, images, labels, seeds, caps, cache, loss, alpha, tv_levels, rng, par, pooling):
    """Train every classifier of ``model`` (a :class:`chm.CHM` whose ``fit`` validated the input
    and set ``bank_``, ``n_classes_``, ``n_channels_``), setting ``classifiers_``,
    ``projections_``, ``threshold_`` or ``class_weights_`` and ``timings_``.

    ``seeds`` (one per image) and ``rng`` drive every random choice; ``caps`` are the per-level
    sample caps; ``cache`` a FeatureCache or None; ``loss`` / ``alpha`` the spatial loss of the
    ``tv_levels``; ``pooling`` the coarse levels' label rule (``CHM.label_pooling``); ``par`` a
    joblib ``Parallel`` returning a generator.
    """
    K = model.n_classes_
    # Pass A: filter-bank rows at every level, only where SGD will look (and, for a K-class
    # spatial loss, at a pool of centres).
    t0 = time.perf_counter()
    pool = (model.spatial_rate, tv_levels, loss) if loss is not None and K > 2 else None
    jobs = (delayed(training_rows)(model._prepare(im), lab, model.levels, caps, model.bank_, sd, cache,
                                   pooling, K, pool)
            for im, lab, sd in zip(images, labels, seeds))
    rows = list(bar(par(jobs), total=len(images), desc="features", enabled=model.progress))
    model.timings_["features"] = time.perf_counter() - t0

    maps = [dict() for _ in images]
    model.classifiers_ = {}
    model.projections_ = {}
    few_labels = []  # classifiers made smaller to fit a handful of labelled pixels
    schedule = model._schedule()
    for s, l in schedule:
        t0 = time.perf_counter()
        X, y, soft, centres = assemble(rows, maps, s, l, model.levels, model._stencil(s, l),
                                       release=(s, l) == schedule[-1] and not (loss is not None and K == 2))
        offset, scale = robust_scaling(X, model.bank_)
        normalise(X, offset, scale)
        clf, shrunk = shrink_to_labels(model._make_classifier(s, l, int(rng.integers(0, 2**63 - 1)),
                                                             l in tv_levels), y)
        if shrunk:
            few_labels.append(f"stage {s} level {l}: {shrunk}")
        spatial = None
        if loss is not None and l in tv_levels and centres is not None:
            spatial = NeighbourhoodPool(X, *centres)
        elif loss is not None and l in tv_levels and K == 2:
            level_images = [pyramid.downsample_n(model._prepare(im), l) for im in images]
            spatial = ImageCentres([bank_features(im, model.bank_, cache) for im in level_images],
                                   [context_maps(m, s, l, model.levels, im.shape) for m, im in zip(maps, level_images)],
                                   model._stencil(s, l), offset, scale, level_images, loss)
        key = "rms" if K == 2 else "ce"
        with bar(total=clf.epochs, desc=f"stage {s} level {l} SGD", enabled=model.progress) as pbar:
            clf.fit(X, y, spatial=spatial, spatial_loss=loss, soft_targets=soft,
                    alpha=alpha if spatial is not None else 0.0,
                    progress=lambda e, err, sp: (pbar.update(1), pbar.set_postfix(**{key: f"{err:.3f}"})))
        last = (s, l) == schedule[-1]
        if K > 2 and not last:
            # Compress the K-class map for the classifiers that take it as context, from its
            # outputs on (up to 100k of) the training rows.
            sample = X[::max(1, len(X) // 100_000)].astype(np.float32)
            model.projections_[(s, l)] = ContextProjection.fit(clf.predict_proba(sample), model.context_channels)
        del X, y, soft, spatial  # before the next level's matrix is built
        clf.fold_affine(offset, scale)
        model.classifiers_[(s, l)] = clf
        t1 = time.perf_counter()
        if not last:  # the final output is not a context for anything
            jobs = (delayed(level_map)(model._prepare(im), l, model.bank_,
                                       context_maps(m, s, l, model.levels, pyramid.level_shape(im.shape[:2], l)),
                                       clf, model._stencil(s, l), cache, model.projections_.get((s, l)))
                    for im, m in zip(images, maps))
            for m, p in zip(maps, bar(par(jobs), total=len(images), desc=f"stage {s} level {l} contexts",
                                      enabled=model.progress)):
                m[(s, l)] = p
        model.timings_[(s, l)] = {"sgd": t1 - t0, "contexts": time.perf_counter() - t1}
    sampled = [r[0]["y"] for r in rows]
    if K == 2:
        model.threshold_ = decision_threshold(labels, sampled, clf.targets)
    else:
        model.class_weights_ = class_weights(labels, sampled, K)
    if few_labels:
        warnings.warn("few labelled pixels: an LDNN has at most one group per labelled foreground pixel "
                      "and one node per background pixel of its level, so these were made smaller: "
                      + "; ".join(few_labels), FewLabelsWarning, stacklevel=3)


def self_train(model, images, labels, beta, rounds, tv_levels, cache, rng, par, tolerance, proposal_samples):
    """Refit ``model`` (fitted by :func:`fit_cascade`) on MRF proposals of its training images,
    ``rounds`` times (:mod:`chm.selftraining`), appending each round's seconds and proposals'
    class fractions (two classes: also the bias and foreground fraction) to ``model.rounds_``.

    ``beta`` is the Potts weight of the proposals' MRF; ``tolerance`` bounds a binary model's
    proposals' foreground fraction relative to the sparse labels' estimate; ``proposal_samples``
    caps the labelled pixels per class and level taken from the (dense) proposals when
    ``max_samples`` is None.
    """
    K = model.n_classes_
    if K == 2:
        pi = foreground_prior(labels)
        bounds = (pi * (1 - tolerance), min(0.999, pi * (1 + tolerance)))
    caps = model._level_caps(len(images), proposal_samples)
    schedule = model._schedule()
    stencils = {sl: model._stencil(*sl) for sl in schedule}
    prepared = [model._prepare(im) for im in images]  # once: the maps and the proposals both read them
    for r in range(rounds):
        t0 = time.perf_counter()
        info = {}
        if K == 2:
            # The fraction guard shifts every map by one bias: all maps first (H x W floats each).
            jobs = (delayed(_training_map)(im, model, schedule, stencils, cache) for im in prepared)
            maps = list(bar(par(jobs), total=len(images), desc=f"round {r + 1} training maps",
                            enabled=model.progress))
            props, info["bias"] = proposals(maps, prepared, labels, beta, model.threshold_, bounds)
            del maps
        else:
            # Map and proposal in one job per image: the K-channel map never leaves the worker
            # (SIFT Flow's 2488 training maps at K = 33 would be 21 GB).
            jobs = (delayed(_map_and_proposal)(im, lab, model, schedule, stencils, cache, beta)
                    for im, lab in zip(prepared, labels))
            props = list(bar(par(jobs), total=len(images), desc=f"round {r + 1} maps and proposals",
                             enabled=model.progress))
        counts = sum(np.bincount(p.ravel(), minlength=K) for p in props)
        info["classes"] = (counts / counts.sum()).tolist()
        if K == 2:
            info["foreground"] = info["classes"][1]
        seeds = rng.integers(0, 2**63 - 1, size=len(images))
        # Proposals are dense labels: coarse levels regress their blocks' fractions, and a spatial
        # loss has nothing left to fill in.
        fit_cascade(model, images, props, seeds, caps, cache, None, 0.0, tv_levels, rng, par, "mean")
        model.rounds_.append({**info, "seconds": time.perf_counter() - t0})


def _training_map(image, model, schedule, stencils, cache):
    """The final map of one training image, on one BLAS thread: as for :func:`chm.inference.level_map`,
    the same model for any ``n_jobs`` (and no BLAS threads spinning against the other jobs of a
    busy machine: with ``n_jobs=1`` this runs in the calling process)."""
    with one_blas_thread():
        return predict_image(image, model.bank_, model.classifiers_, schedule, model.levels, stencils, cache,
                             model.projections_)


def _map_and_proposal(image, labels, model, schedule, stencils, cache, beta):
    """One training image's K-class proposal (:func:`chm.selftraining.class_proposal`) from its map."""
    return class_proposal(_training_map(image, model, schedule, stencils, cache), image, labels, beta,
                          model.class_weights_)
