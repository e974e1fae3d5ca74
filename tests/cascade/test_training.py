"""The training loop does what the recipe's name says: the user's sparse labels set the decision
rule, the guard's prior and the clamps; a combined method keeps its loss in the refit; the
label pooling is the user's when given."""

import warnings

import numpy as np
import pytest

from chm import CHM
from chm.cascade import training
from chm.datasets import make_scenes, make_shapes, sample_sparse_labels
from chm.semi import selftraining

KW = dict(levels=1, stages=2, features=("edge",), epochs=2, random_state=0, progress=False)


@pytest.fixture(scope="module")
def data():
    images, masks = make_shapes(6, shape=(40, 40), rng=1)
    return images, sample_sparse_labels(masks, 30, rng=2)


def _record(monkeypatch):
    """Record the arguments of every cascade fit and of the binary proposals."""
    fits, props = [], []
    fit, prop = training.fit_cascade, training.proposals

    def fit_spy(spec, source, images, labels, seeds, caps, rng, par, loss=None, alpha=0.0, pooling="max",
                progress=None, prior_labels=None, prior="labels", channels=None):
        fits.append({"labels": labels, "loss": loss, "alpha": alpha, "pooling": pooling,
                     "prior_labels": prior_labels})
        return fit(spec, source, images, labels, seeds, caps, rng, par, loss, alpha, pooling, progress,
                   prior_labels=prior_labels, prior=prior, channels=channels)

    def prop_spy(maps, images, labels, beta, threshold=0.5, prior=None, **kw):
        props.append({"labels": labels, "prior": prior})
        return prop(maps, images, labels, beta, threshold, prior, **kw)

    monkeypatch.setattr(training, "fit_cascade", fit_spy)
    monkeypatch.setattr(training, "proposals", prop_spy)
    return fits, props


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_auto_uses_the_sparse_labels_for_the_rule_the_prior_and_the_clamps(data, monkeypatch):
    images, labels = data
    fits, props = _record(monkeypatch)
    CHM(semi_supervised="auto", **KW).fit(images, labels)
    first, refit = fits
    assert not _same(first["labels"], labels)  # fitted on the superpixel-spread labels ...
    assert _same(first["prior_labels"], labels)  # ... but the decision rule follows the sparse ones
    assert _same(props[0]["labels"], labels)  # only the user's pixels are clamped
    pi = selftraining.foreground_prior(labels)
    low, high = props[0]["prior"]
    assert low == pytest.approx(0.75 * pi) and high == pytest.approx(1.25 * pi)
    assert refit["pooling"] == "mean" and first["pooling"] == "max"  # label_pooling=None


def test_a_combined_method_keeps_its_loss_in_the_refit(data, monkeypatch):
    images, labels = data
    fits, _ = _record(monkeypatch)
    CHM(semi_supervised="tv+self-training", alpha=0.5, **KW).fit(images, labels)
    assert len(fits) == 2
    assert all(f["loss"] is not None and f["loss"].name == "tv" and f["alpha"] == 0.5 for f in fits)


def test_a_label_pooling_given_is_used_by_every_fit(data, monkeypatch):
    images, labels = data
    fits, _ = _record(monkeypatch)
    CHM(semi_supervised="self-training", label_pooling="max", **KW).fit(images, labels)
    assert [f["pooling"] for f in fits] == ["max", "max"]


def test_the_threshold_follows_the_sparse_labels_balance(data):
    """Spreading the labels over superpixels changes the labels' balance, not the decision rule:
    with no cap (every labelled pixel sampled) the rule of a fit on spread labels is the
    threshold of the sparse labels' balance against the spread labels' (not 0.5)."""
    images, labels = data
    spread = CHM(semi_supervised="superpixels", **KW).fit(images, labels)
    sup = CHM(**KW).fit(images, labels)
    assert sup.threshold_ == pytest.approx(0.5)  # sampled = labelled: nothing to undo
    assert spread.threshold_ != pytest.approx(0.5)  # was 0.5 when the spread labels set the rule


def test_k_class_tv_draws_fresh_centres_from_whole_images(monkeypatch):
    images, masks = make_scenes(4, shape=(40, 40), n_classes=3, rng=0)
    labels = sample_sparse_labels(masks, 30, rng=1)
    drawn = []
    draw = training.ImageCentres.draw

    def spy(self, rng, n):
        out = draw(self, rng, n)
        drawn.append(out[0][out[1][:, 4]].copy())  # the centres' own rows
        return out

    monkeypatch.setattr(training.ImageCentres, "draw", spy)
    CHM(semi_supervised="tv", n_classes=3, **KW).fit(images, labels)
    assert len(drawn) >= 2  # one draw per epoch at least
    a, b = drawn[0], drawn[1]
    # fresh centres each epoch: the second epoch's rows are not a re-draw of the first's
    assert not np.array_equal(np.sort(a, axis=0), np.sort(b, axis=0))


def test_labels_that_skip_a_class_warn_with_the_classes_seen():
    images, masks = make_shapes(3, shape=(40, 40), rng=3)
    labels = [np.where(lab == 1, 2, lab).astype(np.int8) for lab in sample_sparse_labels(masks, 30, rng=4)]
    with pytest.warns(UserWarning, match=r"only classes \[0, 2\]"):
        CHM(**KW).fit(images, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        CHM(n_classes=3, **KW).fit(images, labels)  # said explicitly: no warning


def test_spatial_share_grows_with_alpha_and_is_none_without_a_spatial_loss(data):
    """``spatial_share_``: per classifier trained with a spatial loss, the loss's share of the
    gradient norm in its last epoch. A logistic model on noisy shapes, 15 SGD steps per epoch."""
    images, masks = make_shapes(6, noise=0.5, rng=0)
    labels = sample_sparse_labels(masks, 50, rng=1)
    common = dict(levels=0, stages=1, classifier="logistic", features=("intensity",), epochs=10, progress=False,
                  random_state=0)
    assert CHM(**common).fit(images, labels).spatial_share_ is None
    assert CHM(semi_supervised="tv", alpha=0.0, **common).fit(images, labels).spatial_share_ is None
    shares = [CHM(semi_supervised="tv", alpha=a, **common).fit(images, labels).spatial_share_ for a in (0.1, 1, 10)]
    assert all(set(s) == {(1, 0)} for s in shares)
    shares = [s[(1, 0)] for s in shares]
    assert 0 < shares[0] < shares[1] < shares[2] < 1, shares
    # in a cascade: the full-resolution classifiers, where the loss is (tv_levels); K classes too
    assert set(CHM(semi_supervised="tv", alpha=0.3, **KW).fit(*data).spatial_share_) == {(1, 0), (2, 0)}
    scenes, scene_masks = make_scenes(4, shape=(32, 40), rng=3)
    kclass = CHM(n_classes=4, semi_supervised="tv", alpha=0.3, **KW).fit(
        scenes, sample_sparse_labels(scene_masks, 30, rng=4))
    assert set(kclass.spatial_share_) == {(1, 0), (2, 0)} and all(0 < v < 1 for v in kclass.spatial_share_.values())


def test_a_spatial_loss_that_flattens_the_output_warns():
    images, masks = make_shapes(6, noise=0.5, rng=0)
    labels = sample_sparse_labels(masks, 50, rng=1)
    common = dict(levels=0, stages=1, classifier="logistic", features=("intensity",), epochs=10, progress=False,
                  random_state=0)
    with pytest.warns(training.FlatOutputWarning, match=r"alpha=10000\) flattened"):
        flat = CHM(semi_supervised="tv", alpha=1e4, **common).fit(images, labels)
    assert len(np.unique(np.concatenate([m.ravel() for m in flat.predict(images)]))) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", training.FlatOutputWarning)
        fine = CHM(semi_supervised="tv", alpha=0.1, **common).fit(images, labels)
    assert len(np.unique(np.concatenate([m.ravel() for m in fine.predict(images)]))) == 2
