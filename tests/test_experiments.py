"""Smoke runs of the experiment scripts (the full experiments are not CI tests)."""

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.data
def test_chm_on_real_horses_beats_the_all_background_map(weizmann, majority_error):
    """A CHM trained on 16 Weizmann horses with 50 labelled pixels each segments 16 test horses
    clearly better than the best constant map of those very test pixels (all background: 24.0 %).
    Measured (test horses 1-16, draws/seeds 0-5): 17.4-18.4 % (margins 5.6-6.8 points); on test
    horses 17-32 (all background 25.3 %): 18.5-20.3 % (margins 5.0-6.8). ~3 s."""
    from chm import CHM
    from chm.datasets import sample_sparse_labels
    from chm.metrics import pixel_error

    labels = sample_sparse_labels(weizmann.train_masks[:16], 50, np.random.default_rng([0, 50, 0]))
    model = CHM(levels=2, features=("haar", "hog"), progress=False, random_state=0)
    model.fit(weizmann.train_images[:16], labels)
    test_x, test_y = weizmann.test_images[:16], weizmann.test_masks[:16]
    error, trivial = pixel_error(model.predict(test_x), test_y), majority_error(test_y)
    assert error < trivial - 0.03, (error, trivial)


@pytest.mark.slow
def test_weizmann_quick_writes_table_figures_and_resumes(weizmann_root, tmp_path, capsys, monkeypatch):
    """The plumbing of the Table 1 driver. Not an accuracy check: --quick's models (8 images, the
    haar/hog/intensity bank) do *worse* than the all-background map of their 8 test horses (measured:
    41 % against 20.7 %; the intensity stencils do not carry over from these 8 training images to
    those test images), so the numbers here are only bounded; accuracy on real horses is
    test_chm_on_real_horses_beats_the_all_background_map."""
    from experiments import claims, weizmann

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
    assert all(r["clicks"] == "uniform" and 0 <= r["iou"] <= 1 for r in results.values())
    weights = json.loads((out / "runs" / "N10_weights.json").read_text())
    assert weights["tv"] in (0.1, 0.3) and weights["l2"] in (1e-4, 1e-3)  # chosen among --quick's candidates
    assert results["N10_draw0_mrf.json"]["weight"] == weights["mrf"]
    # --quick: 2-fold cross-validation over its 8 training images, every candidate on the same folds
    assert weights["folds"] == 2 and weights["n_labels"] == 80 and set(weights["std_errors"]) == set(weights["scores"])
    assert len({e["splits"] for m in ("tv", "l2") for e in weights["memo"][m].values()}) == 1
    table = (out / "table1.md").read_text()
    assert "23.81 ± 1.50" in table and "recommended + MRF" in table  # the paper's number beside ours
    assert "uniform clicks" in table and "Foreground IoU" in table and "2-fold cross-validation" in table
    # A second call finds every result cached and retrains nothing.
    stamps = {p: p.stat().st_mtime_ns for p in runs}
    weizmann.main(args)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    # Another configuration in the same folder is refused rather than mixed in.
    for other in (["--alpha", "0.5"], ["--clicks", "balanced"], ["--folds", "1"]):
        with pytest.raises(SystemExit, match="another configuration"):
            weizmann.main(args + other)
    weizmann.main(args + ["--trials", "1", "--sizes", "10"])  # result-neutral settings may differ
    # A run claimed by another live process is left to it: this one waits, and takes the run over
    # once that process has died without finishing it.
    l2 = out / "runs" / "N10_draw0_l2.json"
    l2.unlink()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        Path(str(l2) + claims.SUFFIX).write_text(f"{socket.gethostname()} {other.pid}")
        monkeypatch.setattr(claims, "POLL", 0.2)
        worker = threading.Thread(target=weizmann.main, args=(args,))
        worker.start()
        time.sleep(3)
        assert worker.is_alive() and not l2.exists()  # waiting, not computing
    finally:
        other.kill()
        other.wait()
    worker.join(timeout=300)
    assert not worker.is_alive() and l2.exists()
    assert not list((out / "runs").glob("*" + claims.SUFFIX))


def test_a_claim_is_exclusive_released_and_taken_over_from_a_dead_process(tmp_path):
    from experiments import claims

    result = tmp_path / "run.json"
    lock = Path(str(result) + claims.SUFFIX)
    with claims.claimed(result) as mine:
        assert mine and lock.exists()
        with claims.claimed(result) as again:  # held (here by this very process): not granted twice
            assert not again
        assert lock.exists()
    assert not lock.exists()
    with pytest.raises(RuntimeError), claims.claimed(result) as mine:
        assert mine
        raise RuntimeError("a failed run")
    assert not lock.exists()  # released on an error too
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{socket.gethostname()} {dead.pid}")
    with claims.claimed(result) as mine:
        assert mine  # its owner is gone
    lock.write_text(f"another-host-{socket.gethostname()} {dead.pid}")
    with claims.claimed(result) as mine:
        assert not mine  # another machine's processes cannot be checked: trusted
    assert lock.exists()


def test_weizmann_draws_out_of_range_is_refused_before_any_work(tmp_path):
    from experiments import weizmann

    with pytest.raises(SystemExit, match="--draws must be in 0..4"):
        weizmann.main(["--draws", "4,5", "--out", str(tmp_path / "w"), "--data", str(tmp_path / "absent")])
    assert not (tmp_path / "w").exists()


def test_a_script_run_as_a_file_runs_as_its_module():
    # python experiments/weizmann.py re-executes itself as python -m experiments.weizmann
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "weizmann.py"), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--alpha" in done.stdout
    failed = subprocess.run([sys.executable, str(ROOT / "experiments" / "weizmann.py"), "--draws", "9"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "--draws must be in 0..4" in failed.stderr  # the module's exit status


def test_no_script_edits_sys_path():
    edits = [f"{p.relative_to(ROOT)}:{i}" for folder in ("experiments", "benchmarks", "docs", "tests")
             for p in sorted((ROOT / folder).rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if line.lstrip().startswith("sys.path")]
    assert not edits, edits


@pytest.mark.slow
def test_screen_scores_variants_on_held_out_training_images_and_resumes(weizmann_root, tmp_path, capsys):
    from experiments import screen

    out = tmp_path / "s"
    args = ["--dataset", "weizmann", "--data", str(weizmann_root), "--images", "10", "--n", "40", "--out", str(out),
            "--base", '{"levels": 1, "features": ["haar", "intensity"], "epochs": 2}', "--betas", "0,4", "--quiet",
            "--variants", "{}", '{"semi_supervised": "tv", "alpha": 0.3}']
    rows = screen.main(args + ["--folds", "2"])  # k-fold: every image scored once, by a model without it
    files = sorted(out.glob("weizmann_chm_N40_draw0_images10_folds2_*.json"))
    assert len(rows) == len(files) == 2
    for r in rows:
        assert 0 <= r["heldout_sparse_error"] <= 1 and r["n_heldout"] == 10 and r["n_fit"] == [5, 5]
        assert r["n_heldout_labels"] == 400 and set(r["heldout_sparse_error_mrf"]) == {"0", "4"}
        assert r["folds"] == 2 and len(r["fold_errors"]) == 2
        assert r["heldout_sparse_error_se"] == pytest.approx(
            (r["heldout_sparse_error"] * (1 - r["heldout_sparse_error"]) / 400) ** 0.5)
    assert "best: " in capsys.readouterr().out
    stamps = {p: p.stat().st_mtime_ns for p in files}
    screen.main(args + ["--folds", "2"])  # every variant is stored: nothing is refitted
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    one = screen.main(args[:-1] + ["--folds", "1"])  # the single held-out fifth: files named as before --folds
    assert one[0]["n_heldout"] == 2 and one[0]["n_fit"] == 8 and one[0]["n_heldout_labels"] == 80
    older = set(out.glob("*.json")) - set(files)
    assert len(older) == 1 and "folds" not in older.pop().name


@pytest.mark.data
def test_screen_records_the_spatial_loss_diagnostics_and_reads_older_results(weizmann_root, tmp_path, capsys):
    """Issue 35's diagnostics per variant: the held-out maps' TV per pixel, their decided class
    fractions, and (a spatial loss only) its share of the gradient norm per classifier; a result
    file of before them is read and printed, not refitted."""
    from experiments import screen

    out = tmp_path / "s"
    args = ["--dataset", "weizmann", "--data", str(weizmann_root), "--images", "5", "--n", "40", "--folds", "2",
            "--out", str(out), "--base", '{"levels": 1, "features": ["haar"], "epochs": 2}', "--quiet",
            "--variants", "{}", '{"semi_supervised": "tv", "alpha": 0.3}']
    supervised, tv = screen.main(args)
    for r in (supervised, tv):
        assert 0 < r["heldout_map_tv"] < 2  # per pixel: each of the two Sobel terms is at most 1
        fractions = r["heldout_class_fractions"]
        assert len(fractions) == 2 and sum(fractions) == pytest.approx(1)
        assert fractions[1] == pytest.approx(r["heldout_foreground"])
    assert "spatial_share" not in supervised
    assert set(tv["spatial_share"]) == {"s1_l0", "s2_l0"} and all(0 < v < 1 for v in tv["spatial_share"].values())
    assert capsys.readouterr().out.count("map TV") == 2
    # a file written before the diagnostics: kept as it is, printed without them
    path = screen.result_path(screen.parse_args(args), "{}", args[args.index("--base") + 1])
    old = {k: v for k, v in json.loads(path.read_text()).items()
           if k not in ("heldout_map_tv", "heldout_class_fractions", "spatial_share")}
    path.write_text(json.dumps(old))
    stamp = path.stat().st_mtime_ns
    assert "heldout_map_tv" not in screen.main(args)[0] and path.stat().st_mtime_ns == stamp
    assert capsys.readouterr().out.count("map TV") == 1


def test_scene_runs_record_clicks_and_iou_and_older_folders_read_as_uniform(tmp_path):
    import numpy as np

    from experiments import scenes

    args = scenes.parse_args(["--out", str(tmp_path / "o")], "")
    assert args.clicks == "uniform" and scenes.default_out(scenes.parse_args([], ""), "stanford") == \
        "results/stanford_convnet"
    assert scenes.default_out(scenes.parse_args(["--clicks", "balanced"], ""), "x") == "results/x_convnet_balanced"
    pred, truth = [np.array([[0, 1, 1, 2]])], [np.array([[0, 1, 0, -1]])]
    s = scenes.scores(pred, truth, 3)  # class 2 only predicted on the unknown pixel: undefined
    assert s["error"] == pytest.approx(1 / 3) and s["class_iou"] == [0.5, 0.5, None]
    assert s["iou"] == pytest.approx(0.5) and s["iou_kind"] == "mean"
    assert scenes.scores(pred, [np.array([[0, 1, 0, 1]])], 3)["class_iou"][2] == 0.0  # predicted, absent: 0
    two = scenes.scores([np.array([[1, 1, 0]])], [np.array([[1, 0, 0]])], 2)
    assert two["iou_kind"] == "foreground" and two["iou"] == pytest.approx(0.5)
    # a folder written before --clicks holds uniform-click runs: resumed by a uniform call only
    out = tmp_path / "o"
    scenes.check_config(args, out)
    config = json.loads((out / "config.json").read_text())
    del config["clicks"]
    (out / "config.json").write_text(json.dumps(config))
    scenes.check_config(args, out)
    with pytest.raises(SystemExit, match="another configuration"):
        scenes.check_config(scenes.parse_args(["--out", str(out), "--clicks", "balanced"], ""), out)


@pytest.mark.data
def test_screen_stanford_bin0_screens_only_fold_0s_test_images(scene_data, tmp_path):
    """``--dataset stanford-bin0`` screens bin 0 (fold 0's test images): none of them is a test
    image of folds 1-4, so their test results stay out of the choice."""
    from chm.datasets import load_stanford_background
    from experiments import screen

    root = scene_data("stanford_background")
    pool = screen.load(screen.parse_args(["--dataset", "stanford-bin0", "--data", root]))
    fold0 = load_stanford_background(root, fold=0, seed=0)
    assert pool.train_names == fold0.test_names and len(pool.train_images) == 143 and not pool.test_images
    others = {n for f in range(1, 5) for n in load_stanford_background(root, fold=f, seed=0).test_names}
    assert not others & set(pool.train_names)
    with pytest.raises(SystemExit, match="keeps no test images"):
        screen.main(["--dataset", "stanford-bin0", "--data", root, "--test", "--quiet"])
    # a K-class screen runs through (K-class models have no threshold_)
    rows = screen.main(["--dataset", "stanford-bin0", "--data", root, "--images", "6", "--n", "20", "--folds", "2",
                        "--base", '{"levels": 1, "features": ["haar"], "epochs": 2}', "--variants", "{}",
                        "--quiet", "--out", str(tmp_path / "s")])
    assert rows[0]["n_heldout"] == 6 and rows[0]["n_heldout_labels"] == 120 and 0 <= rows[0]["heldout_sparse_error"] <= 1
    # the diagnostics of K classes: a fraction per class, the maps' TV summed over the channels
    assert len(rows[0]["heldout_class_fractions"]) == len(pool.classes) and rows[0]["heldout_map_tv"] > 0


def test_plot_screen_draws_a_sweep_with_its_reference_and_refuses_what_it_cannot_plot(tmp_path, capsys):
    from experiments import plot_screen

    def result(name, variant, base, error, **extra):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"variant": variant, "base": base, "n": 10, "heldout_sparse_error": error,
                                    "heldout_sparse_error_se": 0.01, "heldout_map_tv": 0.05,
                                    "heldout_foreground": 0.2, **extra}))
        return str(path)

    files = [result("ref", {}, {}, 0.15),
             result("a1", {"alpha": 1}, {}, 0.12, spatial_share={"s1_l0": 0.2, "s2_l0": 0.4},
                    heldout_sparse_error_calibrated=0.11),
             result("a10", {"alpha": 10}, {}, 0.2),
             result("log1", {"alpha": 1}, {"classifier": "logistic"}, 0.14)]
    rows = plot_screen.main(files + ["--param", "alpha", "--series", "classifier", "--out", str(tmp_path / "p.png")])
    assert (tmp_path / "p.png").stat().st_size > 0
    by = {(r["series"], r["x"]): r for r in rows}
    assert by[(("ldnn",), None)]["error"] == pytest.approx(15)  # {} is the reference at alpha 0
    assert by[(("ldnn",), 1.0)]["share"] == pytest.approx(0.3) and by[(("ldnn",), 1.0)]["calibrated"] == 11
    assert by[(("logistic",), 1.0)]["error"] == pytest.approx(14)
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if line.startswith("classifier=ldnn")]
    assert [line.split()[1] for line in lines] == ["0", "1", "10"]  # the reference first, then by alpha
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="not a result of experiments.screen"):
        plot_screen.main([str(tmp_path / "bad.json"), "--param", "alpha"])
    with pytest.raises(SystemExit, match="nothing to plot against"):
        plot_screen.main([files[0], "--param", "alpha"])
    with pytest.raises(SystemExit, match="is not a number"):
        plot_screen.main([result("s", {"alpha": "x"}, {}, 0.1), "--param", "alpha"])
