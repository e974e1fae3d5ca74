"""Smoke runs of experiments.stanford and experiments.siftflow (--quick); the real runs are not CI tests."""

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the ConvNet rows need the convnet extra: pip install -e '.[convnet]'")
ROOT = Path(__file__).resolve().parents[1]


def _data(name):
    import os

    for cand in (os.environ.get("CHM_DATA"), ROOT.parent / "shared" / "data"):
        if cand and (Path(cand) / name / "images").is_dir():
            return str(cand)
    pytest.skip(f"{name} data not found: set CHM_DATA to the folder holding {name}/")


@pytest.mark.slow
def test_stanford_quick_writes_table_figures_and_resumes(tmp_path):
    from experiments import stanford

    out = tmp_path / "s"
    args = ["--quick", "--data", _data("stanford_background"), "--out", str(out), "--quiet"]
    stanford.main(args)
    for name in ("table2.md", "table2.csv", "fig_error.png", "fig_samples.png"):
        assert (out / name).stat().st_size > 0, name
    runs = sorted(p.name for p in (out / "runs").glob("fold0_N10_draw0_*.json"))
    assert runs == ["fold0_N10_draw0_mrf.json", "fold0_N10_draw0_supervised.json", "fold0_N10_draw0_tv.json"]
    assert json.loads((out / "runs" / "fold0_N10_draw0_tv.json").read_text())["alpha"] > 0
    assert "39.98 ± 1.35" in (out / "table2.md").read_text()  # the paper's number beside ours
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    stanford.main(args)  # everything cached: nothing retrained
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    with pytest.raises(SystemExit, match="another configuration"):
        stanford.main(args + ["--alpha", "0.5"])


@pytest.mark.slow
def test_siftflow_quick(tmp_path):
    from experiments import siftflow

    out = tmp_path / "f"
    siftflow.main(["--quick", "--data", _data("siftflow"), "--out", str(out), "--quiet",
                   "--methods", "supervised,tv"])
    assert "25.41 ± 0.25" in (out / "table3.md").read_text()
    assert (out / "fig_samples.png").stat().st_size > 0


@pytest.mark.slow
def test_weizmann_convnet_quick(weizmann_root, tmp_path):
    """python -m experiments.weizmann --classifier convnet: the ConvNet rows through the scenes driver."""
    from experiments import weizmann

    out = tmp_path / "w"
    weizmann.main(["--classifier", "convnet", "--quick", "--data", str(weizmann_root), "--out", str(out), "--quiet"])
    runs = sorted(p.name for p in (out / "runs").glob("weizmann_N10_draw0_*.json"))
    assert runs == ["weizmann_N10_draw0_mrf.json", "weizmann_N10_draw0_supervised.json", "weizmann_N10_draw0_tv.json"]
    text = (out / "table1.md").read_text()
    assert "23.81 ± 1.50" in text and "CHM" in text  # the paper's CHM numbers, labelled as such
    assert (out / "fig_samples.png").stat().st_size > 0
