import numpy as np
import pytest

from chm.semi.losses import (SOBEL_X, SOBEL_Y, ContrastSensitive, SpatialLoss, TV, get_spatial_loss, map_tv,
                             squared_error)
from chm.mrf import default_sigma


def test_constant_map_has_zero_tv_and_zero_gradient():
    p = np.full((6, 7), 0.3)
    assert TV().value(p) == 0.0
    assert np.all(TV().gradient(p) == 0.0)


def test_step_edge_known_value():
    # Vertical step 0 -> 1 between columns 2 and 3 of a 5 x 6 map. Valid centres: rows 1..3,
    # columns 1..4. Sobel-Y (columns) responds 4 / 8 at centre columns 2 and 3, Sobel-X is 0.
    p = np.zeros((5, 6))
    p[:, 3:] = 1.0
    assert TV().value(p) == pytest.approx(3 * 2 * 0.5)
    # Horizontal step: the same by symmetry.
    assert TV().value(p.T.copy()) == pytest.approx(3 * 2 * 0.5)


def test_tv_of_a_ramp_is_its_slope():
    # Derivative-normalised Sobel: f = 0.1 * column gives |df/dx| = 0.1 at every valid centre.
    p = 0.1 * np.tile(np.arange(7.0), (5, 1))
    assert TV().value(p) == pytest.approx(0.1 * 3 * 5)


def test_map_tv_is_the_tv_per_centre():
    # A unit step between columns 4 and 5 of an 8 x 10 map: 1 per row of the 6 x 8 centres
    # (Sobel-Y / 8 gives 0.5 at the two centres beside the step), so 1/8 per centre.
    p = np.zeros((8, 10))
    p[:, 5:] = 1.0
    assert map_tv(p) == pytest.approx(1 / 8)
    assert map_tv(p.T) == pytest.approx(1 / 8)  # 1 per column of the 8 x 6 centres
    wide = np.zeros((8, 12))
    wide[:, 5:] = 1.0
    assert map_tv(wide) == pytest.approx(1 / 10)  # per pixel: the same step over more pixels
    assert map_tv(0.25 * p) == pytest.approx(0.25 / 8)
    assert map_tv(np.full((8, 10), 0.7)) == 0.0
    # K classes: summed over the channels, [1 - p, p] costs twice p
    assert map_tv(np.stack([1 - p, p], axis=2)) == pytest.approx(2 / 8)


def test_squared_error_known_answer():
    loss, d = squared_error([0.5, 0.9], [0.1, 0.9])
    assert loss == pytest.approx(0.5 * 0.16)
    np.testing.assert_allclose(d, [0.4, 0.0])


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_gradient_matches_finite_differences(penalty):
    rng = np.random.default_rng(0)
    loss = SpatialLoss(np.stack([SOBEL_X, SOBEL_Y]), penalty=penalty)
    p = rng.random((6, 5))
    g = loss.gradient(p)
    eps = 1e-6
    num = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        q = p.copy(); q[idx] += eps
        r = p.copy(); r[idx] -= eps
        num[idx] = (loss.value(q) - loss.value(r)) / (2 * eps)
    # Random maps have no zero Sobel response, so TV is differentiable here.
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-6)


def test_coefficients_are_the_gradient_of_one_centre():
    rng = np.random.default_rng(1)
    patch = rng.random((3, 3))
    c = TV().coefficients(patch)
    expected = (np.sign((SOBEL_X * patch).sum()) * SOBEL_X + np.sign((SOBEL_Y * patch).sum()) * SOBEL_Y) / 8
    np.testing.assert_allclose(c, expected.ravel())  # paper eq. 15 (stencils / 8)
    np.testing.assert_allclose(c.reshape(3, 3), TV().gradient(patch))


def test_vector_image_sums_channels():
    rng = np.random.default_rng(2)
    p = rng.random((5, 5, 3))
    assert TV().value(p) == pytest.approx(sum(TV().value(p[:, :, k]) for k in range(3)))
    np.testing.assert_allclose(TV().gradient(p)[:, :, 1], TV().gradient(p[:, :, 1]))


def test_bad_input_and_registry():
    with pytest.raises(ValueError, match="stencils"):
        SpatialLoss(np.ones((2, 2)))
    with pytest.raises(ValueError, match="penalty"):
        SpatialLoss(np.ones((1, 3, 3)), penalty="huber")
    with pytest.raises(ValueError, match="H, W >= 3"):
        TV().value(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="unknown spatial loss"):
        get_spatial_loss("curvy")
    loss = get_spatial_loss(TV().to_dict())
    assert loss.name == "tv" and loss.penalty == "l1"


def test_contrast_loss_on_a_flat_image_known_value():
    # Flat image: every weight is 1. Vertical step 0 -> 1 between columns 2 and 3 of a 5 x 6 map;
    # valid centres rows 1..3, columns 1..4. A centre in column 2 differs from its 3 right
    # neighbours (one axis, two diagonal), a centre in column 3 from its 3 left ones:
    # per centre 1/2 + 2 / (2 sqrt 2), over 3 rows and 2 columns.
    p = np.zeros((5, 6))
    p[:, 3:] = 1.0
    img = np.full((5, 6), 0.4)
    per_centre = 0.5 + 2 / (2 * np.sqrt(2))
    assert ContrastSensitive().value(p, img) == pytest.approx(6 * per_centre)
    assert ContrastSensitive(penalty="l2").value(p, img) == pytest.approx(6 * (0.125 + 2 * 0.0625))
    assert ContrastSensitive().value(np.full((5, 6), 0.7), img) == 0.0


def test_contrast_loss_is_cheap_on_image_edges():
    # The same map step costs exp(-d^2 / (2 s^2)) per pair when the image steps there too.
    p = np.zeros((5, 6))
    p[:, 3:] = 1.0
    img = 0.2 + 0.5 * p
    s = default_sigma(img)
    w = np.exp(-0.25 / (2 * s * s))
    per_centre = 0.5 + 2 / (2 * np.sqrt(2))
    assert ContrastSensitive().value(p, img) == pytest.approx(6 * per_centre * w)
    assert w < 0.1  # an image edge makes the map's boundary cheap
    # The map's edge one column off the image's costs full price on its own pairs.
    assert ContrastSensitive().value(np.roll(p, 1, axis=1), img) > 5 * ContrastSensitive().value(p, img)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_contrast_gradient_matches_finite_differences_and_kernel_coefficients(penalty):
    rng = np.random.default_rng(3)
    loss = ContrastSensitive(penalty=penalty)
    p, img = rng.random((6, 5)), rng.random((6, 5, 3))  # colour image: distances over channels
    g = loss.gradient(p, img)
    eps = 1e-6
    num = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        q = p.copy(); q[idx] += eps
        r = p.copy(); r[idx] -= eps
        num[idx] = (loss.value(q, img) - loss.value(r, img)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-6)
    # One centre: the kernel's coefficients with the centre's weights are the gradient of a 3 x 3 map.
    patch, crop = p[:3, :3], img[:3, :3]
    w = loss.centre_weights(crop, [1], [1])
    np.testing.assert_allclose(loss.coefficients(patch, w[0]).reshape(3, 3), loss.gradient(patch, crop))


def test_weight_maps_of_a_crop_with_the_images_sigma_are_the_images():
    """A crop's weights, at the whole image's sigma, are the whole image's at the crop's valid
    centres (what a network trained on crops of an image needs); at the crop's own sigma they differ."""
    rng = np.random.default_rng(5)
    img = rng.random((9, 11, 3))
    loss = ContrastSensitive()
    whole, s = loss.weight_maps(img), default_sigma(img)
    assert whole.shape == (8, 7, 9)
    crop = img[2:7, 3:10]  # valid centres: image rows 3-5, columns 4-8
    np.testing.assert_array_equal(loss.weight_maps(crop, sigma=s), whole[:, 2:5, 3:8])
    assert not np.allclose(loss.weight_maps(crop), whole[:, 2:5, 3:8])
    p = rng.random((5, 7, 2))
    assert loss.value(p, crop, sigma=default_sigma(crop)) == loss.value(p, crop)
    assert loss.value(p, crop, sigma=s) != pytest.approx(loss.value(p, crop))
    assert not np.allclose(loss.gradient(p, crop, sigma=s), loss.gradient(p, crop))
    assert TV().weight_maps(img) is None


def test_contrast_loss_needs_pair_stencils_and_an_image():
    with pytest.raises(ValueError, match="pair stencils"):
        SpatialLoss(np.stack([SOBEL_X]), contrast=1.0)
    with pytest.raises(ValueError, match="pass the image"):
        ContrastSensitive().value(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="contrast must be"):
        ContrastSensitive(contrast=0.0)
    back = get_spatial_loss(ContrastSensitive(penalty="l2", contrast=0.5).to_dict())
    assert (back.name, back.penalty, back.contrast) == ("contrast", "l2", 0.5)
    assert get_spatial_loss("contrast").contrast == 1.0


def test_paper_alpha_factor_turns_the_papers_sums_into_our_means():
    """On two maps with labels, the paper's sum objective (eq. 1 + alpha_p eq. 8) equals 2 |S| times
    ours (mean half squared error + alpha mean TV per centre) when alpha = factor x alpha_p."""
    from chm.semi.losses import paper_alpha_factor

    rng = np.random.default_rng(0)
    maps = [rng.random((9, 11)), rng.random((7, 6))]
    labels = [np.full(m.shape, -1) for m in maps]
    labels[0][2, 3], labels[0][5, 5], labels[1][3, 2] = 1, 0, 1
    sup = [(m[lab >= 0], lab[lab >= 0]) for m, lab in zip(maps, labels)]
    f, t = (np.concatenate(v) for v in zip(*sup))
    tv = TV()
    alpha_paper = 0.003
    paper = np.sum((f - t) ** 2) + alpha_paper * sum(tv.value(m) for m in maps)
    alpha = paper_alpha_factor(labels) * alpha_paper
    centres = 7 * 9 + 5 * 4
    ours = np.mean(0.5 * (f - t) ** 2) + alpha * sum(tv.value(m) for m in maps) / centres
    assert paper_alpha_factor(labels) == centres / 3 / 2
    np.testing.assert_allclose(paper, 2 * len(f) * ours)
    assert paper_alpha_factor(labels, "cross_entropy") == centres / 3
    with pytest.raises(ValueError, match="no labelled pixel"):
        paper_alpha_factor([np.full((5, 5), -1)])
    with pytest.raises(ValueError, match="supervised"):
        paper_alpha_factor(labels, "hinge")
