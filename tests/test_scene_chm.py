"""Smoke run of experiments.stanford with the K-class colour CHM (--quick); no torch needed."""

import json

import pytest


@pytest.mark.data
def test_k_class_chm_beats_the_majority_class_on_stanford_test_images(scene_data, majority_error):
    """A K-class colour CHM trained on 8 Stanford Background images (50 labelled pixels each) labels
    8 test images of the fold clearly better than the best constant map of those very pixels.
    Measured (fold 0 with fold seeds 0-3): 46.2-48.7 % against 66.7-76.3 % for the most common class
    (margins 18-30 points). ~7 s."""
    import numpy as np

    from chm import CHM
    from chm.datasets import load_stanford_background, sample_sparse_labels
    from chm.metrics import pixel_error

    data = load_stanford_background(scene_data("stanford_background"), fold=0, seed=0)
    labels = sample_sparse_labels(data.train_masks[:8], 50, np.random.default_rng([0, 50, 0]), ignore=-1)
    model = CHM(levels=1, stages=2, epochs=15, n_classes=len(data.classes), progress=False, random_state=0)
    model.fit(data.train_images[:8], labels)
    test_x, test_y = data.test_images[:8], data.test_masks[:8]
    error = pixel_error(model.predict(test_x), test_y, ignore=-1)
    trivial = majority_error(test_y, ignore=-1)
    assert error < trivial - 0.10, (error, trivial)


@pytest.mark.slow
@pytest.mark.data
def test_stanford_quick_chm_all_columns(tmp_path, scene_data):
    """The plumbing of every column. Not an accuracy check: --quick's CHM (epochs=3, 8 images x 10
    labels) is a one-class model (supervised 75.3 %, self-training 75.4 % = "building" everywhere,
    against 66.5 % for the most common class of its 2 test images); with 15 epochs it beats that
    class on fold seed 0 but not on seeds 1 and 2 (2 test images are too few to bound). Accuracy:
    test_k_class_chm_beats_the_majority_class_on_stanford_test_images."""
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
