"""The synthetic check of experiments/synthetic.py: TV must clearly beat alpha = 0."""

import sys
from pathlib import Path

import numpy as np

import synthetic  # noqa: E402


def test_make_shapes_is_piecewise_constant_plus_noise():
    images, masks = synthetic.make_shapes(3, shape=(20, 24), noise=0.0, rng=0)
    for im, m in zip(images, masks):
        assert set(np.unique(im)) <= {0.35, 0.65} and np.array_equal(im > 0.5, m.astype(bool))


def test_tv_beats_supervised_on_noisy_shapes():
    errs = [synthetic.run(alpha=0.3, seed=s) for s in (0, 1, 2)]
    sup = np.mean([e["supervised"] for e in errs])
    tv = np.mean([e["tv"] for e in errs])
    assert tv < sup - 0.02, (sup, tv)  # at least 2 points of pixel error better on average
