"""Fully convolutional training of the ConvNet (chm.convnet.patchnet.dense_objective).

The dense objective against the patch-wise one (loss and gradients), its TV against eq. 8 in
numpy, its gradient against finite differences.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="chm.ConvNet needs the convnet extra: pip install -e '.[convnet]'")

from chm.semi import losses  # noqa: E402
from chm.convnet.patchnet import PatchNet, dense_objective, grid_regions, objective  # noqa: E402

P = 46


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


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
