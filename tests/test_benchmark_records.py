"""The README's speed table is rebuilt from the benchmark's JSON records (benchmarks.records)."""

import json

import pytest

pytest.importorskip("psutil")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def run():
    from benchmarks import records

    return records


def _record(key, fit, peer_fit):
    return {"key": key, "dataset": "Weizmann horses", "fold": None, "semi_supervised": None, "features": [],
            "date": "2026-12-01", "commit": "abc1234", "machine": "a CPU, 2 cores, 24 GiB", "n_jobs": 2,
            "n_train": 164, "n_test": 164, "n_labels": 10, "latency_shape": [210, 260],
            "ours": {"fit": fit, "predict": 16.4, "latency": 0.05, "error": 0.15, "fit_rss": 1, "predict_rss": 1},
            "peer": {"fit": peer_fit, "predict": 15.0, "error": 0.20}}


def test_readme_block_is_replaced_and_the_rest_kept(run, tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    (records / "weizmann-auto.json").write_text(json.dumps(_record("weizmann-auto", 100.0, 5.0)))
    (records / "weizmann-supervised.json").write_text(json.dumps(_record("weizmann-supervised", 23.6, 3.0)))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{run.README_BEGIN}\nold table\n{run.README_END}\nafter\n")
    run.update_readme(readme, records)
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith(f"{run.README_END}\nafter\n")
    assert "old table" not in text
    rows = [line for line in text.splitlines() if line.startswith("| Weizmann")]
    assert len(rows) == 2
    # the supervised record comes first; (23.6 + 16.4) / (3.0 + 15.0) = 2.22x the peer, error 0.75x
    assert "40.0 / 18.0 s (**2.22×**)" in rows[0] and "(0.75×)" in rows[0] and "50 ms" in rows[0]
    assert "116.4 / 20.0 s (**5.82×**)" in rows[1]


def test_readme_without_the_block_is_left_alone(run, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    with pytest.raises(SystemExit, match="no speed-table block"):
        run.update_readme(readme, tmp_path)
    assert readme.read_text() == "# no table here\n"
