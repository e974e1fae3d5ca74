"""The K-class softmax network: known losses, finite-difference gradients, learning, state."""

import numpy as np
import pytest

from chm.semi.losses import TV, ContrastSensitive
from chm.classifiers.softmax import SoftmaxMLP, _spatial_terms, loss_and_gradient, softmax


def _layers(rng, d=5, h=4, k=3):
    return [rng.normal(size=(h, d + 1)), rng.normal(size=(k, h + 1))] if h else [rng.normal(size=(k, d + 1))]


def test_cross_entropy_known_answer():
    # Zero weights: uniform probabilities, cross-entropy log K for any target.
    layers = [np.zeros((3, 5))]
    X = np.random.default_rng(0).random((7, 4))
    T = np.eye(3)[[0, 1, 2, 0, 1, 2, 0]]
    (sup, sp, total), _ = loss_and_gradient(layers, X, T)
    assert sup == pytest.approx(np.log(3)) and sp == 0 and total == pytest.approx(np.log(3))


def test_k_channel_tv_known_answer():
    # A 3 x 3 neighbourhood whose class-0 channel steps 0 -> 1 between columns 1 and 2 (and class
    # 1 the reverse): TV/8 Sobel-Y of each channel is 4/8 = 0.5, Sobel-X 0: E = 2 * 0.5 = 1.
    P = np.zeros((1, 9, 2))
    P[0, [2, 5, 8], 0] = 1.0
    P[0, :, 1] = 1.0 - P[0, :, 0]
    loss, dP = _spatial_terms(P, TV().flat_stencils, "l1", None)
    assert loss == pytest.approx(1.0)
    # ... and the paper's eq. 15 per channel.
    np.testing.assert_allclose(dP[0, :, 0], TV().coefficients(P[0, :, 0]))
    np.testing.assert_allclose(dP[0, :, 1], TV().coefficients(P[0, :, 1]))


@pytest.mark.parametrize("hidden", [0, 4])
@pytest.mark.parametrize("kind", ["none", "tv", "contrast-l2"])
def test_gradient_matches_finite_differences(hidden, kind):
    rng = np.random.default_rng(1)
    layers = _layers(rng, h=hidden)
    X = rng.normal(size=(6, 5))
    T = softmax(rng.normal(size=(6, 3)))  # soft targets
    loss = {"none": None, "tv": TV(), "contrast-l2": ContrastSensitive(penalty="l2")}[kind]
    Xn = rng.normal(size=(9 * 3, 5)) if loss else None
    cw = rng.random((3, len(loss.stencils))) if loss is not None and loss.contrast else None
    args = (X, T, Xn, loss, cw, 0.7 if loss else 0.0, 0.3)
    _, grads = loss_and_gradient(layers, *args)
    eps = 1e-6
    for W, G in zip(layers, grads):
        num = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            old = W[idx]
            W[idx] = old + eps
            up = loss_and_gradient(layers, *args)[0][2]
            W[idx] = old - eps
            down = loss_and_gradient(layers, *args)[0][2]
            W[idx] = old
            num[idx] = (up - down) / (2 * eps)
        # Random inputs give no zero stencil response nor a ReLU at 0: differentiable here.
        np.testing.assert_allclose(G, num, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("hidden", [0, 4])
def test_gradient_norms_are_those_of_each_term(hidden):
    # The supervised term's gradient is that of a step without centres; the spatial term's is the
    # rest of the step's (without decay). Asking for the norms changes no gradient.
    rng = np.random.default_rng(3)
    layers = _layers(rng, h=hidden)
    X, T, Xn = rng.normal(size=(6, 5)), softmax(rng.normal(size=(6, 3))), rng.normal(size=(9 * 3, 5))
    _, g_sup = loss_and_gradient(layers, X, T)
    _, g_all = loss_and_gradient(layers, X, T, Xn, TV(), None, 0.7)
    _, grads = loss_and_gradient(layers, X, T, Xn, TV(), None, 0.7, 0.3)
    _, same, (n_sup, n_sp) = loss_and_gradient(layers, X, T, Xn, TV(), None, 0.7, 0.3, return_norms=True)
    for a, b in zip(grads, same):
        np.testing.assert_array_equal(a, b)
    g_sup, g_all = (np.concatenate([g.ravel() for g in gs]) for gs in (g_sup, g_all))
    assert n_sup == pytest.approx(np.linalg.norm(g_sup), rel=1e-10)
    assert n_sp == pytest.approx(np.linalg.norm(g_all - g_sup), rel=1e-8)
    assert n_sp > 0.01 * n_sup > 0
    assert loss_and_gradient(layers, X, T, return_norms=True)[2] == (pytest.approx(n_sup), 0.0)


def _blobs(rng, n=300, k=4, d=6):
    centres = rng.normal(scale=3, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


@pytest.mark.parametrize("hidden", [0, 16])
def test_learns_blobs_and_is_deterministic(hidden):
    rng = np.random.default_rng(2)
    X, y = _blobs(rng)
    a = SoftmaxMLP(n_classes=4, n_hidden=hidden, epochs=20, random_state=0).fit(X, y)
    b = SoftmaxMLP(n_classes=4, n_hidden=hidden, epochs=20, random_state=0).fit(X.astype(np.float16), y)
    p = a.predict_proba(X)
    assert p.shape == (len(X), 4) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert (p.argmax(axis=1) == y).mean() > 0.95
    c = SoftmaxMLP(n_classes=4, n_hidden=hidden, epochs=20, random_state=0).fit(X, y)
    for W, V in zip(a.layers_, c.layers_):
        np.testing.assert_array_equal(W, V)
    assert (b.predict_proba(X).argmax(axis=1) == y).mean() > 0.95  # float16 rows train as well


def test_fold_affine_blocks_and_state():
    rng = np.random.default_rng(3)
    X, y = _blobs(rng)
    clf = SoftmaxMLP(n_classes=4, n_hidden=8, epochs=3, random_state=0).fit(X, y)
    offset, scale = rng.normal(size=X.shape[1]), rng.uniform(0.5, 2, size=X.shape[1])
    raw = X * scale + offset
    before = clf.predict_proba(X)
    clf.fold_affine(offset, scale)
    np.testing.assert_allclose(clf.predict_proba(raw), before, atol=1e-4)
    np.testing.assert_allclose(clf.predict_proba([raw[:, :2], raw[:, 2:]]), clf.predict_proba(raw), atol=1e-6)
    meta, arrays = clf.to_state()
    back = SoftmaxMLP.from_state(meta, arrays)
    np.testing.assert_array_equal(back.predict_proba(raw), clf.predict_proba(raw))


def test_spatial_loss_smooths_neighbourhoods():
    """Pairs of rows drawn as neighbours are pushed to the same class distribution."""
    from chm.cascade.sampling import NeighbourhoodPool

    rng = np.random.default_rng(4)
    X, y = _blobs(rng, n=200, k=3)
    unl = rng.normal(size=(90, X.shape[1])).astype(np.float32)
    rows = np.concatenate([X, unl])
    yy = np.concatenate([y, -np.ones(90, int)])
    nbr = (len(X) + np.arange(90)).reshape(10, 9)
    pool = NeighbourhoodPool(rows, nbr)
    spread = []
    for alpha in (0.0, 5.0):
        clf = SoftmaxMLP(n_classes=3, n_hidden=8, epochs=10, random_state=0)
        clf.fit(rows, yy, spatial=pool, spatial_loss="tv", alpha=alpha)
        p = clf.predict_proba(unl).reshape(10, 9, 3)
        spread.append(float(np.abs(p - p.mean(axis=1, keepdims=True)).mean()))
    assert spread[1] < 0.5 * spread[0]


def test_bad_inputs():
    X = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="only one class"):
        SoftmaxMLP(n_classes=3).fit(X, np.array([1, 1, -1, 1]))
    with pytest.raises(ValueError, match="n_classes=3"):
        SoftmaxMLP(n_classes=3).fit(X, np.array([0, 3, 1, 1]))
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxMLP(n_classes=3).fit(np.full((4, 2), np.nan), np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="n_hidden"):
        SoftmaxMLP(n_hidden=-1).fit(X, np.array([0, 1, 2, 1]))
