"""The spatial loss's centres: drawn before the fit, uniform over interior pixels, each served
once, with the filter-bank rows of their neighbourhoods and their context stencils."""

import gc

import numpy as np
import pytest

from chm import CHM
from chm.cascade import training
from chm.cascade.contexts import stencil_rows
from chm.cascade.sampling import (CentrePool, ImageCentres, NeighbourhoodPool, draw_centres,
                                  neighbourhood_features, neighbourhoods)
from chm.classifiers import LDNN, LogisticRegression, SoftmaxMLP
from chm.datasets import make_scenes, make_shapes, sample_sparse_labels
from chm.semi.losses import get_spatial_loss


def _filled_pool(feats, n, seed):
    shapes = [f.shape[:2] for f in feats]
    pool = CentrePool(*draw_centres(shapes, n, np.random.default_rng(seed)), shapes, feats[0].shape[2])
    for i in range(len(feats)):
        at = pool.of_image(i)
        pool.write(i, neighbourhood_features(feats[i], pool.ys[at], pool.xs[at]))
    return pool


def test_centres_are_uniform_over_interior_pixels():
    shapes = [(10, 12), (30, 5), (3, 3), (2, 40)]  # interiors of 80, 84, 1 and 0 pixels
    index, ys, xs = draw_centres(shapes, 33_000, np.random.default_rng(0))
    hs, ws = np.array(shapes).T
    assert ys.min() >= 1 and xs.min() >= 1 and np.all(ys <= hs[index] - 2) and np.all(xs <= ws[index] - 2)
    counts = np.bincount(index, minlength=4)
    expected = 33_000 * np.array([80, 84, 1, 0]) / 165
    assert counts[3] == 0 and np.all(np.abs(counts - expected) < 4 * np.sqrt(expected) + 1)
    # every interior pixel of the first image, about equally often
    per_pixel = np.bincount((ys * 12 + xs)[index == 0], minlength=120).reshape(10, 12)[1:-1, 1:-1]
    assert per_pixel.min() > 0.5 * per_pixel.mean()
    again = draw_centres(shapes, 33_000, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip((index, ys, xs), again))
    with pytest.raises(ValueError, match="interior"):
        draw_centres([(2, 9), (40, 1)], 5, np.random.default_rng(0))


def test_pool_rows_are_each_neighbourhoods_features():
    rng = np.random.default_rng(1)
    feats = [rng.random((9 + i, 11, 4)) for i in range(3)]
    pool = _filled_pool(feats, 40, 2)
    rows = pool.features(0, len(pool))
    assert rows.shape == (40, 9, 4) and rows.dtype == np.float32
    for k, (i, y, x) in enumerate(zip(*pool.centres(0, len(pool)))):
        ref = feats[i][y - 1:y + 2, x - 1:x + 2].reshape(9, 4).astype(np.float16)  # row-major 3 x 3
        np.testing.assert_array_equal(rows[k], ref)
    drawn = draw_centres([f.shape[:2] for f in feats], 40, np.random.default_rng(2))
    assert all(np.array_equal(a, b) for a, b in zip(pool.centres(0, 40), drawn))  # served as drawn
    with pytest.raises(ValueError, match="image 0 has"):
        pool.write(0, np.zeros((1, 9, 4)))
    np.testing.assert_array_equal(neighbourhoods(np.array([1]), np.array([2]), 5)[0],
                                  [1, 2, 3, 6, 7, 8, 11, 12, 13])


def test_draws_serve_the_pool_once_each_with_contexts_and_normalisation():
    rng = np.random.default_rng(3)
    feats = [rng.random((12, 10, 3)) for _ in range(2)]
    feats = [feats[0], rng.random((7, 13, 3))]  # images of different sizes
    ctx = [[rng.random(f.shape[:2]).astype(np.float32), rng.random(f.shape[:2] + (2,)).astype(np.float32)]
           for f in feats]  # a plain map and a 2-channel one
    pool = _filled_pool(feats, 25, 4)
    offset, scale = rng.random(3 + 27), 1 + rng.random(3 + 27)
    sampler = ImageCentres(pool, ctx, (1, [2, 1]), offset, scale)
    X1, nbr1, w = sampler.draw(None, 10)  # the rng is not used: the pool was drawn before
    X2, _, _ = sampler.draw(None, 15)
    assert w is None and X1.shape == (90, 30) and nbr1.shape == (10, 9)
    np.testing.assert_array_equal(nbr1, np.arange(90).reshape(10, 9))
    X = np.concatenate([X1, X2]).reshape(25, 9, 30)
    assert len(set(pool.centres(0, 25)[0])) == 2
    for k, (i, y, x) in enumerate(zip(*pool.centres(0, len(pool)))):
        h, w, f = feats[i].shape
        flat = neighbourhoods(np.array([y]), np.array([x]), w).ravel()
        raw = np.concatenate([feats[i].reshape(h * w, f)[flat].astype(np.float16).astype(np.float32),
                              stencil_rows(ctx[i][0], flat, 1, 2), stencil_rows(ctx[i][1], flat, 1, 1)], axis=1)
        raw = raw.astype(np.float16).astype(np.float32)  # float16 columns, as the labelled rows
        np.testing.assert_allclose(X[k], ((raw - offset) / scale).astype(np.float32), rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="25 spatial-loss centres"):
        sampler.draw(None, 1)
    # another classifier of the level starts at the pool's first centre
    np.testing.assert_array_equal(ImageCentres(pool, ctx, (1, [2, 1]), offset, scale).draw(None, 10)[0], X1)


def test_contrast_weights_are_the_loss_weights_of_the_drawn_centres():
    rng = np.random.default_rng(5)
    images = [rng.random((14, 16)) for _ in range(3)]
    feats = [im[..., None] for im in images]
    pool = _filled_pool(feats, 30, 6)
    loss = get_spatial_loss("contrast")
    _, _, w = ImageCentres(pool, [[] for _ in images], (1, []), np.zeros(1), np.ones(1), images, loss).draw(None, 30)
    for k, (i, y, x) in enumerate(zip(*pool.centres(0, len(pool)))):
        np.testing.assert_allclose(w[k], loss.centre_weights(images[i], [y], [x])[0])
    with pytest.raises(ValueError, match="needs the images"):
        ImageCentres(pool, [[]] * 3, (1, []), np.zeros(1), np.ones(1), None, loss)


def test_the_pool_is_not_mapped_between_draws():
    """Its rows stay in a temporary file, out of the process's memory, except while read."""
    rng = np.random.default_rng(7)
    pool = _filled_pool([rng.random((20, 20, 5))], 50, 8)
    sampler = ImageCentres(pool, [[]], (1, []), np.zeros(5), np.ones(5))
    sampler.draw(None, 20)
    gc.collect()
    try:
        with open("/proc/self/maps") as fh:
            mapped = sum("chm-centres-" in line for line in fh)
    except OSError:
        pytest.skip("no /proc/self/maps to read the process's mappings from")
    assert mapped == 0


class _Counting(NeighbourhoodPool):
    def draw(self, rng, n):
        self.drawn = getattr(self, "drawn", 0) + n
        return super().draw(rng, n)


@pytest.mark.parametrize("make", [lambda: LDNN(n_groups=2, n_nodes=2, epochs=3, batch_size=7, random_state=0),
                                  lambda: LogisticRegression(epochs=4, spatial_rate=2.5, random_state=0),
                                  lambda: SoftmaxMLP(n_classes=2, n_hidden=4, epochs=3, batch_size=16,
                                                     random_state=0)])
def test_a_fit_draws_exactly_the_centres_it_announces(make):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(110, 4)).astype(np.float32)
    y = np.where(np.arange(110) < 50, (X[:, 0] > 0).astype(int), -1)
    sampler = _Counting(X, rng.integers(0, 110, size=(30, 9)))
    clf = make()
    clf.fit(X, y, spatial=sampler, alpha=0.5)
    assert sampler.drawn == clf.spatial_centres(50) > 0
    assert make().set_params(spatial_rate=0).spatial_centres(50) == 0


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_spatial_fit_uses_every_centre_of_its_pools(monkeypatch, n_classes):
    """The pool is as large as the level's longest fit asks for, and that fit uses all of it."""
    if n_classes == 2:
        images, masks = make_shapes(4, shape=(36, 40), rng=0)
    else:
        images, masks = make_scenes(4, shape=(36, 40), n_classes=3, rng=0)
    labels = sample_sparse_labels(masks, 20, rng=1)
    pools, draws = [], {}
    make_pool, draw = training._centre_pool, ImageCentres.draw

    def pool_spy(*a):
        pools.append(make_pool(*a))
        return pools[-1]

    def draw_spy(self, rng, n):
        draws[id(self)] = draws.get(id(self), 0) + n
        return draw(self, rng, n)

    monkeypatch.setattr(training, "_centre_pool", pool_spy)
    monkeypatch.setattr(ImageCentres, "draw", draw_spy)
    CHM(levels=1, stages=2, features=("edge",), epochs=3, semi_supervised="tv", alpha=0.01,
        n_classes=n_classes, random_state=0, progress=False).fit(images, labels)
    assert len(pools) == 1 and len(draws) == 2  # level 0: stage 1 and the fusion classifier share it
    assert max(draws.values()) == len(pools[0])



@pytest.mark.parametrize("shape,radius,dilation", [((5, 4, 2), 2, 3), ((30, 41), 3, 1), ((2, 1), 1, 2)])
def test_context_stencil_rows_are_the_mirror_padded_stencils(shape, radius, dilation):
    """The rows read through reflected indices are those of numpy's symmetric padding (deeper
    than the map too), channel after channel."""
    from chm.features import stencil

    m = np.random.default_rng(10).random(shape)
    flat = np.arange(shape[0] * shape[1])
    planes = [m] if m.ndim == 2 else [m[:, :, c] for c in range(m.shape[2])]
    ref = np.concatenate([stencil(p, radius, dilation=dilation).reshape(len(flat), -1) for p in planes], axis=1)
    np.testing.assert_array_equal(stencil_rows(m, flat, radius, dilation), ref.astype(np.float32))


@pytest.fixture(scope="module")
def shapes_data():
    return make_shapes(6, shape=(24, 30), noise=0.35, rng=np.random.default_rng(0))


def test_spatial_loss_sees_fresh_centres_every_epoch(shapes_data):
    """The paper's loss sums over every pixel: each epoch draws new centres from all pixels."""
    from chm.features import FilterBank

    images, _ = shapes_data
    bank = FilterBank(("haar",))
    sampler = ImageCentres(_filled_pool([bank(im) for im in images], 1000, 0), [[] for _ in images], (3, []),
                           np.zeros(2), np.ones(2))
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        X, nbr, w = sampler.draw(rng, 50)
        assert X.shape == (450, 2) and nbr.shape == (50, 9) and w is None
        seen.update(map(tuple, np.round(X[nbr[:, 4]], 6)))
    interior = sum((im.shape[0] - 2) * (im.shape[1] - 2) for im in images)
    assert len(seen) > 0.5 * min(1000, interior)  # mostly new centres, not a fixed pool


def test_spatial_centres_rows_match_the_training_rows(shapes_data):
    """A fresh centre's rows are built like the labelled rows: the same bank columns, context
    stencils and normalisation, so the spatial loss sees what the classifier is trained on."""
    from chm.cascade.contexts import context_maps
    from chm.cascade.normalisation import robust_scaling
    from chm.cascade.cache import FeatureSource
    from chm.cascade.sampling import assemble, training_rows
    from chm.features import FilterBank

    images, masks = shapes_data
    bank = FilterBank(("haar", "intensity"))
    dense = [m.astype(np.int8) for m in masks[:2]]
    rows = [training_rows(im, lab, 1, [None, None], FeatureSource(bank), seed=0) for im, lab in zip(images[:2], dense)]
    maps = [{(1, 0): np.random.default_rng(i).random(im.shape).astype(np.float32),
             (1, 1): np.random.default_rng(9 + i).random(rows[i][1]["shape"]).astype(np.float32)}
            for i, im in enumerate(images[:2])]
    spec = (3, [1, 2])  # the fusion classifier (2, 0), "scaled" dilations
    X, _, _ = assemble(rows, maps, 2, 0, 1, spec)
    offset, scale = robust_scaling(X, bank)
    ctx = [context_maps(m, 2, 0, 1, im.shape) for m, im in zip(maps, images[:2])]
    sampler = ImageCentres(_filled_pool([bank(im) for im in images[:2]], 30, 3), ctx, spec, offset, scale)
    Xn, nbr, _ = sampler.draw(np.random.default_rng(3), 30)
    # Every drawn row is one of the (dense) training rows of its image, normalised the same way.
    Xs = ((X.astype(np.float64) - offset) / scale).astype(np.float32)
    for row in Xn[nbr[:, 4]]:
        assert np.min(np.abs(Xs - row).max(axis=1)) < 2e-2  # float16 training rows


def test_a_spatial_fit_is_the_same_for_a_seed_and_any_n_jobs():
    """The pool is drawn by the fit's generator and filled by image, whichever worker read it."""
    images, masks = make_shapes(4, shape=(36, 40), rng=3)
    labels = sample_sparse_labels(masks, 20, rng=4)
    kw = dict(levels=1, stages=2, features=("edge",), epochs=3, semi_supervised="tv", alpha=0.01, progress=False)
    a = CHM(**kw, random_state=5, n_jobs=1).fit(images, labels)
    b = CHM(**kw, random_state=5, n_jobs=2).fit(images, labels)
    c = CHM(**kw, random_state=6, n_jobs=1).fit(images, labels)
    for key in a.classifiers_:
        np.testing.assert_array_equal(a.classifiers_[key].W_, b.classifiers_[key].W_)
    assert not np.array_equal(a.classifiers_[(2, 0)].W_, c.classifiers_[(2, 0)].W_)
