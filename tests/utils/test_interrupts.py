"""Ctrl-C, SIGTERM and SIGHUP stop a run promptly: no worker outlives it, finished files stay whole.

Each test starts a real run in a subprocess with two joblib workers, waits until the loky
workers exist, sends the signal, and then checks every process the run had started.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from chm.cli import main
from chm.utils import _signals
from chm.utils._signals import Interrupted, interruptible
from tests.test_cli import TRAIN_OPTS, write_dataset

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table in /proc")


def _table():
    """{pid: (parent pid, state, command line)} of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry.name)] = (int(fields[1]), fields[0], cmd)
    return out


def _descendants(pid):
    table = _table()
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, (ppid, _, _) in table.items() if ppid == parent]
        found += kids
        todo += kids
    return {p: table[p][2] for p in found}


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's bookkeeping is left


def _default_signals():
    # A run started under nohup inherits an ignored SIGHUP, which chm rightly keeps ignoring; the
    # runs here stand for ones started from a terminal or a scheduler, whatever ran the tests.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _start(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_signals)


def _wait_for_workers(proc, n=2, timeout=120):
    """The run's processes once ``n`` loky workers are up (fails if the run ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _descendants(proc.pid)
        if sum("loky" in cmd and "resource_tracker" not in cmd for cmd in kids.values()) >= n:
            return kids
        if proc.poll() is not None:
            pytest.fail(f"the run ended before its workers were seen: {proc.communicate()}")
        time.sleep(0.1)
    for p in [proc.pid, *_descendants(proc.pid)]:
        os.kill(p, signal.SIGKILL)
    pytest.fail("no loky workers appeared")


def _stop(proc, sig, kids):
    """Send ``sig``; returns (exit status, stderr, seconds to exit) after checking no process survives."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        for p in [proc.pid, *kids]:  # leave nothing behind, even when failing
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        pytest.fail(f"the run did not stop within 60 s of {sig.name}")
    seconds = time.monotonic() - t0
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = {p: cmd for p, cmd in kids.items() if _alive(p)}
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors, f"processes outlived the run: {survivors}"
    return proc.returncode, err, seconds


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_train_stopped_during_sgd_leaves_no_worker(tmp_path, sig):
    images, labels = write_dataset(tmp_path, n=4, shape=(48, 60))
    model = tmp_path / "model.npz"
    # Many short epochs: the SGD is still running (workers idle in the pool) when the signal comes.
    proc = _start(["-m", "chm", "train", str(images), str(labels), "-o", str(model), "--levels", "1",
                   "--features", "haar,intensity", "--epochs", "100000", "--n-jobs", "2"], tmp_path)
    kids = _wait_for_workers(proc)
    time.sleep(1.0)
    status, err, seconds = _stop(proc, sig, kids)
    assert status == 128 + sig, err
    assert f"chm: error: interrupted by {sig.name}" in err and "Traceback" not in err
    assert seconds < 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "labels"]  # no model, no temp file


def test_predict_interrupted_keeps_whole_outputs(tmp_path):
    images, labels = write_dataset(tmp_path, n=4)
    model = tmp_path / "model.npz"
    assert main(["train", str(images), str(labels), "-o", str(model), *TRAIN_OPTS]) == 0
    many = tmp_path / "many"
    many.mkdir()
    rng = np.random.default_rng(0)
    for i in range(400):
        iio.imwrite(many / f"m{i:03d}.png", rng.integers(0, 256, (96, 96), dtype=np.uint8))
    out = tmp_path / "out"
    proc = _start(["-m", "chm", "predict", str(model), str(many), "-o", str(out), "--n-jobs", "2"], tmp_path)
    kids = _wait_for_workers(proc)
    while proc.poll() is None and len(list(out.glob("m*.png"))) < 8:  # not the hidden temporary files
        time.sleep(0.05)
    status, err, _ = _stop(proc, signal.SIGINT, kids)  # Ctrl-C
    assert status == 130, err
    written = sorted(out.iterdir())
    assert 8 <= len(written) < 400
    for path in written:  # only whole masks: no temporary or truncated file
        assert path.suffix == ".png" and not path.name.startswith(".")
        assert iio.imread(path).shape == (96, 96)


@pytest.mark.slow
def test_experiment_stopped_leaves_no_worker(weizmann_root, tmp_path):
    out = tmp_path / "w"
    proc = _start([str(ROOT / "experiments" / "weizmann.py"), "--quick", "--data", str(weizmann_root),
                   "--out", str(out), "--n-jobs", "2"], tmp_path)
    kids = _wait_for_workers(proc)
    time.sleep(2.0)
    status, err, seconds = _stop(proc, signal.SIGTERM, kids)
    assert status == 143, err
    assert "weizmann.py: interrupted by SIGTERM; finished results are kept" in err
    assert seconds < 30
    assert not list(out.rglob("*.part"))


def _swallowing_callback(signum):
    """A ctypes callback that receives ``signum``: its Interrupted cannot propagate (numba's JIT
    compiles through such callbacks of llvmlite) and is printed as "Exception ignored"."""
    import ctypes

    return ctypes.CFUNCTYPE(None)(lambda: os.kill(os.getpid(), signum))


def test_stop_lost_in_a_callback_is_raised_again(monkeypatch):
    ran = []
    monkeypatch.setattr(_signals, "_CLEANUPS", [lambda: ran.append("cleanup")])
    lost = _swallowing_callback(signal.SIGTERM)
    t0 = time.monotonic()
    with pytest.raises(Interrupted) as info:
        with interruptible():
            lost()
            while time.monotonic() - t0 < 5:  # the run goes on as if nothing had happened
                time.sleep(0.01)
    assert info.value.signum == signal.SIGTERM and time.monotonic() - t0 < 2
    assert ran == ["cleanup"]


def test_error_after_a_lost_stop_is_the_stop(monkeypatch):
    # numba, its compilation cut inside a callback, fails with "no compiled object yet": the run
    # reports the stop (exit status 143), not that error (status 1).
    ran = []
    monkeypatch.setattr(_signals, "_CLEANUPS", [lambda: ran.append("cleanup")])
    lost = _swallowing_callback(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        with interruptible():
            lost()
            raise RuntimeError("no compiled object yet")
    assert info.value.signum == signal.SIGTERM and isinstance(info.value.__cause__, RuntimeError)
    assert ran == ["cleanup"]
    time.sleep(3 * _signals.RETRY_DELAY)  # the block is over: the stop is not raised again here


def test_errors_without_a_stop_pass_unchanged(monkeypatch):
    ran = []
    monkeypatch.setattr(_signals, "_CLEANUPS", [lambda: ran.append("cleanup")])
    with pytest.raises(RuntimeError):
        with interruptible():
            raise RuntimeError("a plain error")
    assert ran == []


def test_feature_cache_registers_its_cleanup(tmp_path, monkeypatch):
    from chm.cascade.cache import FeatureCache, remove_orphans

    monkeypatch.setattr(_signals, "_CLEANUPS", [])
    FeatureCache(tmp_path / "a")
    FeatureCache(tmp_path / "b")
    assert _signals._CLEANUPS == [remove_orphans]  # once, however many caches
