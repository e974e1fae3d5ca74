"""Model files: the container, format dispatch, old files, permissions."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest

import chm
from chm.datasets import make_scenes, make_shapes
from chm.io import persistence

DATA = Path(__file__).resolve().parents[1] / "data"


def test_version_1_file_still_loads():
    """tests/data/model_v1.npz was written by chm 0.1 (format version 1) from this synthetic set."""
    images, _ = make_shapes(4, shape=(24, 30), noise=0.35, rng=np.random.default_rng(0))
    model = chm.load(DATA / "model_v1.npz")
    assert model.n_classes_ == 2 and model.levels == 1
    np.testing.assert_allclose(model.predict_proba(images[:1])[0], np.load(DATA / "model_v1_proba.npy"),
                               atol=1e-6)


def test_unknown_format_and_newer_version(tmp_path):
    persistence.write_container(tmp_path / "a.npz", persistence.FORMAT, {"params": {}}, {})
    header, _ = persistence.read_container(tmp_path / "a.npz")
    assert header["format"] == "chm-model" and header["version"] == persistence.VERSION
    with pytest.raises(ValueError, match="incomplete or corrupt"):
        chm.load(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", __chm__=np.frombuffer(b'{"format": "chm-model", "version": 99}', np.uint8))
    with pytest.raises(ValueError, match="upgrade chm"):
        chm.load(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", __chm__=np.frombuffer(b'{"format": "other"}', np.uint8))
    with pytest.raises(ValueError, match="not a chm model"):
        chm.load(tmp_path / "c.npz")


@pytest.mark.parametrize("name, shape", [("model_v2_binary", (32, 40)), ("model_v2_classes", (32, 40, 3))])
def test_files_saved_before_the_subpackages_load_and_predict_the_same(name, shape):
    """Written by chm at commit 8eb6da1, before the package was split (tests/data/README.md)."""
    if name == "model_v2_binary":
        images, _ = make_shapes(4, shape=shape, noise=0.35, rng=np.random.default_rng(0))
    else:
        images, _ = make_scenes(4, shape=shape[:2], n_classes=3, rng=np.random.default_rng(0))
    model = chm.load(DATA / f"{name}.npz")
    # Bit-equal on the CPU that wrote them; another CPU's BLAS kernels (AVX-512 against AVX2) round the
    # classifiers' sums differently: measured up to 2.3e-6, far below what a loading error makes.
    np.testing.assert_allclose(model.predict_proba(images[:1])[0], np.load(DATA / f"{name}_proba.npy"),
                               rtol=1e-4, atol=1e-5)


def test_convnet_file_saved_before_the_subpackages_loads_and_predicts_the_same():
    pytest.importorskip("torch")
    images, _ = make_shapes(4, shape=(32, 40), noise=0.35, rng=np.random.default_rng(0))
    model = chm.load(DATA / "convnet_v1.npz")
    np.testing.assert_allclose(model.predict_proba(images[:1])[0], np.load(DATA / "convnet_v1_proba.npy"), atol=1e-6)


def test_convnet_file_of_format_version_2_loads_with_the_defaults_of_the_newer_params(tmp_path):
    """chm-convnet version 3 added optimizer, lr_schedule and supervised_loss: a version 2 header,
    which lacks them, loads as Adam with cosine decay and cross-entropy, the same weights."""
    import json

    pytest.importorskip("torch")
    images, masks = make_shapes(2, shape=(24, 30), rng=np.random.default_rng(0))
    labels = [np.where(np.random.default_rng(i).random(m.shape) < 0.1, m.astype(int), -1)
              for i, m in enumerate(masks)]
    model = chm.ConvNet(n_iter=2, batch_size=8, optimizer="sgd", lr_schedule="step", supervised_loss="squared_error",
                        learning_rate=0.01, n_jobs=1, progress=False, random_state=0).fit(images, labels)
    header, arrays = persistence.read_container(model.save(tmp_path / "v3"))
    assert header["format"] == "chm-convnet" and header["version"] == 3
    for name in ("optimizer", "lr_schedule", "supervised_loss"):
        del header["params"][name]
    header["version"] = 2
    np.savez(tmp_path / "v2.npz", __chm__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    old = chm.load(tmp_path / "v2.npz")
    assert old.n_classes_ == 2 and (old.optimizer, old.lr_schedule, old.supervised_loss) == ("adam", "cosine", "cross_entropy")
    np.testing.assert_array_equal(old.predict_proba(images[:1])[0], model.predict_proba(images[:1])[0])


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_models_get_the_umasks_permissions(tmp_path, umask):
    """Models are saved like masks and other files: 0666 less the umask (not owner-only 0600)."""
    images, masks = make_shapes(2, shape=(24, 30), rng=np.random.default_rng(0))
    labels = [np.where(np.random.default_rng(i).random(m.shape) < 0.1, m.astype(int), -1) for i, m in enumerate(masks)]
    model = chm.CHM(levels=1, stages=1, epochs=1, random_state=0, progress=False).fit(images, labels)
    old = os.umask(umask)
    try:
        path = model.save(tmp_path / "m")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary file left


def test_a_recipe_as_semi_supervised_round_trips(tmp_path):
    from chm.semi.recipes import Recipe

    images, masks = make_shapes(3, shape=(24, 30), rng=np.random.default_rng(0))
    labels = [np.where(np.random.default_rng(i).random(m.shape) < 0.1, m.astype(int), -1) for i, m in enumerate(masks)]
    recipe = Recipe(beta=4.0, rounds=1, prior_tolerance=0.5, proposal_samples=500)
    model = chm.CHM(levels=1, stages=1, epochs=1, semi_supervised=recipe, random_state=0, progress=False)
    model.fit(images, labels)
    back = chm.load(model.save(tmp_path / "m"))
    assert back.semi_supervised == recipe and len(back.rounds_) == 0  # rounds are not saved
    np.testing.assert_array_equal(back.predict_proba(images[:1])[0], model.predict_proba(images[:1])[0])
