"""The numba SGD kernel agrees with its numpy reference, and its gradient with finite differences."""

import numpy as np
import pytest

from chm.classifiers import _sgd
from chm.semi.losses import TV, ContrastSensitive
from tests._reference.sgd import sgd_epoch_reference


def _problem(rng, n=40, d=6, N=3, M=4, n_centres=12):
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = (0.5 * rng.normal(size=(N * M, d + 1))).astype(np.float32)
    sup_rows = np.arange(0, n, 3, dtype=np.int64)
    sup_t = np.where(rng.random(len(sup_rows)) > 0.5, 0.9, 0.1)
    Xn = rng.normal(size=(9 * n_centres, d)).astype(np.float32)
    nbr = rng.permutation(9 * n_centres).reshape(n_centres, 9).astype(np.int64)
    return X, W, sup_rows, sup_t, Xn, nbr


@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("penalty", [0, 1])
@pytest.mark.parametrize("contrast", [False, True])
def test_kernel_matches_reference(dropout, penalty, contrast):
    rng = np.random.default_rng(3)
    X, W, sup_rows, sup_t, Xn, nbr = _problem(rng)
    N, M = 3, 4
    n_sp = len(nbr)
    order = rng.permutation(len(sup_rows) + n_sp).astype(np.int64)
    if dropout:
        gsel = np.argsort(rng.random((len(order), N)), axis=1)[:, :2].astype(np.int64)
        nsel = np.argsort(rng.random((len(order), M)), axis=1)[:, :2].astype(np.int64)
        batch = 1
    else:
        gsel, nsel, batch = np.arange(N)[None].astype(np.int64), np.arange(M)[None].astype(np.int64), 5
    loss = ContrastSensitive() if contrast else TV()
    stencils = loss.flat_stencils
    cw = rng.random((n_sp, len(stencils))) if contrast else np.ones((1, len(stencils)))
    args = (X, sup_rows, sup_t, Xn, nbr, cw, stencils, penalty, 0.3, 0.01, order, gsel, nsel, M, 0.05, 0.5, batch)
    W1, V1 = W.copy(), np.zeros_like(W)
    W2, V2 = W.copy(), np.zeros_like(W)
    out1 = _sgd.sgd_epoch(W1, V1, *args)
    out2 = sgd_epoch_reference(W2, V2, *args)
    np.testing.assert_allclose(out1, out2, rtol=1e-4)
    np.testing.assert_allclose(W1, W2, rtol=1e-4, atol=1e-5)
    assert not np.allclose(W1, W)  # the epoch did move the weights


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("N, M", [(3, 4), (1, 1)])
@pytest.mark.parametrize("decay", [0.0, 0.02])
def test_minibatch_epoch_matches_kernel(dtype, N, M, decay):
    rng = np.random.default_rng(5)
    X, W, sup_rows, sup_t, _, _ = _problem(rng, n=230, N=N, M=M)
    X = X.astype(dtype)
    order = rng.permutation(len(sup_rows)).astype(np.int64)  # 77 items: batches of 10 and a partial one
    one = np.zeros((1, 9), dtype=np.int64)
    W1, V1 = W.copy(), np.zeros_like(W)
    W2, V2 = W.copy(), np.zeros_like(W)
    for _ in range(3):  # several epochs, so the momentum carries over
        sq1 = _sgd.minibatch_epoch(W1, V1, X, sup_rows, sup_t, order, M, 0.05, 0.5, 10, decay)
        sq2, _, sup_norm, sp_norm = _sgd.sgd_epoch(
            W2, V2, X.astype(np.float32), sup_rows, sup_t, X[:9].astype(np.float32), one, np.ones((1, 1)),
            np.zeros((1, 9)), 0, 0.0, decay, order, np.arange(N)[None], np.arange(M)[None], M, 0.05, 0.5, 10)
        np.testing.assert_allclose(sq1, sq2, rtol=1e-4)
        assert sup_norm == sp_norm == 0.0  # no spatial item: nothing to share
    np.testing.assert_allclose(W1, W2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(V1, V2, rtol=1e-3, atol=1e-6)
    assert not np.allclose(W1, W)


@pytest.mark.parametrize("kernel", [_sgd.sgd_epoch, sgd_epoch_reference])
@pytest.mark.parametrize("dropout", [False, True])
def test_gradient_norms_are_those_of_each_terms_own_step(kernel, dropout):
    # One step over every item, without momentum nor decay, moves W by -lr G: a step of the
    # supervised items alone, and one of the spatial items alone, give each term's gradient. A
    # step of both, with weight decay, returns their norms (the decay in neither).
    rng = np.random.default_rng(6)
    X, W, sup_rows, sup_t, Xn, nbr = _problem(rng)
    M = 4
    n_sup, n_sp = len(sup_rows), len(nbr)
    # dropout: one item's subsets for every item, so the one step updates just those units
    gsel, nsel = (np.array([[0, 2]]), np.array([[1, 3]])) if dropout else (np.arange(3)[None], np.arange(M)[None])
    orders = {"both": rng.permutation(n_sup + n_sp), "sup": np.arange(n_sup), "sp": n_sup + np.arange(n_sp)}
    out, grad = {}, {}
    for name, order in orders.items():
        W1, V = W.copy(), np.zeros_like(W)
        out[name] = kernel(W1, V, X, sup_rows, sup_t, Xn, nbr, np.ones((1, 2)), TV().flat_stencils, 0, 0.4,
                           0.05 if name == "both" else 0.0, order.astype(np.int64), gsel.astype(np.int64),
                           nsel.astype(np.int64), M, 1.0, 0.0, len(order))
        grad[name] = W.astype(np.float64) - W1
    _, _, sup_norm, sp_norm = out["both"]
    assert sup_norm == pytest.approx(np.linalg.norm(grad["sup"]), rel=1e-4)
    assert sp_norm == pytest.approx(np.linalg.norm(grad["sp"]), rel=1e-4)
    assert sp_norm > 0.1 * sup_norm > 0  # both terms move the weights here
    assert out["sup"][2:] == (0.0, 0.0)  # no spatial item: nothing measured


def _network(W, x, N, M):
    z = np.clip(W[:, :-1].astype(np.float64) @ x + W[:, -1], -30, 30)
    g = (1 / (1 + np.exp(-z))).reshape(N, M).prod(axis=1)
    return 1 - np.prod(1 - g)


@pytest.mark.parametrize("N, M", [(2, 3), (1, 1)])  # LDNN and logistic regression (the 1 x 1 network)
@pytest.mark.parametrize("item", ["supervised", "tv", "contrast-l1", "contrast-l2"])
@pytest.mark.parametrize("decay", [0.0, 0.3])
def test_one_step_gradient_matches_finite_differences(item, N, M, decay):
    # Without momentum one step is W <- W - lr * G with G taken at W, so G = (W - W') / lr exactly.
    rng = np.random.default_rng(4)
    d = 4
    X = rng.normal(size=(9, d))
    W = rng.normal(size=(N * M, d + 1))
    penalty = 1 if item == "contrast-l2" else 0
    loss = TV() if item == "tv" else ContrastSensitive(penalty="l2" if penalty else "l1")
    stencils = loss.flat_stencils
    cw = rng.random((1, len(stencils))) if item.startswith("contrast") else np.ones((1, len(stencils)))
    l2 = lambda Wf: 0.5 * decay * (Wf[:, :-1] ** 2).sum()
    if item != "supervised":
        sup_rows, sup_t = np.zeros(0, np.int64), np.zeros(0)
        nbr, order = np.arange(9)[None].astype(np.int64), np.zeros(1, np.int64)

        def energy(Wf):
            resp = stencils @ np.array([_network(Wf, x, N, M) for x in X])
            rho = np.abs(resp) if penalty == 0 else 0.5 * resp ** 2
            return 0.7 * (cw[0] * rho).sum() + l2(Wf)
    else:
        sup_rows, sup_t = np.array([2], np.int64), np.array([0.9])
        nbr, order = np.zeros((1, 9), np.int64), np.zeros(1, np.int64)

        def energy(Wf):
            return 0.5 * (_network(Wf, X[2], N, M) - 0.9) ** 2 + l2(Wf)
    lr = 1.0
    W1, V = W.copy(), np.zeros_like(W)
    sgd_epoch_reference(W1, V, X, sup_rows, sup_t, X, nbr, cw, stencils, penalty, 0.7, decay, order,
                        np.arange(N)[None], np.arange(M)[None], M, lr, 0.0, 1)
    G = (W - W1) / lr
    num = np.zeros_like(W)
    eps = 1e-6
    for idx in np.ndindex(W.shape):
        a = W.copy(); a[idx] += eps
        b = W.copy(); b[idx] -= eps
        num[idx] = (energy(a) - energy(b)) / (2 * eps)
    np.testing.assert_allclose(G, num, rtol=1e-4, atol=1e-7)
