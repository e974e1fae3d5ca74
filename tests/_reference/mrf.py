"""Numpy references of the numba kernels of :mod:`chm.mrf._kernels` (ICM, loopy BP, mean field).

Each implements the same schedule as its kernel (same data layout, same raster order) with
per-pixel numpy code; they are slow and only meant to cross-check the kernels on tiny grids.
"""

import numpy as np


def icm_sweep_ref(unary, wdir, dys, dxs, labels):
    """Plain numpy reference for :func:`chm.mrf._kernels.icm_sweep` (same raster order)."""
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


def _lbp_node_ref(unary, wdir, dys, dxs, msg, y, x, sum_product):
    """Plain numpy reference for :func:`chm.mrf._kernels._lbp_node`, with messages laid out
    (D, H, W, K) instead of the kernel's (H, W, D, K)."""
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
    """Plain numpy reference for :func:`chm.mrf._kernels.lbp` (same schedule)."""
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


def mean_field_ref(unary, wdir, dys, dxs, q, max_iter, tol):
    """Plain numpy reference for :func:`chm.mrf._kernels.mean_field` (same schedule)."""
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
