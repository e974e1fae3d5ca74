"""Stanford Background / SIFT Flow loaders, K-class sparse sampling, pixel error with unknown pixels."""

import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from chm.datasets import load_siftflow, load_stanford_background, sample_sparse_labels
from chm.metrics import pixel_error
from chm.datasets.scenes import STANFORD_CLASSES, stanford_folds

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _data_root(name):
    for cand in (os.environ.get("CHM_DATA"), SHARED):
        if cand and (Path(cand) / name / "images").is_dir():
            return Path(cand)
    pytest.skip(f"{name} data not found: set CHM_DATA to the folder holding {name}/ (see its README)")


def _stage(folder, names, label_values, shape=(6, 8)):
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for n, v in zip(names, label_values):
        iio.imwrite(folder / "images" / f"{n}.jpg", rng.integers(0, 255, shape + (3,), dtype=np.uint8))
        lab = np.full(shape, v, dtype=np.uint8)
        lab[0, 0] = 255 if folder.name == "stanford_background" else 0
        iio.imwrite(folder / "labels" / f"{n}.png", lab)


def test_stanford_folds_partition_and_loader_on_a_staged_copy(tmp_path):
    names = [f"{i:07d}" for i in range(715)]
    folds = stanford_folds(names, seed=3)
    assert [len(f) for f in folds] == [143] * 5
    assert sorted(n for f in folds for n in f) == names
    assert stanford_folds(names, seed=3) == folds and stanford_folds(names, seed=4) != folds
    # A staged copy in the real layout, with 6 x 8 images.
    root = tmp_path / "stanford_background"
    _stage(root, names, [i % 8 for i in range(715)])
    (root / "all.txt").write_text("\n".join(names) + "\n")
    d = load_stanford_background(tmp_path, fold=2, seed=3)  # the parent folder works too
    assert d.test_names == folds[2] and len(d.train_names) == 572
    assert not set(d.train_names) & set(d.test_names)
    assert d.train_images[0].shape == (6, 8, 3) and d.train_images[0].dtype == np.uint8
    m = d.test_masks[0]
    assert m.dtype == np.int8 and m[0, 0] == -1 and m[1, 1] == int(d.test_names[0]) % 8
    assert d.classes == STANFORD_CLASSES
    with pytest.raises(ValueError, match="fold must be an integer in 0..4"):
        load_stanford_background(root, fold=5)
    with pytest.raises(FileNotFoundError, match="no stanford_background data"):
        load_stanford_background(tmp_path / "nowhere")


def test_siftflow_loader_on_a_staged_copy(tmp_path):
    root = tmp_path / "siftflow"
    _stage(root, ["a", "b", "c"], [1, 33, 5])
    (root / "train.txt").write_text("a\nb\n")
    (root / "test.txt").write_text("c\n")
    d = load_siftflow(root)
    assert d.train_names == ["a", "b"] and d.test_names == ["c"]
    assert d.train_masks[0][0, 0] == -1 and d.train_masks[0][1, 1] == 0 and d.train_masks[1][1, 1] == 32
    assert len(d.classes) == 33
    iio.imwrite(root / "labels" / "c.png", np.full((6, 8), 40, dtype=np.uint8))
    with pytest.raises(ValueError, match="not 0 \\(unlabelled\\) nor a class"):
        load_siftflow(root)


def test_real_stanford_fold():
    d = load_stanford_background(_data_root("stanford_background"), fold=0, seed=0)
    assert len(d.train_images) == 572 and len(d.test_images) == 143
    assert all(im.ndim == 3 and im.shape[2] == 3 for im in d.test_images)
    values = np.unique(np.concatenate([m.ravel() for m in d.train_masks]))
    assert values.tolist() == list(range(-1, 8))


def test_real_siftflow_split():
    d = load_siftflow(_data_root("siftflow"))
    assert len(d.train_images) == 2488 and len(d.test_images) == 200
    assert d.test_images[0].shape == (256, 256, 3)
    present = set(np.unique(np.concatenate([m.ravel() for m in d.test_masks])).tolist())
    assert len(present - {-1}) == 30 and not present & {8, 10, 15}  # cow, desert, moon absent


def test_sparse_labels_k_classes_never_draw_ignored_pixels():
    mask = np.full((10, 10), -1)
    mask[:, :3] = np.arange(3)  # 30 pixels of three classes, 70 unknown
    for seed in range(20):
        lab = sample_sparse_labels([mask], 12, rng=seed, ignore=-1)[0]
        drawn = lab >= 0
        assert drawn.sum() == 12 and (mask[drawn] >= 0).all() and (lab[drawn] == mask[drawn]).all()
    few = sample_sparse_labels([mask, np.full((6, 6), -1)], 31, rng=0, ignore=-1)  # all they have
    assert ((few[0] >= 0) == (mask >= 0)).all() and (few[1] == -1).all()
    with pytest.raises(ValueError, match="ignore=-1"):
        sample_sparse_labels([mask], 1, rng=0)


def test_pixel_error_ignores_unknown_pixels():
    true = np.array([[0, 1, -1], [2, -1, 2]])
    pred = np.array([[0, 2, 1], [2, 0, 1]])
    assert pixel_error(pred, true, ignore=-1) == pytest.approx(2 / 4)
    assert pixel_error(pred, true) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="no pixels other than -1"):
        pixel_error(pred, np.full((2, 3), -1), ignore=-1)
