"""Smoke runs of the experiment scripts (the full experiments are not CI tests)."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))


@pytest.mark.slow
def test_weizmann_quick_writes_table_figures_and_resumes(weizmann_root, tmp_path, capsys):
    import weizmann

    out = tmp_path / "w"
    args = ["--quick", "--data", str(weizmann_root), "--out", str(out), "--n-jobs", "1"]
    weizmann.main(args)
    err = capsys.readouterr().err  # a log, not a terminal: plain lines, no bar frames
    assert "\r" not in err and "stage 1 level 0 SGD: done, 15/15" in err
    assert len(err.splitlines()) <= 4 * 150  # 15 cascade fits and 11 predictions, ~10 stages each
    for name in ("table1.md", "table1.csv", "fig1.png", "fig2.png", "weights.png"):
        assert (out / name).stat().st_size > 0, name
    runs = sorted((out / "runs").glob("N10_draw0_*.json"))
    assert sorted(p.name for p in runs) == sorted(f"N10_draw0_{m}.json" for m in weizmann.COLUMNS)
    results = {p.name: json.loads(p.read_text()) for p in runs}
    assert all(0 <= r["error"] <= 1 and 0 <= r["foreground"] <= 1 for r in results.values())
    weights = json.loads((out / "runs" / "N10_weights.json").read_text())
    assert weights["tv"] in (0.1, 0.3) and weights["l2"] in (1e-4, 1e-3)  # chosen among --quick's candidates
    assert results["N10_draw0_mrf.json"]["weight"] == weights["mrf"]
    table = (out / "table1.md").read_text()
    assert "23.81 ± 1.50" in table and "recommended + MRF" in table  # the paper's number beside ours
    # A second call finds every result cached and retrains nothing.
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    weizmann.main(args)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    # Another configuration in the same folder is refused rather than mixed in.
    with pytest.raises(SystemExit, match="another configuration"):
        weizmann.main(args + ["--alpha", "0.5"])
    weizmann.main(args + ["--trials", "1", "--sizes", "10"])  # result-neutral settings may differ


def test_weizmann_draws_out_of_range_is_refused_before_any_work(tmp_path):
    import weizmann

    with pytest.raises(SystemExit, match="--draws must be in 0..4"):
        weizmann.main(["--draws", "4,5", "--out", str(tmp_path / "w"), "--data", str(tmp_path / "absent")])
    assert not (tmp_path / "w").exists()
