"""The plugin's conversions between napari layer data and chm's arrays (no Qt, no napari needed)."""

import numpy as np
import pytest

from chm.napari.layers import LayerError, as_slices, class_count, results, spatial_shape, training_slices


def test_gray_colour_and_stack_layers_become_2d_images():
    gray = np.zeros((20, 30), np.uint8)
    rgba = np.zeros((20, 30, 4), np.uint8)
    stack = np.zeros((5, 20, 30, 3), np.uint16)
    assert as_slices(gray, rgb=False)[1] is False and as_slices(gray, rgb=False)[0][0] is gray
    (im,), stack_flag = as_slices(rgba, rgb=True)
    assert im.shape == (20, 30, 3) and not stack_flag  # the alpha channel dropped
    slices, stack_flag = as_slices(stack, rgb=True)
    assert stack_flag and len(slices) == 5 and slices[0].shape == (20, 30, 3)
    assert spatial_shape(stack, rgb=True) == (5, 20, 30)


def test_other_numbers_are_scaled_by_the_whole_layer():
    data = np.stack([np.full((8, 8), -100.0), np.full((8, 8), 300.0)]).astype(np.float32)
    data[0, 0, 0] = 100.0
    (a, b), _ = as_slices(data, rgb=False)
    assert a.min() == 0.0 and b.max() == 1.0 and a[0, 0] == pytest.approx(0.5)  # one scale for every slice
    (c,), _ = as_slices(np.arange(64, dtype=np.int16).reshape(8, 8), rgb=False)
    assert c.min() == 0.0 and c.max() == 1.0


@pytest.mark.parametrize("data, rgb, words", [
    (np.zeros((2, 3, 8, 8)), False, "2-D images"),
    ([np.zeros((8, 8)), np.zeros((4, 4))], False, "multiscale"),
])
def test_layers_the_plugin_cannot_use_say_why(data, rgb, words):
    with pytest.raises(LayerError, match=words):
        as_slices(data, rgb)


def test_training_takes_the_labelled_slices_with_values_minus_one():
    image = np.random.default_rng(0).random((4, 10, 12))
    labels = np.zeros((4, 10, 12), np.uint8)
    labels[1, 2, 3] = 1
    labels[3, 5, 5] = 2
    images, api, where = training_slices(image, False, labels)
    assert where == [1, 3] and np.array_equal(images[0], image[1])
    assert api[0][2, 3] == 0 and api[1][5, 5] == 1 and api[0][0, 0] == -1
    with pytest.raises(LayerError, match=r"labels 'L' have shape \(10, 12\) but image 'I' has \(4, 10, 12\)"):
        training_slices(image, False, labels[0], "I", "L")


def test_class_count_names_what_is_missing():
    lab = np.full((4, 4), -1)
    with pytest.raises(LayerError, match="no labels in 'strokes'"):
        class_count([lab], ["strokes"])
    lab[0, 0] = 1
    with pytest.raises(LayerError, match="only label 2 is painted"):
        class_count([lab])
    lab[1, 1] = 3
    with pytest.raises(LayerError, match="labels 1, 3 have no painted pixel"):
        class_count([lab])
    lab[2, 2], lab[3, 3] = 0, 2
    assert class_count([lab[:2], lab[2:]]) == 4


def test_results_keep_the_layers_shape():
    p = [np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)]
    decide = lambda maps: [(m > 0.5).astype(np.uint8) for m in maps]  # noqa: E731
    probability, prediction, uncertainty = results(p, decide, stack=False)
    assert probability.shape == prediction.shape == uncertainty.shape == (2, 2)
    assert prediction.tolist() == [[1, 1], [2, 1]]  # class + 1
    assert uncertainty[0, 0] == 0 and uncertainty[0, 1] == pytest.approx(1) and uncertainty[1, 0] == 0
    k3 = [np.full((2, 2, 3), 1 / 3, np.float32)] * 5
    probability, prediction, uncertainty = results(k3, lambda maps: [m.argmax(-1) for m in maps], stack=True)
    assert probability.shape == (3, 5, 2, 2) and prediction.shape == uncertainty.shape == (5, 2, 2)
    assert np.allclose(uncertainty, 1)


def test_a_channel_layer_gives_each_slice_its_channels():
    from chm.napari.layers import channel_slices

    gray = np.arange(12.0).reshape(3, 4)
    (c,) = channel_slices(gray, rgb=False, shape=(3, 4))
    assert c.shape == (3, 4, 1) and c[2, 3, 0] == 11.0  # raw values: chm standardises them
    (c,) = channel_slices(np.zeros((3, 4, 4), np.uint8), rgb=True, shape=(3, 4))
    assert c.shape == (3, 4, 3)  # an RGB(A) layer: three channels
    stack = channel_slices(np.zeros((5, 3, 4)), rgb=False, shape=(5, 3, 4))
    assert len(stack) == 5 and stack[0].shape == (3, 4, 1)
    with pytest.raises(LayerError, match=r"feature-channel layer 'hint' has shape \(3, 5\) but image 'cells' has "
                                         r"\(3, 4\): choose a layer of the image's size"):
        channel_slices(np.zeros((3, 5)), rgb=False, shape=(3, 4), name="hint", image_name="cells")
    with pytest.raises(LayerError, match="multiscale"):
        channel_slices([np.zeros((3, 4))], rgb=False, shape=(3, 4))
