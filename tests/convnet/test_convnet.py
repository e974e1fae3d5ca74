"""chm.ConvNet and its network (chm.patchnet): dense = per-patch, TV gradients, the estimator contract."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="chm.ConvNet needs the convnet extra: pip install -e '.[convnet]'")

import chm  # noqa: E402
import chm.convnet.estimator  # noqa: E402
from chm.datasets import sample_sparse_labels  # noqa: E402
from chm.metrics import pixel_error  # noqa: E402
from chm.semi import losses  # noqa: E402
from chm.convnet import RECOMMENDED_ALPHA, ConvNet  # noqa: E402
from chm.convnet.patchnet import PatchNet, _dilated_max_pool, lrn, objective, tv_loss  # noqa: E402

FAST = dict(n_iter=6, batch_size=8, tiles=1, tile_size=6, n_jobs=1, progress=False)


def _toy(n=3, shape=(30, 36), colour=True, k=2, seed=0):
    """Images whose class is the quadrant-ish region, visible in the intensity."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for _ in range(n):
        m = np.zeros(shape, dtype=int)
        m[:, shape[1] // 2:] = 1
        if k > 2:
            m[shape[0] // 2:, :] = 2
        im = 0.2 + 0.25 * m + 0.05 * rng.random(shape)
        images.append(np.dstack([im, 1 - im, im * im]) if colour else im)
        masks.append(m)
    return images, masks


def _sparse(masks, n=40, seed=0):
    return sample_sparse_labels(masks, n, seed)


def test_import_chm_does_not_import_torch():
    code = "import sys, chm; assert 'torch' not in sys.modules; chm.CHM; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert chm.ConvNet is ConvNet


@pytest.mark.parametrize("patch_size, channels", [(46, 3), (62, 1)])
def test_dense_output_equals_per_patch_evaluation(patch_size, channels):
    torch.manual_seed(0)
    net = PatchNet(channels, 5, patch_size).double().eval()
    h, w = 23, 31
    x = torch.rand(1, channels, h + patch_size - 1, w + patch_size - 1, dtype=torch.float64)
    with torch.no_grad():
        dense = net(x, dense=True)[0]
        assert dense.shape == (5, h, w)
        rng = np.random.default_rng(0)
        for y, xx in zip(rng.integers(0, h, 12), rng.integers(0, w, 12)):
            patch = x[:, :, y:y + patch_size, xx:xx + patch_size]
            np.testing.assert_allclose(net(patch)[0, :, 0, 0].numpy(), dense[:, y, xx].numpy(), rtol=1e-9, atol=1e-12)


def test_estimator_dense_prediction_equals_patch_classifier_at_random_pixels():
    images, masks = _toy(colour=True, k=3)
    m = ConvNet(random_state=0, **FAST).fit(images, _sparse(masks))
    proba = m.predict_proba(images[:1])[0]
    z = torch.from_numpy(m._pad(chm.convnet.estimator._net_images(images[:1])[0]))
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for y, x in zip(rng.integers(0, 30, 10), rng.integers(0, 36, 10)):
            p = m.net_(z[None, :, y:y + 46, x:x + 46]).softmax(1)[0, :, 0, 0].numpy()
            np.testing.assert_allclose(proba[y, x], p, rtol=1e-4, atol=1e-6)


def test_lrn_and_dilated_pool_match_torch_modules():
    x = torch.randn(2, 64, 9, 11, dtype=torch.float64) * 30  # large enough for LRN to matter
    ref = torch.nn.LocalResponseNorm(5)(x)
    np.testing.assert_allclose(lrn(x).numpy(), ref.numpy(), rtol=1e-12)
    with torch.no_grad():  # the in-place path
        np.testing.assert_allclose(lrn(x.clone()).numpy(), ref.numpy(), rtol=1e-12)
    for d in (1, 2, 4):
        np.testing.assert_array_equal(_dilated_max_pool(x, d).numpy(),
                                      torch.nn.functional.max_pool2d(x, 2, stride=1, dilation=d).numpy())


def test_tv_loss_equals_numpy_reference_and_a_known_step():
    rng = np.random.default_rng(0)
    p = rng.random((2, 3, 7, 9))
    t = tv_loss(torch.from_numpy(p), reduction="sum").item()
    ref = sum(losses.TV().value(p[b].transpose(1, 2, 0)) for b in range(2))
    assert t == pytest.approx(ref, rel=1e-12)
    assert tv_loss(torch.from_numpy(p)).item() == pytest.approx(ref / (2 * 5 * 7), rel=1e-12)
    # A vertical unit step in a two-class one-hot map: each row of centres sees the step at two
    # centres, each 0.5 (Sobel / 8), in each of the two channels -> 2 per row of centres.
    h, w = 6, 8
    step = np.zeros((1, 2, h, w))
    step[0, 1, :, 4:] = 1
    step[0, 0] = 1 - step[0, 1]
    assert tv_loss(torch.from_numpy(step), reduction="sum").item() == pytest.approx(2.0 * (h - 2))


def test_tv_gradient_at_the_nine_neighbourhood_outputs_is_eq15():
    rng = np.random.default_rng(3)
    sx = np.array([-1, -2, -1, 0, 0, 0, 1, 2, 1]) / 8.0  # eq. 13, row-major, / 8 as chm.losses.TV
    sy = np.array([-1, 0, 1, -2, 0, 2, -1, 0, 1]) / 8.0
    for _ in range(20):
        f = rng.random(9)
        p = torch.tensor(f.reshape(1, 1, 3, 3), requires_grad=True)
        tv_loss(p, reduction="sum").backward()
        eq15 = np.sign(sx @ f) * sx + np.sign(sy @ f) * sy
        np.testing.assert_allclose(p.grad.numpy().ravel(), eq15, rtol=1e-12, atol=1e-15)
    # On a whole map the gradient is the sum of eq. 15 over the centres (chm.losses' reference).
    m = rng.random((8, 10, 3))
    p = torch.tensor(m.transpose(2, 0, 1)[None], requires_grad=True)
    tv_loss(p, reduction="sum").backward()
    np.testing.assert_allclose(p.grad[0].numpy().transpose(1, 2, 0), losses.TV().gradient(m), atol=1e-12)


def test_objective_known_answer_and_finite_differences():
    torch.manual_seed(0)
    net = PatchNet(3, 4, 46).double()
    patches = torch.rand(5, 3, 46, 46, dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 3, 1])
    tiles = torch.rand(1, 3, 50, 50, dtype=torch.float64)  # 5 x 5 outputs
    # Known answer: an all-zero output layer gives uniform softmax -> CE = log K, TV = 0.
    with torch.no_grad():
        net.out.weight.zero_()
        net.out.bias.zero_()
    loss, ce, tv = objective(net, patches, targets, tiles, alpha=0.7)
    assert ce.item() == pytest.approx(np.log(4), rel=1e-12)
    assert tv.item() == 0 and loss.item() == pytest.approx(np.log(4), rel=1e-12)
    # Finite differences of E_S + alpha E_U with respect to the weights of the first and last layers.
    torch.manual_seed(1)
    net = PatchNet(3, 4, 46).double()
    for param in (net.out.weight, net.convs[0].bias, net.fc.bias):
        def f(w, param=param):
            with torch.no_grad():
                old = param.clone()
                param.copy_(w)
            try:
                return objective(net, patches, targets, tiles, alpha=0.7)[0]
            finally:
                with torch.no_grad():
                    param.copy_(old)
        w0 = param.detach().clone()
        loss = objective(net, patches, targets, tiles, alpha=0.7)[0]
        (g,) = torch.autograd.grad(loss, param)
        rng = np.random.default_rng(0)
        for idx in [tuple(rng.integers(0, s) for s in w0.shape) for _ in range(4)]:
            e = torch.zeros_like(w0)
            e[idx] = 1e-6
            fd = (f(w0 + e) - f(w0 - e)).item() / 2e-6
            assert g[idx].item() == pytest.approx(fd, rel=1e-4, abs=1e-8)


@pytest.mark.parametrize("colour, k", [(False, 2), (True, 2), (True, 3)])
def test_fit_predict_shapes_and_learning(colour, k):
    images, masks = _toy(colour=colour, k=k)
    m = ConvNet(random_state=0, **{**FAST, "n_iter": 60, "batch_size": 16, "learning_rate": 3e-3}).fit(
        images, _sparse(masks))
    proba = m.predict_proba(images)
    pred = m.predict(images)
    if k == 2:
        assert proba[0].shape == (30, 36) and proba[0].dtype == np.float32
    else:
        assert proba[0].shape == (30, 36, k) and proba[0].dtype == np.float32
        np.testing.assert_allclose(proba[0].sum(2), 1, atol=1e-5)
    assert pred[0].dtype == np.uint8 and pred[0].shape == (30, 36)
    assert pixel_error(pred, masks) < 0.2  # an easy toy: far below chance
    assert m.n_classes_ == k and len(m.loss_curve_) == 60


def test_same_seed_same_model_and_tv_changes_it():
    images, masks = _toy()
    labels = _sparse(masks)
    a = ConvNet(random_state=5, semi_supervised="tv", **FAST).fit(images, labels)
    b = ConvNet(random_state=5, semi_supervised="tv", **FAST).fit(images, labels)
    c = ConvNet(random_state=5, **FAST).fit(images, labels)
    for (name, x), y, z in zip(a.net_.state_dict().items(), b.net_.state_dict().values(),
                               c.net_.state_dict().values()):
        assert torch.equal(x, y), name
    assert any(not torch.equal(x, z) for x, z in zip(a.net_.state_dict().values(), c.net_.state_dict().values()))
    assert all(tv > 0 for _, tv in a.loss_curve_) and all(tv == 0 for _, tv in c.loss_curve_)
    d = ConvNet(random_state=6, semi_supervised="tv", **FAST).fit(images, labels)  # the seed is what fixes it
    assert any(not torch.equal(x, z) for x, z in zip(a.net_.state_dict().values(), d.net_.state_dict().values()))


def test_alpha_and_semi_supervised_meaning():
    from chm.convnet import CONTRAST_ALPHA

    assert ConvNet()._spatial() == (None, 0)
    assert ConvNet(semi_supervised="tv")._spatial() == ("tv", RECOMMENDED_ALPHA)
    assert ConvNet(semi_supervised="tv", alpha=0.05)._spatial() == ("tv", 0.05)
    assert ConvNet(alpha=0.2)._spatial() == ("tv", 0.2)  # an explicit alpha alone selects TV (as CHM)
    assert ConvNet(semi_supervised="contrast")._spatial() == ("contrast", CONTRAST_ALPHA)
    assert CONTRAST_ALPHA == pytest.approx(0.3 / (1 + np.sqrt(2)))
    assert ConvNet(semi_supervised="contrast", alpha=0.5)._spatial() == ("contrast", 0.5)
    with pytest.raises(ValueError, match="semi_supervised must be one of"):
        ConvNet(semi_supervised="mean-teacher")._spatial()
    with pytest.raises(ValueError, match="alpha must be None or a finite number >= 0"):
        ConvNet(alpha=-1)._spatial()
    assert ConvNet(semi_supervised="superpixels")._spatial() == (None, 0)
    assert ConvNet(semi_supervised="superpixels+tv")._spatial() == ("tv", RECOMMENDED_ALPHA)
    assert ConvNet(semi_supervised="superpixels+contrast")._spatial() == ("contrast", CONTRAST_ALPHA)
    with pytest.raises(ValueError, match="'superpixels' has none"):
        ConvNet(semi_supervised="superpixels", alpha=0.1)._spatial()


def test_superpixel_labels(tmp_path):
    """semi_supervised="superpixels" trains on the spread labels (another model than on the sparse
    ones, same seed), keeps its scale in the file, and refuses a bad scale."""
    images, masks = _toy(k=2)
    labels = _sparse(masks, n=4)
    sup = ConvNet(random_state=0, **FAST).fit(images, labels)
    spx = ConvNet(random_state=0, semi_supervised="superpixels", superpixel_scale=30.0, **FAST).fit(images, labels)
    assert not np.array_equal(sup.predict_proba(images[:1])[0], spx.predict_proba(images[:1])[0])
    back = chm.load(spx.save(tmp_path / "spx"))
    assert (back.semi_supervised, back.superpixel_scale) == ("superpixels", 30.0)
    with pytest.raises(ValueError, match="superpixel_scale must be"):
        ConvNet(semi_supervised="superpixels", superpixel_scale=0, **FAST).fit(images, labels)


def test_spread_labels_are_drawn_with_the_sparse_class_balance():
    """Known answer: sparse labels 3 : 1, spread labels 6 : 1 : 0 pixels of classes 0, 1, 2 -> the
    class-0 pixels share 3/4, the class-1 pixel 1/4, and an unseen class gets nothing."""
    sparse = [np.array([[0, -1, 1], [0, 0, -1]])]
    target = np.array([0, 0, 1, 0, 0, 0, 0])
    p = chm.convnet.estimator._class_balanced_weights(target, sparse, 3)
    np.testing.assert_allclose(p, [0.125, 0.125, 0.25, 0.125, 0.125, 0.125, 0.125])
    rng = np.random.default_rng(0)
    order = ConvNet._order(target, p, rng)
    assert len(order) == len(target) and order.min() >= 0 and order.max() < len(target)
    np.testing.assert_array_equal(np.sort(ConvNet._order(target, None, rng)), np.arange(len(target)))


def test_save_load_round_trip_and_corrupt_files(tmp_path):
    images, masks = _toy(k=3)
    m = ConvNet(random_state=0, semi_supervised="tv", **FAST).fit(images, _sparse(masks))
    path = m.save(tmp_path / "net")
    assert path.endswith(".npz")
    back = chm.load(path)
    assert type(back) is ConvNet and back.get_params() == m.get_params() and back.n_iter_ == m.n_iter_
    np.testing.assert_array_equal(back.predict_proba(images)[0], m.predict_proba(images)[0])
    # Drop one weight array: a clear error, not a half-built model.
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "net.fc.weight"}
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(ValueError, match="incomplete or corrupt"):
        chm.load(tmp_path / "broken.npz")
    with pytest.raises(RuntimeError, match="not fitted"):
        ConvNet().save(tmp_path / "x")
    # a progress callback hears the fit and is not saved (a function has no JSON form)
    heard = []
    m.set_params(progress=lambda desc, done, total: heard.append(done)).fit(images, _sparse(masks))
    assert heard and chm.load(m.save(tmp_path / "cb")).progress is None


def test_bad_input_errors():
    images, masks = _toy()
    labels = _sparse(masks)
    m = ConvNet(**FAST)
    with pytest.raises(TypeError, match="single image"):
        m.fit(images[0], labels)
    with pytest.raises(ValueError, match=r"\(H, W\) gray or \(H, W, 3\) colour"):
        m.fit([np.zeros((30, 36, 4))] * 3, labels)
    bad = [im.copy() for im in images]
    bad[1][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"images\[1\] contains NaN"):
        m.fit(bad, labels)
    with pytest.raises(ValueError, match="mixes gray and colour"):
        m.fit([images[0], images[1][:, :, 0], images[2]], labels)
    with pytest.raises(ValueError, match="single class"):
        m.fit(images, [np.where(lab >= 0, 0, -1) for lab in labels])
    with pytest.raises(ValueError, match="outside -1..2"):
        ConvNet(n_classes=3, **FAST).fit(images, [np.where(lab >= 0, 3, -1) for lab in labels])
    for params, msg in (({"patch_size": 50}, "patch_size must be 16 m \\+ 30"), ({"n_iter": 0}, "n_iter"),
                        ({"n_iter": "epochs"}, 'n_iter must be an integer >= 1 or "auto"'),
                        ({"device": "tpu"}, "device must be"), ({"n_classes": 1}, "n_classes")):
        with pytest.raises(ValueError, match=msg):
            ConvNet(**{**FAST, **params}).fit(images, labels)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            ConvNet(device="cuda", **FAST).fit(images, labels)
    with pytest.raises(RuntimeError, match="not fitted"):
        m.predict(images)
    m.fit(images, labels)
    with pytest.raises(ValueError, match="trained on colour images, got gray"):
        m.predict([images[0][:, :, 0]])


def test_auto_steps_count_epochs_of_the_sparse_labels():
    from chm.convnet import EPOCHS, MIN_STEPS

    # SIFT Flow at N = 10 (24,880 labels): 20 passes of 64; a Stanford fold (5720): the floor
    assert ConvNet()._steps(24_880) == -(-EPOCHS * 24_880 // 64) == 7775
    assert ConvNet()._steps(5720) == MIN_STEPS == 2000
    assert ConvNet(batch_size=32)._steps(5720) == 3575
    assert ConvNet(n_iter=7)._steps(10**6) == 7
    images, labels = _toy()
    m = ConvNet(random_state=0, **FAST).fit(images, labels)
    assert m.n_iter_ == FAST["n_iter"] == len(m.loss_curve_)


def test_sklearn_clone_and_repr():
    base = pytest.importorskip("sklearn.base")
    m = ConvNet(semi_supervised="tv", n_iter=5)
    assert repr(m) == "ConvNet(semi_supervised='tv', n_iter=5)"
    assert base.clone(m).get_params() == m.get_params()


def test_one_image_contract_for_both_estimators():
    """uint16 and bool images train a ConvNet as they train a CHM (chm.io.images.check_image_list)."""
    images, masks = _toy()
    labels = _sparse(masks)
    wide = [(im * 65535).astype(np.uint16) for im in images]
    a = ConvNet(random_state=0, **FAST).fit(wide, labels).predict_proba(wide[:1])[0]
    b = ConvNet(random_state=0, **FAST).fit([w / 65535.0 for w in wide], labels).predict_proba(wide[:1])[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(TypeError, match="unsupported dtype int32"):
        ConvNet(**FAST).fit([im.astype(np.int32) for im in wide], labels)
