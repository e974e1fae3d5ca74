"""The ConvNet's spatial losses beyond the paper's TV: the CHM's contrast-sensitive Potts loss.

Known answers (a map's step on a flat image, along an image edge, beside one), the torch loss
against chm.semi.losses' numpy reference (the CHM's definition) on random maps, its gradient
against finite differences, the dense (images-mode) objective against the patch-wise one, and the
estimator with ``semi_supervised="contrast"`` in both training modes.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="chm.ConvNet needs the convnet extra: pip install -e '.[convnet]'")

import chm  # noqa: E402
from chm.convnet import ConvNet  # noqa: E402
from chm.convnet import estimator  # noqa: E402
from chm.convnet.patchnet import SpatialTerm, dense_objective, objective, spatial_loss, tv_loss  # noqa: E402
from chm.datasets import sample_sparse_labels  # noqa: E402
from chm.mrf import default_sigma  # noqa: E402
from chm.semi.losses import TV, ContrastSensitive  # noqa: E402

from test_convnet import _toy  # noqa: E402
from test_dense_training import P, _all_regions, _grads, _patches, _setup  # noqa: E402

FAST = dict(n_iter=6, batch_size=8, tiles=1, tile_size=6, n_jobs=1, progress=False)
STEP = 1 + np.sqrt(2)  # a row of a vertical step: 2 centres x (1/2 + 2 / (2 sqrt 2)), per class channel


pytestmark = pytest.mark.usefixtures("one_thread")


def _step_map(h, w, col):
    """A two-class one-hot map (1, 2, h, w) of class 1 from column ``col`` on."""
    m = np.zeros((1, 2, h, w))
    m[0, 1, :, col:] = 1
    m[0, 0] = 1 - m[0, 1]
    return torch.from_numpy(m)


# ------------------------------------------------------------------------------ known answers
def test_contrast_loss_of_a_step_known_answers():
    """A vertical unit step of a two-class map, 6 x 8, class 1 from column 4: (h - 2) rows of
    centres, each row paying 1 + sqrt 2 per channel on a flat image (1 for the TV), so
    2 (h - 2)(1 + sqrt 2) = 8 (1 + sqrt 2). Along an image edge of the same place (0.2 | 0.7) every
    pair across the step weighs exp(-0.25 / (2 sigma^2)), sigma^2 = 0.25 h / (h (w-1) + (h-1) w)
    the image's mean squared neighbour difference (h of its 82 differences are 0.5); one column
    beside the edge the step's pairs lie on flat image and pay full price."""
    h, w = 6, 8
    step = _step_map(h, w, 4)
    flat = np.full((h, w), 0.4)
    edge = np.where(np.arange(w) >= 4, 0.7, 0.2) * np.ones((h, 1))
    sigma2 = 0.25 * h / (h * (w - 1) + (h - 1) * w)
    assert default_sigma(edge) ** 2 == pytest.approx(sigma2)
    cheap = np.exp(-0.25 / (2 * sigma2))
    for image, place_step, expected in ((flat, step, 2 * (h - 2) * STEP),
                                        (edge, step, 2 * (h - 2) * STEP * cheap),
                                        (edge, _step_map(h, w, 5), 2 * (h - 2) * STEP)):
        got = SpatialTerm("contrast", [image])(place_step, [(0, 0, 0)], reduction="sum").item()
        assert got == pytest.approx(expected, rel=1e-12)
    assert cheap < 0.01  # an image edge makes the map's boundary nearly free
    # On a flat image the contrast loss prices a step at 1 + sqrt 2 times the TV.
    assert tv_loss(step, reduction="sum").item() == pytest.approx(2 * (h - 2))
    assert SpatialTerm("contrast", [flat])(step, [(0, 0, 0)]).item() == pytest.approx(STEP * tv_loss(step).item())
    # A constant map costs nothing anywhere.
    assert SpatialTerm("contrast", [edge])(torch.full((1, 2, h, w), 0.5, dtype=torch.float64), [(0, 0, 0)]) == 0


# -------------------------------------------------------------------- against numpy, gradient
def _random_case(seed, b=3, k=3, side=(7, 9), channels=3):
    rng = np.random.default_rng(seed)
    images = [rng.random((15, 17, channels)) for _ in range(2)]
    places = [(int(rng.integers(0, 2)), int(rng.integers(0, 15 - side[0] + 1)), int(rng.integers(0, 17 - side[1] + 1)))
              for _ in range(b)]
    prob = torch.from_numpy(rng.random((b, k) + side)).softmax(1)
    return images, places, prob


@pytest.mark.parametrize("channels", [3, 1])
def test_contrast_term_equals_the_numpy_reference_on_random_maps(channels):
    """Tiles of random maps at random places of two images: the torch loss ("sum") is the CHM's
    numpy loss of each tile (ContrastSensitive().value with the tile's image crop at the whole
    image's sigma), summed; "mean" divides by the centres. The same through spatial_loss for the
    l2 penalty and for TV (no weights)."""
    images, places, prob = _random_case(0, channels=channels)
    if channels == 1:
        images = [im[:, :, 0] for im in images]
    b, k, h, w = prob.shape
    numpy_maps = prob.numpy().transpose(0, 2, 3, 1)
    for loss in (ContrastSensitive(), ContrastSensitive(penalty="l2", contrast=0.5)):
        term = SpatialTerm(loss, images)
        ref = sum(loss.value(numpy_maps[j], images[i][y:y + h, x:x + w], sigma=default_sigma(images[i]))
                  for j, (i, y, x) in enumerate(places))
        assert term(prob, places, reduction="sum").item() == pytest.approx(ref, rel=1e-12)
        assert term(prob, places).item() == pytest.approx(ref / (b * (h - 2) * (w - 2)), rel=1e-12)
    ref_tv = sum(TV().value(m) for m in numpy_maps)
    assert spatial_loss(prob, TV(), reduction="sum").item() == pytest.approx(ref_tv, rel=1e-12)
    assert SpatialTerm("tv")(prob, reduction="sum").item() == pytest.approx(ref_tv, rel=1e-12)


def test_contrast_term_gradient_passes_gradcheck_and_equals_the_numpy_gradient():
    images, places, prob = _random_case(1)
    term = SpatialTerm("contrast", images)
    p = prob.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda q: term(q, places, reduction="sum"), (p,), eps=1e-6, atol=1e-7)
    term(p, places, reduction="sum").backward()
    h, w = prob.shape[2:]
    loss = ContrastSensitive()
    for j, (i, y, x) in enumerate(places):
        ref = loss.gradient(prob[j].numpy().transpose(1, 2, 0), images[i][y:y + h, x:x + w],
                            sigma=default_sigma(images[i]))
        np.testing.assert_allclose(p.grad[j].numpy().transpose(1, 2, 0), ref, atol=1e-12)


def test_a_contrast_sensitive_term_needs_the_images():
    with pytest.raises(ValueError, match="contrast-sensitive: pass the images"):
        SpatialTerm("contrast")
    with pytest.raises(ValueError, match="unknown spatial loss"):
        SpatialTerm("potts")


# ------------------------------------------------------------------- dense = patch-wise objective
def test_whole_image_objective_with_contrast_equals_patch_mode_with_the_image_as_tile():
    """As the TV test of test_dense_training: on one whole image, the dense objective with the
    contrast loss (whole, and by crops in strips) is the patch mode's objective with that image as
    its only tile at place (0, 0, 0): the same loss, both terms, the same gradients."""
    net, padded, labels = _setup(shapes=((11, 14),), seed=2)
    image = np.random.default_rng(7).random((11, 14, 3))
    spatial = SpatialTerm("contrast", [image])
    patches, targets = _patches(padded, labels)
    net.zero_grad()
    ref, ref_sup, ref_sp = objective(net, patches, targets, padded[0][None], 0.7, spatial, [(0, 0, 0)])
    ref.backward()
    g_ref = _grads(net)
    assert ref_sp.item() > 0
    for side, strip in ((None, 1 << 15), (4, 20)):
        net.zero_grad()
        got = dense_objective(net, padded, labels, _all_regions(labels, side), alpha=0.7, max_outputs=strip,
                              spatial=spatial)
        assert got == pytest.approx((ref.item(), ref_sup.item(), ref_sp.item()), rel=1e-10)
        for a, b in zip(_grads(net), g_ref):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12)


def test_contrast_over_crops_sums_to_the_whole_maps_numpy_loss():
    """Crops weigh their centres at their image's contrast scale (not the crop's own), so a
    partition into crops, in strips, gives the numpy loss of the whole maps."""
    net, padded, labels = _setup(shapes=((16, 19), (9, 12)), k=3, seed=3)
    rng = np.random.default_rng(4)
    images = [rng.random((16, 19, 3)), rng.random((9, 12, 3))]
    none = [-np.ones_like(lab) for lab in labels]
    spatial = SpatialTerm("contrast", images)
    with torch.no_grad():
        maps = [net(x[None], dense=True).softmax(1)[0].numpy().transpose(1, 2, 0) for x in padded]
    whole = sum(ContrastSensitive().value(m, im) for m, im in zip(maps, images))
    centres = sum((lab.shape[0] - 2) * (lab.shape[1] - 2) for lab in none)
    for side in (4, 7, None):
        with torch.no_grad():
            got = dense_objective(net, padded, none, _all_regions(none, side), alpha=1.0, max_outputs=30,
                                  backward=False, spatial=spatial)[2]
        assert got * centres == pytest.approx(whole, rel=1e-9)


# ---------------------------------------------------------------------------------- estimator
def test_random_tiles_report_where_their_outputs_lie():
    """The places the contrast weights are read at: tile j is padded image i from (y, x) on, so its
    outputs are image i's pixels from (y, x) on (the padding puts pixel (y, x)'s patch at (y, x))."""
    images, _ = _toy(n=3)
    m = ConvNet(patch_size=P)
    m.mean_, m.std_ = np.zeros(3, np.float32), np.ones(3, np.float32)
    padded = [torch.from_numpy(m._pad(im)) for im in estimator._net_images(images)]
    tiles, places = m._random_tiles(padded, 6, 5, np.random.default_rng(0))
    assert tiles.shape == (5, 3, 6 + P - 1, 6 + P - 1) and len(places) == 5
    for t, (i, y, x) in zip(tiles, places):
        assert 0 <= y <= 30 - 6 and 0 <= x <= 36 - 6
        assert torch.equal(t, padded[i][:, y:y + 6 + P - 1, x:x + 6 + P - 1])
        np.testing.assert_array_equal(t[:, (P - 1) // 2, (P - 1) // 2].numpy(), images[i][y, x].astype(np.float32))


@pytest.mark.parametrize("training", ["patches", "images"])
def test_fit_with_the_contrast_loss_in_both_modes(training, tmp_path):
    """semi_supervised="contrast": the spatial term is on every step, the seed fixes the model, it
    is another model than TV's, and it survives save / load; "superpixels+contrast" fits too."""
    images, masks = _toy(k=3)
    labels = sample_sparse_labels(masks, 20, 0)
    kw = dict(FAST, training=training, random_state=3)
    a = ConvNet(semi_supervised="contrast", **kw).fit(images, labels)
    b = ConvNet(semi_supervised="contrast", **kw).fit(images, labels)
    tv = ConvNet(semi_supervised="tv", alpha=a.alpha_, **kw).fit(images, labels)
    sa, sb, st = (m.net_.state_dict() for m in (a, b, tv))
    assert all(torch.equal(sa[n], sb[n]) for n in sa) and a.loss_curve_ == b.loss_curve_
    assert any(not torch.equal(sa[n], st[n]) for n in sa)
    assert a.alpha_ == estimator.CONTRAST_ALPHA and all(sp > 0 for _, sp in a.loss_curve_)
    back = chm.load(a.save(tmp_path / "contrast"))
    assert back.semi_supervised == "contrast" and back.alpha_ == a.alpha_
    np.testing.assert_array_equal(back.predict_proba(images[:1])[0], a.predict_proba(images[:1])[0])
    c = ConvNet(semi_supervised="superpixels+contrast", superpixel_scale=30.0, **kw).fit(images, labels)
    assert all(sp > 0 for _, sp in c.loss_curve_) and c.predict_proba(images[:1])[0].shape == (30, 36, 3)
