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
    Alpha-expansion for K > 2 (each move is one binary cut); for Potts the
    result is within a factor 2 of the optimum.  For K = 2 it is the
    exact cut.
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
``maximum_flow`` needs int32 capacities, so every capacity is multiplied
by ``scale = 2**30 / (sum of all capacities)`` and rounded: every integer
the solver handles (a residual, a path flow, the flow value) is bounded by
that sum, which leaves a factor 2 of headroom below 2**31.  Rounding each
arc by at most 1/2 changes the cost of any cut by at most ``n_arcs / 2``,
so the returned labelling satisfies ``E(x) - E_min <= n_arcs / scale``
(reported by :func:`graphcut_binary`); the cut is then polished by ICM on
the exact float energy, which can only lower it further.

Choosing beta
-------------
:func:`select_beta` picks beta on sparsely labelled pixels.  The probability
maps passed to it must come from a model for which those labelled pixels
were held out from training (e.g. a held-out fraction of the sparse
labels); using training pixels biases beta towards 0, and using the test
masks leaks the test set into the baseline.
"""

import functools

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

from chm import _mrf_kernels as _k

__all__ = ["decode", "energy", "marginals", "select_beta", "default_sigma",
           "edge_weights", "graphcut_binary", "METHODS", "EPS"]

EPS = 1e-6
METHODS = ("graphcut", "expansion", "icm", "lbp", "meanfield")
_DEFAULT_ITERS = {"expansion": 20, "icm": 100, "lbp": 50, "meanfield": 50}
_CAP_BUDGET = 2 ** 30   # half of int32: headroom for the solver's integers
_TOL = 1e-4             # convergence tolerance (nats) of LBP / mean field


# ------------------------------------------------------------ validation
def _as_unary(proba):
    """Validate ``proba`` and return the (H, W, K) cost array ``-log p``."""
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
    if p.ndim == 2:
        p = np.stack([1.0 - p, p], axis=-1)
    return -np.log(np.maximum(p, EPS))


def _check_beta(beta):
    if isinstance(beta, (bool, np.bool_)) or not np.isscalar(beta) \
            or not np.isreal(beta):
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
        if not np.isscalar(sigma) or not np.isreal(sigma):
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


def _check_connectivity(connectivity):
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")


# --------------------------------------------------------------- weights
def _offsets(connectivity):
    """Positive neighbour offsets (dy, dx) and their length weights c_ij."""
    offs = [(0, 1, 1.0), (1, 0, 1.0)]
    if connectivity == 8:
        offs += [(1, 1, 2 ** -0.5), (1, -1, 2 ** -0.5)]
    return offs


def _pair_slices(H, W, dy, dx):
    """Slices selecting base pixels i and their neighbours j = i + (dy, dx)."""
    x0, x1 = (0, W - dx) if dx >= 0 else (-dx, W)
    return ((slice(0, H - dy), slice(x0, x1)),
            (slice(dy, H), slice(x0 + dx, x1 + dx)))


def default_sigma(image):
    """RMS of the 4-neighbour intensity differences of ``image``.

    This is the scale on which contrast is "large"; it needs no labels.
    A constant image gives 1.0 (every weight is then ``beta`` anyway).
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    sq = [((img[:, 1:] - img[:, :-1]) ** 2).sum(-1).ravel(),
          ((img[1:] - img[:-1]) ** 2).sum(-1).ravel()]
    sq = np.concatenate(sq)
    rms = float(np.sqrt(sq.mean())) if sq.size else 0.0
    return rms if rms > 0 else 1.0


def edge_weights(shape, beta, image=None, sigma=None, connectivity=4):
    """Potts weights per neighbour offset.

    Returns
    -------
    offsets : list of (dy, dx)
        The positive offsets: (0, 1), (1, 0) and, for 8-connectivity,
        (1, 1), (1, -1).
    weights : ndarray, shape (n_offsets, H, W)
        ``weights[o, y, x]`` is ``w_ij`` between (y, x) and (y+dy, x+dx);
        0 where that neighbour lies outside the grid.
    """
    beta = _check_beta(beta)
    _check_connectivity(connectivity)
    H, W = shape
    img, sigma = _check_image(image, (H, W), sigma)
    offs = _offsets(connectivity)
    out = np.zeros((len(offs), H, W))
    for o, (dy, dx, c) in enumerate(offs):
        bi, nj = _pair_slices(H, W, dy, dx)
        w = beta * c
        if img is None:
            out[o][bi] = w
        else:
            d2 = ((img[bi] - img[nj]) ** 2).sum(-1)
            out[o][bi] = w * np.exp(-d2 / (2.0 * sigma ** 2))
    return [(dy, dx) for dy, dx, _ in offs], out


def _directions(offs, weights):
    """Kernel layout: weights per direction, positive offsets then negatives."""
    n, H, W = weights.shape
    wdir = np.zeros((2 * n, H, W))
    wdir[:n] = weights
    for o, (dy, dx) in enumerate(offs):
        bi, nj = _pair_slices(H, W, dy, dx)
        wdir[n + o][nj] = weights[o][bi]
    dys = np.array([dy for dy, _ in offs] + [-dy for dy, _ in offs])
    dxs = np.array([dx for _, dx in offs] + [-dx for _, dx in offs])
    return wdir, dys, dxs


def _energy(unary, labels, offs, weights):
    H, W, _ = unary.shape
    e = np.take_along_axis(unary, labels[..., None], axis=2).sum()
    for o, (dy, dx) in enumerate(offs):
        bi, nj = _pair_slices(H, W, dy, dx)
        e += weights[o][bi][labels[bi] != labels[nj]].sum()
    return float(e)


def energy(labels, proba, beta, image=None, sigma=None, connectivity=4):
    """Energy ``E(labels)`` of the model described in the module docstring.

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
    lab = np.asarray(labels)
    if lab.shape != unary.shape[:2]:
        raise ValueError(f"labels shape {lab.shape} does not match the "
                         f"probability map's grid {unary.shape[:2]}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise TypeError(f"labels must be integers, got {lab.dtype}")
    if lab.min() < 0 or lab.max() >= unary.shape[2]:
        raise ValueError(f"labels must lie in 0..{unary.shape[2] - 1}")
    offs, w = edge_weights(lab.shape, beta, image, sigma, connectivity)
    return _energy(unary, lab.astype(np.intp), offs, w)


# -------------------------------------------------------------- min cut
def graphcut_binary(d, cap10, cap01, offs, scale=None, method="dinic"):
    """Exact minimiser of a submodular binary energy on a grid, by min cut.

    The energy is ``sum_i d_i x_i + sum_{o, i} cap10[o, i] [x_i=1, x_j=0]
    + cap01[o, i] [x_i=0, x_j=1]`` (plus a constant), j = i + offs[o].

    Parameters
    ----------
    d : ndarray, shape (H, W)
        Cost of label 1 minus cost of label 0.
    cap10, cap01 : ndarray, shape (n_offsets, H, W)
        Non-negative pairwise costs, 0 where j lies outside the grid.
    offs : list of (dy, dx)
    scale : float, optional
        Integer scaling of the capacities; default ``2**30 / total``.
    method : {"dinic", "edmonds_karp"}
        Passed to ``scipy.sparse.csgraph.maximum_flow``.

    Returns
    -------
    labels : ndarray of int8, shape (H, W)
    info : dict
        ``scale``, ``n_arcs`` and ``tol = n_arcs / scale``, the bound on
        the energy excess caused by rounding the capacities.
    """
    H, W = d.shape
    N = H * W
    src = np.maximum(-d, 0.0)   # arc s -> i, cut when i takes label 0
    snk = np.maximum(d, 0.0)    # arc i -> t, cut when i takes label 1
    total = src.sum() + snk.sum() + cap10.sum() + cap01.sum()
    n_arcs = int(np.count_nonzero(src) + np.count_nonzero(snk)
                 + np.count_nonzero(cap10) + np.count_nonzero(cap01))
    if total <= 0:
        return np.zeros((H, W), np.int8), {"scale": np.inf, "n_arcs": 0,
                                           "tol": 0.0}
    if scale is None:
        scale = _CAP_BUDGET / total
    if not scale * total < 2 ** 31 - n_arcs:
        raise ValueError(f"scale={scale:g} overflows int32 capacities")
    indptr, indices, valid, slots = _cut_structure(H, W, tuple(offs))
    block = np.zeros((N, len(slots) + 2))
    for s, (o, forward) in enumerate(slots):
        if forward:                                  # arc i -> i + off
            block[:, s] = cap10[o].ravel()
        else:                                        # arc j -> j - off
            dy, dx = offs[o]
            back = np.zeros((H, W))
            bi, nj = _pair_slices(H, W, dy, dx)
            back[nj] = cap01[o][bi]
            block[:, s] = back.ravel()
    block[:, -1] = snk.ravel()                       # column N: i -> s, 0
    data = np.concatenate([block[valid], src.ravel(), np.zeros(N)])
    data = np.rint(data * scale).astype(np.int32)
    graph = sparse.csr_matrix((data, indices, indptr), shape=(N + 2, N + 2))
    graph.has_sorted_indices = True
    flow = maximum_flow(graph, N, N + 1, method=method).flow
    # Every arc's reverse is already in the graph, so scipy keeps this
    # exact structure and the residual is a plain array difference.
    if flow.nnz != data.size or not np.array_equal(flow.indices, indices):
        raise RuntimeError("maximum_flow changed the graph structure")
    open_ = data > flow.data
    ptr = np.concatenate([[0], np.cumsum(open_)])[indptr]
    resid = sparse.csr_matrix((np.ones(ptr[-1], np.int8), indices[open_],
                               ptr), shape=(N + 2, N + 2))
    # Source side of the min cut = nodes reachable in the residual graph.
    reach = breadth_first_order(resid, N, directed=True,
                                return_predecessors=False)
    labels = np.zeros(N, np.int8)
    labels[reach[reach < N]] = 1
    return labels.reshape(H, W), {"scale": scale, "n_arcs": n_arcs,
                                  "tol": n_arcs / scale}


@functools.lru_cache(maxsize=4)
def _cut_structure(H, W, offs):
    """CSR pattern of the s-t graph of an H x W grid (cached: expansion
    solves many cuts on one grid).

    Nodes are the pixels (row-major), the source N and the sink N + 1.
    Every arc comes with its reverse (zero capacity if unused) so that
    scipy adds none and keeps this pattern.  A pixel row holds its
    neighbours in increasing flat offset, then the source and the sink.
    Returns ``(indptr, indices, valid, slots)``: ``valid`` masks the
    (N, n_slots + 2) block of pixel rows, ``slots`` is (offset index,
    forward?) per neighbour column.
    """
    N = H * W
    slots = sorted([(dy * W + dx, o, True) for o, (dy, dx) in enumerate(offs)]
                   + [(-(dy * W + dx), o, False)
                      for o, (dy, dx) in enumerate(offs)])
    y, x = np.divmod(np.arange(N), W)
    cols, valid = [], []
    for _, o, forward in slots:
        dy, dx = offs[o] if forward else (-offs[o][0], -offs[o][1])
        valid.append((0 <= y + dy) & (y + dy < H) & (0 <= x + dx)
                     & (x + dx < W))
        cols.append(np.arange(N) + dy * W + dx)
    cols += [np.full(N, N), np.full(N, N + 1)]
    valid += [np.ones(N, bool)] * 2
    cols, valid = np.stack(cols, 1), np.stack(valid, 1)
    counts = np.concatenate([valid.sum(1), [N, N]])
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    pix = np.arange(N)
    indices = np.concatenate([cols[valid], pix, pix]).astype(np.int32)
    # Not flagged read-only: scipy's Cython takes writable memoryviews
    # (it never writes to them).
    return indptr, indices, valid, [(o, f) for _, o, f in slots]


# -------------------------------------------------------------- decoders
def _icm(unary, wdir, dys, dxs, labels, max_iter, trace=None):
    """ICM sweeps until no label changes; ``trace`` collects the energies."""
    for _ in range(max_iter):
        changed = _k.icm_sweep(unary, wdir, dys, dxs, labels)
        if trace is not None:
            trace.append(_energy_dir(unary, labels, wdir, dys, dxs))
        if changed == 0:
            break
    return labels


def _energy_dir(unary, labels, wdir, dys, dxs):
    """Energy from the kernel layout (positive directions only)."""
    n = len(dys) // 2
    offs = list(zip(dys[:n].tolist(), dxs[:n].tolist()))
    return _energy(unary, labels, offs, wdir[:n])


def _graphcut(unary, offs, weights, flow_method="dinic"):
    """Exact binary decoding; returns labels and the rounding bound."""
    d = unary[..., 1] - unary[..., 0]
    lab, info = graphcut_binary(d, weights, weights, offs, method=flow_method)
    return lab.astype(np.intp), info


def _expansion(unary, offs, weights, labels, max_iter):
    """Alpha-expansion: cycle over alpha until no move lowers the energy."""
    H, W, K = unary.shape
    cur = _energy(unary, labels, offs, weights)
    rows, cols = np.indices((H, W))
    for _ in range(max_iter):
        improved = False
        for alpha in range(K):
            # x_i = 1 means "switch to alpha", 0 means "keep labels[i]".
            d = unary[..., alpha] - unary[rows, cols, labels]
            cap01 = np.zeros_like(weights)
            for o, (dy, dx) in enumerate(offs):
                bi, nj = _pair_slices(H, W, dy, dx)
                w, li, lj = weights[o][bi], labels[bi], labels[nj]
                # Pair table E(x_i, x_j): A=E(0,0), B=E(0,1), C=E(1,0),
                # E(1,1)=0.  Written as A + (C-A) x_i - C x_j
                # + (B+C-A) (1-x_i) x_j; B+C-A >= 0 because Potts is a
                # metric, which is what makes the move graph-representable.
                A = w * (li != lj)
                B = w * (li != alpha)
                C = w * (lj != alpha)
                d[bi] += C - A
                d[nj] -= C
                cap01[o][bi] = B + C - A
            x, _ = graphcut_binary(d, np.zeros_like(weights), cap01, offs)
            cand = np.where(x == 1, alpha, labels)
            e = _energy(unary, cand, offs, weights)
            # Compare exact float energies: the cut is optimal only up to
            # capacity rounding, and a non-improving move must be refused
            # for the energy to decrease monotonically and the loop to end.
            if e < cur - 1e-12 * max(1.0, abs(cur)):
                labels, cur, improved = cand, e, True
        if not improved:
            break
    return labels


def decode(proba, beta, method="graphcut", image=None, sigma=None,
           connectivity=4, max_iter=None, return_energy=False):
    """Most probable label map of the grid MRF (MAP decoding).

    Parameters
    ----------
    proba : array_like, shape (H, W) or (H, W, K)
        ``P(foreground)`` per pixel, or class probabilities (K >= 2).
        Values must lie in [0, 1]; they are clipped at ``EPS`` before the
        log.  Rows need not sum to 1 (each class costs ``-log p_k``).
    beta : float
        Potts weight, >= 0 (in nats: the cost of one disagreeing
        4-neighbour pair).
    method : {"graphcut", "expansion", "icm", "lbp", "meanfield"}
        Decoder (see the module docstring).  "graphcut" is binary only.
    image : array_like, shape (H, W) or (H, W, C), optional
        Makes the weights contrast-sensitive.
    sigma : float, optional
        Contrast scale; default :func:`default_sigma` of ``image``.
    connectivity : {4, 8}
        8 adds the diagonal pairs with weight ``beta / sqrt(2)``.
    max_iter : int, optional
        Sweeps (icm), iterations (lbp, meanfield) or expansion cycles;
        defaults 100, 100, 100 and 20.  Ignored by "graphcut".
    return_energy : bool
        Also return ``energy(labels, ...)``.

    Returns
    -------
    labels : ndarray of int, shape (H, W)
    energy : float
        Only with ``return_energy=True``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    unary = _as_unary(proba)
    H, W, K = unary.shape
    if method == "graphcut" and K > 2:
        raise ValueError(f"method='graphcut' is exact for 2 labels only, "
                         f"proba has K={K}; use method='expansion'")
    offs, weights = edge_weights((H, W), beta, image, sigma, connectivity)
    if max_iter is None:
        max_iter = _DEFAULT_ITERS.get(method, 1)
    if isinstance(max_iter, bool) or not isinstance(max_iter,
                                                   (int, np.integer)):
        raise TypeError(f"max_iter must be an int, got {max_iter!r}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    wdir, dys, dxs = _directions(offs, weights)
    labels = np.argmin(unary, axis=2)
    if method in ("graphcut", "expansion") and K == 2:
        labels, _ = _graphcut(unary, offs, weights)
        # Polish on the float energy: repairs pixels flipped only by the
        # capacity rounding, and can never raise the energy.
        labels = _icm(unary, wdir, dys, dxs, labels, 10)
    elif method == "expansion":
        labels = _expansion(unary, offs, weights, labels, max_iter)
        labels = _icm(unary, wdir, dys, dxs, labels, 10)
    elif method == "icm":
        labels = _icm(unary, wdir, dys, dxs, labels, max_iter)
    elif method == "lbp":
        beliefs, _ = _k.lbp(unary, wdir, dys, dxs, max_iter, _TOL, False)
        labels = np.argmin(beliefs, axis=2)
    else:
        q = _softmin(unary)
        _k.mean_field(unary, wdir, dys, dxs, q, max_iter, _TOL)
        labels = np.argmax(q, axis=2)
    if return_energy:
        return labels, _energy(unary, labels, offs, weights)
    return labels


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
        Sweeps; both stop earlier once no value moves by more than 1e-6.

    Returns
    -------
    ndarray, shape (H, W, K)
        Marginals summing to 1 over the last axis (K = 2 for a binary map,
        ``[..., 1]`` being the foreground).  With ``beta = 0`` they are the
        input probabilities (clipped at ``EPS`` and normalised).
    """
    if method not in ("meanfield", "lbp"):
        raise ValueError(f"unknown marginals method {method!r}; "
                         "choose 'meanfield' or 'lbp'")
    if isinstance(max_iter, bool) or not isinstance(max_iter,
                                                   (int, np.integer)) \
            or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
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
                images=None, sigma=None, connectivity=4):
    """Choose beta by the error on sparsely labelled, held-out pixels.

    Parameters
    ----------
    probas : list of array_like
        Probability maps as accepted by :func:`decode`, predicted by a
        model that did *not* train on the labelled pixels below.
    sparse_labels : list of array_like of int, shape (H, W)
        Class per pixel, ``-1`` = unlabelled.
    betas : sequence of float, optional
        Candidates; default ``DEFAULT_BETAS`` = 0 and 13 values
        log-spaced from 0.01 to 10 (4 per decade).
    method : str
        Decoder, as in :func:`decode`.
    images : list of array_like, optional
        For contrast-sensitive weights; each map's ``sigma`` then defaults
        to :func:`default_sigma` of its own image (no labels needed).
    sigma : float, optional
        A fixed contrast scale for all images instead.
    connectivity : {4, 8}

    Returns
    -------
    beta : float
        The candidate with the smallest error; ties go to the smallest
        beta (the least smoothing that is as good).
    errors : dict
        ``{beta: fraction of labelled pixels decoded wrongly}``, pooled
        over all maps.
    """
    if len(probas) != len(sparse_labels) or len(probas) == 0:
        raise ValueError("probas and sparse_labels must be non-empty lists "
                         "of the same length")
    if images is not None and len(images) != len(probas):
        raise ValueError("images must have one entry per probability map")
    betas = DEFAULT_BETAS if betas is None else betas
    betas = sorted(_check_beta(b) for b in betas)
    if not betas:
        raise ValueError("betas is empty")
    labs = []
    for p, lab in zip(probas, sparse_labels):
        lab = np.asarray(lab)
        k = np.asarray(p).shape[2] if np.ndim(p) == 3 else 2
        if lab.shape != np.shape(p)[:2]:
            raise ValueError(f"sparse label shape {lab.shape} does not match "
                             f"its probability map {np.shape(p)[:2]}")
        if not np.issubdtype(lab.dtype, np.integer):
            raise TypeError(f"sparse labels must be integers, got {lab.dtype}")
        if lab.min() < -1 or lab.max() >= k:
            raise ValueError(f"sparse labels must lie in -1..{k - 1}")
        labs.append(lab)
    n_lab = sum(int((lab >= 0).sum()) for lab in labs)
    if n_lab == 0:
        raise ValueError("no labelled pixels (all sparse labels are -1)")
    errors = {}
    for b in betas:
        wrong = 0
        for i, (p, lab) in enumerate(zip(probas, labs)):
            img = None if images is None else images[i]
            pred = decode(p, b, method=method, image=img, sigma=sigma,
                          connectivity=connectivity)
            m = lab >= 0
            wrong += int((pred[m] != lab[m]).sum())
        errors[b] = wrong / n_lab
    best = min(betas, key=lambda b: (errors[b], b))
    return best, errors
