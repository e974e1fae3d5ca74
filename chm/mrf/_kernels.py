"""Low-level solvers for :mod:`chm.mrf`.

* Numba kernels (ICM, loopy BP, mean field); tests/_reference/mrf.py holds
  their plain numpy references.
* :func:`graphcut_binary`: the s-t min cut, built as a CSR matrix for
  ``scipy.sparse.csgraph.maximum_flow`` (no numba needed there).

Every numba kernel works on the same data layout:

``unary``
    (H, W, K) float64, cost of each label (``-log p`` in :mod:`chm.mrf`).
``wdir``
    (D, H, W) float64; ``wdir[d, y, x]`` is the Potts weight of the edge
    between pixel ``(y, x)`` and its neighbour ``(y + dys[d], x + dxs[d])``,
    and 0 where that neighbour falls outside the grid.  The D directions are
    the positive offsets followed by their negatives, so the opposite of
    direction ``d`` is ``(d + D // 2) % D`` (needed by belief propagation).

All kernels visit pixels sequentially (Gauss-Seidel, not Jacobi): for ICM and
mean field this is what makes every update a descent step on the energy /
free energy, and for belief propagation it makes a forward-then-backward
sweep exact on chains.  The numpy references in tests/_reference/mrf.py
(``icm_sweep_ref``, ``lbp_ref``, ``mean_field_ref``) implement the same
schedule with per-pixel numpy code; tests/test_mrf.py compares them with the
kernels on tiny grids.

Integer capacities
------------------
``maximum_flow`` needs int32 capacities, so every capacity is multiplied
by ``scale = 2**30 / (sum of all capacities)`` and rounded.  Every integer
the solver handles (a residual, a path flow, the flow value) is bounded by
that sum, which leaves a factor 2 of headroom below 2**31 whatever the data.
Rounding moves each arc by at most 1/2, hence the cost of any cut by at
most ``n_arcs / 2``, so the returned labelling satisfies
``E(x) - E_min <= n_arcs / scale`` (returned as ``info["tol"]``).  That is
a worst case; measured excesses are far smaller (tests/test_mrf.py forces
coarse scales to check the bound).
"""

import functools

import numpy as np
from numba import njit
from scipy import sparse
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

__all__ = [
    "icm_sweep", "lbp", "mean_field", "graphcut_binary", "pair_slices",
]

CAP_BUDGET = 2 ** 30   # half of int32: headroom for the solver's integers


# --------------------------------------------------------------------- ICM
@njit(cache=True, nogil=True)
def icm_sweep(unary, wdir, dys, dxs, labels):
    """One raster-order ICM sweep, in place; returns the number of changes.

    A label only changes when its local cost is *strictly* lower, so the
    energy never increases and the iteration terminates.
    """
    H, W, K = unary.shape
    D = wdir.shape[0]
    cost = np.empty(K)
    changed = 0
    for y in range(H):
        for x in range(W):
            for k in range(K):
                cost[k] = unary[y, x, k]
            for d in range(D):
                w = wdir[d, y, x]
                if w != 0.0:
                    ln = labels[y + dys[d], x + dxs[d]]
                    # Potts: every label except the neighbour's pays w.
                    for k in range(K):
                        if k != ln:
                            cost[k] += w
            cur = labels[y, x]
            best = cur
            for k in range(K):
                if cost[k] < cost[best]:
                    best = k
            if best != cur:
                labels[y, x] = best
                changed += 1
    return changed


# --------------------------------------------------------------------- LBP
@njit(cache=True, nogil=True)
def _lbp_node(unary, wdir, dys, dxs, msg, y, x, sum_product, tot, h):
    """Send all outgoing messages of pixel (y, x); return the largest change.

    ``msg[y, x, d, :]`` is the message *into* (y, x) from its neighbour in
    direction d, in cost (negative log) space, shifted so that its minimum
    is 0 (keeps messages bounded on loopy graphs).  The (H, W, D, K) layout
    keeps a pixel's incoming messages contiguous.
    """
    K = unary.shape[2]
    D = wdir.shape[0]
    half = D // 2
    delta = 0.0
    # The node's own incoming messages do not change while it sends, so
    # the full belief is computed once and each message leaves one out.
    for k in range(K):
        s = unary[y, x, k]
        for e in range(D):
            s += msg[y, x, e, k]
        tot[k] = s
    for d in range(D):
        w = wdir[d, y, x]
        if w == 0.0:
            continue
        hmin = np.inf
        for k in range(K):
            h[k] = tot[k] - msg[y, x, d, k]
            if h[k] < hmin:
                hmin = h[k]
        if sum_product:
            # -log sum_k exp(-h_k - w [k != l]) with the Potts structure:
            # e_l + exp(-w) (S - e_l), all shifted by hmin for stability.
            S = 0.0
            for k in range(K):
                h[k] = np.exp(hmin - h[k])
                S += h[k]
            ew = np.exp(-w)
            omin = np.inf
            for k in range(K):
                rest = S - h[k]
                if rest < 0.0:
                    rest = 0.0
                h[k] = -np.log(h[k] + ew * rest)
                if h[k] < omin:
                    omin = h[k]
        else:
            # min-sum with Potts: keep the label or pay w to switch; the
            # minimum of min(h - hmin, w) is 0, so it is already shifted.
            omin = 0.0
            for k in range(K):
                h[k] = min(h[k] - hmin, w)
        ty = y + dys[d]
        tx = x + dxs[d]
        od = (d + half) % D
        for k in range(K):
            v = h[k] - omin
            c = abs(v - msg[ty, tx, od, k])
            if c > delta:
                delta = c
            msg[ty, tx, od, k] = v
    return delta


@njit(cache=True, nogil=True)
def lbp(unary, wdir, dys, dxs, max_iter, tol, sum_product):
    """Loopy belief propagation in cost space (min-sum or sum-product).

    Each iteration is one raster sweep, alternately forward and backward,
    updating messages in place (so a chain is solved exactly after two
    iterations).  Stops when no message moved by more than ``tol``.
    Returns ``(beliefs, n_iter)`` with ``beliefs = unary + incoming
    messages``: min-marginal costs for min-sum, ``-log`` unnormalised
    marginals for sum-product.
    """
    H, W, K = unary.shape
    D = wdir.shape[0]
    msg = np.zeros((H, W, D, K))
    tot = np.empty(K)
    h = np.empty(K)
    it = 0
    while it < max_iter:
        delta = 0.0
        fwd = it % 2 == 0
        for yy in range(H):
            y = yy if fwd else H - 1 - yy
            for xx in range(W):
                x = xx if fwd else W - 1 - xx
                c = _lbp_node(unary, wdir, dys, dxs, msg, y, x,
                              sum_product, tot, h)
                if c > delta:
                    delta = c
        it += 1
        if delta < tol:
            break
    beliefs = unary.copy()
    for y in range(H):
        for x in range(W):
            for d in range(D):
                for k in range(K):
                    beliefs[y, x, k] += msg[y, x, d, k]
    return beliefs, it


# -------------------------------------------------------------- mean field
@njit(cache=True, nogil=True)
def mean_field(unary, wdir, dys, dxs, q, max_iter, tol):
    """Sequential naive mean field for the Potts MRF, ``q`` updated in place.

    ``q_i(k) ∝ exp(-unary_i(k) + sum_j w_ij q_j(k))``: the expected Potts
    cost of label k is ``sum_j w_ij (1 - q_j(k))`` and the constant part
    cancels in the normalisation.  Updating one pixel at a time is
    coordinate descent on the mean-field free energy, so it cannot diverge
    or oscillate the way parallel updates can.  Returns the sweep count.
    """
    H, W, K = unary.shape
    D = wdir.shape[0]
    a = np.empty(K)
    it = 0
    while it < max_iter:
        delta = 0.0
        for y in range(H):
            for x in range(W):
                amax = -np.inf
                for k in range(K):
                    s = -unary[y, x, k]
                    for d in range(D):
                        w = wdir[d, y, x]
                        if w != 0.0:
                            s += w * q[y + dys[d], x + dxs[d], k]
                    a[k] = s
                    if s > amax:
                        amax = s
                tot = 0.0
                for k in range(K):
                    a[k] = np.exp(a[k] - amax)
                    tot += a[k]
                for k in range(K):
                    v = a[k] / tot
                    c = abs(v - q[y, x, k])
                    if c > delta:
                        delta = c
                    q[y, x, k] = v
        it += 1
        if delta < tol:
            break
    return it


def pair_slices(H, W, dy, dx):
    """Slices selecting base pixels i and their neighbours j = i + (dy, dx)."""
    x0, x1 = (0, W - dx) if dx >= 0 else (-dx, W)
    return ((slice(0, H - dy), slice(x0, x1)),
            (slice(dy, H), slice(x0 + dx, x1 + dx)))


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
        scale = CAP_BUDGET / total
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
            bi, nj = pair_slices(H, W, dy, dx)
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
