"""Pixel classifiers of the cascade: the LDNN and logistic regression.

Both share one small interface::

    clf.fit(X, y, spatial=None, spatial_loss=None, alpha=0.0) -> clf
    clf.predict_proba(X) -> (n,) float32 P(foreground)
    clf.fold_affine(offset, scale)     # absorb a feature normalisation into the weights
    clf.to_state() / Classifier.from_state(state)

``X`` holds the labelled rows (``y`` their classes, -1 for rows to skip); ``spatial`` draws the
3 x 3 neighbourhoods of fresh spatial-loss centres for every epoch (``chm.sampling``).
"""

import numpy as np

from . import _sgd
from ..utils._blas import one_blas_thread
from ._rows import predict_rows
from ..base import Estimator
from ..semi.losses import get_spatial_loss
from ..utils._validation import check_random_state

__all__ = ["LDNN", "LogisticRegression", "kmeans"]


def kmeans(X, k, rng, n_iter=50):
    """Lloyd's k-means with k-means++ seeding; empty clusters are re-seeded at the farthest point.

    Parameters
    ----------
    X : ndarray, shape (n, d)
    k : int
        Number of clusters, ``1 <= k <= n``.
    rng : numpy.random.Generator

    Returns
    -------
    centres : ndarray, shape (k, d)
    """
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n < k:
        raise ValueError(f"k-means needs at least {k} samples, got {n}")
    sq = np.einsum("ij,ij->i", X, X)
    centres = np.empty((k, X.shape[1]))
    centres[0] = X[rng.integers(n)]
    d2 = np.maximum(sq - 2 * X @ centres[0] + centres[0] @ centres[0], 0)
    for c in range(1, k):
        total = d2.sum()
        idx = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centres[c] = X[idx]
        d2 = np.minimum(d2, np.maximum(sq - 2 * X @ centres[c] + centres[c] @ centres[c], 0))
    labels = None
    for _ in range(n_iter):
        # ||x||^2 - 2 x.c + ||c||^2 can go slightly negative: clamp (chm-reference 7.8).
        dist = np.maximum(sq[:, None] - 2 * X @ centres.T + np.einsum("ij,ij->i", centres, centres), 0)
        new = dist.argmin(axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            members = labels == c
            if members.any():
                centres[c] = X[members].mean(axis=0)
            else:
                far = dist.min(axis=1).argmax()
                centres[c] = X[far]
                labels[far] = c
    return centres


class LDNN(Estimator):
    """Logistic disjunctive normal network: f = 1 - prod_i (1 - prod_j sigma_ij).

    Parameters
    ----------
    n_groups, n_nodes : int
        N groups (OR) of M nodes (AND). The original CHM uses 10 x 20 at full resolution
        and 24 x 24 with dropout at coarse levels.
    epochs : int
        Passes over the supervised rows.
    learning_rate, momentum : float
        Momentum SGD step (v <- momentum v - G; w <- w + learning_rate v).
    batch_size : int
        Items whose gradients are summed per step (100 at level 0, 1 with dropout).
    dropout : bool
        Train each item on a random half of the groups and of the node indices, and evaluate
        with the geometric compensation f = 1 - sqrt(prod_i (1 - sqrt(prod_j sigma_ij))).
    targets : (float, float)
        Regression targets of class 0 and class 1.
    spatial_rate : float
        Spatial-loss centres per supervised item and epoch (the loss itself is scaled so that
        ``alpha`` weighs the *mean* spatial loss per centre against the *mean* supervised loss
        per labelled pixel, whatever this rate).
    weight_decay : float
        L2 (Tikhonov) penalty ``weight_decay / 2 ||w||^2`` on the weights (not the biases), added
        to the mean supervised loss per labelled pixel.
    random_state : int, Generator or None

    Attributes
    ----------
    W_ : ndarray, shape (n_groups * n_nodes, n_features_in_ + 1)
        float32 weights, bias last.
    loss_curve_ : list of (float, float)
        Per epoch: the RMS error of the labelled rows and the mean spatial loss per centre.
    spatial_share_ : float or None
        The spatial loss's share of the gradient in the last epoch,
        ``sum ||g_sp|| / (sum ||g_sup|| + sum ||g_sp||)`` over its SGD steps, where g_sup and
        g_sp are the gradients of a step's supervised items and of its spatial items (``alpha``
        included, weight decay in neither) with respect to the weights: 0 when the spatial loss
        does not move the weights, 1 when it alone does. Norms per step, not of the epoch's
        summed gradients: once the fit settles those balance, near 0.5 whatever ``alpha``
        (a logistic fit on ``make_shapes``, 10 steps per epoch: 0.52-0.55 for alpha 0.1-1,
        where the per-step share reads 0.13-0.48). For the same reason a fit whose epoch is
        one step reads about 0.5. None when the fit had no spatial loss.
    """

    def __init__(self, n_groups=10, n_nodes=20, epochs=15, learning_rate=0.01, momentum=0.5,
                 batch_size=100, dropout=False, targets=(0.1, 0.9), spatial_rate=4.0, weight_decay=0.0,
                 random_state=None):
        self.n_groups = n_groups
        self.n_nodes = n_nodes
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.dropout = dropout
        self.targets = targets
        self.spatial_rate = spatial_rate
        self.weight_decay = weight_decay
        self.random_state = random_state

    # -- training -------------------------------------------------------------------------
    def _check_params(self):
        for name in ("n_groups", "n_nodes", "epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.dropout and self.batch_size != 1:
            raise ValueError("dropout training is per sample: use batch_size=1")
        if self.dropout and (self.n_groups < 2 or self.n_nodes < 2):
            raise ValueError("dropout needs at least 2 groups and 2 nodes")
        if not (self.learning_rate > 0 and 0 <= self.momentum < 1):
            raise ValueError("learning_rate must be > 0 and momentum in [0, 1)")
        if self.spatial_rate < 0:
            raise ValueError(f"spatial_rate must be >= 0, got {self.spatial_rate!r}")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")

    def _init_weights(self, X, rows, y, rng):
        """k-means init (chm-reference 3.2): group i <- positive centre i, node j <- negative centre j.

        ``rows`` are the labelled rows of ``X`` and ``y`` their classes.
        """
        N, M = self.n_groups, self.n_nodes
        pos, neg = rows[y == 1], rows[y == 0]
        # The original clusters every 10th sample; do so only when there are plenty.
        pos = X[pos[:: 10] if len(pos) > 100 * N else pos]
        neg = X[neg[:: 10] if len(neg) > 100 * M else neg]
        if len(pos) < N or len(neg) < M:
            raise ValueError(
                f"not enough labelled pixels to initialise a {N} x {M} LDNN: {len(pos)} foreground "
                f"and {len(neg)} background (need >= {N} and >= {M}); label more pixels, "
                "use fewer levels or a smaller network")
        cp, cn = kmeans(pos, N, rng), kmeans(neg, M, rng)
        diff = cp[:, None, :] - cn[None, :, :]
        norm = np.linalg.norm(diff, axis=2, keepdims=True)
        w = diff / np.where(norm > 0, norm, 1.0)
        b = -np.einsum("ijk,ijk->ij", w, (cp[:, None, :] + cn[None, :, :]) / 2)
        W = np.concatenate([w, b[:, :, None]], axis=2).reshape(N * M, -1)
        return np.ascontiguousarray(W, dtype=np.float32)

    def fit(self, X, y, spatial=None, spatial_loss=None, alpha=0.0, progress=None, soft_targets=None):
        """Train on rows ``X`` with classes ``y`` (-1 = unlabelled row).

        Parameters
        ----------
        X : ndarray, shape (n_rows, d)
            float32, or float16 to halve the memory of large training sets.
        y : ndarray of int, shape (n_rows,)
        spatial : sampler, optional
            Draws the spatial-loss centres of every epoch: ``spatial.draw(rng, n)`` returns
            (rows (m, d) float32, neighbourhoods (n, 9) indices into rows, per-centre stencil
            weights (n, n_filters) or None); see :mod:`chm.sampling`.
        spatial_loss : str or SpatialLoss, optional
            Used when ``alpha > 0`` (default "tv").
        alpha : float
            Weight of the mean spatial loss against the mean supervised loss.
        progress : callable(epoch, sq_err, spatial), optional
        soft_targets : ndarray of float, shape (n_rows,), optional
            Foreground fraction in [0, 1] of each labelled row (e.g. of a coarse pixel's block):
            the row regresses t0 + (t1 - t0) * fraction instead of its class's target. ``y``
            still picks the k-means initialisation's classes. Unlabelled rows are ignored.

        Returns
        -------
        self
        """
        self._check_params()
        X = np.asarray(X)
        X = np.ascontiguousarray(X, dtype=np.float16 if X.dtype == np.float16 else np.float32)
        y = np.asarray(y)
        if X.ndim != 2 or y.shape != (len(X),):
            raise ValueError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
        if not all(np.isfinite(X[s:s + 65536]).all() for s in range(0, len(X), 65536)):  # no n x d mask
            raise ValueError("X contains NaN or infinite values")
        rng = check_random_state(self.random_state)
        sup_rows = np.flatnonzero(y >= 0)
        if len(sup_rows) == 0:
            raise ValueError("no labelled row (all y == -1)")
        if len(np.unique(y[sup_rows])) < 2:
            raise ValueError(f"only one class among the labelled rows ({np.unique(y[sup_rows])}); need both 0 and 1")
        t0, t1 = self.targets
        if soft_targets is None:
            sup_t = np.where(y[sup_rows] == 1, t1, t0).astype(np.float64)
        else:
            soft = np.asarray(soft_targets, dtype=np.float64)
            if soft.shape != y.shape:
                raise ValueError(f"soft_targets must have the shape of y {y.shape}, got {soft.shape}")
            soft = soft[sup_rows]
            if not (np.isfinite(soft).all() and soft.min() >= 0 and soft.max() <= 1):
                raise ValueError("soft_targets must lie in [0, 1] on every labelled row")
            sup_t = t0 + (t1 - t0) * soft
        self.W_ = self._init_weights(X, sup_rows, y[sup_rows], rng)
        self.n_features_in_ = X.shape[1]
        N, M = self.n_groups, self.n_nodes

        use_spatial = alpha > 0 and spatial is not None and self.spatial_rate > 0
        if use_spatial:
            loss = get_spatial_loss(spatial_loss or "tv")
            stencils, penalty = loss.flat_stencils, loss.penalty_code
            n_sp = max(1, int(round(self.spatial_rate * len(sup_rows))))
            # alpha weighs mean spatial loss vs mean supervised loss: rescale per item.
            spatial_weight = float(alpha) * len(sup_rows) / n_sp
        else:
            stencils, penalty, n_sp, spatial_weight = np.zeros((1, 9)), 0, 0, 0.0
        # Per item, so that an epoch adds n_sup x weight_decay x W, as the n_sup supervised items
        # add n_sup x the gradient of the mean supervised loss.
        decay = float(self.weight_decay) * len(sup_rows) / (len(sup_rows) + n_sp)

        # Plain mini-batches go through BLAS; the per-item kernel handles spatial items and dropout.
        batched = n_sp == 0 and not self.dropout and self.batch_size > 1
        if not batched:
            X = X.astype(np.float32, copy=False)
        V = np.zeros_like(self.W_)
        self.loss_curve_ = []
        for epoch in range(self.epochs):
            order, gsel, nsel = self._schedule(rng, len(sup_rows), n_sp)
            if batched:
                # 100-row GEMMs gain nothing from BLAS threads, and threads that several fits share
                # thrash (measured: 400 us per row instead of 11 with two fits on 2 cores).
                with one_blas_thread():
                    sq = _sgd.minibatch_epoch(self.W_, V, X, sup_rows, sup_t, order, M, float(self.learning_rate),
                                              float(self.momentum), int(self.batch_size), decay)
                sp = 0.0
            else:
                Xn, nbr, cw = _draw_centres(spatial, rng, n_sp, X.shape[1], len(stencils))
                sq, sp, sup_norm, sp_norm = _sgd.sgd_epoch(
                    self.W_, V, X, sup_rows, sup_t, Xn, nbr, cw, stencils, penalty, spatial_weight, decay, order,
                    gsel, nsel, M, float(self.learning_rate), float(self.momentum), int(self.batch_size))
                del Xn, nbr, cw  # before the next epoch draws its own
            rms = float(np.sqrt(sq / len(sup_rows)))
            mean_sp = float(sp / n_sp) if n_sp else 0.0
            self.loss_curve_.append((rms, mean_sp))
            if progress is not None:
                progress(epoch, rms, mean_sp)
        # the last epoch's, when the fit has settled (nan: no gradient at all to share)
        self.spatial_share_ = (None if not n_sp else sp_norm / (sup_norm + sp_norm) if sup_norm + sp_norm > 0
                               else float("nan"))
        if not np.isfinite(self.W_).all():
            raise FloatingPointError("LDNN training diverged (non-finite weights); lower learning_rate")
        return self

    def spatial_centres(self, n_labelled):
        """Spatial-loss centres a fit on ``n_labelled`` labelled rows draws (with ``alpha > 0``):
        ``spatial_rate`` x ``n_labelled`` per epoch, so a sampler can draw them all beforehand."""
        if self.spatial_rate <= 0:
            return 0
        return self.epochs * max(1, int(round(self.spatial_rate * n_labelled)))

    def _schedule(self, rng, n_sup, n_sp):
        """Item order and dropout subsets of one epoch."""
        order = rng.permutation(n_sup + n_sp).astype(np.int64)
        N, M = self.n_groups, self.n_nodes
        if self.dropout:
            n_items = len(order)
            gsel = np.argsort(rng.random((n_items, N)), axis=1)[:, : N // 2].astype(np.int64)
            nsel = np.argsort(rng.random((n_items, M)), axis=1)[:, : M // 2].astype(np.int64)
        else:
            gsel = np.arange(N, dtype=np.int64)[None, :]
            nsel = np.arange(M, dtype=np.int64)[None, :]
        return order, gsel, nsel

    # -- inference ------------------------------------------------------------------------
    def predict_proba(self, X, chunk=4096, n_threads=1):
        """P(foreground) for every row of ``X`` -> (n,) float32.

        ``X`` is an (n, d) array, or a list of (n, d_k) column blocks whose widths add up to d
        (e.g. filter-bank features and context features), which saves concatenating them; a
        block may also be a :class:`features.StencilRows`, whose rows are made ``chunk`` at a
        time (small enough to stay in cache between the gather and the product). The chunks run
        on ``n_threads`` threads, each product on one BLAS thread: the same result for any
        ``n_threads`` (:func:`chm._rows.predict_rows`).
        """
        N, M = self.n_groups, self.n_nodes

        def head(z):
            # In place, and the products as N - 1 and M - 1 multiplications of column slices:
            # the same numbers as (1 / (1 + exp(-z))).reshape(-1, N, M).prod(axis=2) etc. (numpy
            # reduces a product in the same order), in a third of the time.
            np.clip(z, -_sgd._ZCLIP, _sgd._ZCLIP, out=z)
            np.negative(z, out=z)
            np.exp(z, out=z)
            z += 1.0
            np.reciprocal(z, out=z)
            sig = z.reshape(-1, N, M)
            g = sig[:, :, 0].copy()
            for b in range(1, M):
                g *= sig[:, :, b]
            if self.dropout:
                np.sqrt(g, out=g)
            np.subtract(1.0, g, out=g)
            q = g[:, 0].copy()
            for a in range(1, N):
                q *= g[:, a]
            if self.dropout:
                np.sqrt(q, out=q)
            return 1.0 - q

        return predict_rows(X, self.W_, head, chunk=chunk, n_threads=n_threads)

    def fold_affine(self, offset, scale):
        """Make the weights act on raw rows x where they were trained on (x - offset) / scale."""
        W = self.W_.astype(np.float64)
        w = W[:, :-1] / scale
        b = W[:, -1] - w @ offset
        self.W_ = np.ascontiguousarray(np.concatenate([w, b[:, None]], axis=1), dtype=np.float32)
        return self

    # -- persistence ----------------------------------------------------------------------
    def to_state(self):
        """(JSON-able parameters, {name: array}) for model files."""
        return {"type": type(self).__name__, "params": self.get_params(deep=False)}, {"W": self.W_}

    @classmethod
    def from_state(cls, meta, arrays):
        """The classifier of a model file's entry (:meth:`to_state`'s output)."""
        params = dict(meta["params"])
        params["targets"] = tuple(params["targets"])
        if cls is LogisticRegression:
            for k in ("n_groups", "n_nodes", "dropout"):
                params.pop(k, None)
        clf = cls(**params)
        clf.W_ = np.ascontiguousarray(arrays["W"], dtype=np.float32)
        clf.n_features_in_ = clf.W_.shape[1] - 1
        return clf


def _draw_centres(spatial, rng, n, d, n_filters):
    """One epoch's spatial-loss rows, neighbourhoods and stencil weights, checked for the kernel."""
    if n == 0:
        return np.zeros((9, d), np.float32), np.zeros((1, 9), np.int64), np.ones((1, n_filters))
    Xn, nbr, cw = spatial.draw(rng, n)
    Xn = np.ascontiguousarray(Xn, dtype=np.float32)
    nbr = np.ascontiguousarray(nbr, dtype=np.int64)
    if Xn.ndim != 2 or Xn.shape[1] != d or nbr.shape != (n, 9) or nbr.min() < 0 or nbr.max() >= len(Xn):
        raise ValueError(f"the spatial sampler must return ({d}-column rows, ({n}, 9) row indices), "
                         f"got {Xn.shape} and {nbr.shape}")
    cw = np.ones((1, n_filters)) if cw is None else np.ascontiguousarray(cw, dtype=np.float64)
    if cw.shape not in ((1, n_filters), (n, n_filters)):
        raise ValueError(f"stencil weights must be (n_centres, {n_filters}), got {cw.shape}")
    return Xn, nbr, cw


class LogisticRegression(LDNN):
    """Logistic regression f = sigmoid(w . x + b): the 1 x 1 LDNN, with the same loss and SGD.

    Initialised (like the LDNN) from the two class means: w along their difference, with the
    decision boundary half way between them.
    """

    # Fixed sizes, not parameters: class attributes, so that __init__ stores only its parameters.
    n_groups = n_nodes = 1
    dropout = False

    def __init__(self, epochs=15, learning_rate=0.01, momentum=0.5, batch_size=100,
                 targets=(0.1, 0.9), spatial_rate=4.0, weight_decay=0.0, random_state=None):
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.targets = targets
        self.spatial_rate = spatial_rate
        self.weight_decay = weight_decay
        self.random_state = random_state
