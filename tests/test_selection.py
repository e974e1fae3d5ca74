"""chm.selection: the rules that choose weights from sparse labels of training images."""

import numpy as np
import pytest

from chm.selection import choose, cross_val_maps, heldout_split, sparse_error


def test_heldout_split_partitions_the_images():
    fit, held = heldout_split(10, 0)
    assert len(held) == 2 and sorted(np.concatenate([fit, held]).tolist()) == list(range(10))
    np.testing.assert_array_equal(heldout_split(10, 0)[1], held)  # the seed decides
    with pytest.raises(ValueError, match="at least 2"):
        heldout_split(1, 0)


def test_sparse_error_counts_labelled_pixels_only():
    masks = [np.array([[1, 0], [0, 1]]), np.array([[1, 1]])]
    labels = [np.array([[1, -1], [1, -1]]), np.array([[-1, 0]])]
    assert sparse_error(masks, labels) == pytest.approx(2 / 3)  # (0,0) right; (1,0) and the 2nd image wrong
    with pytest.raises(ValueError, match="no labelled"):
        sparse_error(masks, [np.full((2, 2), -1), np.full((1, 2), -1)])


def test_choose_takes_the_smallest_score_then_the_smallest_weight():
    assert choose({0.3: 0.2, 0.1: 0.2, 1.0: 0.25}) == 0.1
    with pytest.raises(ValueError):
        choose({})


class _Recorder:
    """A stand-in estimator: its map of an image is the set of image ids it was fitted on."""

    def __init__(self, shift=0.0):
        self.shift = shift

    def get_params(self):
        return {"shift": self.shift}

    def fit(self, images, labels):
        self.seen_ = {int(im[0, 0]) for im in images}
        self.threshold_ = 0.5 + self.shift + len(self.seen_) / 100
        return self

    def predict_proba(self, images):
        return [np.full((2, 2), float(int(im[0, 0]) in self.seen_)) for im in images]


def test_cross_val_maps_come_from_models_that_never_saw_the_image():
    images = [np.full((2, 2), i, dtype=float) for i in range(7)]
    labels = [np.zeros((2, 2), int)] * 7
    calls = []
    maps, thresholds = cross_val_maps(_Recorder(0.1), images, labels, n_folds=3, rng=0,
                                      progress=lambda k, n: calls.append((k, n)))
    assert calls == [(0, 3), (1, 3), (2, 3)]
    assert all((m == 0).all() for m in maps)  # no model predicted an image it was fitted on
    # folds of 3, 2, 2 images: the models saw 4 or 5 images, and the template's parameters
    assert sorted(set(thresholds)) == pytest.approx([0.64, 0.65])
    again, _ = cross_val_maps(_Recorder(0.1), images, labels, n_folds=3, rng=0)
    assert [m.tolist() for m in again] == [m.tolist() for m in maps]
    with pytest.raises(ValueError, match="n_folds"):
        cross_val_maps(_Recorder(), images, labels, n_folds=8)
    with pytest.raises(ValueError, match="label maps"):
        cross_val_maps(_Recorder(), images, labels[:3], n_folds=2)
