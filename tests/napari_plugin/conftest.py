"""A real napari viewer for the plugin's tests, or a skip that says what is missing.

pytest-xvfb (the napari-test extra) starts Xvfb for the session where Debian's xvfb is installed
(.ci/run installs it and the libraries Qt's xcb platform needs). Whether Qt can open a window is
probed in a subprocess, since a Qt that cannot aborts the whole process instead of raising.
"""

import os
import subprocess
import sys

import pytest

_PROBE = "from qtpy.QtWidgets import QApplication; QApplication([])"


@pytest.fixture(scope="session")
def qt_display():
    """Skips unless napari, pytest-qt and a display (Xvfb) are there and Qt opens a window on it."""
    pytest.importorskip("napari", reason="napari is not installed: pip install -e '.[napari,napari-test]'")
    pytest.importorskip("pytestqt", reason="pytest-qt is not installed: pip install -e '.[napari-test]'")
    if not os.environ.get("DISPLAY"):
        pytest.skip("no display: install Debian's xvfb (apt-get install xvfb), which pytest-xvfb then starts")
    probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines()
        why = "; ".join(line for line in lines if line.startswith("qt.")) or (lines or [f"status {probe.returncode}"])[0]
        pytest.skip(f"Qt cannot open a window on DISPLAY={os.environ['DISPLAY']} ({why}); on Debian install the "
                    "xcb libraries .ci/run lists")


@pytest.fixture
def viewer(qt_display, make_napari_viewer):
    """A napari viewer (closed after the test by napari's fixture)."""
    return make_napari_viewer()
