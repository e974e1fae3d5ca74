"""Decision rules: the threshold / class weights and the EM class prior, on cases with known answers."""

import numpy as np
import pytest

from chm import CHM
from chm.datasets import make_shapes, sample_sparse_labels
from chm.metrics import pixel_error
from chm.thresholds import calibrate, calibrated, em_prior


def _mixture(prior, q, n, rng):
    """Pixels of a two-Gaussian mixture with foreground fraction ``prior`` and the exact
    posterior P(foreground | x) a classifier trained under balance ``q`` would give."""
    y = rng.random(n) < prior
    x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    like1, like0 = np.exp(-(x - 1) ** 2 / 2), np.exp(-(x + 1) ** 2 / 2)
    return q * like1 / (q * like1 + (1 - q) * like0)


@pytest.mark.parametrize("prior, q", [(0.25, 0.5), (0.6, 0.3), (0.1, 0.1)])
def test_em_recovers_the_prior_of_a_known_mixture(prior, q):
    post = _mixture(prior, q, 200_000, np.random.default_rng(0))
    assert em_prior(post, q) == pytest.approx(prior, abs=0.01)


def test_calibration_undoes_a_temperature_and_a_bias():
    rng = np.random.default_rng(2)
    exact = _mixture(0.3, 0.3, 50_000, rng)
    y = (rng.random(len(exact)) < exact).astype(int)  # classes drawn from the exact posterior
    z = np.log(exact / (1 - exact))
    squeezed = 1 / (1 + np.exp(-(0.25 * z + 0.4)))  # under-confident and shifted, like the LDNN's maps
    a, b = calibrate(squeezed[:5000], y[:5000])
    assert a == pytest.approx(4.0, rel=0.15)
    np.testing.assert_allclose(calibrated(squeezed, a, b), exact, atol=0.03)


def test_em_prior_k_classes_and_errors():
    rng = np.random.default_rng(1)
    prior, q = np.array([0.6, 0.3, 0.1]), np.full(3, 1 / 3)
    y = rng.choice(3, size=100_000, p=prior)
    x = rng.normal(np.array([-2.0, 0.0, 2.0])[y], 1.0)
    like = np.exp(-(x[:, None] - np.array([-2.0, 0.0, 2.0])) ** 2 / 2)
    post = like * q / (like * q).sum(1, keepdims=True)
    np.testing.assert_allclose(em_prior(post, q), prior, atol=0.01)
    with pytest.raises(ValueError, match="train_prior"):
        em_prior(post, [0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="posteriors"):
        em_prior(post[:, :2], q)


def test_em_class_prior_follows_the_images_not_the_clicks():
    """Balanced clicks (half foreground) on images with ~25 % foreground: the labels' prior
    follows the clicks, the EM prior the images. Self-training's guard holds its proposals
    near the prior, so with the clicks' prior "auto" over-predicts the foreground (measured on
    seeds 0-2: test error 11.2 / 9.8 / 11.7 % with the labels' prior, 5.2 / 8.5 / 6.0 % with EM;
    EM priors 0.26 / 0.24 / 0.26 against a truth of 0.25)."""
    images, masks = make_shapes(24, shape=(48, 48), noise=0.25, rng=5)
    truth = float(np.mean(np.concatenate([m.ravel() for m in masks[:12]])))
    labels = sample_sparse_labels(masks[:12], 20, rng=6, protocol="balanced")
    kw = dict(levels=2, semi_supervised="auto", random_state=0, progress=False)
    by_labels = CHM(**kw).fit(images[:12], labels)
    by_em = CHM(class_prior="em", **kw).fit(images[:12], labels)
    assert by_labels.rounds_[0]["foreground"] > 0.35  # the guard kept the clicks' 50 % within 25 %
    assert abs(by_em.cascade_.prior - truth) < 0.05
    err = lambda m: pixel_error(m.predict(images[12:]), masks[12:])  # noqa: E731
    assert err(by_em) < err(by_labels) - 0.02
