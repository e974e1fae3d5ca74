import numpy as np
import pytest

from chm.classifiers import LDNN, LogisticRegression, from_state, kmeans, make_classifier
from chm.cascade.sampling import NeighbourhoodPool


def _blobs(rng, n=400, d=5):
    y = (rng.random(n) > 0.6).astype(int)
    X = rng.normal(size=(n, d)) + 2.0 * y[:, None]
    return X.astype(np.float32), y


@pytest.mark.parametrize("clf", [LDNN(n_groups=3, n_nodes=4, epochs=20, batch_size=10, random_state=0),
                                 LogisticRegression(epochs=20, batch_size=10, random_state=0),
                                 LDNN(n_groups=4, n_nodes=4, epochs=10, batch_size=1, dropout=True,
                                      learning_rate=0.05, random_state=0)])
def test_learns_separable_blobs(clf):
    rng = np.random.default_rng(0)
    X, y = _blobs(rng)
    clf.fit(X, y)
    p = clf.predict_proba(X)
    assert p.dtype == np.float32 and p.shape == (len(X),)
    assert np.mean((p > 0.5) == y) > 0.95
    rms = [r for r, _ in clf.loss_curve_]
    assert rms[-1] < rms[0]


def test_same_seed_same_model_and_unlabelled_rows_ignored():
    rng = np.random.default_rng(1)
    X, y = _blobs(rng)
    a = LDNN(n_groups=2, n_nodes=3, epochs=3, random_state=7).fit(X, y)
    b = LDNN(n_groups=2, n_nodes=3, epochs=3, random_state=7).fit(X, y)
    np.testing.assert_array_equal(a.W_, b.W_)
    y2 = y.copy()
    X2 = np.vstack([X, rng.normal(size=(50, X.shape[1])).astype(np.float32)])
    y2 = np.concatenate([y, -np.ones(50, int)])
    c = LDNN(n_groups=2, n_nodes=3, epochs=3, random_state=7).fit(X2, y2)
    np.testing.assert_array_equal(a.W_, c.W_)  # without alpha, -1 rows change nothing


@pytest.mark.parametrize("dropout", [False, True])
def test_float16_rows_train_like_their_float32_values(dropout):
    rng = np.random.default_rng(2)
    X, y = _blobs(rng)
    X16 = X.astype(np.float16)
    params = dict(n_groups=2, n_nodes=3, epochs=3, random_state=4,
                  **(dict(dropout=True, batch_size=1, learning_rate=0.05) if dropout else {}))
    a = LDNN(**params).fit(X16, y)
    b = LDNN(**params).fit(X16.astype(np.float32), y)
    np.testing.assert_allclose(a.W_, b.W_, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dropout", [False, True])
def test_soft_targets(dropout):
    rng = np.random.default_rng(6)
    X, y = _blobs(rng)
    params = dict(n_groups=2, n_nodes=3, epochs=3, random_state=4,
                  **(dict(dropout=True, batch_size=1, learning_rate=0.05) if dropout else {}))
    hard = LDNN(**params).fit(X, y)
    # Fractions 0/1 are the class targets: the same model.
    np.testing.assert_array_equal(LDNN(**params).fit(X, y, soft_targets=y.astype(float)).W_, hard.W_)
    # Foreground rows at fraction 0.25 regress 0.1 + 0.8 * 0.25 = 0.3 instead of 0.9.
    if not dropout:  # (the compensated evaluation of a dropout net is not the trained sub-net's output)
        quarter = LDNN(**{**params, "epochs": 30, "batch_size": 10}).fit(X, y, soft_targets=np.where(y == 1, 0.25, 0.0))
        assert abs(float(np.mean(quarter.predict_proba(X)[y == 1])) - 0.3) < 0.05
    with pytest.raises(ValueError, match="shape"):
        LDNN(**params).fit(X, y, soft_targets=np.zeros(3))
    for bad in (1.5, np.nan):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            LDNN(**params).fit(X, y, soft_targets=np.where(y == 1, bad, 0.0))
    # NaN on unlabelled rows is fine: they are not regressed.
    y2 = np.concatenate([y, [-1, -1]])
    X2 = np.vstack([X, X[:2]])
    soft = np.concatenate([y.astype(float), [np.nan, np.nan]])
    np.testing.assert_array_equal(LDNN(**params).fit(X2, y2, soft_targets=soft).W_, hard.W_)


def test_dropout_evaluation_is_compensated():
    clf = LDNN(n_groups=2, n_nodes=2, dropout=True, batch_size=1)
    clf.W_ = np.array([[1, 0.5], [0, -0.2], [2, 0.1], [-1, 0.3]], dtype=np.float32)
    x = np.array([[0.7]], dtype=np.float32)
    sig = 1 / (1 + np.exp(-(clf.W_[:, 0] * 0.7 + clf.W_[:, 1])))
    g = sig.reshape(2, 2).prod(axis=1)
    assert clf.predict_proba(x)[0] == pytest.approx(1 - np.sqrt(np.prod(1 - np.sqrt(g))), rel=1e-6)
    clf.dropout = False
    assert clf.predict_proba(x)[0] == pytest.approx(1 - np.prod(1 - g), rel=1e-6)


def test_fold_affine_equals_normalised_inputs():
    rng = np.random.default_rng(2)
    X, y = _blobs(rng)
    offset, scale = rng.normal(size=X.shape[1]), rng.random(X.shape[1]) + 0.5
    clf = LDNN(n_groups=2, n_nodes=2, epochs=2, random_state=0).fit((X - offset) / scale, y)
    before = clf.predict_proba(((X - offset) / scale).astype(np.float32))
    after = clf.fold_affine(offset, scale).predict_proba(X)
    np.testing.assert_allclose(before, after, atol=1e-5)


def test_spatial_loss_smooths_neighbourhoods():
    # Rows 0..8 form one 3 x 3 neighbourhood with a label only at the centre; TV pulls the
    # outputs of the other 8 pixels toward the centre's.
    rng = np.random.default_rng(3)
    X, y = _blobs(rng, n=200)
    nb = np.arange(9)[None, :] + 200
    Xn = np.vstack([X, rng.normal(size=(9, X.shape[1])).astype(np.float32) + 2.0])
    yn = np.concatenate([y, -np.ones(9, int)])
    kw = dict(n_groups=2, n_nodes=2, epochs=30, batch_size=5, random_state=0)
    plain = LDNN(**kw).fit(Xn, yn)
    tv = LDNN(**kw).fit(Xn, yn, spatial=NeighbourhoodPool(Xn, nb), alpha=1.0)
    spread = lambda c: np.ptp(c.predict_proba(Xn[200:]))
    assert spread(tv) < spread(plain)
    assert tv.loss_curve_[-1][1] < tv.loss_curve_[0][1]


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(4)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    X = np.vstack([c + rng.normal(scale=0.1, size=(30, 2)) for c in centres])
    found = kmeans(X, 3, rng)
    d = np.linalg.norm(found[:, None] - centres[None], axis=2)
    assert np.all(d.min(axis=0) < 0.2)


def test_bad_inputs():
    rng = np.random.default_rng(5)
    X, y = _blobs(rng)
    with pytest.raises(ValueError, match="one class"):
        LDNN().fit(X, np.ones(len(X), int))
    with pytest.raises(ValueError, match="no labelled row"):
        LDNN().fit(X, -np.ones(len(X), int))
    with pytest.raises(ValueError, match="NaN"):
        Xb = X.copy(); Xb[0, 0] = np.nan
        LDNN().fit(Xb, y)
    with pytest.raises(ValueError, match="not enough labelled pixels"):
        LDNN(n_groups=10).fit(X[:12], np.array([1, 0] * 6))
    with pytest.raises(ValueError, match="batch_size=1"):
        LDNN(dropout=True, batch_size=10).fit(X, y)
    with pytest.raises(ValueError, match="shape"):
        LDNN(n_groups=2, n_nodes=2, epochs=1).fit(X, y).predict_proba(X[:, :2])
    with pytest.raises(ValueError, match="ldnn"):
        make_classifier("svm", coarse=False)
    with pytest.raises(ValueError, match="network"):
        make_classifier("ldnn", coarse=False, network="huge")


@pytest.mark.parametrize("network, fine, coarse", [("small", (6, 6), (6, 6)), ("original", (10, 20), (24, 24))])
def test_make_classifier_networks(network, fine, coarse):
    f = make_classifier("ldnn", coarse=False, network=network)
    c = make_classifier("ldnn", coarse=True, network=network)
    assert (f.n_groups, f.n_nodes, f.dropout, f.batch_size, f.learning_rate) == fine + (False, 100, 0.01)
    assert (c.n_groups, c.n_nodes, c.dropout, c.batch_size, c.learning_rate) == coarse + (True, 1, 0.05)
    # overrides win over the named network
    assert make_classifier("ldnn", coarse=True, network=network, n_groups=2).n_groups == 2


def test_state_round_trip():
    rng = np.random.default_rng(6)
    X, y = _blobs(rng)
    for clf in (LDNN(n_groups=2, n_nodes=3, epochs=1, random_state=0), LogisticRegression(epochs=1, random_state=0)):
        clf.fit(X, y)
        meta, arrays = clf.to_state()
        back = from_state(meta, arrays)
        assert type(back) is type(clf)
        np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_column_blocks_equal_concatenated_rows():
    rng = np.random.default_rng(7)
    X, y = _blobs(rng)
    clf = LDNN(n_groups=2, n_nodes=3, epochs=1, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba([X[:, :2], X[:, 2:]]), clf.predict_proba(X), atol=1e-6)
    with pytest.raises(ValueError, match="widths"):
        clf.predict_proba([X[:, :2], X[:10, 2:]])


@pytest.mark.parametrize("kind", ["ldnn", "softmax"])
def test_rows_on_threads_equal_one_thread(kind):
    """Prediction shares the row chunks among threads, each product on one BLAS thread: the same
    bits for any number of threads, also with a lazy stencil block."""
    from chm.classifiers.softmax import SoftmaxMLP
    from chm.features import StencilRows

    rng = np.random.default_rng(8)
    C = StencilRows(list(rng.random((2, 40, 50))), 2, [1, 3])
    X = rng.standard_normal((40 * 50, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (kind == "softmax") * (X[:, 1] > 0)
    full = np.hstack([X, C[:len(C)]])
    if kind == "ldnn":
        clf = LDNN(n_groups=2, n_nodes=3, epochs=1, random_state=0).fit(full, y)
    else:
        clf = SoftmaxMLP(n_classes=3, n_hidden=8, epochs=1, random_state=0).fit(full, y)
    one = clf.predict_proba([X, C], chunk=64, n_threads=1)
    for n in (2, 3):
        np.testing.assert_array_equal(clf.predict_proba([X, C], chunk=64, n_threads=n), one)
    np.testing.assert_allclose(one, clf.predict_proba(full), atol=1e-6)


@pytest.mark.parametrize("dropout", [False, True])
def test_ldnn_output_equals_the_network_formula(dropout):
    # predict_proba's in-place head against the textbook f = 1 - prod_i (1 - prod_j sigma_ij)
    # (with dropout: the expectation 1 - sqrt(prod_i (1 - sqrt(g_i))) of the original CHM).
    rng = np.random.default_rng(9)
    clf = LDNN(n_groups=3, n_nodes=4, dropout=dropout, batch_size=1)
    clf.W_ = (rng.standard_normal((12, 6)) * 2).astype(np.float32)
    X = rng.standard_normal((300, 5)).astype(np.float32)
    sig = (1.0 / (1.0 + np.exp(-(X @ clf.W_[:, :-1].T + clf.W_[:, -1])))).reshape(-1, 3, 4)
    g = sig.prod(axis=2)
    want = 1.0 - (np.sqrt(np.prod(1.0 - np.sqrt(g), axis=1)) if dropout else np.prod(1.0 - g, axis=1))
    np.testing.assert_allclose(clf.predict_proba(X), want, rtol=1e-5, atol=1e-6)
