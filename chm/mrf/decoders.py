"""Pairwise grid MRF post-processing of probability maps (UGM-style baseline).

Model
-----
For a probability map ``p`` (``(H, W)`` foreground probability, or
``(H, W, K)`` class probabilities) and a label map ``x`` the energy is

    E(x) = sum_i -log max(p_i(x_i), EPS)  +  sum_{i~j} w_ij [x_i != x_j]

with ``EPS = 1e-6`` and Potts weights ``w_ij = beta * c_ij * g_ij``:

* ``c_ij = 1`` for the 4-neighbour (horizontal/vertical) pairs; with
  ``connectivity=8`` the diagonal pairs are added with ``c_ij = 1/sqrt(2)``
  (their centres are sqrt(2) apart, the usual length weighting that makes
  the boundary cost less dependent on the boundary's orientation).
* ``g_ij = 1``, or, when an ``image`` is given (contrast-sensitive Potts),
  ``g_ij = exp(-|I_i - I_j|^2 / (2 sigma^2))`` (summed over channels for
  (H, W, C) images).  The default ``sigma`` is data-driven, needing no
  labels: the RMS of the 4-neighbour intensity differences of that image
  (:func:`default_sigma`).

With ``beta = 0`` every decoder returns the per-pixel argmax of ``p``.

Decoders (``method`` of :func:`decode`), the subset of UGM's that a
post-processing baseline needs:

``"graphcut"``
    Exact minimum for K = 2 via s-t min cut (scipy ``maximum_flow``).
``"expansion"``
    Alpha-expansion for K > 2 (each move is one binary cut), started from
    the ICM result so it is never worse than ICM; for Potts the result is
    within a factor 2 of the optimum.  For K = 2 it is the exact cut.
``"icm"``
    Iterated conditional modes, raster order, from the unary argmax.
``"lbp"``
    Loopy max-product belief propagation in min-sum form.
``"meanfield"``
    Naive mean field; labels are the argmax of its marginals.

:func:`marginals` returns sum-product LBP or mean-field marginals, i.e.
smoothed probability maps.  UGM's exact/junction-tree/TRBP/LP decoders,
sampling and parameter training are deliberately not provided.

Integer capacities
------------------
``maximum_flow`` needs int32 capacities: they are scaled by
``2**30 / (sum of all capacities)`` and rounded, so the cut's energy is
within ``n_arcs / scale`` of the minimum (see :mod:`chm._mrf_kernels`), and
the labelling is then polished by ICM on the exact float energy, which can
only lower it.

Choosing beta
-------------
:func:`select_beta` picks beta on sparsely labelled pixels.  The probability
maps passed to it must come from a model for which those labelled pixels
were held out from training (e.g. a held-out fraction of the sparse
labels); using training pixels biases beta towards 0, and using the test
masks leaks the test set into the baseline.
"""

import numbers

import numpy as np

from . import _kernels as _k
from ._kernels import graphcut_binary, pair_slices

__all__ = ["decode", "energy", "marginals", "select_beta", "default_sigma",
           "edge_weights", "graphcut_binary", "METHODS", "EPS"]

EPS = 1e-6
METHODS = ("graphcut", "expansion", "icm", "lbp", "meanfield")
_DEFAULT_ITERS = {"expansion": 20, "icm": 100, "lbp": 50, "meanfield": 50}
_TOL = 1e-4             # convergence tolerance (nats) of LBP / mean field


# ------------------------------------------------------------ validation
def _as_unary(proba, threshold=0.5):
    """Validate ``proba`` and return the (H, W, K) cost array ``-log p``; for a binary map, with
    the odds shifted so that ``p = threshold`` costs the same for both labels."""
    p = np.asarray(proba)
    if p.dtype == object or not (np.issubdtype(p.dtype, np.floating)
                                 or np.issubdtype(p.dtype, np.integer)):
        raise TypeError(f"proba must be a real numeric array, got {p.dtype}")
    if p.ndim not in (2, 3):
        raise ValueError("proba must be (H, W) foreground probabilities or "
                         f"(H, W, K) class probabilities, got ndim={p.ndim}")
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"proba has an empty grid, shape {p.shape}")
    if p.ndim == 3 and p.shape[2] < 2:
        raise ValueError(f"proba needs K >= 2 classes, got shape {p.shape}")
    p = p.astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise ValueError("proba contains NaN or inf")
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("proba must lie in [0, 1], got range "
                         f"[{p.min():g}, {p.max():g}]")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
    if p.ndim == 2:
        p = np.stack([1.0 - p, p], axis=-1)
        cost = -np.log(np.maximum(p, EPS))
        if threshold != 0.5:  # Bayes: odds / (t / (1 - t)) makes p = t even odds
            cost[..., 1] += np.log(threshold / (1.0 - threshold))
        return cost
    if threshold != 0.5:
        raise ValueError("threshold applies to binary (H, W) maps only")
    return -np.log(np.maximum(p, EPS))


def _check_beta(beta):
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta,
                                                            numbers.Real):
        raise TypeError(f"beta must be a real number, got {beta!r}")
    beta = float(beta)
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be finite and >= 0, got {beta}")
    return beta


def _check_image(image, shape, sigma):
    """Return a float (H, W, C) image (or None) and the sigma to use."""
    if sigma is not None:
        if image is None:
            raise ValueError("sigma is only used with an image "
                             "(contrast-sensitive weights); pass image=")
        if isinstance(sigma, (bool, np.bool_)) or not isinstance(
                sigma, numbers.Real):
            raise TypeError(f"sigma must be a real number, got {sigma!r}")
        if not np.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be finite and > 0, got {sigma}")
    if image is None:
        return None, None
    img = np.asarray(image)
    if not (np.issubdtype(img.dtype, np.floating)
            or np.issubdtype(img.dtype, np.integer)):
        raise TypeError(f"image must be a real numeric array, got {img.dtype}")
    if img.ndim not in (2, 3) or img.shape[:2] != tuple(shape):
        raise ValueError(f"image shape {img.shape} does not match the "
                         f"probability map's grid {tuple(shape)}")
    img = img.astype(np.float64)
    if not np.all(np.isfinite(img)):
        raise ValueError("image contains NaN or inf")
    if img.ndim == 2:
        img = img[..., None]
    return img, (default_sigma(img) if sigma is None else float(sigma))


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_labels(labels, shape, n_classes, lowest=0):
    lab = np.asarray(labels)
    if lab.shape != tuple(shape):
        raise ValueError(f"label map shape {lab.shape} does not match the "
                         f"probability map's grid {tuple(shape)}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise TypeError(f"labels must be integers, got {lab.dtype}")
    if lab.min() < lowest or lab.max() >= n_classes:
        raise ValueError(f"labels must lie in {lowest}..{n_classes - 1}")
    return lab.astype(np.intp)


# --------------------------------------------------------------- weights
def default_sigma(image):
    """RMS of the 4-neighbour intensity differences of ``image``.

    The scale on which contrast counts as large; it needs no labels.  A
    constant image gives 1.0 (all weights are then ``beta`` anyway).
    """
    img = np.asarray(image, dtype=np.float64)
    img = img[..., None] if img.ndim == 2 else img
    sq = np.concatenate([((img[:, 1:] - img[:, :-1]) ** 2).sum(-1).ravel(),
                         ((img[1:] - img[:-1]) ** 2).sum(-1).ravel()])
    rms = float(np.sqrt(sq.mean())) if sq.size else 0.0
    return rms if rms > 0 else 1.0


def edge_weights(shape, beta, image=None, sigma=None, connectivity=4):
    """Potts weights per neighbour offset.

    Returns
    -------
    offsets : list of (dy, dx)
        (0, 1), (1, 0) and, for 8-connectivity, (1, 1), (1, -1).
    weights : ndarray, shape (n_offsets, H, W)
        ``weights[o, y, x]`` is ``w_ij`` between (y, x) and (y+dy, x+dx);
        0 where that neighbour lies outside the grid.
    """
    beta = _check_beta(beta)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    H, W = shape
    img, sigma = _check_image(image, (H, W), sigma)
    offs = [(0, 1, 1.0), (1, 0, 1.0)]
    if connectivity == 8:
        offs += [(1, 1, 2 ** -0.5), (1, -1, 2 ** -0.5)]
    out = np.zeros((len(offs), H, W))
    for o, (dy, dx, c) in enumerate(offs):
        bi, nj = pair_slices(H, W, dy, dx)
        out[o][bi] = beta * c
        if img is not None:
            d2 = ((img[bi] - img[nj]) ** 2).sum(-1)
            out[o][bi] *= np.exp(-d2 / (2.0 * sigma ** 2))
    return [(dy, dx) for dy, dx, _ in offs], out


def _directions(offs, weights):
    """Kernel layout: per-direction weights, positive offsets then negated."""
    n, H, W = weights.shape
    wdir = np.zeros((2 * n, H, W))
    wdir[:n] = weights
    for o, (dy, dx) in enumerate(offs):
        bi, nj = pair_slices(H, W, dy, dx)
        wdir[n + o][nj] = weights[o][bi]
    dys = np.array([dy for dy, _ in offs] + [-dy for dy, _ in offs])
    dxs = np.array([dx for _, dx in offs] + [-dx for _, dx in offs])
    return wdir, dys, dxs


def _energy(unary, labels, offs, weights):
    H, W, _ = unary.shape
    e = np.take_along_axis(unary, labels[..., None], axis=2).sum()
    for o, (dy, dx) in enumerate(offs):
        bi, nj = pair_slices(H, W, dy, dx)
        e += weights[o][bi][labels[bi] != labels[nj]].sum()
    return float(e)


def energy(labels, proba, beta, image=None, sigma=None, connectivity=4):
    """Energy ``E(labels)`` of the model in the module docstring.

    Parameters
    ----------
    labels : array_like of int, shape (H, W)
        Labels in ``0..K-1`` (0/1 for a binary ``proba``).
    proba, beta, image, sigma, connectivity
        As in :func:`decode`.

    Returns
    -------
    float
    """
    unary = _as_unary(proba)
    lab = _check_labels(labels, unary.shape[:2], unary.shape[2])
    offs, w = edge_weights(lab.shape, beta, image, sigma, connectivity)
    return _energy(unary, lab, offs, w)


# -------------------------------------------------------------- decoders
def _icm(unary, offs, weights, labels, max_iter, trace=None):
    """ICM sweeps until no label changes; ``trace`` collects the energies."""
    wdir, dys, dxs = _directions(offs, weights)
    for _ in range(max_iter):
        changed = _k.icm_sweep(unary, wdir, dys, dxs, labels)
        if trace is not None:
            trace.append(_energy(unary, labels, offs, weights))
        if changed == 0:
            break
    return labels


def _expansion(unary, offs, weights, labels, max_iter):
    """Alpha-expansion: cycle over alpha until no move lowers the energy."""
    H, W, K = unary.shape
    cur = _energy(unary, labels, offs, weights)
    for _ in range(max_iter):
        improved = False
        for alpha in range(K):
            # x_i = 1 means "switch to alpha", 0 means "keep labels[i]".
            d = unary[..., alpha] - np.take_along_axis(
                unary, labels[..., None], axis=2)[..., 0]
            cap01 = np.zeros_like(weights)
            for o, (dy, dx) in enumerate(offs):
                bi, nj = pair_slices(H, W, dy, dx)
                w, li, lj = weights[o][bi], labels[bi], labels[nj]
                # Pair table E(x_i, x_j): A=E(0,0), B=E(0,1), C=E(1,0),
                # E(1,1)=0, written as A + (C-A) x_i - C x_j
                # + (B+C-A) (1-x_i) x_j.  B+C-A >= 0 because Potts is a
                # metric: that is what makes the move a graph cut.
                A, B, C = w * (li != lj), w * (li != alpha), w * (lj != alpha)
                d[bi] += C - A
                d[nj] -= C
                cap01[o][bi] = B + C - A
            x, _ = graphcut_binary(d, np.zeros_like(weights), cap01, offs)
            cand = np.where(x == 1, alpha, labels)
            e = _energy(unary, cand, offs, weights)
            # Accept on the exact float energy: the cut is optimal only up
            # to capacity rounding, and refusing non-improving moves keeps
            # the energy decreasing and guarantees termination.
            if e < cur - 1e-12 * max(1.0, abs(cur)):
                labels, cur, improved = cand, e, True
        if not improved:
            break
    return labels


def decode(proba, beta, method="graphcut", image=None, sigma=None,
           connectivity=4, max_iter=None, return_energy=False, fixed=None,
           threshold=0.5):
    """Most probable label map of the grid MRF (MAP decoding).

    Parameters
    ----------
    proba : array_like, shape (H, W) or (H, W, K)
        ``P(foreground)`` per pixel, or class probabilities (K >= 2), in
        [0, 1]; clipped at ``EPS`` before the log.  They need not sum to 1
        (class k simply costs ``-log p_k``).
    beta : float
        Potts weight >= 0, in nats: the cost of one disagreeing
        4-neighbour pair.
    method : {"graphcut", "expansion", "icm", "lbp", "meanfield"}
        Decoder (see the module docstring).  "graphcut" is binary only.
    image : array_like, shape (H, W) or (H, W, C), optional
        Makes the weights contrast-sensitive.
    sigma : float, optional
        Contrast scale; default :func:`default_sigma` of ``image``.
    connectivity : {4, 8}
        8 adds the diagonal pairs with weight ``beta / sqrt(2)``.
    max_iter : int, optional
        ICM sweeps (default 100), LBP / mean-field iterations (50; both stop
        earlier once nothing moves by more than 1e-4) or expansion cycles
        (20).  Unused by the binary cut.
    return_energy : bool
        Also return the energy of the labelling.
    fixed : array_like of int, shape (H, W), optional
        Hard constraints: pixels with a value >= 0 keep that label (e.g.
        the labelled pixels of a training image); -1 = free.  Enforced by
        giving the other labels a unary cost larger than anything the
        pixel's neighbours could save, so every decoder respects them.
    threshold : float
        For a binary map: the value of ``proba`` that means even odds (a
        model's ``threshold_``); the foreground's cost is shifted by
        ``log(threshold / (1 - threshold))``, so that with ``beta = 0`` the
        result is ``proba > threshold``.

    Returns
    -------
    labels : ndarray of int, shape (H, W)
    energy : float
        Only with ``return_energy=True``; the energy of the constrained
        model (finite penalties included).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    unary = _as_unary(proba, threshold)
    K = unary.shape[2]
    if method == "graphcut" and K > 2:
        raise ValueError(f"method='graphcut' is exact for 2 labels only, "
                         f"proba has K={K}; use method='expansion'")
    offs, weights = edge_weights(unary.shape[:2], beta, image, sigma,
                                 connectivity)
    if fixed is not None:
        unary = _clamp(unary, fixed, offs, weights)
    max_iter = _check_int("max_iter", _DEFAULT_ITERS.get(method, 1)
                          if max_iter is None else max_iter, 1)
    labels = np.argmin(unary, axis=2)
    if method in ("graphcut", "expansion"):
        if K == 2:
            d = unary[..., 1] - unary[..., 0]
            labels = graphcut_binary(d, weights, weights, offs)[0]
            labels = labels.astype(np.intp)
        else:
            # Warm start from ICM's local minimum: expansion only lowers the
            # energy, so it can never end worse than ICM.  (From the plain
            # argmax it did in 2 of 300 random 3-class 2x3/3x3 grids, since
            # expansion and ICM stop in different local minima.)
            labels = _icm(unary, offs, weights, labels, _DEFAULT_ITERS["icm"])
            labels = _expansion(unary, offs, weights, labels, max_iter)
        # Polish with ICM on the float energy: repairs pixels decided only
        # by the capacity rounding, and can never raise the energy.
        labels = _icm(unary, offs, weights, labels, 10)
    elif method == "icm":
        labels = _icm(unary, offs, weights, labels, max_iter)
    elif method == "lbp":
        beliefs, _ = _k.lbp(unary, *_directions(offs, weights), max_iter,
                            _TOL, False)
        labels = np.argmin(beliefs, axis=2)
    else:
        q = _softmin(unary)
        _k.mean_field(unary, *_directions(offs, weights), q, max_iter, _TOL)
        labels = np.argmax(q, axis=2)
    if return_energy:
        return labels, _energy(unary, labels, offs, weights)
    return labels


def _clamp(unary, fixed, offs, weights):
    """Unaries under which every pixel with ``fixed >= 0`` prefers that label whatever its
    neighbours: the other labels cost more than the pixel's total pair weight can repay."""
    H, W, K = unary.shape
    lab = _check_labels(fixed, (H, W), K, lowest=-1)
    known = lab >= 0
    if not known.any():
        return unary
    incident = _directions(offs, weights)[0].sum(axis=0)
    big = incident + unary.max() + 1.0
    out = unary.copy()
    other = np.arange(K)[None, None, :] != lab[..., None]
    out[known[..., None] & other] = np.broadcast_to(big[..., None], out.shape)[known[..., None] & other]
    return out


def _softmin(cost):
    q = np.exp(cost.min(axis=2, keepdims=True) - cost)
    return q / q.sum(axis=2, keepdims=True)


def marginals(proba, beta, method="meanfield", image=None, sigma=None,
              connectivity=4, max_iter=100):
    """Approximate posterior marginals (smoothed probability maps).

    Parameters
    ----------
    proba, beta, image, sigma, connectivity
        As in :func:`decode`.
    method : {"meanfield", "lbp"}
        Naive mean field or sum-product loopy belief propagation.
    max_iter : int
        Iterations; both stop earlier once nothing moves by more than 1e-4.

    Returns
    -------
    ndarray, shape (H, W, K)
        Marginals summing to 1 over the last axis (K = 2 for a binary map,
        ``[..., 1]`` being the foreground).  With ``beta = 0`` they are the
        input probabilities (clipped at ``EPS``, normalised).
    """
    if method not in ("meanfield", "lbp"):
        raise ValueError(f"unknown marginals method {method!r}; "
                         "choose 'meanfield' or 'lbp'")
    max_iter = _check_int("max_iter", max_iter, 1)
    unary = _as_unary(proba)
    offs, weights = edge_weights(unary.shape[:2], beta, image, sigma,
                                 connectivity)
    wdir, dys, dxs = _directions(offs, weights)
    if method == "lbp":
        beliefs, _ = _k.lbp(unary, wdir, dys, dxs, max_iter, _TOL, True)
        return _softmin(beliefs)
    q = _softmin(unary)
    _k.mean_field(unary, wdir, dys, dxs, q, max_iter, _TOL)
    return q


# ---------------------------------------------------------- choosing beta
DEFAULT_BETAS = np.concatenate([[0.0], np.logspace(-2, 1, 13)])


def select_beta(probas, sparse_labels, betas=None, method="graphcut",
                images=None, sigma=None, connectivity=4, criterion="error",
                threshold=0.5):
    """Choose beta on sparsely labelled (held-out) pixels.

    ``criterion="error"`` scores each beta by the decoding error of ``method`` on
    the labelled pixels; ``criterion="loglik"`` by the mean negative log of the
    mean-field marginal of the true label there. With a handful of held-out
    pixels per image, decoding rarely flips one of them and every beta ties;
    the marginals move with beta everywhere, so the likelihood still ranks them.

    Parameters
    ----------
    probas : list of array_like
        Probability maps as accepted by :func:`decode`, from a model that
        did *not* train on the labelled pixels (see the module docstring).
    sparse_labels : list of array_like of int, shape (H, W)
        Class per pixel, ``-1`` = unlabelled.
    betas : sequence of float, optional
        Candidates; default ``DEFAULT_BETAS``: 0 and 13 values log-spaced
        from 0.01 to 10 (4 per decade).
    method, connectivity
        As in :func:`decode`.
    images : list of array_like, optional
        For contrast-sensitive weights; each map's ``sigma`` then defaults
        to :func:`default_sigma` of its own image (no labels involved).
    sigma : float, optional
        One fixed contrast scale for all images instead.
    criterion : {"error", "loglik"}
    threshold : float or sequence of float
        As in :func:`decode` (``criterion="error"`` only); a sequence gives each map its own
        (maps from the models of a cross-validation, each with its ``threshold_``).

    Returns
    -------
    beta : float
        The candidate with the smallest score; ties go to the smallest
        beta (the least smoothing that does as well).
    errors : dict
        ``{beta: score}`` pooled over all maps: the fraction of labelled
        pixels decoded wrongly, or their mean negative log marginal.
    """
    if criterion not in ("error", "loglik"):
        raise ValueError(f"criterion must be 'error' or 'loglik', got {criterion!r}")
    if len(probas) != len(sparse_labels) or len(probas) == 0:
        raise ValueError("probas and sparse_labels must be non-empty lists "
                         "of the same length")
    if images is not None and len(images) != len(probas):
        raise ValueError("images must have one entry per probability map")
    thresholds = list(threshold) if np.ndim(threshold) == 1 else [threshold] * len(probas)
    if len(thresholds) != len(probas):
        raise ValueError(f"threshold must be one number or one per map ({len(probas)}), got {len(thresholds)}")
    betas = sorted(_check_beta(b) for b in
                   (DEFAULT_BETAS if betas is None else betas))
    if not betas:
        raise ValueError("betas is empty")
    labs = [_check_labels(lab, np.shape(p)[:2],
                          np.shape(p)[2] if np.ndim(p) == 3 else 2, -1)
            for p, lab in zip(probas, sparse_labels)]
    n_lab = sum(int((lab >= 0).sum()) for lab in labs)
    if n_lab == 0:
        raise ValueError("no labelled pixels (all sparse labels are -1)")
    errors = {}
    for b in betas:
        score = 0.0
        for i, (p, lab) in enumerate(zip(probas, labs)):
            kw = dict(sigma=sigma, image=None if images is None else images[i],
                      connectivity=connectivity)
            known = lab >= 0
            if criterion == "error":
                pred = decode(p, b, method=method, threshold=thresholds[i], **kw)
                score += int((pred[known] != lab[known]).sum())
            else:
                q = marginals(p, b, method="meanfield", **kw)
                score -= float(np.log(np.clip(q[known, lab[known]], EPS, 1.0)).sum())
        errors[b] = score / n_lab
    return min(betas, key=lambda b: (errors[b], b)), errors
