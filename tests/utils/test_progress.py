"""Progress output: bars on a terminal (or when forced), a few plain lines in a log file."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from chm import CHM
from chm.utils import _progress
from chm.utils._progress import bar

from chm.datasets import make_shapes

TINY = dict(levels=1, stages=2, features=("haar", "intensity"), context_radius=3,
            classifier_params={"n_groups": 2, "n_nodes": 2}, epochs=3, random_state=0)


def test_plain_lines_when_stderr_is_not_a_terminal(capsys):
    assert list(bar(range(10), desc="work")) == list(range(10))
    err = capsys.readouterr().err
    assert re.fullmatch(r"work: done, 10/10 in \d+\.\d s\n", err)


def test_quarter_lines_only_for_long_stages(capsys, monkeypatch):
    monkeypatch.setattr(_progress, "LINE_INTERVAL", 0.0)  # every stage counts as long
    with bar(total=100, desc="sgd") as pbar:
        for _ in range(100):
            pbar.update(1)
            pbar.set_postfix(rms="0.100")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" after")[0].split(" in ")[0] for line in lines] == [
        "sgd: 25/100", "sgd: 50/100", "sgd: 75/100", "sgd: done, 100/100"]
    assert all(line.endswith("(rms=0.100)") for line in lines)


def test_stopped_stage_says_so(capsys):
    with pytest.raises(KeyboardInterrupt):
        for i in bar(range(10), desc="predict"):
            if i == 2:
                raise KeyboardInterrupt
    assert capsys.readouterr().err.startswith("predict: stopped at 3/10 in ")


def test_forced_bars_and_silence(capsys):
    list(bar(range(5), desc="forced", enabled=True))
    assert "\r" in capsys.readouterr().err  # a tqdm bar, although stderr is captured
    list(bar(range(5), desc="off", enabled=False))
    assert capsys.readouterr().err == ""


def test_byte_counts_are_readable(capsys):
    with bar(total=3 * 2**20, desc="download", unit="B", unit_scale=True, unit_divisor=1024) as pbar:
        pbar.update(3 * 2**20)
    assert "3.00MB/3.00MB" in capsys.readouterr().err


def test_chm_fit_and_predict_log_a_few_lines_per_stage(capsys):
    rng = np.random.default_rng(0)
    images, masks = make_shapes(3, shape=(24, 30), rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.2, m, -1).astype(np.int8) for m in masks]
    model = CHM(**TINY).fit(images, labels)  # progress=None: stderr is captured, so lines
    model.predict_proba(images)
    err = capsys.readouterr().err
    assert "\r" not in err
    stages = ["features", "stage 1 level 0 SGD", "stage 1 level 0 contexts", "stage 1 level 1 SGD",
              "stage 1 level 1 contexts", "stage 2 level 0 SGD", "predict"]
    assert [line.split(":")[0] for line in err.splitlines()] == stages  # one line each: short stages
    assert all(": done, " in line for line in err.splitlines())
    CHM(**TINY, progress=False).fit(images, labels)
    assert capsys.readouterr().err == ""


def test_a_callable_hears_every_stage_and_can_stop_the_fit(tmp_path):
    rng = np.random.default_rng(0)
    images, masks = make_shapes(2, shape=(24, 30), rng=rng)
    labels = [np.where(rng.random(m.shape) < 0.2, m, -1).astype(np.int8) for m in masks]
    calls = []
    model = CHM(**TINY, progress=lambda *a: calls.append(a)).fit(images, labels)
    assert calls[0] == ("features", 0, 2) and ("features", 2, 2) in calls
    assert ("stage 2 level 0 SGD", TINY["epochs"], TINY["epochs"]) in calls
    model.save(tmp_path / "m.npz")  # the callback is not saved

    class Stop(Exception):
        pass

    def stop_at_sgd(desc, done, total):
        if desc.endswith("SGD") and done == 1:
            raise Stop

    before = model.cascade_
    with pytest.raises(Stop):
        model.set_params(progress=stop_at_sgd).fit(images, labels)
    assert model.cascade_ is before  # a stopped fit leaves the fitted model as it was


def test_a_stopped_callable_bar_closes_its_generator():
    closed = []

    def gen():
        try:
            yield from range(5)
        finally:
            closed.append(True)

    def stop(desc, done, total):
        if done == 2:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        list(bar(gen(), total=5, desc="work", enabled=stop))
    assert closed == [True]
