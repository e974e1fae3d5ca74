"""Per-pixel SGD for the AND-OR (LDNN) network, in numba (tests/_reference/sgd.py holds its numpy
reference).

The network (chm-reference 3.1): unit u = i * M + j of group i, node j has
sigma_u = 1 / (1 + exp(-(W[u, :d] . x + W[u, d]))); group i outputs g_i = prod_j sigma_ij
and the network f = 1 - prod_i (1 - g_i). Logistic regression is the 1 x 1 network.

One epoch walks an *item schedule* built by the caller (so the numba kernel and its numpy
reference see the same random choices, and ``random_state`` controls all of them):

* a supervised item ``k < n_sup`` is the labelled row ``sup_rows[k]`` with target
  ``sup_t[k]``; its loss is 0.5 (f - t)^2, so its coefficient is dE/df = f - t;
* a spatial item ``k >= n_sup`` is centre ``c = k - n_sup``: the rows ``Xn[nbr_rows[c]]`` of its
  3 x 3 neighbourhood (row-major), drawn afresh for every epoch by the caller. The kernel
  evaluates f on the 9 pixels and asks the spatial loss for the coefficients
  ``c_p = spatial_weight * sum_f w_cf rho'(s_f . f9) s_f[p]`` (paper eq. 15; the per-centre
  weights ``w_cf`` are 1 for TV and come from the image for a contrast-sensitive loss); each of
  the 9 pixels is then back-propagated with its own coefficient (paper eq. 6).

Gradients are summed over ``batch_size`` items, plus ``batch items x weight_decay x W`` for the
L2 penalty ``weight_decay / 2 ||w||^2`` on the weights (not the biases), then the momentum step
of the original CHM is taken: v <- -G + momentum * v; W <- W + lr * v. With dropout (coarse levels, batch 1) each item
uses its own subset of groups and of node indices (``gsel``, ``nsel``; the same node subset for
every chosen group), and only those units are updated. An epoch with spatial items also sums
each step's supervised items' gradients apart, a second time (the spatial items, 9 back-propagations
each, are most of the work), so the step measures the norms of both terms' gradients (the spatial
loss's share of the gradient, ``LDNN.spatial_share_``) while every weight update stays the same.

:func:`minibatch_epoch` is the same epoch for the commonest case, supervised items only and no
dropout (full resolution without a spatial loss), written as two matrix products per batch so
BLAS does the work: about 6x faster than the per-item kernel at batch 100, which is what makes
dense labels with millions of rows affordable.
"""

import numpy as np
from numba import njit

from ..semi.losses import DEAD_ZONE as _DEAD_ZONE

# Clip the pre-activation so exp never overflows (PyCHM clips at [-709, 37]; float32 here).
_ZCLIP = 30.0


@njit(cache=True, nogil=True, fastmath=True)
def _forward(W, x, gs, ns, M, sig, g):
    d = x.shape[0]
    q = 1.0
    for a in range(gs.shape[0]):
        prod = 1.0
        for b in range(ns.shape[0]):
            u = gs[a] * M + ns[b]
            s = W[u, d]
            for k in range(d):
                s += W[u, k] * x[k]
            s = min(max(s, -_ZCLIP), _ZCLIP)
            v = 1.0 / (1.0 + np.exp(-s))
            sig[a, b] = v
            prod *= v
        g[a] = prod
        q *= 1.0 - prod
    return 1.0 - q


@njit(cache=True, nogil=True, fastmath=True)
def _backward(G, x, gs, ns, M, sig, g, coef):
    d = x.shape[0]
    na = gs.shape[0]
    for a in range(na):
        # prod_{l != a} (1 - g_l) without dividing by (1 - g_a), which may be 0.
        others = 1.0
        for l in range(na):
            if l != a:
                others *= 1.0 - g[l]
        base = coef * others * g[a]
        for b in range(ns.shape[0]):
            delta = base * (1.0 - sig[a, b])
            u = gs[a] * M + ns[b]
            for k in range(d):
                G[u, k] += delta * x[k]
            G[u, d] += delta


@njit(cache=True, nogil=True, fastmath=True)
def _step(W, V, G, Gsup, gs, ns, M, lr, momentum, decay, spatial):
    """The momentum step of the batch's gradient ``G``, zeroed after. With ``spatial``, ``Gsup``
    holds its supervised items' part (zeroed too) and the step returns (||g_sup||^2, ||g_sp||^2),
    g_sp = G - Gsup, before the decay; else (0, 0)."""
    cols = W.shape[1]
    sup_sq = sp_sq = 0.0
    for a in range(gs.shape[0]):
        for b in range(ns.shape[0]):
            u = gs[a] * M + ns[b]
            if spatial:
                for k in range(cols):
                    sp = G[u, k] - Gsup[u, k]
                    sup_sq += Gsup[u, k] * Gsup[u, k]
                    sp_sq += sp * sp
                    Gsup[u, k] = 0.0
            for k in range(cols - 1):
                G[u, k] += decay * W[u, k]
            for k in range(cols):
                V[u, k] = momentum * V[u, k] - G[u, k]
                W[u, k] += lr * V[u, k]
                G[u, k] = 0.0
    return sup_sq, sp_sq


@njit(cache=True, nogil=True, fastmath=True)
def sgd_epoch(W, V, X, sup_rows, sup_t, Xn, nbr_rows, cweights, stencils, penalty, spatial_weight,
              weight_decay, order, gsel, nsel, M, lr, momentum, batch_size):
    """One SGD epoch in place on ``W`` and ``V``; returns (sum (f-t)^2, sum spatial loss,
    sum ||g_sup||, sum ||g_sp||).

    ``cweights`` holds one row of stencil weights per centre, or a single row for every centre.
    ``gsel`` / ``nsel`` hold one row of active groups / nodes per item (dropout), or a
    single row used for every item (no dropout). The last two sums run over the epoch's steps:
    g_sup and g_sp are the gradients of a step's supervised and spatial items with respect to the
    weights (weight decay in neither); both are 0 for an epoch without spatial items.
    """
    n_sup = sup_rows.shape[0]
    G = np.zeros_like(W)
    # the supervised items' part of G, a second time: G's own sums stay those of before
    Gsup = np.zeros_like(W)
    spatial = False
    for it in range(order.shape[0]):
        if order[it] >= n_sup:
            spatial = True
            break
    sup_norm = sp_norm = 0.0
    npx = nbr_rows.shape[1]
    ga, nb = gsel.shape[1], nsel.shape[1]
    sig = np.empty((npx, ga, nb))
    g = np.empty((npx, ga))
    f9 = np.empty(npx)
    coef = np.empty(npx)
    sq_err = 0.0
    sp_loss = 0.0
    in_batch = 0
    per_item = gsel.shape[0] > 1
    per_centre = cweights.shape[0] > 1
    gs, ns = gsel[0], nsel[0]
    for it in range(order.shape[0]):
        k = order[it]
        if per_item:
            gs, ns = gsel[it], nsel[it]
        if k < n_sup:
            x = X[sup_rows[k]]
            f = _forward(W, x, gs, ns, M, sig[0], g[0])
            r = f - sup_t[k]
            sq_err += r * r
            _backward(G, x, gs, ns, M, sig[0], g[0], r)
            if spatial:
                _backward(Gsup, x, gs, ns, M, sig[0], g[0], r)
        else:
            c = k - n_sup
            rows = nbr_rows[c]
            cw = cweights[c] if per_centre else cweights[0]
            for p in range(npx):
                f9[p] = _forward(W, Xn[rows[p]], gs, ns, M, sig[p], g[p])
            coef[:] = 0.0
            for q in range(stencils.shape[0]):
                resp = 0.0
                for p in range(npx):
                    resp += stencils[q, p] * f9[p]
                if penalty == 0:
                    d = 1.0 if resp > _DEAD_ZONE else (-1.0 if resp < -_DEAD_ZONE else 0.0)
                    sp_loss += cw[q] * d * resp
                else:
                    sp_loss += cw[q] * 0.5 * resp * resp
                    d = resp
                for p in range(npx):
                    coef[p] += spatial_weight * cw[q] * d * stencils[q, p]
            for p in range(npx):
                if coef[p] != 0.0:
                    _backward(G, Xn[rows[p]], gs, ns, M, sig[p], g[p], coef[p])
        in_batch += 1
        if in_batch == batch_size or it == order.shape[0] - 1:
            sup_sq, sp_sq = _step(W, V, G, Gsup, gs, ns, M, lr, momentum, in_batch * weight_decay, spatial)
            sup_norm += np.sqrt(sup_sq)
            sp_norm += np.sqrt(sp_sq)
            in_batch = 0
    return sq_err, sp_loss, sup_norm, sp_norm


def minibatch_epoch(W, V, X, sup_rows, sup_t, order, M, lr, momentum, batch_size, weight_decay=0.0):
    """:func:`sgd_epoch` without spatial items or dropout, by batched matrix products.

    ``order`` must hold supervised items only. ``X`` may be float16 or float32 (each batch is
    converted to float32). Updates ``W`` and ``V`` in place; returns sum (f - t)^2.
    """
    d = X.shape[1]
    N = W.shape[0] // M
    sq_err = 0.0
    for s in range(0, len(order), batch_size):
        items = order[s:s + batch_size]
        Xb = X[sup_rows[items]].astype(np.float32, copy=False)
        z = Xb @ W[:, :d].T
        z += W[:, d]
        np.clip(z, -_ZCLIP, _ZCLIP, out=z)
        sig = (1.0 / (1.0 + np.exp(-z))).reshape(len(items), N, M)
        g = sig.prod(axis=2)
        om = 1.0 - g
        r = 1.0 - om.prod(axis=1) - sup_t[items]
        sq_err += float(r @ r)
        # prod_{l != i} (1 - g_l) as prefix x suffix products: no division by (1 - g_i).
        ones = np.ones((len(items), 1), dtype=om.dtype)
        before = np.cumprod(np.concatenate([ones, om[:, :-1]], axis=1), axis=1)
        after = np.cumprod(np.concatenate([ones, om[:, :0:-1]], axis=1), axis=1)[:, ::-1]
        delta = ((r[:, None] * before * after * g)[:, :, None] * (1.0 - sig)).reshape(len(items), -1)
        delta = delta.astype(np.float32, copy=False)
        V *= momentum
        V[:, :d] -= delta.T @ Xb
        V[:, d] -= delta.sum(axis=0)
        if weight_decay:
            V[:, :d] -= (len(items) * weight_decay) * W[:, :d]
        W += lr * V
    return sq_err
