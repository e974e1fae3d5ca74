"""Numpy reference of the per-pixel SGD kernel of :mod:`chm.classifiers._sgd`."""

import numpy as np

from chm.classifiers._sgd import _ZCLIP
from chm.semi.losses import DEAD_ZONE as _DEAD_ZONE


def sgd_epoch_reference(W, V, X, sup_rows, sup_t, Xn, nbr_rows, cweights, stencils, penalty, spatial_weight,
                        weight_decay, order, gsel, nsel, M, lr, momentum, batch_size):
    """Plain numpy version of :func:`chm.classifiers._sgd.sgd_epoch` (same arguments, same result
    up to rounding)."""
    n_sup = len(sup_rows)
    G = np.zeros(W.shape)
    Gsup = np.zeros(W.shape)  # a step's supervised items' part of G
    spatial = bool(np.any(np.asarray(order) >= n_sup))
    sq_err = sp_loss = sup_norm = sp_norm = 0.0
    in_batch = 0
    per_item = len(gsel) > 1
    gs, ns = gsel[0], nsel[0]

    def units(gs, ns):
        return (gs[:, None] * M + ns[None, :]).ravel()

    def fwd(x, u):
        z = np.clip(W[u, :-1].astype(np.float64) @ x + W[u, -1], -_ZCLIP, _ZCLIP)
        sig = (1.0 / (1.0 + np.exp(-z))).reshape(len(gs), len(ns))
        gg = sig.prod(axis=1)
        return 1.0 - np.prod(1.0 - gg), sig, gg

    def bwd(G, x, u, sig, gg, c):
        others = np.array([np.prod(np.delete(1.0 - gg, a)) for a in range(len(gg))])
        delta = (c * others * gg)[:, None] * (1.0 - sig)
        G[u] += np.outer(delta.ravel(), np.append(x, 1.0))

    for it, k in enumerate(order):
        if per_item:
            gs, ns = gsel[it], nsel[it]
        u = units(gs, ns)
        if k < n_sup:
            x = X[sup_rows[k]].astype(np.float64)
            f, sig, gg = fwd(x, u)
            sq_err += (f - sup_t[k]) ** 2
            bwd(G, x, u, sig, gg, f - sup_t[k])
            bwd(Gsup, x, u, sig, gg, f - sup_t[k])
        else:
            c = k - n_sup
            cw = cweights[c] if len(cweights) > 1 else cweights[0]
            xs = Xn[nbr_rows[c]].astype(np.float64)
            outs = [fwd(x, u) for x in xs]
            f9 = np.array([o[0] for o in outs])
            resp = stencils @ f9
            if penalty == 0:
                d = np.where(np.abs(resp) > _DEAD_ZONE, np.sign(resp), 0.0)
                sp_loss += (cw * d * resp).sum()
            else:
                sp_loss += (cw * 0.5 * resp ** 2).sum()
                d = resp
            coef = spatial_weight * ((cw * d) @ stencils)
            for x, (_, sig, gg), c in zip(xs, outs, coef):
                if c != 0.0:
                    bwd(G, x, u, sig, gg, c)
        in_batch += 1
        if in_batch == batch_size or it == len(order) - 1:
            if spatial:
                sup_norm += np.linalg.norm(Gsup[u])
                sp_norm += np.linalg.norm(G[u] - Gsup[u])
            Gsup[u] = 0.0
            G[u, :-1] += in_batch * weight_decay * W[u, :-1]
            V[u] = momentum * V[u] - G[u]
            W[u] += (lr * V[u]).astype(W.dtype)
            G[u] = 0.0
            in_batch = 0
    return sq_err, sp_loss, sup_norm, sp_norm
