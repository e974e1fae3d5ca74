import numpy as np
import pytest

from chm.semi.superpixels import expand_labels, superpixels


def _two_regions(shape=(30, 40), colour=False):
    """Left half dark, right half bright: two obvious superpixel groups, split at column 20."""
    im = np.zeros(shape)
    im[:, shape[1] // 2:] = 1.0
    return np.dstack([im, 1 - im, im]) if colour else im


def test_segments_follow_the_edge():
    seg = superpixels(_two_regions(), scale=50)
    assert seg.shape == (30, 40) and seg.min() == 0
    assert not set(np.unique(seg[:, :20])) & set(np.unique(seg[:, 20:]))  # no segment crosses the edge


@pytest.mark.parametrize("colour", [False, True])
def test_one_label_per_region_labels_the_whole_region(colour):
    lab = np.full((30, 40), -1, np.int8)
    lab[5, 5], lab[25, 35] = 0, 1
    im = _two_regions(colour=colour)
    out = expand_labels(im, lab, scale=1000)
    seg = superpixels(im, 1000)
    assert out.dtype == lab.dtype
    assert set(np.unique(out[:, :20])) <= {-1, 0} and set(np.unique(out[:, 20:])) <= {-1, 1}  # never across
    np.testing.assert_array_equal(out == 0, seg == seg[5, 5])  # the labelled pixel's whole segment
    np.testing.assert_array_equal(out == 1, seg == seg[25, 35])
    assert (out >= 0).mean() > 0.5


def test_disagreeing_labels_leave_the_segment_unlabelled():
    lab = np.full((30, 40), -1)
    lab[5, 5], lab[20, 10] = 0, 2          # two classes in the dark half
    lab[25, 35] = 1
    im = _two_regions()
    seg = superpixels(im, 1000)
    assert seg[5, 5] == seg[20, 10]  # the case needs both in one segment
    out = expand_labels(im, lab, scale=1000)
    np.testing.assert_array_equal(out[lab >= 0], lab[lab >= 0])  # labelled pixels keep their labels
    mixed = (seg == seg[5, 5]) & (lab < 0)
    assert mixed.any() and (out[mixed] == -1).all()
    np.testing.assert_array_equal(out == 1, seg == seg[25, 35])


def test_segments_without_labels_stay_unlabelled_and_nothing_is_modified():
    rng = np.random.default_rng(0)
    im = rng.random((24, 24))
    lab = np.full((24, 24), -1)
    np.testing.assert_array_equal(expand_labels(im, lab, 50), lab)
    lab[3, 3] = 1
    before = lab.copy()
    out = expand_labels(im, lab, 50)
    np.testing.assert_array_equal(lab, before)
    seg = superpixels(im, 50)
    np.testing.assert_array_equal(out == 1, seg == seg[3, 3])
    assert (out[seg != seg[3, 3]] == -1).all()


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="do not match"):
        expand_labels(np.zeros((10, 10)), np.full((10, 11), -1), 50)
