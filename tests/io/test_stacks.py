"""TIFF stacks (chm.io.stacks): reading and writing, label stacks, and a stack through CHM."""

import logging

import numpy as np
import pytest
import tifffile

from chm import CHM
from chm.datasets import make_shapes
from chm.io import labelled_slices, read_label_stack, read_stack, write_stack
from chm.io.stacks import is_stack_file

SMALL = dict(levels=1, stages=1, features=("haar", "intensity"), context_radius=3,
             classifier_params={"n_groups": 2, "n_nodes": 2}, epochs=3, progress=False, random_state=0)


@pytest.fixture(scope="module")
def shapes():
    """A (5, 24, 30) uint8 stack of synthetic shapes and its masks."""
    images, masks = make_shapes(5, shape=(24, 30), rng=np.random.default_rng(0))
    return np.round(np.stack(images) * 255).astype(np.uint8), np.stack(masks)


@pytest.mark.parametrize("stack", [
    np.arange(3 * 8 * 9, dtype=np.uint8).reshape(3, 8, 9),
    np.arange(1 * 8 * 9, dtype=np.uint16).reshape(1, 8, 9) * 700,  # one slice stays a stack of one
    np.arange(4 * 8 * 9 * 3, dtype=np.uint8).reshape(4, 8, 9, 3),  # colour slices
    np.linspace(0, 1, 2 * 8 * 9, dtype=np.float32).reshape(2, 8, 9),  # probabilities
], ids=["gray", "one-slice", "colour", "float"])
def test_stack_round_trip(tmp_path, stack):
    path = write_stack(tmp_path / "s.tif", stack)
    assert is_stack_file(path)
    back = read_stack(path)
    assert back.dtype == stack.dtype
    np.testing.assert_array_equal(back, stack)
    assert [p.name for p in tmp_path.iterdir()] == ["s.tif"]  # written atomically: no temporary left


def test_write_stack_of_class_maps_and_a_list_of_slices(tmp_path):
    proba = np.random.default_rng(0).random((2, 8, 9, 5)).astype(np.float32)
    for k in (5, 4):  # K class maps per slice: channels, not colour (nor colour + alpha)
        write_stack(tmp_path / "p.tif", proba[..., :k])
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "p.tif"), proba[..., :k])
        with pytest.raises(ValueError, match="one channel or time point per file"):
            read_stack(tmp_path / "p.tif")
    masks = [np.eye(8, 9, dtype=bool), np.ones((8, 9), bool)]
    write_stack(tmp_path / "m.tif", masks)
    back = read_stack(tmp_path / "m.tif")
    assert back.dtype == bool
    np.testing.assert_array_equal(back, np.stack(masks))
    with pytest.raises(ValueError, match=r"\(Z, H, W\).*got shape \(8, 9\)"):
        write_stack(tmp_path / "x.tif", np.zeros((8, 9)))


def test_colour_page_and_pages_are_told_apart(tmp_path):
    # The same (3, 8, 3)-ish ambiguity an array has, settled by the file's axes.
    rgb = np.random.default_rng(0).integers(0, 255, (8, 9, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")  # one colour page
    pages = np.random.default_rng(1).integers(0, 255, (3, 8, 9), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="minisblack")  # three gray pages
    assert not is_stack_file(tmp_path / "rgb.tif") and is_stack_file(tmp_path / "pages.tif")
    np.testing.assert_array_equal(read_stack(tmp_path / "rgb.tif"), rgb[None])
    np.testing.assert_array_equal(read_stack(tmp_path / "pages.tif"), pages)
    # ImageJ's stacks, and colour stored as RGB with equal channels (gray, as read_image reads it).
    tifffile.imwrite(tmp_path / "ij.tif", pages, imagej=True, metadata={"axes": "ZYX"})
    np.testing.assert_array_equal(read_stack(tmp_path / "ij.tif"), pages)
    tifffile.imwrite(tmp_path / "grey_rgb.tif", np.repeat(pages[..., None], 3, axis=3), photometric="rgb")
    np.testing.assert_array_equal(read_stack(tmp_path / "grey_rgb.tif"), pages)
    assert not is_stack_file(tmp_path / "a.png")  # other files are 2-D images, not even opened


def test_stacks_chm_cannot_use_say_why(tmp_path):
    tifffile.imwrite(tmp_path / "zc.tif", np.zeros((4, 2, 8, 9), np.uint8), imagej=True, metadata={"axes": "ZCYX"})
    with pytest.raises(ValueError, match=r"zc\.tif.*axes ZCYX.*one channel or time point per file"):
        read_stack(tmp_path / "zc.tif")
    tifffile.imwrite(tmp_path / "i16.tif", np.zeros((2, 8, 9), np.int16))
    with pytest.raises(ValueError, match=r"i16\.tif.*slice 0 has unsupported dtype int16"):
        read_stack(tmp_path / "i16.tif")
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        read_stack(tmp_path / "missing.tif")


def test_corrupt_tif_is_a_clear_error(tmp_path, capfd):
    write_stack(tmp_path / "good.tif", np.zeros((5, 64, 64), np.uint16))
    raw = (tmp_path / "good.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[:len(raw) // 2])  # a copy that stopped half-way
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    (tmp_path / "bad_ifd.tif").write_bytes(b"II*\x00garbage!")
    with pytest.raises(ValueError, match=r"cannot read stack '.*cut\.tif': corrupt or truncated file"):
        read_stack(tmp_path / "cut.tif")
    with pytest.raises(ValueError, match=r"cannot read stack '.*junk\.tif': not a TIFF file"):
        read_stack(tmp_path / "junk.tif")
    for name in ("junk.tif", "bad_ifd.tif"):
        with pytest.raises(ValueError, match=rf"cannot read image '.*{name}'"):
            is_stack_file(tmp_path / name)
    with pytest.raises(ValueError, match=r"cannot read label stack '.*cut\.tif'"):
        read_label_stack(tmp_path / "cut.tif")
    assert capfd.readouterr().err == ""  # what tifffile logs is in the message, not loose on stderr


def test_label_stack_convention(tmp_path):
    values = np.zeros((3, 4, 5), np.uint8)
    values[0, 1, 2], values[2, 3, 4] = 1, 2
    write_stack(tmp_path / "l.tif", values)
    labels = read_label_stack(tmp_path / "l.tif")
    assert labels.shape == (3, 4, 5) and labels.dtype == np.int8
    np.testing.assert_array_equal(labels, values.astype(int) - 1)  # 0 = unlabelled -> -1
    write_stack(tmp_path / "mask.tif", values * 0 + np.uint8(255) * (values > 0))
    with pytest.raises(ValueError, match=r"label stack '.*mask\.tif' holds only 0 and 255"):
        read_label_stack(tmp_path / "mask.tif")
    write_stack(tmp_path / "colour.tif", np.random.default_rng(0).integers(0, 3, (3, 4, 5, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"colour\.tif.*several different samples"):
        read_label_stack(tmp_path / "colour.tif")


def test_labelled_slices_keeps_labelled_slices_and_says_so(shapes, caplog):
    stack, masks = shapes
    labels = np.full(masks.shape, -1, np.int8)
    labels[1, ::4, ::4] = masks[1, ::4, ::4]
    labels[3, 5, 5] = 0
    with caplog.at_level(logging.INFO, logger="chm.io.stacks"):
        images, labs, kept = labelled_slices(stack, labels, "'a.tif'")
    assert kept == [1, 3]
    np.testing.assert_array_equal(images[0], stack[1])
    np.testing.assert_array_equal(labs[1], labels[3])
    assert [r.getMessage() for r in caplog.records] == [
        "'a.tif': 2 of 5 slices hold labels; the 3 without are left out of training"]


@pytest.mark.parametrize("cut", [np.s_[:4], np.s_[:, :20], np.s_[:, :, :29]], ids=["Z", "H", "W"])
def test_label_stack_of_another_shape_names_both_shapes(shapes, cut):
    stack, masks = shapes
    labels = (masks.astype(np.int8) - 1)[cut]
    expect = rf"'l.tif' has shape \({', '.join(map(str, labels.shape))}\) but 'a.tif' has shape \(5, 24, 30\)"
    with pytest.raises(ValueError, match=expect):
        labelled_slices(stack, labels, "'a.tif'", "'l.tif'")


def test_stack_predicted_equals_its_slices_one_by_one(shapes, tmp_path):
    stack, masks = shapes
    rng = np.random.default_rng(0)
    labels = [np.where(rng.random(m.shape) < 0.2, m.astype(np.int8), -1) for m in masks]
    model = CHM(**SMALL, n_jobs=2).fit(list(stack[:2]), labels[:2])
    write_stack(tmp_path / "s.tif", stack)
    together = model.predict_proba(list(read_stack(tmp_path / "s.tif")))  # two workers over the slices
    model.set_params(n_jobs=1)
    for z in range(len(stack)):
        np.testing.assert_array_equal(together[z], model.predict_proba([stack[z]])[0])
    np.testing.assert_array_equal(np.stack(model.predict(list(stack))), np.stack(together) > model.threshold_)


def test_label_stack_with_two_labelled_slices_trains(shapes, tmp_path):
    stack, masks = shapes
    values = np.zeros(masks.shape, np.uint8)  # file convention: 0 = unlabelled
    rng = np.random.default_rng(0)
    for z in (1, 3):
        values[z] = np.where(rng.random(masks[z].shape) < 0.3, masks[z] + 1, 0)
    write_stack(tmp_path / "s.tif", stack)
    write_stack(tmp_path / "s_labels.tif", values)
    stack_back, labels_back = read_stack(tmp_path / "s.tif"), read_label_stack(tmp_path / "s_labels.tif")
    images, labels, kept = labelled_slices(stack_back, labels_back)
    assert kept == [1, 3]
    model = CHM(**SMALL).fit(images, labels)
    pred = np.stack(model.predict(list(stack)))
    assert pred.shape == (5, 24, 30)
    assert (pred == masks).mean() > 0.7  # learnt something from two slices


def test_a_3d_array_that_may_be_one_colour_image_is_ambiguous(shapes):
    stack, masks = shapes
    labels = [np.where(np.random.default_rng(0).random(m.shape) < 0.3, m.astype(np.int8), -1) for m in masks]
    model = CHM(**SMALL).fit(list(stack[:2]), labels[:2])
    thin = np.ascontiguousarray(stack[:, :, :3])  # (5, 24, 3): a 5 x 24 colour image, or 5 slices 3 px wide?
    with pytest.raises(TypeError, match=r"shape \(5, 24, 3\).*\[image\] for one image, list\(stack\)"):
        model.predict(thin)
    with pytest.raises(TypeError, match=r"single image of shape \(24, 30\).*\[image\]"):
        model.predict(stack[0])
    # A (Z, H, W) array whose last axis cannot be colour is its slices, as list(stack) is.
    np.testing.assert_array_equal(np.stack(model.predict(stack)), np.stack(model.predict(list(stack))))
