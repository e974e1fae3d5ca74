"""Smoke run of experiments.stanford with the K-class colour CHM (--quick); no torch needed."""

import json

import pytest


@pytest.mark.slow
@pytest.mark.data
def test_stanford_quick_chm_all_columns(tmp_path, scene_data):
    from experiments import stanford

    out = tmp_path / "s"
    args = ["--quick", "--classifier", "chm", "--data", scene_data("stanford_background"), "--out", str(out), "--quiet",
            "--methods", "supervised,mrf,tv,contrast,self-training", "--cache-gb", "0.2"]
    stanford.main(args)
    runs = sorted(p.name for p in (out / "runs").glob("fold0_N10_draw0_*.json"))
    assert runs == [f"fold0_N10_draw0_{m}.json" for m in ("contrast", "mrf", "self-training", "supervised", "tv")]
    for m in ("supervised", "tv", "contrast", "mrf", "self-training"):
        assert 0 <= json.loads((out / "runs" / f"fold0_N10_draw0_{m}.json").read_text())["error"] <= 1
    assert json.loads((out / "runs" / "fold0_N10_draw0_tv.json").read_text())["alpha"] > 0
    table = (out / "table2.md").read_text()
    assert "39.98 ± 1.35" in table and "contrast" in table and "self-training" in table
    assert (out / "fig_samples.png").stat().st_size > 0 and (out / "feature_cache").is_dir()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    stanford.main(args[:-1] + ["1"])  # another cache budget: same configuration, nothing retrained
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
