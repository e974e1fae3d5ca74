"""Model files: the container, format dispatch, old files, and no model <-> persistence import cycle."""

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import chm
from chm import persistence

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from synthetic import make_shapes  # noqa: E402

DATA = Path(__file__).parent / "data"
PACKAGE = Path(chm.__file__).parent


def _imports(module):
    """Modules of the chm package that ``module`` imports anywhere in its source (also inside functions)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.update([node.module] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chm."):
            out.add(node.module.split(".")[1])
    return out


def test_persistence_imports_no_estimator():
    # The estimators give and take their state; persistence only holds the container.
    assert not _imports("persistence") & {"model", "convnet", "classifiers"}
    assert "persistence" in _imports("model")


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
