"""The synthetic check (docs/results.md, "Synthetic check"): noisy piecewise-constant shapes, 5 labelled
pixels per image; the total-variation loss must beat the supervised model (alpha = 0) clearly.

4 training images give 20 labelled pixels for an 81-value intensity stencil, so the supervised
classifier fits the noise, while TV asks for maps that are piecewise constant on every training pixel.
The classifier is logistic regression at full resolution only (no cascade), which isolates the loss.
This test is the check; the script that printed the table (experiments/synthetic.py) is retired: it
is at commit ed76b67.
"""

import numpy as np

from chm import CHM
from chm.datasets import make_shapes, sample_sparse_labels
from chm.metrics import pixel_error


def run(alpha=0.3, seed=0, n_train=4, n_test=16, n_labels=5, noise=0.5):
    """Test pixel error of the supervised and the TV-regularised model on the same sparse labels."""
    rng = np.random.default_rng(seed)
    train_x, train_y = make_shapes(n_train, noise=noise, rng=rng)
    test_x, test_y = make_shapes(n_test, noise=noise, rng=rng)
    labels = sample_sparse_labels(train_y, n_labels, rng)
    common = dict(levels=0, stages=1, classifier="logistic", features=("intensity",), epochs=300,
                  progress=False, random_state=seed)
    errors = {}
    for name, a in (("supervised", 0.0), ("tv", alpha)):
        model = CHM(semi_supervised="tv", alpha=a, **common).fit(train_x, labels)
        errors[name] = pixel_error(model.predict(test_x), test_y)
    return errors


def test_make_shapes_is_piecewise_constant_plus_noise():
    images, masks = make_shapes(3, shape=(20, 24), noise=0.0, rng=0)
    for im, m in zip(images, masks):
        assert set(np.unique(im)) <= {0.35, 0.65} and np.array_equal(im > 0.5, m.astype(bool))


def test_tv_beats_supervised_on_noisy_shapes():
    errs = [run(alpha=0.3, seed=s) for s in (0, 1, 2)]
    sup = np.mean([e["supervised"] for e in errs])
    tv = np.mean([e["tv"] for e in errs])
    assert tv < sup - 0.02, (sup, tv)  # at least 2 points of pixel error better on average
