"""Each semi-supervised method that is claimed to help must beat the supervised model trained on the
*same* sparse labels with the same seed, on synthetic test images neither model saw, by a margin
measured over more seeds than the test runs (the numbers are in each test). Fitting the "semi"
model supervised instead (``semi_supervised=None``) makes every test here fail.

Not here, because no small setting was found where it helps (measured, mean test error over 3-5
seeds, supervised -> TV at alpha 0.1 / 0.3 / 1):

* TV in the LDNN cascade (levels 1, stages 2): noisy shapes 48 x 48, 4 training images, at 13
  settings (5-20 labels per image, noise 0.5-0.8, networks 2 x 2 to 6 x 6, 15-300 epochs, intensity
  or haar + intensity or the default bank, tv_levels (0, 1), mean label pooling), TV never beat the
  supervised model beyond noise and the error grew with alpha, e.g. 5 labels, noise 0.5, 2 x 2,
  300 epochs: 10.9 -> 12.9 / 15.4 / 21.4 %; 20 labels, noise 0.5, 6 x 6, haar + intensity:
  11.1 -> 11.6 / 12.6 %. A 1-level LDNN moved by < 1 point (23.3 -> 22.9 / 22.3 / 23.2 %), all near
  the all-background map. docs/results.md ("What we learned about TV") reports the same erosion
  of the foreground on the horses.
* TV with logistic regression *in the cascade* (levels 1, stages 2): 12.6 -> 13.2 / 15.0 / 18.7 %
  (intensity, 300 epochs, 5 seeds); only the one-level logistic model of tests/test_synthetic.py
  gains (26.5 -> 25.2 / 23.6 / 22.4 % here).
* TV in the ConvNet (alpha 0.3 and 1 against 0, 100-300 steps): shapes at noise 0.5, 4 images x 5
  labels: 12.6 -> 14.1 / 16.0 % (100 steps), 11.8 -> 15.6 / 16.7 % (300); noise 0.35, 8 x 5, 150
  steps: 8.4 -> 10.0 / 11.4 %; and at alpha 0.1 / 0.3, noise 0.8: 17.5 -> 17.2 / 17.3 %; 3-class
  scenes: 24.5 -> 23.8 / 26.7 %; each fit 6-42 s.
"""

import numpy as np

from chm import CHM
from chm.datasets import make_scenes, make_shapes, sample_sparse_labels
from chm.metrics import pixel_error

SHAPES = dict(levels=1, stages=2, features=("haar", "intensity"), context_radius=3, progress=False)


def _errors(make, method, seed, n_train, n_test, n_labels, params, **data):
    """Test pixel errors of the supervised and the ``method`` model fitted on the same sparse labels
    with the same seed: (supervised, semi-supervised)."""
    rng = np.random.default_rng(seed)
    train_x, train_y = make(n_train, rng=rng, **data)
    test_x, test_y = make(n_test, rng=rng, **data)
    labels = sample_sparse_labels(train_y, n_labels, rng)
    return tuple(pixel_error(CHM(semi_supervised=m, random_state=seed, **params).fit(train_x, labels)
                             .predict(test_x), test_y) for m in (None, method))


def _gains(method, noise):
    """Supervised minus semi-supervised error on noisy shapes, 12 training images x 3 labelled pixels,
    12 test images, seeds 0-2."""
    return np.array([np.subtract(*_errors(make_shapes, method, seed, 12, 12, 3, SHAPES, shape=(48, 48),
                                          noise=noise)) for seed in range(3)])


def test_self_training_beats_supervised_on_two_classes():
    # Measured gains (points) over seeds 0-11: 7.1 7.1 2.7 11.4 3.8 10.5 0.2 5.7 3.6 9.0 2.5 9.1
    # (supervised 9-29 %): every mean of three consecutive seeds >= 3.2, no seed below 0.
    gains = _gains("self-training", noise=0.35)
    assert gains.mean() > 0.02 and gains.min() > -0.01, gains


def test_auto_beats_supervised_on_two_classes():
    # "auto" = superpixel labels + one round of self-training. At noise 0.35 it lost 4.6 points on
    # seed 0 (the graph cut's contrast weights see mostly noise); at 0.25, measured gains over seeds
    # 0-11: 5.9 7.6 10.8 5.8 1.3 12.2 0.8 5.1 4.9 4.5 3.2 2.2 (supervised 7.5-27 %): every mean of
    # three consecutive seeds >= 3.3, no seed below 0.
    gains = _gains("auto", noise=0.25)
    assert gains.mean() > 0.02 and gains.min() > -0.01, gains


def test_self_training_beats_supervised_on_k_classes():
    """Four-class colour scenes (6 training images x 20 labelled pixels, 8 test images), the default
    bank, levels 2. "auto" is self-training for K > 2 classes (the same recipe, checked below), so this
    is its test too."""
    params = dict(levels=2, stages=2, epochs=15, progress=False)
    assert CHM(semi_supervised="auto")._recipe(4) == CHM(semi_supervised="self-training")._recipe(4)
    sup, semi = _errors(make_scenes, "self-training", 0, 6, 8, 20, params, shape=(48, 64), n_classes=4,
                        noise=0.2)
    # Measured (supervised -> self-training, %), seeds 0-7: 25.7 -> 17.5, 36.0 -> 25.9, 32.3 -> 16.9,
    # 25.7 -> 17.7, 24.6 -> 15.9, 48.2 -> 20.7, 25.8 -> 15.3, 19.1 -> 12.7: gains 6.4-27.5 points.
    # (At levels 1 with the haar + intensity bank self-training did not help: 18.4 -> 19.5 %.)
    assert semi < sup - 0.03, (sup, semi)
