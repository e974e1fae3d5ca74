"""Choosing weights from sparse labels only: held-out training images.

With N labelled pixels per image there is no dense mask to tune on, and the test images must not
take part in any choice. The rule used for every weight (the MRF's beta, the TV / contrast
``alpha``, the L2 ``weight_decay``): hold out a fifth of the training *images*, fit on the rest
with their sparse labels, and score each candidate by the error on the held-out images' sparse
labels (ties go to the smaller weight). Held-out images rather than held-out pixels, because the
cascade's outputs on images it was trained on are better than on new ones.

A weight that needs no refit per candidate (the MRF's beta, a threshold) can use every training
image instead: :func:`cross_val_maps` gives each image the map of a model fitted without it.
"""

import numpy as np

__all__ = ["heldout_split", "cross_val_maps", "sparse_error", "choose"]


def heldout_split(n_images, rng, fraction=0.2):
    """(fit, held) index arrays: a random ``fraction`` of the images held out (at least one)."""
    if n_images < 2:
        raise ValueError(f"need at least 2 images to hold some out, got {n_images}")
    order = np.random.default_rng(rng).permutation(n_images)
    k = min(n_images - 1, max(1, int(round(fraction * n_images))))
    return np.sort(order[k:]), np.sort(order[:k])


def cross_val_maps(estimator, images, labels, n_folds=5, rng=None, progress=None):
    """Out-of-fold probability maps: each image's from a model fitted on the other folds.

    Parameters
    ----------
    estimator : CHM or ConvNet
        Unfitted template; each fold fits a fresh copy with the same parameters.
    images, labels : list
        As in ``fit`` (sparse labels, -1 = unlabelled).
    n_folds : int
        Folds over the images (2 <= n_folds <= number of images).
    rng : seed or Generator, optional
        Draws the images' assignment to folds.
    progress : callable, optional
        Called with (fold, n_folds) before each fold's fit.

    Returns
    -------
    maps : list of ndarray
        ``predict_proba`` of each image by the model that did not see it.
    thresholds : list of float
        That model's ``threshold_`` (0.5 if it has none), one per image, for
        :func:`chm.mrf.select_beta`.
    """
    if not 2 <= n_folds <= len(images):
        raise ValueError(f"n_folds must be in 2..{len(images)} (the number of images), got {n_folds!r}")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} label maps")
    folds = np.array_split(np.random.default_rng(rng).permutation(len(images)), n_folds)
    maps, thresholds = [None] * len(images), [None] * len(images)
    for k, held in enumerate(folds):
        if progress is not None:
            progress(k, n_folds)
        fit = np.setdiff1d(np.arange(len(images)), held)
        model = type(estimator)(**estimator.get_params())
        model.fit([images[i] for i in fit], [labels[i] for i in fit])
        for i, p in zip(held, model.predict_proba([images[i] for i in held])):
            maps[i], thresholds[i] = p, float(getattr(model, "threshold_", 0.5))
    return maps, thresholds


def sparse_error(masks, labels):
    """Fraction of labelled pixels (label >= 0) whose predicted class differs from their label.

    Parameters
    ----------
    masks : list of ndarray
        Predicted classes (or booleans) per pixel.
    labels : list of ndarray of int
        Sparse labels, -1 = unlabelled.
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


def choose(scores):
    """The candidate with the smallest score; ties go to the smallest candidate.

    Parameters
    ----------
    scores : dict
        ``{candidate weight: held-out score}``.
    """
    if not scores:
        raise ValueError("no candidate to choose from")
    return min(scores, key=lambda w: (scores[w], w))
