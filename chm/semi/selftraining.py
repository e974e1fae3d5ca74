"""Proposal self-training: dense label maps for the training images from their own predictions.

Alternating optimisation (Marin et al., CVPR 2019, "Beyond gradient descent for regularized
segmentation losses"): fit the classifier on the labelled pixels; decode every *training* image
with a contrast-sensitive Potts MRF (exact graph cut) whose unaries are the classifier's output,
with the labelled pixels as hard constraints; refit the classifier on these *proposals* as if
they were dense labels; repeat. The MRF brings what the classifier cannot see pixel by pixel:
region boundaries follow image edges, and isolated mistakes inside regions are removed.

Guard against collapse: a Potts MRF pays for boundary length, so it erodes thin parts, and a
model that under-predicts the foreground gets proposals that under-predict it more. With
``prior=(low, high)`` the unaries are shifted by one bias per call, found by bisection, so that
the proposals' foreground fraction lies in that interval around the fraction the sparse labels
estimate (:func:`foreground_prior`), a number the labels give without any dense mask. Inside
the interval the proposals are left alone: on held-out Weizmann horses, forcing the fraction to
the estimate cost a point of error, while on synthetic shapes the unguarded proposals collapse.

K classes (:func:`class_proposal`): the MRF is the multi-label Potts model, decoded by
alpha-expansion, with the model's class weights (the decision rule of ``predict``) in the unaries;
there is no fraction guard (a K-class prior has K - 1 such knobs, and erosion is not one-sided).

Confidence-ranked proposals (:func:`keep_confident`, after class-balanced self-training, Zou et
al., ECCV 2018): within each image, of the pixels a proposal gives to class k only the fraction
``confidence`` where the model is surest of k are kept, the rest left unlabelled, so that the
refit learns from the proposals' surest pixels while every class keeps the same share of them
(a threshold on the probability alone would keep the frequent classes and starve the rare ones).
"""

import numpy as np

from .. import mrf

__all__ = ["class_proposal", "foreground_prior", "keep_confident", "proposals"]


def foreground_prior(labels):
    """Foreground fraction of all pixels, estimated from sparse labels.

    Each image's labelled pixels estimate its own foreground fraction; images are weighted by
    their pixel count, so a draw of N pixels per image (whatever its size) gives an unbiased
    estimate of the pooled fraction.

    Parameters
    ----------
    labels : list of ndarray of int
        -1 = unlabelled, 0 / 1 = background / foreground.

    Returns
    -------
    float
    """
    num = den = 0.0
    for lab in labels:
        lab = np.asarray(lab)
        known = lab >= 0
        if known.any():
            num += lab.size * float(np.mean(lab[known] == 1))
            den += lab.size
    if den == 0:
        raise ValueError("no labelled pixel: the foreground fraction cannot be estimated")
    return num / den


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _decode(maps, images, labels, beta, bias, idx):
    t = 1.0 / (1.0 + np.exp(bias))  # the map value that the bias makes even odds
    return [mrf.decode(maps[i], beta, image=images[i], fixed=labels[i], threshold=t).astype(np.int8) for i in idx]


def proposals(maps, images, labels, beta, threshold=0.5, prior=None, n_bisect=8):
    """Dense label maps of the training images: graph-cut decodings of their probability maps.

    Parameters
    ----------
    maps : list of ndarray, shape (H, W)
        The classifier's P(foreground) of each training image.
    images : list of ndarray, shape (H, W) or (H, W, C)
        The images, for the contrast-sensitive pair weights (:func:`chm.mrf.edge_weights`).
    labels : list of ndarray of int
        Sparse labels (-1 = unlabelled); every labelled pixel keeps its label.
    beta : float
        Potts weight of the MRF.
    threshold : float
        The map value that means "even odds" (a model's ``threshold_``): the unaries are
        shifted so that it maps to 0.5.
    prior : (float, float), optional
        Bounds on the proposals' foreground fraction (see :func:`foreground_prior`): if the
        proposals fall outside, the bias is moved until they reach the nearer bound. None
        keeps the shift of ``threshold``.
    n_bisect : int
        Bisection steps for the prior's bias, each decoding the images (a third of them when
        there are 30 or more).

    Returns
    -------
    proposals : list of ndarray of int8
        0 / 1 per pixel.
    bias : float
        The shift added to the logit of every map value.
    """
    if not (len(maps) == len(images) == len(labels)) or not maps:
        raise ValueError("maps, images and labels must be non-empty lists of the same length")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
    bias = -float(_logit(threshold))
    props = _decode(maps, images, labels, beta, bias, range(len(maps)))
    if prior is None:
        return props, bias
    low, high = prior
    if not 0 < low <= high < 1:
        raise ValueError(f"prior must be bounds 0 < low <= high < 1, got {prior!r}")
    frac = _fraction(props)
    if low <= frac <= high:
        return props, bias
    target = low if frac < low else high
    sub = range(0, len(maps), 3 if len(maps) >= 30 else 1)
    lo, hi = (bias, bias + 6.0) if frac < low else (bias - 6.0, bias)
    for _ in range(n_bisect):
        mid = 0.5 * (lo + hi)
        if _fraction(_decode(maps, images, labels, beta, mid, sub)) < target:
            lo = mid
        else:
            hi = mid
    bias = 0.5 * (lo + hi)
    return _decode(maps, images, labels, beta, bias, range(len(maps))), bias


def _fraction(masks):
    return sum(int(m.sum()) for m in masks) / sum(m.size for m in masks)


def keep_confident(proposal, scores, labels, confidence):
    """Unlabel the less confident pixels of one proposal, class by class.

    Parameters
    ----------
    proposal : ndarray of int, shape (H, W)
        A dense proposal (class per pixel).
    scores : ndarray, shape (H, W, K)
        The model's confidence in each class (probabilities, or probabilities times the decision
        weights): pixels of class k are ranked by ``scores[..., k]``.
    labels : ndarray of int, shape (H, W)
        Sparse labels (-1 = unlabelled): labelled pixels are always kept.
    confidence : float in (0, 1]
        Fraction of each class's pixels kept (1 keeps the proposal as it is).

    Returns
    -------
    ndarray of int16, shape (H, W)
        The proposal with -1 where a pixel was dropped.
    """
    if not 0 < confidence <= 1:
        raise ValueError(f"confidence must lie in (0, 1], got {confidence!r}")
    out = np.asarray(proposal).astype(np.int16)
    if confidence == 1:
        return out
    flat, lab = out.ravel(), np.asarray(labels).ravel()
    scores = np.asarray(scores).reshape(flat.size, -1)
    free = lab < 0
    for k in np.unique(flat[free]):
        idx = np.flatnonzero(free & (flat == k))
        n_drop = len(idx) - int(np.ceil(confidence * len(idx)))
        if n_drop > 0:
            # stable sort: ties dropped in raster order, the same on every machine
            drop = idx[np.argsort(scores[idx, k], kind="stable")[:n_drop]]
            flat[drop] = -1
    return out


def class_proposal(proba, image, labels, beta, weights=None, confidence=1.0):
    """Dense K-class label map of one training image: the alpha-expansion decoding of its class
    probabilities under a contrast-sensitive Potts MRF, with its labelled pixels fixed.

    The expansion runs over the image's candidate classes only: those that are the most probable
    (after ``weights``) at one pixel at least, and those of its labelled pixels. A class that
    wins nowhere on its own rarely wins through the smoothness term, and each class costs one
    graph cut per cycle: SIFT Flow's 33 classes would cost 33 cuts per cycle where an image shows
    a handful (``docs/results.md`` measures the difference).

    Parameters
    ----------
    proba : ndarray, shape (H, W, K)
        The classifier's class probabilities.
    image : ndarray, shape (H, W) or (H, W, C)
        For the contrast-sensitive pair weights (:func:`chm.mrf.edge_weights`).
    labels : ndarray of int, shape (H, W)
        Sparse labels (-1 = unlabelled); every labelled pixel keeps its class.
    beta : float
        Potts weight.
    weights : ndarray, shape (K,), optional
        Per-class weights of the decision rule ``argmax_k w_k p_k`` (a model's
        ``class_weights_``): with ``beta = 0`` the proposal is that rule's prediction.
    confidence : float in (0, 1]
        Fraction of each class's pixels kept, ranked by the weighted probability of the class
        (:func:`keep_confident`); the others are -1.

    Returns
    -------
    ndarray of int16, shape (H, W)
    """
    p = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels)
    if weights is not None:
        p = p * np.asarray(weights, dtype=np.float64)
        p /= np.maximum(p.max(), 1e-300)  # the MRF wants [0, 1]; one constant changes no decision
    keep = np.zeros(p.shape[2], dtype=bool)
    keep[p.argmax(axis=2)] = True
    keep[labels[labels >= 0]] = True
    classes = np.flatnonzero(keep)
    if len(classes) == 1:
        out = np.full(p.shape[:2], classes[0], dtype=np.int16)
    else:
        index = np.cumsum(keep) - 1  # class -> its place among the candidates
        fixed = np.where(labels >= 0, index[np.maximum(labels, 0)], -1)
        out = mrf.decode(np.clip(p[..., classes], 0.0, 1.0), beta, method="expansion", image=image, fixed=fixed)
        out = classes[out].astype(np.int16)
    return keep_confident(out, p, labels, confidence)
