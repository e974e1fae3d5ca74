"""Numba kernels for the grid MRF in :mod:`chm.mrf`, with plain references.

Every kernel works on the same data layout:

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
sweep exact on chains.  The ``*_ref`` functions implement the same schedule
with per-pixel numpy code; they are slow and only meant to cross-check the
kernels on tiny grids in the tests.
"""

import numpy as np
from numba import njit

__all__ = [
    "icm_sweep", "icm_sweep_ref", "lbp", "lbp_ref",
    "mean_field", "mean_field_ref",
]


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


def icm_sweep_ref(unary, wdir, dys, dxs, labels):
    """Plain numpy reference for :func:`icm_sweep` (same raster order)."""
    H, W, K = unary.shape
    changed = 0
    for y in range(H):
        for x in range(W):
            cost = unary[y, x].copy()
            for d in range(wdir.shape[0]):
                if wdir[d, y, x] != 0.0:
                    ln = labels[y + dys[d], x + dxs[d]]
                    cost += wdir[d, y, x] * (np.arange(K) != ln)
            cur = labels[y, x]
            best = int(np.argmin(cost))
            if cost[best] < cost[cur]:
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


def _lbp_node_ref(unary, wdir, dys, dxs, msg, y, x, sum_product):
    D = wdir.shape[0]
    delta = 0.0
    for d in range(D):
        w = wdir[d, y, x]
        if w == 0.0:
            continue
        h = unary[y, x] + msg[:, y, x].sum(axis=0) - msg[d, y, x]
        K = h.size
        # Full K x K Potts table on purpose: an independent check of the
        # O(K) shortcuts taken by the kernel.
        pair = w * (1.0 - np.eye(K))
        tot = h[:, None] + pair            # rows: sender label
        if sum_product:
            m = tot.min(axis=0)
            out = m - np.log(np.exp(-(tot - m)).sum(axis=0))
        else:
            out = tot.min(axis=0)
        out = out - out.min()
        od = (d + D // 2) % D
        ty, tx = y + dys[d], x + dxs[d]
        delta = max(delta, np.abs(out - msg[od, ty, tx]).max())
        msg[od, ty, tx] = out
    return delta


def lbp_ref(unary, wdir, dys, dxs, max_iter, tol, sum_product):
    """Plain numpy reference for :func:`lbp` (same schedule)."""
    H, W, K = unary.shape
    msg = np.zeros((wdir.shape[0], H, W, K))
    order = [(y, x) for y in range(H) for x in range(W)]
    it = 0
    while it < max_iter:
        sweep = order if it % 2 == 0 else order[::-1]
        delta = max(_lbp_node_ref(unary, wdir, dys, dxs, msg, y, x,
                                  sum_product) for y, x in sweep)
        it += 1
        if delta < tol:
            break
    return unary + msg.sum(axis=0), it


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


def mean_field_ref(unary, wdir, dys, dxs, q, max_iter, tol):
    """Plain numpy reference for :func:`mean_field` (same schedule)."""
    H, W, K = unary.shape
    it = 0
    while it < max_iter:
        delta = 0.0
        for y in range(H):
            for x in range(W):
                s = -unary[y, x].copy()
                for d in range(wdir.shape[0]):
                    if wdir[d, y, x] != 0.0:
                        s += wdir[d, y, x] * q[y + dys[d], x + dxs[d]]
                v = np.exp(s - s.max())
                v /= v.sum()
                delta = max(delta, np.abs(v - q[y, x]).max())
                q[y, x] = v
        it += 1
        if delta < tol:
            break
    return it
