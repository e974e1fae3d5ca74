"""Model files: the container, format dispatch, old files, and no model <-> persistence import cycle."""

import sys
from pathlib import Path

import numpy as np
import pytest

import chm
from chm.io import persistence

from chm.datasets import make_shapes

DATA = Path(__file__).parent / "data"


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
