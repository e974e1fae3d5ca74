"""Shared fixtures.

Data-dependent tests take ``weizmann_root`` (or ``weizmann``) and are skipped
with a reason when the Weizmann horse database is not available. Looked up
in ``$CHM_DATA``, then ``../shared/data`` next to the repository, then the
download cache; nothing is downloaded during tests.
"""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def weizmann_root():
    """Folder holding ``gray/``, ``rgb/``, ``figure_ground/`` (skips if absent)."""
    # Imported here so that collecting unrelated tests never depends on chm.
    from chm.datasets import find_data_root

    root = find_data_root(extra=[SHARED_DATA])
    if root is None:
        pytest.skip(
            "Weizmann data not found: set CHM_DATA=/path/to/weizmann_horse_db "
            "(or its parent folder); see README"
        )
    return root


@pytest.fixture(scope="session")
def weizmann(weizmann_root):
    """The loaded database (:class:`chm.datasets.WeizmannHorse`), read once."""
    from chm.datasets import load_weizmann_horse

    return load_weizmann_horse(weizmann_root, download=False)


@pytest.fixture(scope="session")
def scene_data():
    """``scene_data(name)``: the folder holding ``name/images`` (e.g. "stanford_background"),
    from ``$CHM_DATA`` or ``../shared/data``; skips if absent."""
    import os

    def find(name):
        for cand in (os.environ.get("CHM_DATA"), SHARED_DATA):
            if cand and (Path(cand) / name / "images").is_dir():
                return str(cand)
        pytest.skip(f"{name} data not found: set CHM_DATA to the folder holding {name}/")

    return find


@pytest.fixture(scope="session")
def majority_error():
    """``majority_error(masks, ignore=None)``: the pooled pixel error of the best constant map on
    these very pixels (each given the most common class of the masks themselves), i.e. the error of
    an all-background / one-class model at its best: the bar a model that learned anything clears.
    Pixels equal to ``ignore`` (e.g. -1, the scene datasets' unknown pixels) are left out, as
    ``chm.metrics.pixel_error(..., ignore=...)`` leaves them out."""
    import numpy as np

    def error(masks, ignore=None):
        pixels = np.concatenate([np.asarray(m).ravel() for m in masks]).astype(np.int64)
        if ignore is not None:
            pixels = pixels[pixels != ignore]
        return 1.0 - np.bincount(pixels).max() / pixels.size

    return error
