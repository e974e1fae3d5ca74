"""The dock widget in a real napari viewer: strokes in, result layers out (Xvfb; see conftest.py)."""

import re

import numpy as np
import pytest

FAST = {"levels": 1, "epochs": 3}  # a small model: these tests check the plumbing, not the accuracy
WAIT = 60_000  # ms


def _scene(shape, rgb, rng, centre=None):
    """An image with a disc of another colour (gray: another brightness) and its truth mask."""
    h, w = shape
    cy, cx = centre or (h / 2, w / 2)
    yy, xx = np.mgrid[:h, :w]
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 < (min(h, w) / 4) ** 2
    if rgb:
        image = np.where(mask[..., None], [0.8, 0.5, 0.3], [0.25, 0.35, 0.6]) + rng.normal(0, 0.08, (h, w, 3))
    else:
        image = np.where(mask, 0.7, 0.3) + rng.normal(0, 0.08, (h, w))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), mask


def _paint(labels, mask, rng, n):
    """``n`` short strokes per class: label 1 on the background, 2 on the disc (in place)."""
    for value, region in ((1, ~mask), (2, mask)):
        ys, xs = np.nonzero(region)
        for i in rng.choice(len(ys), n, replace=False):
            y, x = ys[i], xs[i]
            seg = labels[y, x:x + 5]
            seg[region[y, x:x + 5]] = value


def _painted(viewer, name, shape, rgb, rng, n):
    """A scene added as image layer ``name`` with a "strokes" Labels layer painted with ``n``
    strokes per class: (image, mask, strokes layer)."""
    image, mask = _scene(shape, rgb=rgb, rng=rng)
    viewer.add_image(image, name=name, rgb=rgb)
    strokes = viewer.add_labels(np.zeros(mask.shape, np.uint8), name="strokes")
    _paint(strokes.data, mask, rng, n)
    return image, mask, strokes


def _error_vs_constant(prediction, mask):
    """(error of the prediction layer, error of the best constant map) on these pixels."""
    error = np.mean((prediction - 1).astype(bool) != mask)
    return error, min(mask.mean(), 1 - mask.mean())


def _widget(viewer, params=FAST):
    from chm.napari.widget import ChmWidget

    widget = ChmWidget(viewer, model_params=params)
    viewer.window.add_dock_widget(widget, name="chm")
    return widget


def _train(qtbot, widget):
    widget.train_button.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT)


def _fit_features(widget):
    """(read from the cache, computed) filter-bank entries of the last fit, as its status line says."""
    read, computed = re.search(r"features: (\d+) read from the cache, (\d+) computed", widget.message).groups()
    return int(read), int(computed)


def _result(viewer, source, role):
    found = [l for l in viewer.layers if l.metadata.get("chm_result") == role and l.metadata.get("chm_source") == source]
    assert len(found) == 1, [l.name for l in viewer.layers]
    return found[0]


def test_the_manifest_opens_the_widget(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("chm", "Segment from a few strokes")
    assert widget.train_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_strokes_train_a_colour_model_whose_prediction_beats_the_constant_map(viewer, qtbot):
    rng = np.random.default_rng(0)
    image, mask, strokes = _painted(viewer, "photo", (64, 64), True, rng, 8)
    widget = _widget(viewer)
    assert [(i.name, l.name) for i, l in widget.pairs()] == [("photo", "strokes")]  # paired by shape
    _train(qtbot, widget)
    prediction = _result(viewer, "photo", "prediction").data
    error, constant = _error_vs_constant(prediction, mask)
    assert error < constant / 3, widget.message
    assert _result(viewer, "photo", "probability").data.shape == mask.shape
    uncertainty = _result(viewer, "photo", "uncertainty").data
    assert uncertainty.shape == mask.shape and 0 <= uncertainty.min() and uncertainty.max() <= 1
    assert viewer.layers.selection.active is strokes and viewer.layers[-1] is strokes  # paint on at once


def test_a_retrain_after_more_strokes_reads_every_feature_from_the_cache(viewer, qtbot):
    rng = np.random.default_rng(1)
    image, mask, strokes = _painted(viewer, "cells", (64, 64), False, rng, 4)
    widget = _widget(viewer)
    _train(qtbot, widget)
    first = widget.session.model
    assert _fit_features(widget)[1] == 2  # the fit computed the image at levels 0 and 1
    _paint(strokes.data, mask, rng, 6)
    _train(qtbot, widget)
    assert widget.session.model is not first
    read, computed = _fit_features(widget)
    assert computed == 0 and read >= 2  # the retrain computed nothing again
    error, constant = _error_vs_constant(_result(viewer, "cells", "prediction").data, mask)
    assert error < constant / 3


def test_cancel_stops_a_fit_and_leaves_the_widget_usable(viewer, qtbot):
    rng = np.random.default_rng(2)
    image, mask, strokes = _painted(viewer, "cells", (64, 64), False, rng, 3)
    widget = _widget(viewer, {"levels": 1, "epochs": 1000})  # minutes, unless cancelled
    seen = []

    def cancel_at_sgd(desc, done, total):
        seen.append(desc)
        if desc.endswith("SGD") and done == 1:
            widget.cancel_button.click()

    widget.progressed.connect(cancel_at_sgd)
    _train(qtbot, widget)
    assert any(d.endswith("SGD") for d in seen)
    assert widget.session.model is None and widget.message.startswith("cancelled")
    assert not [l for l in viewer.layers if "chm_result" in l.metadata]  # no half-made layer
    assert widget.train_button.isEnabled() and not widget.cancel_button.isEnabled()
    widget.progressed.disconnect(cancel_at_sgd)
    widget.session.model_params = FAST
    _train(qtbot, widget)
    assert widget.session.model is not None and _result(viewer, "cells", "prediction").data.shape == mask.shape


def test_a_stack_trains_on_its_labelled_slices_and_predicts_every_slice(viewer, qtbot):
    rng = np.random.default_rng(3)
    scenes = [_scene((48, 48), rgb=False, rng=rng, centre=(18 + 4 * z, 20 + 3 * z)) for z in range(4)]
    stack, masks = np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])
    viewer.add_image(stack, name="stack")
    strokes = viewer.add_labels(np.zeros(stack.shape, np.uint8), name="strokes")
    for z in (0, 2):
        _paint(strokes.data[z], masks[z], rng, 6)
    widget = _widget(viewer)
    _train(qtbot, widget)
    assert _fit_features(widget)[1] == 2 * 2  # two labelled slices x two levels: the others not trained on
    prediction = _result(viewer, "stack", "prediction").data
    assert prediction.shape == stack.shape
    for z in (1, 3):  # slices without a stroke
        error, constant = _error_vs_constant(prediction[z], masks[z])
        assert error < constant / 3, z


def test_clear_errors_and_no_model_from_them(viewer, qtbot):
    rng = np.random.default_rng(4)
    image, mask = _scene((40, 40), rgb=False, rng=rng)
    viewer.add_image(image, name="cells")
    strokes = viewer.add_labels(np.zeros(mask.shape, np.uint8), name="strokes")
    viewer.add_labels(np.zeros((30, 40), np.uint8), name="other size")
    widget = _widget(viewer)
    _train(qtbot, widget)
    assert widget.message.startswith("no labels in 'strokes'")
    strokes.data[5, 5:9] = 1
    _train(qtbot, widget)
    assert widget.message.startswith("only label 1 is painted")
    widget.set_pair("cells", "other size")
    _train(qtbot, widget)
    assert "have shape (30, 40) but image 'cells' has (40, 40)" in widget.message
    widget.set_pair("cells", checked=False)
    _train(qtbot, widget)
    assert widget.message.startswith("nothing to train on")
    widget.predict("cells")
    assert widget.message.startswith("no model yet")
    assert widget.session.model is None and not widget.busy


def test_a_saved_model_loads_and_predicts_another_layer_as_chm_does(viewer, qtbot, tmp_path):
    import chm

    rng = np.random.default_rng(5)
    image, mask, strokes = _painted(viewer, "train", (48, 56), True, rng, 8)
    widget = _widget(viewer)
    _train(qtbot, widget)
    path = widget.save_model(tmp_path / "m")
    assert str(path).endswith("m.npz") and "saved" in widget.message
    widget.session.model = None
    widget.load_model(path)
    other, other_mask = _scene((48, 56), rgb=True, rng=rng, centre=(20, 30))  # the disc moved
    viewer.add_image(other, name="new", rgb=True)
    widget.target.setCurrentText("new")
    widget.predict_button.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT)
    prediction = _result(viewer, "new", "prediction").data
    np.testing.assert_array_equal(prediction - 1, chm.load(path).predict([other])[0])
    error, constant = _error_vs_constant(prediction, other_mask)
    assert error < constant / 2


def test_a_feature_channel_layer_joins_the_bank_and_is_asked_for_when_predicting(viewer, qtbot):
    """Images without a visible disc, each with another layer that shows it (the mask plus noise)
    chosen as its feature channels: the model reads the disc from them, and predicting needs them."""
    rng = np.random.default_rng(6)
    shape = (48, 56)

    def add(name, centre):
        _, mask = _scene(shape, rgb=False, rng=rng, centre=centre)
        viewer.add_image((np.clip(0.5 + rng.normal(0, 0.15, shape), 0, 1) * 255).astype(np.uint8), name=name)
        viewer.add_image(mask + rng.normal(0, 0.2, shape), name=f"{name} hint")
        return mask

    mask = add("cells", None)
    strokes = viewer.add_labels(np.zeros(shape, np.uint8), name="strokes")
    _paint(strokes.data, mask, rng, 8)
    # A small bank: with the default one's 215 columns and 16 strokes the fit leans on the training
    # image's own noise and borders as much as on the channel.
    widget = _widget(viewer, {"levels": 1, "epochs": 15, "features": ("haar",)})
    widget.set_channels("cells", "cells hint")
    assert [(i.name, l.name) for i, l in widget.pairs()] == [("cells", "strokes")]  # the hint is no training image
    widget.set_pair("cells hint", "strokes")
    _train(qtbot, widget)
    assert widget.message.startswith("feature channels: choose a channel layer for every checked image")
    widget.set_pair("cells hint", checked=False)
    _train(qtbot, widget)
    assert widget.session.model.feature_channels_ == ("channel 0",) and "1 feature channel" in widget.model_info.text()
    other_mask = add("new", (16, 36))  # the disc elsewhere
    widget.predict("new")
    assert widget.message.startswith("the model reads 1 feature channel(s): choose the layer of 'new''s")
    errors = {}
    for hint in ("new hint", "cells hint"):  # its own channels, and another image's
        widget.set_channels("new", hint)
        widget.predict("new")
        qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT)
        errors[hint], constant = _error_vs_constant(_result(viewer, "new", "prediction").data, other_mask)
    assert errors["new hint"] < constant / 2 and errors["cells hint"] > 2 * errors["new hint"], errors
