"""Tests of chm.mrf against brute force, exact chain inference and references.

The model is re-implemented here from its definition (python loops over
pixels and neighbours) so that the brute-force minima do not share code
with the module under test.
"""

import itertools

import numpy as np
import pytest

from chm import mrf
from chm.mrf import decoders
from chm.mrf import _kernels as kern
from tests._reference.mrf import icm_sweep_ref, lbp_ref, mean_field_ref

EPS = 1e-6


# ----------------------------------------------------------- independent model
def naive_edges(shape, beta, image=None, sigma=None, connectivity=4):
    """List of (i, j, w_ij) over flat pixel indices, from the definition."""
    H, W = shape
    offs = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    img = None if image is None else np.asarray(image, float).reshape(H, W, -1)
    edges = []
    for y in range(H):
        for x in range(W):
            for dy, dx in offs:
                yy, xx = y + dy, x + dx
                if 0 <= yy < H and 0 <= xx < W:
                    w = beta * (1.0 if dy == 0 or dx == 0 else 2 ** -0.5)
                    if img is not None:
                        d2 = float(((img[y, x] - img[yy, xx]) ** 2).sum())
                        w *= np.exp(-d2 / (2 * sigma ** 2))
                    edges.append((y * W + x, yy * W + xx, w))
    return edges


def naive_unary(p):
    p = np.asarray(p, float)
    if p.ndim == 2:
        p = np.stack([1 - p, p], -1)
    return -np.log(np.maximum(p, EPS)).reshape(-1, p.shape[-1])


def all_energies(p, beta, **kw):
    """Energies of every labelling of a tiny grid (rows of ``labellings``)."""
    U = naive_unary(p)
    n, K = U.shape
    L = np.array(list(itertools.product(range(K), repeat=n)))
    E = U[np.arange(n), L].sum(1)
    for i, j, w in naive_edges(np.shape(p)[:2], beta, **kw):
        E = E + w * (L[:, i] != L[:, j])
    return E, L


def rand_binary(rng, shape):
    return rng.uniform(0.02, 0.98, size=shape)


def rand_classes(rng, shape, K):
    return rng.dirichlet(np.ones(K), size=shape)


# ------------------------------------------------------------------- energy
@pytest.mark.parametrize("conn", [4, 8])
@pytest.mark.parametrize("contrast", [False, True])
def test_energy_matches_definition(conn, contrast):
    rng = np.random.default_rng(1)
    p = rand_classes(rng, (4, 5), 3)
    lab = rng.integers(0, 3, (4, 5))
    kw = {}
    if contrast:
        kw = {"image": rng.uniform(size=(4, 5)), "sigma": 0.3}
    U = naive_unary(p)
    want = U[np.arange(20), lab.ravel()].sum() + sum(
        w * (lab.flat[i] != lab.flat[j])
        for i, j, w in naive_edges((4, 5), 0.7, connectivity=conn, **kw))
    got = mrf.energy(lab, p, 0.7, connectivity=conn, **kw)
    assert got == pytest.approx(want, rel=1e-12)


def test_default_energy_counts_disagreeing_pairs():
    p = np.full((2, 3), 0.5)
    lab = np.array([[0, 1, 1], [0, 0, 1]])
    # 6 unaries of -log 0.5, disagreeing pairs: (0,0)-(0,1), (1,1)-(1,2),
    # (0,1)-(1,1): 3 of them.
    assert mrf.energy(lab, p, 2.0) == pytest.approx(6 * np.log(2) + 3 * 2.0)


def test_default_sigma_is_rms_of_neighbour_differences():
    img = np.tile(np.arange(5.0), (4, 1))      # steps of 1 along x only
    n_h, n_v = 4 * 4, 3 * 5
    assert mrf.default_sigma(img) == pytest.approx(np.sqrt(n_h / (n_h + n_v)))
    assert mrf.default_sigma(np.ones((3, 3))) == 1.0


# -------------------------------------------------------------- graph cut
@pytest.mark.parametrize("conn", [4, 8])
@pytest.mark.parametrize("contrast", [False, True])
def test_graphcut_equals_brute_force(conn, contrast):
    rng = np.random.default_rng(10 + conn + contrast)
    for _ in range(60):
        p = rand_binary(rng, (3, 3))
        beta = rng.uniform(0.1, 2.0)
        kw = {}
        if contrast:
            img = rng.uniform(size=(3, 3))
            kw = {"image": img, "sigma": mrf.default_sigma(img)}
        E, L = all_energies(p, beta, connectivity=conn, **kw)
        lab, e = mrf.decode(p, beta, "graphcut", connectivity=conn,
                            return_energy=True, **kw)
        assert e == pytest.approx(E.min(), abs=1e-9)
        if np.sort(E)[1] - E.min() > 1e-9:          # unique minimiser
            assert np.array_equal(lab.ravel(), L[E.argmin()])


def test_graphcut_rounding_stays_within_stated_bound():
    """Coarse integer scales: the excess energy obeys n_arcs / scale."""
    rng = np.random.default_rng(3)
    worst = {}
    for scale in (2.0, 10.0, 1e3, None):
        gaps = []
        for _ in range(15):
            p = rand_binary(rng, (3, 4))
            beta = rng.uniform(0.2, 1.5)
            E, _ = all_energies(p, beta)
            u = naive_unary(p).reshape(3, 4, 2)
            offs, w = mrf.edge_weights((3, 4), beta)
            lab, info = mrf.graphcut_binary(u[..., 1] - u[..., 0], w, w,
                                            offs, scale=scale)
            gap = mrf.energy(lab.astype(int), p, beta) - E.min()
            assert -1e-9 <= gap <= info["tol"] + 1e-9
            gaps.append(gap)
        worst[scale] = max(gaps)
    assert worst[None] < 1e-6                # automatic scale: exact here
    assert worst[2.0] > 0                    # a coarse scale does bite


def test_graphcut_flow_methods_agree():
    rng = np.random.default_rng(4)
    p = rand_binary(rng, (12, 9))
    u = naive_unary(p).reshape(12, 9, 2)
    offs, w = mrf.edge_weights((12, 9), 0.8, connectivity=8)
    a, _ = mrf.graphcut_binary(u[..., 1] - u[..., 0], w, w, offs)
    b, _ = mrf.graphcut_binary(u[..., 1] - u[..., 0], w, w, offs,
                               method="edmonds_karp")
    assert np.array_equal(a, b)


def test_graphcut_beats_approximate_decoders_on_a_larger_grid():
    rng = np.random.default_rng(5)
    p = np.clip(np.kron(rng.uniform(size=(5, 5)), np.ones((6, 6)))
                + rng.normal(0, 0.3, (30, 30)), 0, 1)
    e = {m: mrf.decode(p, 1.0, m, return_energy=True)[1]
         for m in ("graphcut", "icm", "lbp", "meanfield")}
    assert all(e["graphcut"] <= v + 1e-6 for v in e.values())


# -------------------------------------------------------------- expansion
def test_expansion_within_factor_two_and_not_worse_than_icm():
    # Seed 6 includes grids (i = 0, 38) where expansion started from the
    # plain argmax stops in a local minimum worse than ICM's.
    rng = np.random.default_rng(6)
    for i in range(120):
        shape = (2, 3) if i % 3 else (3, 3)
        p = rand_classes(rng, shape, 3)
        beta = rng.uniform(0.2, 3.0)
        E, _ = all_energies(p, beta)
        _, e_exp = mrf.decode(p, beta, "expansion", return_energy=True)
        _, e_icm = mrf.decode(p, beta, "icm", return_energy=True)
        assert E.min() - 1e-9 <= e_exp <= 2 * E.min() + 1e-9
        assert e_exp <= e_icm + 1e-9


def test_graphcut_refuses_multiclass():
    p = rand_classes(np.random.default_rng(0), (3, 3), 3)
    with pytest.raises(ValueError, match="expansion"):
        mrf.decode(p, 1.0, "graphcut")


# ---------------------------------------------------------------- LBP / ICM
@pytest.mark.parametrize("shape,K", [((1, 7), 3), ((6, 1), 2)])
def test_lbp_exact_on_chain(shape, K):
    rng = np.random.default_rng(7)
    for _ in range(10):
        p = rand_classes(rng, shape, K)
        beta = rng.uniform(0.2, 3.0)
        E, L = all_energies(p, beta)
        lab, e = mrf.decode(p, beta, "lbp", return_energy=True)
        assert e == pytest.approx(E.min(), abs=1e-9)
        # sum-product on a tree gives the exact marginals
        post = np.exp(-(E - E.min()))
        post /= post.sum()
        exact = np.stack([np.bincount(L[:, i], post, K) for i in
                          range(L.shape[1])]).reshape(*shape, K)
        assert np.allclose(mrf.marginals(p, beta, "lbp"), exact, atol=1e-8)


def test_icm_energy_never_increases():
    rng = np.random.default_rng(8)
    p = rand_classes(rng, (25, 20), 4)
    u = naive_unary(p).reshape(25, 20, 4)
    offs, w = mrf.edge_weights((25, 20), 1.5, image=rng.uniform(size=(25, 20)),
                               connectivity=8)
    lab = rng.integers(0, 4, (25, 20))           # a bad start: many sweeps
    trace = [decoders._energy(u, lab, offs, w)]
    decoders._icm(u, offs, w, lab, 100, trace)
    assert len(trace) > 3
    assert np.all(np.diff(trace) <= 1e-9)


# ------------------------------------------------------- shared behaviours
@pytest.mark.parametrize("method", mrf.METHODS)
def test_beta_zero_is_argmax(method):
    rng = np.random.default_rng(9)
    pb = rand_binary(rng, (7, 6))
    assert np.array_equal(mrf.decode(pb, 0.0, method), pb > 0.5)
    if method != "graphcut":
        pk = rand_classes(rng, (7, 6), 4)
        assert np.array_equal(mrf.decode(pk, 0.0, method), pk.argmax(2))


@pytest.mark.parametrize("method", mrf.METHODS)
def test_binary_map_equals_two_class_map(method):
    rng = np.random.default_rng(11)
    p = rand_binary(rng, (9, 8))
    a = mrf.decode(p, 0.9, method, connectivity=8)
    b = mrf.decode(np.stack([1 - p, p], -1), 0.9, method, connectivity=8)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("method", ["meanfield", "lbp"])
def test_marginals_normalised_and_identity_at_beta_zero(method):
    rng = np.random.default_rng(12)
    p = rand_classes(rng, (8, 7), 3)
    q = mrf.marginals(p, 1.2, method)
    assert q.shape == p.shape and np.allclose(q.sum(2), 1)
    assert np.allclose(mrf.marginals(p, 0.0, method), p, atol=1e-9)
    pb = rand_binary(rng, (8, 7))
    qb = mrf.marginals(pb, 0.0, method)
    assert np.allclose(qb[..., 1], pb, atol=1e-9)
    assert np.allclose(mrf.marginals(pb, 1.2, method),
                       mrf.marginals(np.stack([1 - pb, pb], -1), 1.2, method))


# ------------------------------------------------- kernels vs references
@pytest.mark.parametrize("conn", [4, 8])
def test_kernels_match_references(conn):
    rng = np.random.default_rng(13)
    p = rand_classes(rng, (4, 5), 3)
    u = naive_unary(p).reshape(4, 5, 3)
    offs, w = mrf.edge_weights((4, 5), 1.3, image=rng.uniform(size=(4, 5)),
                               connectivity=conn)
    wdir, dys, dxs = decoders._directions(offs, w)
    start = rng.integers(0, 3, (4, 5))
    a, b = start.copy(), start.copy()
    for _ in range(3):
        assert kern.icm_sweep(u, wdir, dys, dxs, a) == \
            icm_sweep_ref(u, wdir, dys, dxs, b)
        assert np.array_equal(a, b)
    for sp in (False, True):
        b1, n1 = kern.lbp(u, wdir, dys, dxs, 7, 0.0, sp)
        b2, n2 = lbp_ref(u, wdir, dys, dxs, 7, 0.0, sp)
        assert n1 == n2 and np.allclose(b1, b2, atol=1e-10)
    q1, q2 = decoders._softmin(u), decoders._softmin(u)
    n1 = kern.mean_field(u, wdir, dys, dxs, q1, 6, 0.0)
    n2 = mean_field_ref(u, wdir, dys, dxs, q2, 6, 0.0)
    assert n1 == n2 and np.allclose(q1, q2, atol=1e-12)


# --------------------------------------------------------- beta selection
def test_select_beta_prefers_smoothing_on_noisy_maps():
    rng = np.random.default_rng(14)
    truth = np.zeros((40, 40), int)
    truth[8:30, 10:32] = 1
    probas, sparse = [], []
    for _ in range(2):
        logit = np.where(truth == 1, 1.0, -1.0) + rng.normal(0, 1.5, (40, 40))
        probas.append(1 / (1 + np.exp(-logit)))
        lab = np.full((40, 40), -1)
        pick = rng.uniform(size=(40, 40)) < 0.05
        lab[pick] = truth[pick]
        sparse.append(lab)
    beta, errors = mrf.select_beta(probas, sparse)
    assert set(errors) == set(mrf.DEFAULT_BETAS.tolist())
    assert beta > 0 and errors[beta] < errors[0.0]


def test_select_beta_ties_go_to_smallest():
    p = np.where(np.eye(6) > 0, 0.99, 0.01)
    lab = np.full((6, 6), -1)
    lab[0, 1], lab[2, 2] = 0, 1
    beta, errors = mrf.select_beta([p], [lab], betas=[0.05, 0.0, 0.01])
    assert beta == 0.0 and set(errors.values()) == {0.0}


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs,exc", [
    ({"proba": np.zeros(5)}, ValueError),
    ({"proba": np.zeros((2, 2, 2, 2))}, ValueError),
    ({"proba": np.zeros((3, 3, 1))}, ValueError),
    ({"proba": np.full((3, 3), np.nan)}, ValueError),
    ({"proba": np.full((3, 3), np.inf)}, ValueError),
    ({"proba": np.full((3, 3), 1.5)}, ValueError),
    ({"proba": np.full((3, 3), -0.1)}, ValueError),
    ({"proba": np.full((3, 3), "a")}, TypeError),
    ({"beta": -1.0}, ValueError),
    ({"beta": np.nan}, ValueError),
    ({"beta": "1"}, TypeError),
    ({"method": "trbp"}, ValueError),
    ({"image": np.zeros((4, 3))}, ValueError),
    ({"image": np.zeros((3, 3)), "sigma": 0.0}, ValueError),
    ({"image": np.zeros((3, 3)), "sigma": -1.0}, ValueError),
    ({"sigma": 1.0}, ValueError),
    ({"connectivity": 6}, ValueError),
    ({"max_iter": 0}, ValueError),
])
def test_decode_validates_inputs(kwargs, exc):
    args = {"proba": np.full((3, 3), 0.4), "beta": 1.0, "method": "icm"}
    args.update(kwargs)
    with pytest.raises(exc):
        mrf.decode(**args)


def test_energy_and_marginals_validate_inputs():
    p = np.full((3, 3), 0.4)
    with pytest.raises(ValueError):
        mrf.energy(np.full((3, 3), 2), p, 1.0)               # label 2 of 2
    with pytest.raises(ValueError):
        mrf.energy(np.zeros((3, 2), int), p, 1.0)            # shape
    with pytest.raises(TypeError):
        mrf.energy(np.zeros((3, 3)), p, 1.0)                 # float labels
    with pytest.raises(ValueError):
        mrf.marginals(p, 1.0, "icm")
    with pytest.raises(ValueError):
        mrf.marginals(p, 1.0, "lbp", max_iter=0)


def test_select_beta_threshold_per_map():
    """A threshold per map (cross-validated models) equals scoring each map with its own."""
    rng = np.random.default_rng(5)
    probas = [rng.uniform(size=(9, 9)) for _ in range(2)]
    labs = [np.where(rng.uniform(size=(9, 9)) < 0.3, (p > 0.6).astype(int), -1) for p in probas]
    betas = [0.0, 0.5, 2.0]
    _, both = mrf.select_beta(probas, labs, betas=betas, threshold=[0.7, 0.4])
    _, first = mrf.select_beta(probas[:1], labs[:1], betas=betas, threshold=0.7)
    _, second = mrf.select_beta(probas[1:], labs[1:], betas=betas, threshold=0.4)
    n1, n2 = (labs[0] >= 0).sum(), (labs[1] >= 0).sum()
    for b in betas:
        assert both[b] == pytest.approx((first[b] * n1 + second[b] * n2) / (n1 + n2))
    _, at_half = mrf.select_beta(probas, labs, betas=[0.0])
    assert both[0.0] != at_half[0.0]  # the thresholds were used
    with pytest.raises(ValueError, match="one per map"):
        mrf.select_beta(probas, labs, threshold=[0.5])


def test_select_beta_validates_inputs():
    p = np.full((3, 3), 0.4)
    with pytest.raises(ValueError):
        mrf.select_beta([p], [np.full((3, 3), -1)])          # none labelled
    with pytest.raises(ValueError):
        mrf.select_beta([p], [np.full((3, 3), 2)])           # class 2 of 2
    with pytest.raises(ValueError):
        mrf.select_beta([p], [np.zeros((2, 3), int)])        # shape
    with pytest.raises(ValueError):
        mrf.select_beta([p, p], [np.zeros((3, 3), int)])     # lengths


def test_select_beta_loglik_prefers_smoothing_on_noisy_maps():
    # A clean two-region truth seen through noisy probabilities: smoothing raises the
    # marginal of the true label at held-out pixels, so some beta > 0 must win.
    rng = np.random.default_rng(0)
    truth = np.zeros((20, 20), int)
    truth[:, 10:] = 1
    probas, held = [], []
    for _ in range(3):
        p = np.clip(np.where(truth == 1, 0.7, 0.3) + rng.normal(scale=0.25, size=truth.shape), 0.02, 0.98)
        lab = np.full(truth.shape, -1)
        idx = rng.choice(truth.size, 30, replace=False)
        lab.flat[idx] = truth.flat[idx]
        probas.append(p)
        held.append(lab)
    beta, scores = mrf.select_beta(probas, held, betas=[0.0, 0.3, 1.0], criterion="loglik")
    assert beta > 0 and scores[beta] < scores[0.0]
    with pytest.raises(ValueError, match="criterion"):
        mrf.select_beta(probas, held, criterion="auc")


# ------------------------------------------------------- hard constraints
@pytest.mark.parametrize("method", ["graphcut", "expansion", "icm"])
def test_fixed_pixels_keep_their_labels_and_the_rest_is_optimal(method):
    """Constrained decoding = brute-force minimum over labellings that respect the constraints."""
    rng = np.random.default_rng(7)
    for trial in range(40):
        K = 2 if method == "graphcut" else int(rng.integers(2, 4))
        p = rand_binary(rng, (3, 3)) if K == 2 else rand_classes(rng, (3, 3), K)
        beta = rng.uniform(0.5, 30.0)  # large beta: the constraints fight the smoothing
        img = rng.uniform(size=(3, 3))
        kw = {"image": img, "sigma": mrf.default_sigma(img)}
        fixed = np.full((3, 3), -1)
        pos = rng.choice(9, size=2, replace=False)
        fixed.flat[pos] = rng.integers(0, K, size=2)
        lab = mrf.decode(p, beta, method, fixed=fixed, **kw)
        assert np.array_equal(lab.flat[pos], fixed.flat[pos])
        if method == "graphcut":
            E, L = all_energies(p, beta, **kw)
            ok = np.all(L[:, pos] == fixed.flat[pos], axis=1)
            E_lab = E[np.all(L == lab.ravel(), axis=1)][0]
            assert E_lab == pytest.approx(E[ok].min(), abs=1e-9)


def test_fixed_validates():
    p = np.full((3, 3), 0.5)
    with pytest.raises(ValueError, match="shape"):
        mrf.decode(p, 1.0, fixed=np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="lie in -1..1"):
        mrf.decode(p, 1.0, fixed=np.full((3, 3), 2))
    assert np.array_equal(mrf.decode(p, 1.0, fixed=np.full((3, 3), -1)), mrf.decode(p, 1.0))


def test_threshold_shifts_the_binary_unaries():
    rng = np.random.default_rng(11)
    p = rng.random((6, 7))
    for t in (0.3, 0.5, 0.8):
        np.testing.assert_array_equal(mrf.decode(p, 0.0, threshold=t), p > t)
        # The same as decoding the recalibrated map whose even odds sit at 0.5.
        z = np.log(p / (1 - p)) - np.log(t / (1 - t))
        q = 1 / (1 + np.exp(-z))
        np.testing.assert_array_equal(mrf.decode(p, 1.5, threshold=t), mrf.decode(q, 1.5))
    with pytest.raises(ValueError, match="threshold"):
        mrf.decode(p, 1.0, threshold=1.0)
    with pytest.raises(ValueError, match="binary"):
        mrf.decode(rand_classes(rng, (3, 3), 3), 1.0, method="expansion", threshold=0.6)
