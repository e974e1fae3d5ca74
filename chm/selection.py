"""Choosing settings from sparse labels only: k-fold cross-validation over the training images.

The rule, for every setting an experiment chooses (the MRF's beta, the TV / contrast ``alpha``,
the L2 ``weight_decay``, an estimator variant):

* every setting is chosen by k-fold cross-validation over the *training images of the run*
  (:func:`kfold`, default 5 folds): each candidate is fitted on k - 1 folds and its decisions on
  the images of the remaining fold are scored; every training image is scored once, by a model
  that never saw it;
* the score is the error on those images' *sparse labels at the run's N* (:func:`sparse_error`),
  the only labels a user has; never test images, never dense masks (except in the dense-label
  setting, where the dense training masks *are* the labels), and never the test images of
  another fold of a cross-validated benchmark (Stanford's folds: choose inside the fold's own
  training images);
* every candidate is scored on the same folds (one :func:`kfold` per choice), so the candidates
  are compared on the same splits and the same labelled pixels;
* the candidate with the smallest score wins; exact ties go to the smaller candidate
  (:func:`choose`: the smaller weight, the earlier variant).

Held-out images rather than held-out pixels, because a model's outputs on images it was trained on
are better than on new ones. A decision is what the fitted model's ``decide`` (``predict``) gives:
its ``threshold_`` for two classes, its class weights for K. A setting that needs no refit per
candidate (the MRF's beta) is scored on the out-of-fold maps of one cross-validation
(:func:`cross_val_predict`). ``n_folds=1`` is the older, cheaper protocol: a single held-out
fifth of the training images; with N = 10 labels per image its score rests on a fifth of the
labels (one standard error ~1.7 points on Weizmann), too few to separate most candidates.
"""

import hashlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["kfold", "cross_val_fits", "cross_val_predict", "OutOfFold", "select", "Selection", "sparse_error",
           "std_error", "choose"]


def kfold(n_images, n_folds=5, rng=None):
    """The (fit, held) splits of a cross-validation over ``n_images`` images.

    Parameters
    ----------
    n_images : int
        Number of images.
    n_folds : int
        ``2 <= n_folds <= n_images``: the images, in a random order, dealt into ``n_folds``
        folds of nearly equal size (``numpy.array_split``); each fold is held out once.
        ``1``: a single split holding out a random fifth of the images (at least one).
    rng : seed or Generator, optional
        Draws the order of the images; the same seed gives the same splits.

    Returns
    -------
    list of (ndarray, ndarray)
        ``(fit, held)`` sorted index arrays per fold; ``held`` of the folds partition the images
        (``n_folds >= 2``).

    Raises
    ------
    ValueError
        ``n_folds`` out of range, or fewer than 2 images.
    """
    if n_images < 2:
        raise ValueError(f"need at least 2 images to hold some out, got {n_images}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or not 1 <= n_folds <= n_images:
        raise ValueError(f"n_folds must be in 1..{n_images} (the number of images), got {n_folds!r}")
    order = np.random.default_rng(rng).permutation(n_images)
    if n_folds == 1:
        k = min(n_images - 1, max(1, int(round(0.2 * n_images))))
        return [(np.sort(order[k:]), np.sort(order[:k]))]
    every = np.arange(n_images)
    return [(np.setdiff1d(every, held), np.sort(held)) for held in np.array_split(order, n_folds)]


def _fresh(estimator):
    """An unfitted estimator: a copy of a template's parameters, or ``estimator()`` for a factory."""
    if hasattr(estimator, "get_params") and not isinstance(estimator, type):
        return type(estimator)(**estimator.get_params(deep=False))
    if callable(estimator):
        return estimator()
    raise TypeError(f"expected an unfitted estimator or a function making one, got {estimator!r}")


def _check(images, labels, splits):
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} label maps")
    for fit, held in splits:
        if len(np.intersect1d(fit, held)):
            raise ValueError("a split fits on images it holds out")
        if max(np.max(fit, initial=-1), np.max(held, initial=-1)) >= len(images):
            raise ValueError(f"a split names an image beyond the {len(images)} given")


def cross_val_fits(estimator, images, labels, splits, progress=None):
    """Fit one model per split: yields ``(fit, held, model)``, the model fitted on ``fit`` only.

    Parameters
    ----------
    estimator : estimator or callable
        An unfitted template (each split fits a fresh copy with its ``get_params()``) or a
        function of no argument that returns a fresh unfitted estimator.
    images, labels : list
        As in ``fit`` (sparse labels, -1 = unlabelled).
    splits : list of (ndarray, ndarray)
        From :func:`kfold`.
    progress : callable, optional
        Called with (fold, number of folds) before each fold's fit.

    Yields
    ------
    fit, held : ndarray
        The split's index arrays.
    model : estimator
        Fitted on ``images[fit]``, ``labels[fit]``; the caller predicts ``images[held]``.
    """
    _check(images, labels, splits)
    for k, (fit, held) in enumerate(splits):
        if progress is not None:
            progress(k, len(splits))
        model = _fresh(estimator)
        model.fit([images[i] for i in fit], [labels[i] for i in fit])
        yield fit, held, model


@dataclass
class OutOfFold:
    """What :func:`cross_val_predict` returns, one entry per image (None for an image no split
    holds out, as with ``n_folds=1``).

    Attributes
    ----------
    maps : list
        ``predict_proba`` of each image by the model that did not see it (None everywhere
        with ``keep_maps=False``).
    decisions : list
        That model's ``decide`` of the map (its ``predict``): 0/1 masks or class indices.
    thresholds : list
        That model's ``threshold_`` (0.5 if it has none), for :func:`chm.mrf.select_beta`.
    held : ndarray
        Sorted indices of the images with a prediction.
    splits : list of (ndarray, ndarray)
        The splits used.
    """

    maps: list
    decisions: list
    thresholds: list
    held: np.ndarray
    splits: list = field(repr=False)


def cross_val_predict(estimator, images, labels, n_folds=5, rng=None, progress=None, splits=None, keep_maps=True,
                      chunk=16):
    """Out-of-fold maps and decisions: each image's from a model fitted on the other folds.

    Parameters
    ----------
    estimator : estimator or callable
        An unfitted template (CHM, ConvNet: each fold fits a fresh copy with the same
        parameters) or a function of no argument returning a fresh unfitted estimator.
    images, labels : list
        As in ``fit`` (sparse labels, -1 = unlabelled).
    n_folds : int
        Folds over the images (:func:`kfold`; 1 = one held-out fifth).
    rng : seed or Generator, optional
        Draws the images' assignment to folds.
    progress : callable, optional
        Called with (fold, n_folds) before each fold's fit.
    splits : list of (ndarray, ndarray), optional
        Given splits (from :func:`kfold`) instead of ``n_folds`` and ``rng``: several
        cross-validations on the same folds.
    keep_maps : bool
        False keeps only the decisions (a K-class map is K floats per pixel).
    chunk : int
        Images predicted per call.

    Returns
    -------
    OutOfFold
        ``maps``, ``decisions``, ``thresholds`` per image, ``held`` and ``splits``.
    """
    splits = kfold(len(images), n_folds, rng) if splits is None else splits
    maps, decisions, thresholds = ([None] * len(images) for _ in range(3))
    for _, held, model in cross_val_fits(estimator, images, labels, splits, progress):
        threshold = float(getattr(model, "threshold_", 0.5))
        for start in range(0, len(held), chunk):
            part = held[start:start + chunk]
            probas = model.predict_proba([images[i] for i in part])
            for i, p, d in zip(part, probas, model.decide(probas)):
                maps[i], decisions[i], thresholds[i] = p if keep_maps else None, d, threshold
    held = np.sort(np.concatenate([h for _, h in splits]))
    return OutOfFold(maps, decisions, thresholds, held, splits)


def sparse_error(masks, labels):
    """Fraction of labelled pixels (label >= 0) whose predicted class differs from their label.

    Parameters
    ----------
    masks : list of ndarray
        Predicted classes (or booleans) per pixel.
    labels : list of ndarray of int
        Sparse labels, -1 = unlabelled.

    Returns
    -------
    float
        Wrong labelled pixels over labelled pixels, pooled over the images.
    """
    wrong = total = 0
    for m, lab in zip(masks, labels):
        lab = np.asarray(lab)
        known = lab >= 0
        wrong += int(np.sum(np.asarray(m)[known].astype(np.int64) != lab[known]))
        total += int(known.sum())
    if total == 0:
        raise ValueError("no labelled pixel to score against")
    return wrong / total


def std_error(error, n_labels):
    """Binomial standard error ``sqrt(e (1 - e) / n)`` of an error rate over ``n_labels`` pixels.

    The labelled pixels of one image are not independent (they share its model's mistakes), so
    this is a lower bound of the error's spread; it tells whether two scores differ by more than
    the labels can resolve.

    Parameters
    ----------
    error : float
        A fraction of wrong labelled pixels (:func:`sparse_error`).
    n_labels : int
        Labelled pixels it was counted on.

    Returns
    -------
    float
    """
    if n_labels <= 0:
        raise ValueError(f"n_labels must be positive, got {n_labels}")
    return float(np.sqrt(error * (1 - error) / n_labels))


def _n_labels(labels):
    return int(sum(int((np.asarray(lab) >= 0).sum()) for lab in labels))


def _fingerprint(splits, labels):
    """A short hash of the splits and the labels, so that scores of other splits or other labels
    are never compared (nor taken from a ``memo``)."""
    h = hashlib.sha1()
    for fit, held in splits:
        h.update(np.asarray(fit, dtype=np.int64).tobytes() + b"|" + np.asarray(held, dtype=np.int64).tobytes() + b";")
    for lab in labels:
        lab = np.asarray(lab)
        known = lab >= 0
        h.update(str(lab.shape).encode() + np.flatnonzero(known).tobytes() + lab[known].astype(np.int64).tobytes())
    return h.hexdigest()[:12]


def _fold_score(score, decisions, labels):
    """``score`` of one fold; NaN for a fold without a labelled pixel."""
    return float(score(decisions, labels)) if _n_labels(labels) else float("nan")


@dataclass
class Selection:
    """What :func:`select` returns.

    Attributes
    ----------
    best : object
        The chosen candidate's key.
    scores : dict
        ``{key: out-of-fold score}`` of every candidate.
    std_errors : dict
        ``{key: binomial standard error}`` (:func:`std_error`) of each score.
    fold_scores : dict
        ``{key: [score on each fold's held-out images]}`` (NaN for a fold without labels).
    n_labels : int
        Labelled pixels every score was counted on.
    splits : list of (ndarray, ndarray)
        The splits every candidate was fitted and scored on.
    """

    best: object
    scores: dict
    std_errors: dict
    fold_scores: dict
    n_labels: int
    splits: list = field(repr=False)


def select(candidates, images, labels, n_folds=5, rng=None, score=sparse_error, splits=None, progress=None,
           memo=None):
    """Choose among estimator settings by k-fold cross-validation on the training images' sparse labels.

    Each candidate is fitted on the training images of every fold's complement and its
    decisions (the model's ``decide``) on the fold's images are scored against those images'
    sparse labels; the scores pool every image (each scored once, by a model that never saw it).
    Every candidate uses the same splits.

    Parameters
    ----------
    candidates : dict
        ``{key: estimator or function making one}``; keys are the weights (or variant
        indices): exact ties of the score go to the smallest key (:func:`choose`).
    images, labels : list
        The run's training images and their sparse labels at the run's N (-1 = unlabelled).
    n_folds : int
        Folds over the images (:func:`kfold`; 1 = one held-out fifth, cheaper and noisier).
    rng : seed or Generator, optional
        Draws the folds, once for all candidates.
    score : callable
        ``score(decisions, labels) -> float``, smaller is better; default
        :func:`sparse_error` (the standard errors assume a fraction of labelled pixels).
    splits : list of (ndarray, ndarray), optional
        Given splits instead of ``n_folds`` and ``rng``.
    progress : callable, optional
        Called with (key, fold, number of folds) before each fit.
    memo : mutable mapping, optional
        Scores of candidates already scored on these splits and labels, by ``str(key)``: a
        candidate found there (with the same splits and labels) is not refitted, and each newly scored candidate is
        stored there as soon as it is done (a mapping that writes itself to disk makes a
        stopped selection resume).

    Returns
    -------
    Selection
        The chosen key, every candidate's score and standard error, per-fold scores, the
        number of labelled pixels and the splits.
    """
    if not candidates:
        raise ValueError("no candidate to choose from")
    splits = kfold(len(images), n_folds, rng) if splits is None else splits
    tag = _fingerprint(splits, labels)
    folds = [[labels[i] for i in held] for _, held in splits]
    scored = np.concatenate([held for _, held in splits])
    n = _n_labels([labels[i] for i in scored])
    scores, errors, per_fold = {}, {}, {}
    for key, estimator in candidates.items():
        entry = memo.get(str(key)) if memo is not None else None
        if not (isinstance(entry, dict) and entry.get("splits") == tag):
            tell = None if progress is None else (lambda k, m, key=key: progress(key, k, m))
            out = cross_val_predict(estimator, images, labels, splits=splits, progress=tell, keep_maps=False)
            decided = [[out.decisions[i] for i in held] for _, held in splits]
            entry = {"score": float(score([d for fold in decided for d in fold], [lab for f in folds for lab in f])),
                     "fold_scores": [_fold_score(score, d, lab) for d, lab in zip(decided, folds)],
                     "n_labels": n, "splits": tag}
            if memo is not None:
                memo[str(key)] = entry
        scores[key], per_fold[key] = entry["score"], entry["fold_scores"]
        errors[key] = std_error(min(max(entry["score"], 0.0), 1.0), n)
    return Selection(choose(scores), scores, errors, per_fold, n, splits)


def choose(scores):
    """The candidate with the smallest score; ties go to the smallest candidate.

    Parameters
    ----------
    scores : dict
        ``{candidate weight: held-out score}``.

    Returns
    -------
    object
        The key of the smallest score (the smallest key among exact ties).
    """
    if not scores:
        raise ValueError("no candidate to choose from")
    return min(scores, key=lambda w: (scores[w], w))
