"""chm.ConvNet(training="images"): fully convolutional training on whole images or crops.

The dense objective against the patch-wise one (loss and gradients), its TV against eq. 8 in
numpy, its gradient against finite differences, the estimator in this mode, and its parameters.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="chm.ConvNet needs the convnet extra: pip install -e '.[convnet]'")

import chm  # noqa: E402
from chm.datasets import sample_sparse_labels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402
from chm.semi import losses  # noqa: E402
from chm.convnet import ConvNet  # noqa: E402
from chm.convnet import estimator  # noqa: E402
from chm.convnet.patchnet import PatchNet, dense_objective, grid_regions, objective  # noqa: E402

from test_convnet import _toy  # noqa: E402

P = 46
FAST = dict(training="images", n_iter=6, n_jobs=1, progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")


def _setup(shapes=((13, 17), (9, 11)), k=3, channels=3, n_labels=6, seed=0):
    """A float64 network, padded random images and sparse labels (every class present)."""
    torch.manual_seed(seed)
    net = PatchNet(channels, k, P).double()
    rng = np.random.default_rng(seed)
    padded, labels = [], []
    for h, w in shapes:
        padded.append(torch.from_numpy(rng.random((channels, h + P - 1, w + P - 1))))
        lab = -np.ones((h, w), dtype=np.int64)
        flat = rng.choice(h * w, n_labels, replace=False)
        lab.ravel()[flat] = np.arange(n_labels) % k
        labels.append(lab)
    return net, padded, labels


def _patches(padded, labels):
    """The labelled pixels' P x P patches and classes, as the patch mode gathers them."""
    xs, ts = [], []
    for x, lab in zip(padded, labels):
        for y, xx in zip(*np.nonzero(lab >= 0)):
            xs.append(x[:, y:y + P, xx:xx + P])
            ts.append(lab[y, xx])
    return torch.stack(xs), torch.tensor(ts)


def _grads(net):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]


def _all_regions(labels, side):
    return [(i, *r) for i, lab in enumerate(labels) for r in grid_regions(*lab.shape, side)]


# ---------------------------------------------------------------------------------- geometry
def test_grid_regions_known_answer_and_partition():
    # A Stanford scene at crop_size=128: 2 x 3 near-equal cells, no sliver.
    assert grid_regions(240, 320, 128) == [(y0, y1, x0, x1) for y0, y1 in ((0, 120), (120, 240))
                                           for x0, x1 in ((0, 106), (106, 213), (213, 320))]
    assert grid_regions(210, 260) == [(0, 210, 0, 260)]
    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w, side = rng.integers(1, 60), rng.integers(1, 60), rng.integers(1, 70)
        cover = np.zeros((h, w), int)
        for y0, y1, x0, x1 in grid_regions(h, w, side):
            assert 0 < y1 - y0 <= side and 0 < x1 - x0 <= side
            cover[y0:y1, x0:x1] += 1
        assert (cover == 1).all()


def test_an_epoch_visits_every_region_once():
    regions = [(0, i, i + 1, 0, 1) for i in range(7)]
    steps = estimator._epochs(regions, 3, np.random.default_rng(0))
    for _ in range(3):
        epoch = [next(steps) for _ in range(3)]
        assert sorted(len(s) for s in epoch) == [2, 2, 3]
        assert sorted(r for s in epoch for r in s) == regions


# ------------------------------------------------------------------- the objective itself
@pytest.mark.parametrize("side, strip", [(None, 1 << 15), (5, 1 << 15), (4, 20)])
def test_dense_supervised_loss_and_gradient_equal_patchwise(side, strip):
    """(a) Same weights, same labelled pixels: the mean cross-entropy of the dense pass over the
    images' regions (whole, crops, crops in strips of rows) and its parameter gradients equal the
    patch mode's objective on those pixels' patches."""
    net, padded, labels = _setup()
    patches, targets = _patches(padded, labels)
    net.zero_grad()
    ref, _, _ = objective(net, patches, targets)
    ref.backward()
    g_ref = _grads(net)
    net.zero_grad()
    loss, ce, tv = dense_objective(net, padded, labels, _all_regions(labels, side), alpha=0.0, max_outputs=strip)
    assert tv == 0 and loss == ce
    assert loss == pytest.approx(ref.item(), rel=1e-10)
    for name_p, a, b in zip(net.named_parameters(), _grads(net), g_ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12, err_msg=name_p[0])


def test_dense_class_weighted_loss_and_gradient_equal_patchwise():
    """Spread labels' class weights: the dense weighted mean equals torch's weighted mean over the
    patches (sum w_y CE / sum w_y), loss and gradients."""
    net, padded, labels = _setup(seed=1)
    w = np.array([0.5, 2.0, 1.25])
    patches, targets = _patches(padded, labels)
    net.zero_grad()
    ref = torch.nn.functional.cross_entropy(net(patches).flatten(1), targets, weight=torch.from_numpy(w))
    ref.backward()
    g_ref = _grads(net)
    net.zero_grad()
    loss, _, _ = dense_objective(net, padded, labels, _all_regions(labels, 6), class_weight=w, max_outputs=30)
    assert loss == pytest.approx(ref.item(), rel=1e-10)
    for a, b in zip(_grads(net), g_ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12)


def test_whole_image_objective_with_tv_equals_patch_mode_with_the_image_as_tile():
    """On one whole image the dense objective is the patch mode's objective with that image as its
    only TV tile: the same loss, both terms, and the same gradients (the patch mode's own gradient
    is checked by finite differences in test_convnet)."""
    net, padded, labels = _setup(shapes=((11, 14),), seed=2)
    patches, targets = _patches(padded, labels)
    net.zero_grad()
    ref, ref_ce, ref_tv = objective(net, patches, targets, padded[0][None], alpha=0.7)
    ref.backward()
    g_ref = _grads(net)
    for side, strip in ((None, 1 << 15), (4, 20)):
        net.zero_grad()
        loss, ce, tv = dense_objective(net, padded, labels, _all_regions(labels, side), alpha=0.7, max_outputs=strip)
        assert (loss, ce, tv) == pytest.approx((ref.item(), ref_ce.item(), ref_tv.item()), rel=1e-10)
        for a, b in zip(_grads(net), g_ref):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12)


def test_tv_over_a_crop_equals_eq8_in_numpy():
    """(b) The TV the training code computes over a crop (computed on its own, with its rim) is
    eq. 8 of the crop's probability maps in numpy (chm.semi.losses.TV().value) over the crop's
    centres; over a partition into crops it sums to the TV of the whole maps."""
    net, padded, labels = _setup(shapes=((16, 19),), k=3, seed=3)
    none = [-np.ones_like(labels[0])]
    with torch.no_grad():
        prob = net(padded[0][None], dense=True).softmax(1)[0].numpy().transpose(1, 2, 0)  # (H, W, K)
    h, w = none[0].shape
    tv = losses.TV()
    for y0, y1, x0, x1 in ((3, 9, 5, 14), (0, 16, 0, 7), (10, 16, 12, 19), (4, 5, 6, 7)):
        with torch.no_grad():
            loss, ce, got = dense_objective(net, padded, none, [(0, y0, y1, x0, x1)], alpha=2.0, max_outputs=25,
                                            backward=False)
        # The crop's centres with their neighbourhoods: the crop widened by one pixel, inside the image.
        ya, yb, xa, xb = max(y0 - 1, 0), min(y1 + 1, h), max(x0 - 1, 0), min(x1 + 1, w)
        n = (yb - ya - 2) * (xb - xa - 2)
        assert ce == 0 and loss == pytest.approx(2.0 * got, rel=1e-12)
        assert got * n == pytest.approx(tv.value(prob[ya:yb, xa:xb]), rel=1e-9)
    whole = tv.value(prob)
    for side in (4, 7, None):
        regions = _all_regions(none, side)
        with torch.no_grad():
            got = dense_objective(net, padded, none, regions, alpha=1.0, max_outputs=30, backward=False)[2]
        assert got * (h - 2) * (w - 2) == pytest.approx(whole, rel=1e-9)


def test_dense_objective_gradient_matches_finite_differences():
    """E_S + alpha E_U by crops in strips, class-weighted: the gradient accumulated strip by strip
    equals central differences of the loss, at entries of the first, hidden and last layers."""
    net, padded, labels = _setup(shapes=((8, 9), (5, 7)), k=3, seed=4)
    w = np.array([1.0, 0.4, 2.5])
    regions = _all_regions(labels, 4)
    kw = dict(alpha=0.8, class_weight=w)
    net.zero_grad()
    dense_objective(net, padded, labels, regions, max_outputs=16, **kw)  # accumulated over 1-row strips
    rng = np.random.default_rng(0)
    for param in (net.convs[0].weight, net.convs[2].bias, net.fc.bias, net.out.weight):
        g = param.grad.clone()
        assert g.abs().sum() > 0
        for idx in [tuple(int(rng.integers(0, s)) for s in param.shape) for _ in range(3)]:
            old = param.data[idx].item()
            vals = []
            for step in (1e-6, -1e-6):
                param.data[idx] = old + step
                with torch.no_grad():
                    vals.append(dense_objective(net, padded, labels, regions, backward=False, **kw)[0])
            param.data[idx] = old
            fd = (vals[0] - vals[1]) / 2e-6
            assert g[idx].item() == pytest.approx(fd, rel=1e-4, abs=1e-8)


def test_supervised_dense_objective_skips_strips_without_labels():
    """alpha = 0: a region with no labelled pixel contributes nothing and runs no forward pass."""
    net, padded, labels = _setup(seed=5)
    calls = []
    net.register_forward_hook(lambda *a: calls.append(1))
    empty = [-np.ones_like(lab) for lab in labels]
    assert dense_objective(net, padded, empty, _all_regions(empty, None)) == (0.0, 0.0, 0.0)
    assert not calls


# ------------------------------------------------------------------------------ the estimator
@pytest.mark.parametrize("colour, k, extra", [(False, 2, {}), (True, 2, {"semi_supervised": "tv"}),
                                              (True, 3, {"semi_supervised": "tv", "alpha": 0.1}),
                                              (False, 3, {"crops_per_step": 3})])
def test_fit_predict_in_images_mode(colour, k, extra):
    """(c) Gray and colour, 2 and 3 classes, supervised and TV, one or all images a step: shapes,
    the learnt toy, the recorded terms, the step count. (Small crops are left out here: the toy's
    2 x 2 cells hold one class each, and 15 x 18 crops, 3 a step, did not learn it in 30 steps.)"""
    images, masks = _toy(colour=colour, k=k)
    labels = sample_sparse_labels(masks, 40, 0)
    m = ConvNet(random_state=0, **{**FAST, "n_iter": 30, "learning_rate": 3e-3, **extra}).fit(images, labels)
    proba, pred = m.predict_proba(images), m.predict(images)
    assert proba[0].shape == ((30, 36) if k == 2 else (30, 36, k)) and proba[0].dtype == np.float32
    assert pred[0].dtype == np.uint8 and pred[0].shape == (30, 36)
    assert pixel_error(pred, masks) < 0.2  # an easy toy: far below chance (measured 0-0.02)
    assert m.n_classes_ == k and m.n_iter_ == 30 == len(m.loss_curve_)
    with_tv = m.alpha_ > 0
    assert all((tv > 0) == with_tv for _, tv in m.loss_curve_)


def test_images_mode_same_seed_same_model_other_seed_other_model():
    images, masks = _toy(k=3)
    labels = sample_sparse_labels(masks, 40, 0)
    kw = dict(semi_supervised="tv", crop_size=20, crops_per_step=2, **FAST)
    check_seed_and_option(images, labels, kw, 5, {"training": "patches"})  # the mode is not ignored


def check_seed_and_option(images, labels, kw, seed, other):
    """The same seed gives the same ConvNet (weights and loss curve), seed + 1 another, and the
    options ``other`` (with the same seed) another: they are not ignored."""
    a, b = (ConvNet(random_state=seed, **kw).fit(images, labels) for _ in range(2))
    c = ConvNet(random_state=seed + 1, **kw).fit(images, labels)
    d = ConvNet(random_state=seed, **{**kw, **other}).fit(images, labels)
    sa, sb, sc, sd = (m.net_.state_dict() for m in (a, b, c, d))
    assert all(torch.equal(sa[n], sb[n]) for n in sa) and a.loss_curve_ == b.loss_curve_
    assert any(not torch.equal(sa[n], sc[n]) for n in sa)
    assert any(not torch.equal(sa[n], sd[n]) for n in sa)


def test_crops_that_partition_the_images_in_one_step_train_as_whole_images():
    """The crops change how a step is cut, not its objective: all 12 crops of the 3 images in one
    step train the model that the 3 whole images in one step do (up to float rounding)."""
    images, masks = _toy(k=3, colour=False)
    labels = sample_sparse_labels(masks, 40, 0)
    kw = dict(random_state=0, semi_supervised="tv", **FAST)
    whole = ConvNet(crops_per_step=3, **kw).fit(images, labels)
    crops = ConvNet(crop_size=18, crops_per_step=12, **kw).fit(images, labels)
    # Sums in another order: equal at the first steps, then drifting (9e-5 relative at the 6th on
    # an AVX-512 CPU); a crop that lost its rim or its labels moves the first step's loss by percents.
    np.testing.assert_allclose(crops.loss_curve_, whole.loss_curve_, rtol=5e-4, atol=1e-6)
    np.testing.assert_allclose(crops.predict_proba(images[:1])[0], whole.predict_proba(images[:1])[0],
                               atol=1e-4)  # measured 7e-6


def test_images_mode_with_superpixel_labels_weighs_classes_as_the_sparse_labels(monkeypatch):
    """Spread labels: every step's cross-entropy weighs class k by pi_k / q_k (sparse share over
    spread share, chm.thresholds.class_weights), the patch mode's sampling weights in expectation;
    sparse labels are not weighed."""
    from chm.semi.superpixels import expand_labels
    from chm.thresholds import class_weights

    seen = []

    def spy(*args, **kwargs):
        seen.append(args[5])
        return dense_objective(*args, **kwargs)

    monkeypatch.setattr(estimator, "dense_objective", spy)
    images, masks = _toy(k=3)
    labels = sample_sparse_labels(masks, 4, 0)
    m = ConvNet(random_state=0, semi_supervised="superpixels+tv", superpixel_scale=30.0, **FAST).fit(images, labels)
    assert len(m.loss_curve_) == 6 and m.predict_proba(images[:1])[0].shape == (30, 36, 3)
    spread = [expand_labels(im, lab, 30.0) for im, lab in zip(estimator._net_images(images), labels)]
    expected = class_weights(labels, spread, 3)
    assert len(seen) == 6 and not np.allclose(expected, 1)
    for w in seen:
        np.testing.assert_array_equal(w, expected)
    seen.clear()
    ConvNet(random_state=0, **FAST).fit(images, labels)
    assert seen == [None] * 6


def test_auto_steps_are_epochs_over_the_images(monkeypatch):
    assert ConvNet(training="images")._steps(24_880, 143) == estimator.IMAGE_EPOCHS * 143
    assert ConvNet(training="images", n_iter=7)._steps(24_880, 143) == 7
    monkeypatch.setattr(estimator, "IMAGE_EPOCHS", 3)  # short fits below
    images, masks = _toy(n=2)
    labels = sample_sparse_labels(masks, 10, 0)
    m = ConvNet(random_state=0, **{**FAST, "n_iter": "auto", "crops_per_step": 2}).fit(images, labels)
    assert m.n_iter_ == estimator.IMAGE_EPOCHS == len(m.loss_curve_)  # 2 images, 2 a step: 1 step an epoch
    # Supervised, the regions without a label are dropped: labels in the top 2 of 4 cells of each image.
    top = [np.where(np.arange(30)[:, None] < 15, mask, -1) for mask in masks]
    m = ConvNet(random_state=0, **{**FAST, "n_iter": "auto", "crop_size": 18, "crops_per_step": 2}).fit(images, top)
    assert m.n_iter_ == estimator.IMAGE_EPOCHS * 2


# -------------------------------------------------------------------------- the parameters
def test_bad_training_parameters_give_clear_errors():
    """A bad training, crop_size or crops_per_step: a ValueError naming the parameter, what it takes
    and the value given, before any work."""
    images, masks = _toy()
    labels = sample_sparse_labels(masks, 10, 0)
    for params, msg in (({"training": "pixels"}, r"training must be one of \('patches', 'images'\), got 'pixels'"),
                        ({"training": None}, "training must be one of .*got None"),
                        ({"training": ["images"]}, r"training must be one of .*got \['images'\]"),
                        ({"crop_size": 0}, "crop_size must be an integer >= 1 or None, got 0"),
                        ({"crop_size": 2.5}, "crop_size must be an integer >= 1 or None, got 2.5"),
                        ({"crop_size": True}, "crop_size must be an integer >= 1 or None, got True"),
                        ({"crops_per_step": 0}, "crops_per_step must be an integer >= 1, got 0"),
                        ({"crops_per_step": "all"}, "crops_per_step must be an integer >= 1, got 'all'")):
        with pytest.raises(ValueError, match=msg):
            ConvNet(**{**FAST, **params}).fit(images, labels)


def test_parameters_follow_the_estimator_contract_and_round_trip(tmp_path):
    sklearn_base = pytest.importorskip("sklearn.base")
    m = ConvNet(training="images", crop_size=96, crops_per_step=2)
    assert (m.training, m.crop_size, m.crops_per_step) == ("images", 96, 2)  # stored verbatim
    assert repr(m) == "ConvNet(training='images', crop_size=96, crops_per_step=2)"
    assert sklearn_base.clone(m).get_params() == m.get_params()
    d = ConvNet().get_params()
    assert (d["training"], d["crop_size"], d["crops_per_step"]) == ("patches", None, 1)
    images, masks = _toy(k=3)
    fitted = ConvNet(random_state=0, crop_size=20, **FAST).fit(images, sample_sparse_labels(masks, 10, 0))
    back = chm.load(fitted.save(tmp_path / "dense"))
    assert back.get_params() == fitted.get_params() and back.training == "images" and back.crop_size == 20
    np.testing.assert_array_equal(back.predict_proba(images[:1])[0], fitted.predict_proba(images[:1])[0])


def test_file_of_format_version_1_loads_as_patch_training():
    from pathlib import Path

    old = chm.load(Path(__file__).parents[1] / "data" / "convnet_v1.npz")
    assert (old.training, old.crop_size, old.crops_per_step) == ("patches", None, 1)
