"""The paper-like training options of chm.ConvNet: optimizer, lr_schedule, supervised_loss.

Known learning-rate sequences, SGD training that lowers the loss, seeds, the squared error of
eq. 1 (known answers, gradient, dense = patch-wise), bad values, and the defaults unchanged.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="chm.ConvNet needs the convnet extra: pip install -e '.[convnet]'")

import chm  # noqa: E402
from chm.convnet import LR_SCHEDULES, MOMENTUM, OPTIMIZERS, SUPERVISED_LOSSES, ConvNet  # noqa: E402
from chm.convnet.patchnet import dense_objective, objective, supervised_loss  # noqa: E402
from chm.datasets import sample_sparse_labels  # noqa: E402

from test_convnet import _toy  # noqa: E402
from test_dense_training import _all_regions, _grads, _patches, _setup, check_seed_and_option  # noqa: E402

FAST = dict(n_iter=6, batch_size=8, tiles=1, tile_size=6, n_jobs=1, progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")


def _rates(model, n_iter):
    """The learning rate of each of ``n_iter`` steps, as fit applies them."""
    model.n_iter_ = n_iter
    opt, sched = model._optimiser(torch.nn.Linear(2, 1))
    rates = []
    for _ in range(n_iter):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    return opt, rates


# --------------------------------------------------------------------------- the optimiser
def test_defaults_are_adam_with_cosine_decay_and_cross_entropy():
    m = ConvNet()
    assert (m.optimizer, m.lr_schedule, m.supervised_loss) == ("adam", "cosine", "cross_entropy")
    assert (OPTIMIZERS, LR_SCHEDULES, SUPERVISED_LOSSES) == (("adam", "sgd"), ("cosine", "constant", "step"),
                                                             ("cross_entropy", "squared_error"))
    opt, rates = _rates(ConvNet(learning_rate=0.1), 9)
    assert type(opt) is torch.optim.Adam
    np.testing.assert_allclose(rates, 0.05 * (1 + np.cos(np.pi * np.arange(9) / 9)), rtol=1e-12)


def test_sgd_and_the_constant_and_step_schedules_known_answers():
    opt, rates = _rates(ConvNet(optimizer="sgd", lr_schedule="constant", learning_rate=0.1, weight_decay=5e-4), 7)
    assert type(opt) is torch.optim.SGD and rates == [0.1] * 7
    assert opt.param_groups[0]["momentum"] == MOMENTUM == 0.9 and opt.param_groups[0]["weight_decay"] == 5e-4
    assert not opt.param_groups[0]["nesterov"] and opt.param_groups[0]["dampening"] == 0
    # Caffe's "step" policy, gamma 0.1, a step every ceil(n_iter / 3) steps.
    _, rates = _rates(ConvNet(optimizer="sgd", lr_schedule="step", learning_rate=0.1), 9)
    np.testing.assert_allclose(rates, [0.1] * 3 + [0.01] * 3 + [0.001] * 3, rtol=1e-12)
    _, rates = _rates(ConvNet(optimizer="sgd", lr_schedule="step", learning_rate=0.1), 10)
    np.testing.assert_allclose(rates, [0.1] * 4 + [0.01] * 4 + [0.001] * 2, rtol=1e-12)
    opt, rates = _rates(ConvNet(lr_schedule="constant", learning_rate=0.1), 3)  # Adam at a fixed rate
    assert type(opt) is torch.optim.Adam and rates == [0.1] * 3


@pytest.mark.parametrize("training", ["patches", "images"])
def test_sgd_at_a_constant_rate_trains_and_lowers_the_loss(training):
    images, masks = _toy(k=3)
    labels = sample_sparse_labels(masks, 40, 0)
    kw = dict(FAST, n_iter=40, batch_size=16, training=training, optimizer="sgd", lr_schedule="constant",
              learning_rate=0.05, random_state=0)
    m = ConvNet(**kw).fit(images, labels)
    sup = np.array([s for s, _ in m.loss_curve_])
    assert len(sup) == 40 and np.isfinite(sup).all()
    # Mean of the first and last 10 steps, measured: patches 1.01 -> 0.52, images 1.03 -> 0.02 (at rate
    # 0.1 the patch mode diverged: SGD needs its own rate, as the docstring says).
    assert sup[-10:].mean() < 0.7 * sup[:10].mean()


def test_the_seed_determines_an_sgd_model():
    images, masks = _toy()
    labels = sample_sparse_labels(masks, 20, 0)
    kw = dict(FAST, semi_supervised="tv", optimizer="sgd", lr_schedule="step", learning_rate=0.02)
    check_seed_and_option(images, labels, kw, 4, {"optimizer": "adam"})  # the optimiser is not ignored


# ------------------------------------------------------------------------ the squared error
def test_squared_error_known_answers():
    """Uniform softmax over K classes: (1/2)((1 - 1/K)^2 + (K - 1)/K^2) = (1 - 1/K) / 2 per pixel.
    Two classes: eq. 1's (p_1 - L)^2. Unlabelled pixels (-1) are left out; class weights give the
    weighted mean sum w l / sum w, or the sum sum w l."""
    logits = torch.zeros(5, 4, dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 3, -1])
    assert supervised_loss(logits, targets, "squared_error").item() == pytest.approx(0.375, rel=1e-12)
    assert supervised_loss(logits, targets, "squared_error", reduction="sum").item() == pytest.approx(4 * 0.375)
    rng = np.random.default_rng(0)
    z = torch.from_numpy(rng.normal(size=(6, 2, 3, 4)))
    t = torch.from_numpy(rng.integers(-1, 2, size=(6, 3, 4)))
    p1, lab = z.softmax(1)[:, 1].numpy(), t.numpy()
    se = (p1 - lab) ** 2
    known = lab >= 0
    assert supervised_loss(z, t, "squared_error").item() == pytest.approx(se[known].mean(), rel=1e-12)
    w = np.array([0.5, 3.0])
    got = supervised_loss(z, t, "squared_error", weight=torch.from_numpy(w), reduction="sum").item()
    assert got == pytest.approx((w[lab[known]] * se[known]).sum(), rel=1e-12)
    got = supervised_loss(z, t, "squared_error", weight=torch.from_numpy(w)).item()
    assert got == pytest.approx((w[lab[known]] * se[known]).sum() / w[lab[known]].sum(), rel=1e-12)
    with pytest.raises(ValueError, match="supervised loss must be one of"):
        supervised_loss(z, t, "hinge")


def test_squared_error_gradient_passes_gradcheck():
    rng = np.random.default_rng(1)
    z = torch.from_numpy(rng.normal(size=(2, 3, 4, 5))).requires_grad_(True)
    t = torch.from_numpy(rng.integers(-1, 3, size=(2, 4, 5)))
    w = torch.tensor([1.0, 0.3, 2.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: supervised_loss(x, t, "squared_error", w), (z,), eps=1e-6, atol=1e-8)


def test_dense_squared_error_objective_equals_patchwise():
    """As the cross-entropy tests of test_dense_training: the dense pass's class-weighted squared
    error (crops in strips), with TV, equals the patch mode's on the same pixels, loss and gradients."""
    net, padded, labels = _setup(shapes=((11, 14),), seed=6)
    w = np.array([0.5, 2.0, 1.25])
    patches, targets = _patches(padded, labels)
    net.zero_grad()
    ref_sup = supervised_loss(net(patches).flatten(1), targets, "squared_error", torch.from_numpy(w))
    ref_sp = objective(net, patches, targets, padded[0][None], alpha=0.7, supervised="squared_error")[2]
    (ref_sup + 0.7 * ref_sp).backward()
    g_ref = _grads(net)
    net.zero_grad()
    got = dense_objective(net, padded, labels, _all_regions(labels, 4), alpha=0.7, class_weight=w, max_outputs=20,
                          supervised="squared_error")
    assert got == pytest.approx(((ref_sup + 0.7 * ref_sp).item(), ref_sup.item(), ref_sp.item()), rel=1e-10)
    for a, b in zip(_grads(net), g_ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12)
    # The objective's own known answer: a zeroed output layer gives (1 - 1/K) / 2 and no TV.
    with torch.no_grad():
        net.out.weight.zero_()
        net.out.bias.zero_()
    loss, sup, sp = objective(net, patches, targets, padded[0][None], alpha=0.7, supervised="squared_error")
    assert sup.item() == pytest.approx(1 / 3, rel=1e-12) and sp.item() == pytest.approx(0, abs=1e-15)


@pytest.mark.parametrize("training", ["patches", "images"])
def test_fit_with_the_squared_error(training):
    images, masks = _toy(k=3)
    labels = sample_sparse_labels(masks, 40, 0)
    kw = dict(FAST, training=training, supervised_loss="squared_error", random_state=0)
    se = ConvNet(**kw).fit(images, labels)
    ce = ConvNet(**{**kw, "supervised_loss": "cross_entropy"}).fit(images, labels)
    assert se.loss_curve_[0][0] < (1 - 1 / 3)  # (1/2) sum_k (p_k - t_k)^2 <= 1; at the start near 1/3
    assert se.loss_curve_[0][0] != pytest.approx(ce.loss_curve_[0][0], rel=0.1)
    assert not np.array_equal(se.predict_proba(images[:1])[0], ce.predict_proba(images[:1])[0])


# ------------------------------------------------------------------------------ parameters
def test_bad_values_give_clear_errors():
    images, masks = _toy()
    labels = sample_sparse_labels(masks, 10, 0)
    for params, msg in (({"optimizer": "rmsprop"}, r"optimizer must be one of \('adam', 'sgd'\), got 'rmsprop'"),
                        ({"optimizer": "SGD"}, "optimizer must be one of .*got 'SGD'"),
                        ({"optimizer": None}, "optimizer must be one of .*got None"),
                        ({"lr_schedule": "linear"},
                         r"lr_schedule must be one of \('cosine', 'constant', 'step'\), got 'linear'"),
                        ({"lr_schedule": ["step"]}, r"lr_schedule must be one of .*got \['step'\]"),
                        ({"supervised_loss": "mse"},
                         r"supervised_loss must be one of \('cross_entropy', 'squared_error'\), got 'mse'"),
                        ({"learning_rate": 0}, "learning_rate must be a finite number > 0, got 0")):
        with pytest.raises(ValueError, match=msg):
            ConvNet(**{**FAST, **params}).fit(images, labels)


def test_parameters_follow_the_estimator_contract_and_round_trip(tmp_path):
    sklearn_base = pytest.importorskip("sklearn.base")
    m = ConvNet(optimizer="sgd", lr_schedule="step", supervised_loss="squared_error")
    assert repr(m) == "ConvNet(optimizer='sgd', lr_schedule='step', supervised_loss='squared_error')"
    assert sklearn_base.clone(m).get_params() == m.get_params()
    images, masks = _toy()
    fitted = ConvNet(random_state=0, optimizer="sgd", lr_schedule="step", supervised_loss="squared_error",
                     learning_rate=0.02, **FAST).fit(images, sample_sparse_labels(masks, 10, 0))
    back = chm.load(fitted.save(tmp_path / "paper_like"))
    assert back.get_params() == fitted.get_params()
    assert (back.optimizer, back.lr_schedule, back.supervised_loss) == ("sgd", "step", "squared_error")
    np.testing.assert_array_equal(back.predict_proba(images[:1])[0], fitted.predict_proba(images[:1])[0])

