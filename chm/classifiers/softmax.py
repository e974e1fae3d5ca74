"""The K-class pixel classifier: one hidden layer shared by all classes and a softmax output.

A one-vs-rest cascade would train K binary networks per (stage, level) and feed the next
classifiers K maps per level, so cost would grow with K twice over. Here one network gives all
K probabilities: the hidden layer (``n_hidden`` ReLU units, the bulk of the work: d inputs
each) is shared, and only the small output layer (K x n_hidden) grows with K. With
``n_hidden=0`` it is multinomial logistic regression.

Objective, per SGD step (mean over the step's items, as the binary LDNN's ``alpha``)::

    E = mean_i CE(p(x_i), t_i) + alpha * mean_c E_U(centre c) + weight_decay / 2 * ||W||^2

with CE the cross-entropy against the one-hot (or, for coarse levels under mean label pooling,
soft) targets and E_U a :class:`chm.losses.SpatialLoss` on the K-channel probability vector image
(paper eq. 8: the TV of each class channel, summed): for the 3 x 3 neighbourhood P (9, K) of a
centre, E_U = sum_f w_f sum_k rho(s_f . P[:, k]), whose derivative with respect to P is paper
eq. 15 per channel; it reaches the logits through the softmax Jacobian. Weight decay spares the
biases. Everything is batched matrix algebra (BLAS), so there is no numba kernel here.
"""

import numpy as np

from ..utils._blas import one_blas_thread
from ._rows import predict_rows
from ..base import Estimator
from ..semi.losses import DEAD_ZONE, get_spatial_loss
from ..utils._validation import check_random_state

__all__ = ["SoftmaxMLP", "loss_and_gradient", "forward"]

# Centre rows drawn at once are bounded by this many floats, so a draw never takes gigabytes.
_DRAW_FLOATS = 32_000_000


def forward(layers, X):
    """Logits of rows ``X`` and the activations of every layer (input included)."""
    acts = [X]
    a = X
    for i, W in enumerate(layers):
        z = a @ W[:, :-1].T
        z += W[:, -1]
        if i < len(layers) - 1:
            a = np.maximum(z, 0)
            acts.append(a)
        else:
            a = z
    return a, acts


def softmax(z):
    """Row-wise softmax of logits (n, K), in place-safe (a new array)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _spatial_terms(P, stencils, penalty, cweights):
    """Loss and dE/dP of neighbourhoods P (m, 9, K): sum over centres, stencils and channels."""
    R = np.einsum("fp,mpk->mfk", stencils, P)
    w = np.ones((len(P), len(stencils))) if cweights is None else cweights
    if penalty == "l1":
        rho = np.where(np.abs(R) > DEAD_ZONE, np.abs(R), 0.0)
        drho = np.where(np.abs(R) > DEAD_ZONE, np.sign(R), 0.0)
    else:
        rho, drho = 0.5 * R * R, R
    loss = float(np.sum(w[:, :, None] * rho))
    dP = np.einsum("mfk,fp->mpk", w[:, :, None] * drho, stencils)
    return loss, dP


def _layer_gradient(delta, a, like):
    """Gradient of a layer like ``like`` (bias last) from its outputs' ``delta`` and inputs ``a``."""
    g = np.empty_like(like)
    g[:, :-1] = delta.T @ a
    g[:, -1] = delta.sum(axis=0)
    return g


def loss_and_gradient(layers, X_sup, T_sup, X_nbr=None, loss=None, cweights=None, alpha=0.0, weight_decay=0.0,
                      return_norms=False):
    """Objective of one SGD step (module docstring) and its gradient with respect to ``layers``.

    Parameters
    ----------
    layers : list of ndarray, shape (out, in + 1)
        Weights with the bias in the last column.
    X_sup : ndarray, shape (n, d)
        Labelled rows.
    T_sup : ndarray, shape (n, K)
        Their target distributions (one-hot or soft).
    X_nbr : ndarray, shape (9 m, d), optional
        Rows of the 3 x 3 neighbourhoods of m spatial-loss centres, centre by centre, row-major.
    loss : chm.losses.SpatialLoss, optional
    cweights : ndarray, shape (m, n_filters), optional
        Per-centre stencil weights (contrast-sensitive losses); None = 1.
    alpha, weight_decay : float
    return_norms : bool
        Also return the norms of the two terms' gradients.

    Returns
    -------
    (supervised loss, spatial loss, total), list of gradients like ``layers``
    norms : (float, float)
        Only with ``return_norms``: the norms (over every layer) of the gradients of the
        supervised and of the spatial term (``alpha`` included; weight decay in neither).
    """
    n = len(X_sup)
    spatial = X_nbr is not None and alpha > 0 and len(X_nbr)
    X = np.concatenate([X_sup, X_nbr]) if spatial else X_sup
    logits, acts = forward(layers, X)
    P = softmax(logits)
    Ps = P[:n]
    sup = -float(np.sum(T_sup * np.log(np.maximum(Ps, 1e-30)))) / n
    dZ = np.empty_like(P)
    dZ[:n] = (Ps - T_sup) / n
    sp = 0.0
    if spatial:
        m = len(X_nbr) // 9
        P9 = P[n:].reshape(m, 9, -1)
        sp, dP = _spatial_terms(P9, loss.flat_stencils, loss.penalty, cweights)
        sp *= alpha / m
        dP *= alpha / m
        # Softmax Jacobian: dE/dz_k = p_k (dE/dp_k - sum_j p_j dE/dp_j).
        dZ[n:] = (P9 * (dP - np.sum(dP * P9, axis=2, keepdims=True))).reshape(m * 9, -1)
    reg = 0.5 * weight_decay * sum(float(np.sum(W[:, :-1] ** 2)) for W in layers)
    grads = [None] * len(layers)
    sq = [0.0, 0.0]
    delta = dZ
    for i in range(len(layers) - 1, -1, -1):
        a = acts[i]
        g = _layer_gradient(delta, a, layers[i])
        if return_norms:  # before the decay, which is neither term's
            # the supervised rows' part once more (n of the n + 9 m rows): g itself stays as it was
            g_sup = _layer_gradient(delta[:n], a[:n], layers[i]) if spatial else g
            sq[0] += float(np.sum(np.square(g_sup, dtype=np.float64)))
            if spatial:
                sq[1] += float(np.sum(np.square(g - g_sup, dtype=np.float64)))
        g[:, :-1] += weight_decay * layers[i][:, :-1]
        grads[i] = g
        if i:
            delta = (delta @ layers[i][:, :-1]) * (acts[i] > 0)
    if return_norms:
        return (sup, sp, sup + sp + reg), grads, (float(np.sqrt(sq[0])), float(np.sqrt(sq[1])))
    return (sup, sp, sup + sp + reg), grads


class SoftmaxMLP(Estimator):
    """K-class pixel classifier: ReLU hidden layer shared by all classes, softmax output.

    Parameters
    ----------
    n_classes : int
        K >= 2.
    n_hidden : int
        Hidden units (0: multinomial logistic regression).
    epochs : int
        Passes over the labelled rows.
    learning_rate, momentum : float
        Momentum SGD on the mean gradient of each mini-batch (v <- momentum v - lr G; w <- w + v).
    lr_schedule : {"linear", "constant"}
        "linear": the learning rate falls linearly from ``learning_rate`` in the first epoch to a
        tenth of it in the last, so the last epochs settle instead of jumping between minibatch
        noises; "constant": the same rate throughout.
    batch_size : int
        Labelled rows per step; each step also takes ``spatial_rate`` x ``batch_size`` centres.
    spatial_rate : float
        Spatial-loss centres per labelled row and epoch.
    weight_decay : float
        L2 penalty ``weight_decay / 2 ||w||^2`` on the weights (not the biases).
    random_state : int, Generator or None

    Attributes
    ----------
    layers_ : list of ndarray
        float32 weights of each layer, bias in the last column.
    loss_curve_ : list of (float, float)
        Per epoch: the mean cross-entropy of the labelled rows and the mean spatial loss.
    spatial_share_ : float or None
        The spatial loss's share of the gradient in the last epoch, as
        :attr:`chm.classifiers.LDNN.spatial_share_`: ``sum ||g_sp|| / (sum ||g_sup|| + sum ||g_sp||)``
        over its steps, with the norms of a step's gradients of the two terms
        (:func:`loss_and_gradient`). None when the fit had no spatial loss.
    """

    def __init__(self, n_classes=3, n_hidden=36, epochs=15, learning_rate=0.05, momentum=0.9, lr_schedule="linear",
                 batch_size=100, spatial_rate=4.0, weight_decay=0.0, random_state=None):
        self.n_classes = n_classes
        self.n_hidden = n_hidden
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.spatial_rate = spatial_rate
        self.weight_decay = weight_decay
        self.random_state = random_state

    def _check_params(self):
        for name, lo in (("n_classes", 2), ("n_hidden", 0), ("epochs", 1), ("batch_size", 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if not (self.learning_rate > 0 and 0 <= self.momentum < 1):
            raise ValueError("learning_rate must be > 0 and momentum in [0, 1)")
        if self.lr_schedule not in ("linear", "constant"):
            raise ValueError(f"lr_schedule must be 'linear' or 'constant', got {self.lr_schedule!r}")
        for name in ("spatial_rate", "weight_decay"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")

    def _init_layers(self, d, rng):
        sizes = [d] + ([self.n_hidden] if self.n_hidden else []) + [self.n_classes]
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            W = np.zeros((fan_out, fan_in + 1), dtype=np.float32)
            W[:, :-1] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_out, fan_in))  # He
            layers.append(W)
        return layers

    def fit(self, X, y, spatial=None, spatial_loss=None, alpha=0.0, progress=None, soft_targets=None):
        """Train on rows ``X`` with classes ``y`` (-1 = unlabelled row).

        Parameters
        ----------
        X : ndarray, shape (n_rows, d)
            float32 or float16 (converted per mini-batch).
        y : ndarray of int, shape (n_rows,)
        spatial : sampler, optional
            ``spatial.draw(rng, n)`` -> (rows (9 n, d), neighbourhoods (n, 9) indices into rows,
            per-centre stencil weights or None); see :mod:`chm.sampling`.
        spatial_loss : str or SpatialLoss, optional
            Used when ``alpha > 0`` (default "tv").
        alpha : float
            Weight of the mean spatial loss against the mean cross-entropy.
        progress : callable(epoch, cross_entropy, spatial), optional
        soft_targets : ndarray, shape (n_rows, K), optional
            Class fractions of each labelled row (e.g. of a coarse pixel's block).

        Returns
        -------
        self
        """
        self._check_params()
        X = np.asarray(X)
        y = np.asarray(y)
        K = self.n_classes
        if X.ndim != 2 or y.shape != (len(X),):
            raise ValueError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
        if not all(np.isfinite(X[s:s + 65536]).all() for s in range(0, len(X), 65536)):
            raise ValueError("X contains NaN or infinite values")
        sup = np.flatnonzero(y >= 0)
        if len(sup) == 0:
            raise ValueError("no labelled row (all y == -1)")
        if y.max() >= K:
            raise ValueError(f"y holds class {int(y.max())} but n_classes={K}")
        if len(np.unique(y[sup])) < 2:
            raise ValueError(f"only one class among the labelled rows ({np.unique(y[sup])}); need two or more")
        if soft_targets is None:
            T = np.eye(K, dtype=np.float32)[y[sup]]
        else:
            T = np.asarray(soft_targets, dtype=np.float32)
            if T.shape != (len(X), K):
                raise ValueError(f"soft_targets must have shape {(len(X), K)}, got {T.shape}")
            T = T[sup]
            if not (np.isfinite(T).all() and T.min() >= 0 and np.allclose(T.sum(axis=1), 1, atol=1e-3)):
                raise ValueError("soft_targets must be class distributions (>= 0, rows summing to 1)")
        rng = check_random_state(self.random_state)
        self.layers_ = self._init_layers(X.shape[1], rng)
        self.n_features_in_ = X.shape[1]
        loss = get_spatial_loss(spatial_loss or "tv")
        use_spatial = alpha > 0 and spatial is not None and self.spatial_rate > 0
        per_batch = int(round(self.spatial_rate * self.batch_size)) if use_spatial else 0
        V = [np.zeros_like(W) for W in self.layers_]
        self.loss_curve_ = []
        B = self.batch_size
        with one_blas_thread():  # same model for any number of BLAS threads
            for epoch in range(self.epochs):
                lr = self.learning_rate
                if self.lr_schedule == "linear" and self.epochs > 1:
                    lr *= 1.0 - 0.9 * epoch / (self.epochs - 1)
                order = rng.permutation(len(sup))
                batches = [order[s:s + B] for s in range(0, len(order), B)]
                chunk = max(1, _DRAW_FLOATS // max(1, 9 * per_batch * X.shape[1])) if per_batch else len(batches)
                tot_sup = tot_sp = sup_norm = sp_norm = 0.0
                for c0 in range(0, len(batches), chunk):
                    group = batches[c0:c0 + chunk]
                    if per_batch:
                        rows, nbr, cw = spatial.draw(rng, per_batch * len(group))
                    for j, items in enumerate(group):
                        Xb = X[sup[items]].astype(np.float32, copy=False)
                        Xn = cwb = None
                        if per_batch:
                            sel = nbr[j * per_batch:(j + 1) * per_batch]
                            Xn = np.asarray(rows[sel.ravel()], dtype=np.float32)
                            cwb = None if cw is None else cw[j * per_batch:(j + 1) * per_batch]
                        (ls, lsp, _), grads, (g_sup, g_sp) = loss_and_gradient(
                            self.layers_, Xb, T[items], Xn, loss, cwb, alpha, self.weight_decay, return_norms=True)
                        sup_norm += g_sup
                        sp_norm += g_sp
                        tot_sup += ls * len(items)
                        tot_sp += lsp * len(items)
                        for W, v, g in zip(self.layers_, V, grads):
                            v *= self.momentum
                            v -= lr * g
                            W += v
                ce, sp = tot_sup / len(sup), tot_sp / len(sup)
                self.loss_curve_.append((ce, sp))
                if progress is not None:
                    progress(epoch, ce, sp)
        # the last epoch's, when the fit has settled (nan: no gradient at all to share)
        self.spatial_share_ = (None if not per_batch else sp_norm / (sup_norm + sp_norm) if sup_norm + sp_norm > 0
                               else float("nan"))
        if not all(np.isfinite(W).all() for W in self.layers_):
            raise FloatingPointError("training diverged (non-finite weights); lower learning_rate")
        return self

    def spatial_centres(self, n_labelled):
        """Spatial-loss centres a fit on ``n_labelled`` labelled rows draws (with ``alpha > 0``):
        ``spatial_rate`` x ``batch_size`` per mini-batch, so a sampler can draw them all beforehand."""
        per_batch = int(round(self.spatial_rate * self.batch_size)) if self.spatial_rate > 0 else 0
        return self.epochs * per_batch * -(-n_labelled // self.batch_size)

    def predict_proba(self, X, chunk=4096, n_threads=1):
        """Class probabilities of every row of ``X`` -> (n, K) float32.

        ``X`` is an (n, d) array or a list of (n, d_k) column blocks whose widths add up to d,
        as in :meth:`chm.classifiers.LDNN.predict_proba` (a block may be a
        :class:`features.StencilRows`; ``chunk`` rows at a time on ``n_threads`` threads).
        """
        def head(z):
            if len(self.layers_) > 1:
                z = forward(self.layers_[1:], np.maximum(z, 0))[0]
            return softmax(z)

        return predict_rows(X, self.layers_[0], head, width=self.n_classes, chunk=chunk, n_threads=n_threads)

    def fold_affine(self, offset, scale):
        """Make the weights act on raw rows x where they were trained on (x - offset) / scale."""
        W = self.layers_[0].astype(np.float64)
        w = W[:, :-1] / scale
        b = W[:, -1] - w @ offset
        self.layers_[0] = np.ascontiguousarray(np.concatenate([w, b[:, None]], axis=1), dtype=np.float32)
        return self

    def to_state(self):
        """(JSON-able parameters, {name: array}) for model files."""
        return ({"type": type(self).__name__, "params": self.get_params(deep=False)},
                {f"layer{i}": W for i, W in enumerate(self.layers_)})

    @classmethod
    def from_state(cls, meta, arrays):
        clf = cls(**meta["params"])
        clf.layers_ = [np.ascontiguousarray(arrays[f"layer{i}"], dtype=np.float32)
                       for i in range(2 if clf.n_hidden else 1)]
        clf.n_features_in_ = clf.layers_[0].shape[1] - 1
        return clf
