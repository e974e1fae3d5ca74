"""The ``chm`` command line, on a handful of tiny synthetic PNGs (a few seconds in all)."""

import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from chm import CHM, load
from chm.cli import main, palette
from chm.io import read_stack, write_stack
from chm.io.files import labels_from_values, read_labels

from chm.datasets import make_shapes

# The smallest useful network: one pyramid level, two filter families, three epochs.
TRAIN_OPTS = ["--levels", "1", "--features", "haar,intensity", "--epochs", "3", "--seed", "0", "--quiet"]


def write_dataset(root, n=4, shape=(24, 30)):
    """Images in ``root/images``, label images (0 unlabelled, 1 bg, 2 fg) in ``root/labels``."""
    rng = np.random.default_rng(0)
    images, masks = make_shapes(n, shape=shape, rng=rng)
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for i, (im, mask) in enumerate(zip(images, masks)):
        iio.imwrite(root / "images" / f"im{i}.png", np.round(im * 255).astype(np.uint8))
        labels = np.where(rng.random(shape) < 0.3, mask + 1, 0).astype(np.uint8)
        # Both naming rules: same stem, and stem + "_labels".
        iio.imwrite(root / "labels" / f"im{i}{'_labels' if i % 2 else ''}.png", labels)
    return root / "images", root / "labels"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    images, labels = write_dataset(root)
    model = root / "model.npz"
    assert main(["train", str(images), str(labels), "-o", str(model), *TRAIN_OPTS]) == 0
    return images, labels, model


def test_train_writes_a_loadable_model(trained):
    _, _, model = trained
    loaded = load(model)
    assert loaded.levels == 1 and loaded.bank_.families == ("haar", "intensity")
    assert sorted(loaded.classifiers_) == [(1, 0), (1, 1), (2, 0)]


def test_predict_masks_proba_and_npy(trained, tmp_path):
    images, _, model = trained
    names = sorted(p.stem for p in images.iterdir())
    proba = load(model).predict_proba([iio.imread(images / f"{n}.png") for n in names])

    assert main(["predict", str(model), str(images), "-o", str(tmp_path / "masks"), "-q"]) == 0
    for n, p in zip(names, proba):
        mask = iio.imread(tmp_path / "masks" / f"{n}.png")
        assert mask.dtype == np.uint8 and mask.shape == p.shape
        np.testing.assert_array_equal(mask, np.where(p > 0.5, 255, 0))

    assert main(["predict", str(model), str(images), "-o", str(tmp_path / "proba"), "--proba", "-q"]) == 0
    for n, p in zip(names, proba):
        np.testing.assert_array_equal(iio.imread(tmp_path / "proba" / f"{n}.png"), np.round(p * 255))

    assert main(["predict", str(model), str(images), "-o", str(tmp_path / "npy"), "--format", "npy", "-q"]) == 0
    for n, p in zip(names, proba):
        arr = np.load(tmp_path / "npy" / f"{n}.npy")
        assert arr.dtype == np.float32
        np.testing.assert_allclose(arr, p, atol=1e-6)
    assert sorted(f.name for f in (tmp_path / "npy").iterdir()) == [f"{n}.npy" for n in names]  # no temp files


def test_preview_with_proba_colours_the_decided_classes(trained, tmp_path):
    images, _, model = trained
    p = load(model).predict_proba([iio.imread(images / "im0.png")])[0]
    assert main(["predict", str(model), str(images), "-o", str(tmp_path), "--proba", "--preview", "-q"]) == 0
    preview = iio.imread(tmp_path / "im0_preview.png")
    np.testing.assert_array_equal(preview, palette(2)[(p > 0.5).astype(int)])


def test_predict_from_a_list_file(trained, tmp_path):
    images, _, model = trained
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two images\n{images / 'im1.png'}\n\n{images / 'im3.png'}\n")
    assert main(["predict", str(model), str(listing), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == ["im1.png", "im3.png"]


def test_predict_refuses_to_overwrite(trained, tmp_path, capsys):
    images, _, model = trained
    out = tmp_path / "out"
    out.mkdir()
    (out / "im2.png").write_bytes(b"keep me")
    assert main(["predict", str(model), str(images), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chm: error: ") and "im2.png" in err and "--overwrite" in err
    assert [f.name for f in out.iterdir()] == ["im2.png"]  # stopped before any work
    assert (out / "im2.png").read_bytes() == b"keep me"
    assert main(["predict", str(model), str(images), "-o", str(out), "-q", "--overwrite"]) == 0
    assert iio.imread(out / "im2.png").shape == (24, 30)


def test_info_describes_the_model(trained, capsys):
    _, _, model = trained
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "levels" in out and "haar (2), intensity (81)" in out and "LDNN" in out
    assert "network            small" in out
    assert "LDNN 6x6 " in out and "(36, 84)" in out  # stage 1 level 0: 6 x 6 nodes, 83 features + bias
    assert "mask threshold: 0.5 " in out  # sparse labels, no caps: nothing to undo


def test_train_dense_options(tmp_path, capsys):
    images, labels = write_dataset(tmp_path)
    model = tmp_path / "dense.npz"
    opts = ["--max-samples", "40", "--label-pooling", "mean", "--fusion-context", "scaled"]
    assert main(["train", str(images), str(labels), "-o", str(model), *TRAIN_OPTS, *opts]) == 0
    loaded = load(model)
    assert loaded.max_samples == 40 and loaded.label_pooling == "mean" and loaded.fusion_context == "scaled"
    assert main(["info", str(model)]) == 0
    assert "label_pooling      mean" in capsys.readouterr().out
    assert main(["train", str(images), str(labels), "-o", str(tmp_path / "x.npz"), *TRAIN_OPTS,
                 "--label-pooling", "median"]) == 2
    assert main(["train", str(images), str(labels), "-o", str(tmp_path / "x.npz"), *TRAIN_OPTS,
                 "--fusion-context", "wide"]) == 2


@pytest.mark.parametrize("opts, expect", [
    (["--semi-supervised", "auto"], {"semi_supervised": "auto", "alpha": None}),
    (["--semi-supervised", "self-training", "--beta", "4", "--rounds", "2"],
     {"semi_supervised": "self-training", "beta": 4.0, "rounds": 2}),
    (["--semi-supervised", "contrast", "--alpha", "0.2"], {"semi_supervised": "contrast", "alpha": 0.2}),
    (["--semi-supervised", "superpixels", "--superpixel-scale", "30"],
     {"semi_supervised": "superpixels", "superpixel_scale": 30.0}),
    (["--alpha", "0.1"], {"semi_supervised": None, "alpha": 0.1}),
    (["--weight-decay", "0.01"], {"weight_decay": 0.01}),
    (["--features", "haar,position"], {"features": ("haar", "position")}),
])
def test_train_semi_supervised_options(tmp_path, capsys, opts, expect):
    images, labels = write_dataset(tmp_path)
    model = tmp_path / "m.npz"
    assert main(["train", str(images), str(labels), "-o", str(model), *TRAIN_OPTS, *opts]) == 0
    loaded = load(model)  # the model file records the method and its weights
    assert {k: getattr(loaded, k) for k in expect} == expect
    assert main(["info", str(model)]) == 0
    assert "semi_supervised" in capsys.readouterr().out


def test_train_semi_supervised_bad_values(tmp_path):
    images, labels = write_dataset(tmp_path)
    for opts in (["--semi-supervised", "magic"], ["--beta", "-1"], ["--rounds", "-1"]):
        assert main(["train", str(images), str(labels), "-o", str(tmp_path / "x.npz"), *TRAIN_OPTS, *opts]) == 2


def test_label_convention():
    values = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(labels_from_values(values), [[-1, 0, 1], [1, 0, -1]])
    with pytest.raises(ValueError, match="0/255 mask"):
        labels_from_values(np.array([[0, 255]], dtype=np.uint8))
    with pytest.raises(TypeError):
        labels_from_values(np.array([[0.5, 1.0]]))


def test_read_labels_gray_and_palette(tmp_path):
    from PIL import Image

    values = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    iio.imwrite(tmp_path / "gray.png", values)
    indexed = Image.fromarray(values, mode="P")
    indexed.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    indexed.save(tmp_path / "indexed.png")
    for name in ("gray.png", "indexed.png"):
        np.testing.assert_array_equal(read_labels(tmp_path / name), values.astype(int) - 1)


def _train_error(images, labels, model, capsys):
    """Run a training that must fail: exit status 2, no model file; returns the message."""
    assert main(["train", str(images), str(labels), "-o", str(model), *TRAIN_OPTS]) == 2
    assert not model.exists()
    err = capsys.readouterr().err
    assert err.startswith("chm: error: ") and "Traceback" not in err
    return err


def test_missing_label_names_the_image(tmp_path, capsys):
    images, labels = write_dataset(tmp_path, n=2)
    (labels / "im1_labels.png").unlink()
    assert "im1.png" in _train_error(images, labels, tmp_path / "m.npz", capsys)


def test_unmatched_label_file(tmp_path, capsys):
    images, labels = write_dataset(tmp_path, n=2)
    (labels / "stray.png").write_bytes((labels / "im0.png").read_bytes())
    assert "stray.png" in _train_error(images, labels, tmp_path / "m.npz", capsys)


def test_label_size_mismatch(tmp_path, capsys):
    images, labels = write_dataset(tmp_path, n=2)
    iio.imwrite(labels / "im0.png", np.ones((5, 5), np.uint8))
    err = _train_error(images, labels, tmp_path / "m.npz", capsys)
    assert "im0.png" in err and "5 x 5" in err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_corrupt_image(tmp_path, capsys):
    images, labels = write_dataset(tmp_path, n=2)
    (images / "im1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert "im1.png" in _train_error(images, labels, tmp_path / "m.npz", capsys)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # imageio tries its legacy plugins on junk
def test_corrupt_image_in_predict_writes_nothing(trained, tmp_path, capsys):
    _, _, model = trained
    (tmp_path / "in").mkdir()
    iio.imwrite(tmp_path / "in" / "good.png", np.zeros((24, 30), np.uint8))
    (tmp_path / "in" / "bad.png").write_bytes(b"not an image")
    assert main(["predict", str(model), str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert "bad.png" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_usage_errors_return_2(capsys):
    assert main([]) == 2
    assert main(["info", "/nonexistent/model.npz"]) == 2
    assert "/nonexistent/model.npz" in capsys.readouterr().err


def test_python_m_chm_help():
    result = subprocess.run([sys.executable, "-m", "chm", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "train" in result.stdout and "predict" in result.stdout


@pytest.mark.parametrize("command, unbuffered", [("info", ""), ("info", "1"), ("--help", "")],
                         ids=["info", "info-unbuffered", "help"])
def test_closed_pipe_ends_quietly(trained, command, unbuffered):
    # `chm info model.npz | head -1`: the reader goes before chm writes (here: before it starts).
    # Like a Unix tool stopped by SIGPIPE: status 141, nothing on stderr. A buffered stdout fails
    # at the final flush, an unbuffered one (PYTHONUNBUFFERED) at the first print. (argparse
    # itself ignores a failed write of --help, so an unbuffered --help ends with 0.)
    _, _, model = trained
    args = [str(model)] if command == "info" else []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[1]), PYTHONUNBUFFERED=unbuffered)
    proc = subprocess.Popen([sys.executable, "-m", "chm", command, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""


def test_progress_output_in_a_log_and_forced_bars(tmp_path, capsys):
    images, labels = write_dataset(tmp_path, n=2)
    opts = [o for o in TRAIN_OPTS if o != "--quiet"]
    model = tmp_path / "m.npz"
    assert main(["train", str(images), str(labels), "-o", str(model), *opts]) == 0
    err = capsys.readouterr().err  # not a terminal: plain lines, one per stage here
    assert "\r" not in err and "features: done, 2/2 in" in err
    assert len(err.splitlines()) <= 10
    assert main(["predict", str(model), str(images), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "predict: done, 2/2 in" in err and len(err.splitlines()) <= 4
    assert main(["train", str(images), str(labels), "-o", str(model), *opts, "--progress"]) == 0
    assert "\r" in capsys.readouterr().err  # bars, forced
    assert main(["train", str(images), str(labels), "-o", str(model), *TRAIN_OPTS, "--progress"]) == 2
    assert "contradict" in capsys.readouterr().err


def test_k_classes_colour_train_and_predict(tmp_path, capsys):
    from chm.datasets import make_scenes

    rng = np.random.default_rng(0)
    images, masks = make_scenes(3, shape=(24, 30), n_classes=3, rng=rng)
    for d in ("images", "labels"):
        (tmp_path / d).mkdir()
    for i, (im, m) in enumerate(zip(images, masks)):
        iio.imwrite(tmp_path / "images" / f"s{i}.png", np.round(im * 255).astype(np.uint8))
        iio.imwrite(tmp_path / "labels" / f"s{i}.png", np.where(rng.random(m.shape) < 0.2, m + 1, 0).astype(np.uint8))
    model = tmp_path / "k.npz"
    assert main(["train", str(tmp_path / "images"), str(tmp_path / "labels"), "-o", str(model), *TRAIN_OPTS]) == 0
    loaded = load(model)
    assert loaded.n_classes_ == 3 and loaded.n_channels_ == 3
    out = tmp_path / "out"
    assert main(["predict", str(model), str(tmp_path / "images"), "-o", str(out), "--preview", "-q"]) == 0
    pred = loaded.predict([iio.imread(tmp_path / "images" / "s0.png")])[0]
    np.testing.assert_array_equal(iio.imread(out / "s0.png"), pred)
    assert iio.imread(out / "s0_preview.png").shape == (24, 30, 3)
    # The model's decision rule, not a plain argmax: skewed class weights change the decision.
    loaded.cascade_.class_weights = np.array([0.2, 1.0, 5.0])
    loaded.save(tmp_path / "skewed.npz")
    assert main(["predict", str(tmp_path / "skewed.npz"), str(tmp_path / "images"), "-o", str(tmp_path / "sk"),
                 "-q"]) == 0
    image = iio.imread(tmp_path / "images" / "s0.png")
    pred = loaded.predict([image])[0]
    assert not np.array_equal(pred, loaded.predict_proba([image])[0].argmax(axis=2))
    np.testing.assert_array_equal(iio.imread(tmp_path / "sk" / "s0.png"), pred)
    assert main(["predict", str(model), str(tmp_path / "images"), "-o", str(tmp_path / "npy"), "--format", "npy",
                 "-q"]) == 0
    assert np.load(tmp_path / "npy" / "s0.npy").shape == (24, 30, 3)
    assert main(["predict", str(model), str(tmp_path / "images"), "-o", str(tmp_path / "x"), "--threshold", "0.3",
                 "-q"]) == 2
    assert main(["info", str(model)]) == 0
    # "superpixels+self-training" is binary: refused with a message, and the model written above is kept.
    before = model.read_bytes()
    assert main(["train", str(tmp_path / "images"), str(tmp_path / "labels"), "-o", str(model), *TRAIN_OPTS,
                 "--semi-supervised", "superpixels+self-training"]) == 2
    assert "two classes only" in capsys.readouterr().err
    assert model.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# TIFF stacks

def write_stack_dataset(root, depth=5, shape=(24, 30), labelled=(1, 3)):
    """``root/images``: one PNG image and the stack ``s.tif`` of ``depth`` slices; ``root/labels``:
    their label image and label stack, labels on the slices ``labelled`` only. Returns the folders
    and the stack's (Z, H, W) uint8 pixels."""
    images, labels = write_dataset(root, n=1, shape=shape)
    slices, masks = make_shapes(depth, shape=shape, rng=np.random.default_rng(1))
    stack = np.round(np.stack(slices) * 255).astype(np.uint8)
    values = np.zeros((depth, *shape), np.uint8)  # 0 = unlabelled
    rng = np.random.default_rng(2)
    for z in labelled:
        values[z] = np.where(rng.random(shape) < 0.3, masks[z] + 1, 0)
    write_stack(images / "s.tif", stack)
    write_stack(labels / "s.tif", values)
    return images, labels, stack


@pytest.fixture(scope="module")
def stack_trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("stacks")
    images, labels, stack = write_stack_dataset(root)
    model = root / "model.npz"
    assert main(["train", str(images), str(labels), "-o", str(model), *TRAIN_OPTS]) == 0
    return images, labels, stack, model


def test_train_on_a_stack_uses_its_labelled_slices(tmp_path, capsys):
    images, labels, _ = write_stack_dataset(tmp_path)
    opts = [o for o in TRAIN_OPTS if o != "--quiet"]
    assert main(["train", str(images), str(labels), "-o", str(tmp_path / "m.npz"), *opts]) == 0
    err = capsys.readouterr().err
    assert f"stack '{images / 's.tif'}': 2 of 5 slices hold labels; the 3 without are left out of training" in err
    assert "3 images, " in err  # im0.png and the stack's two labelled slices


def test_predict_a_stack_writes_one_tiff_stack(stack_trained, tmp_path):
    images, _, stack, model = stack_trained
    loaded = load(model)
    proba = loaded.predict_proba(list(stack))
    out = tmp_path / "out"
    assert main(["predict", str(model), str(images), "-o", str(out), "--n-jobs", "2", "--preview", "-q"]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["im0.png", "im0_preview.png", "s.tif", "s_preview.tif"]
    masks = read_stack(out / "s.tif")
    assert masks.dtype == np.uint8 and masks.shape == (5, 24, 30)
    np.testing.assert_array_equal(masks, np.where(np.stack(proba) > loaded.threshold_, 255, 0))
    assert read_stack(out / "s_preview.tif").shape == (5, 24, 30, 3)  # colour slices
    # The PNG next to it is predicted as before.
    np.testing.assert_array_equal(iio.imread(out / "im0.png"),
                                  np.where(loaded.predict_proba([iio.imread(images / "im0.png")])[0] > 0.5, 255, 0))

    assert main(["predict", str(model), str(images / "s.tif"), "-o", str(tmp_path / "p"), "--proba", "-q"]) == 0
    np.testing.assert_array_equal(read_stack(tmp_path / "p" / "s.tif"), np.round(np.stack(proba) * 255))
    assert main(["predict", str(model), str(images / "s.tif"), "-o", str(tmp_path / "n"), "--format", "npy",
                 "-q"]) == 0
    arr = np.load(tmp_path / "n" / "s.npy")
    assert arr.dtype == np.float32 and arr.shape == (5, 24, 30)
    np.testing.assert_allclose(arr, np.stack(proba), atol=1e-6)


def test_predict_interrupted_keeps_the_stacks_written(stack_trained, tmp_path, monkeypatch):
    _, _, stack, model = stack_trained
    (tmp_path / "in").mkdir()
    for name in ("a", "b"):
        write_stack(tmp_path / "in" / f"{name}.tif", stack[:3])
    calls = []
    real = CHM.predict_proba

    def stopped_at_the_fifth_slice(self, images, **kw):
        calls.append(len(images))
        if len(calls) == 5:  # b.tif's second slice (one slice per call with --n-jobs 1)
            raise KeyboardInterrupt
        return real(self, images, **kw)

    monkeypatch.setattr(CHM, "predict_proba", stopped_at_the_fifth_slice)
    out = tmp_path / "out"
    assert main(["predict", str(model), str(tmp_path / "in"), "-o", str(out), "-q"]) == 130
    assert [f.name for f in out.iterdir()] == ["a.tif"]  # whole, and no temporary file of b.tif
    assert read_stack(out / "a.tif").shape == (3, 24, 30)


def test_label_stack_of_another_shape(tmp_path, capsys):
    images, labels, _ = write_stack_dataset(tmp_path)
    write_stack(labels / "s.tif", np.ones((4, 24, 30), np.uint8))
    err = _train_error(images, labels, tmp_path / "m.npz", capsys)
    assert f"label stack '{labels / 's.tif'}' has shape (4, 24, 30) but stack '{images / 's.tif'}' has shape " \
           "(5, 24, 30)" in err
    write_stack(labels / "s.tif", np.ones((5, 24, 29), np.uint8))
    assert "has shape (5, 24, 29) but" in _train_error(images, labels, tmp_path / "m.npz", capsys)


def test_corrupt_tif_stops_train_and_predict(stack_trained, tmp_path, capsys):
    images, labels, _ = write_stack_dataset(tmp_path)
    raw = (images / "s.tif").read_bytes()
    (images / "s.tif").write_bytes(raw[:len(raw) // 2])
    err = _train_error(images, labels, tmp_path / "m.npz", capsys)
    assert f"cannot read stack '{images / 's.tif'}': corrupt or truncated file" in err
    _, _, _, model = stack_trained
    assert main(["predict", str(model), str(images), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert "s.tif" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # stopped before any output
