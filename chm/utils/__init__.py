"""Helpers for scripts built on chm: :func:`run_main` runs a script's ``main`` so that Ctrl-C,
SIGTERM and SIGHUP stop it cleanly (no orphaned workers, finished results kept),
:func:`interruptible` does the same for a block, and :func:`process_alive` says whether a process
(e.g. the writer of a half-written file) still runs."""

from ._process import process_alive
from ._signals import Interrupted, exit_status, interruptible, run_main

__all__ = ["process_alive", "Interrupted", "exit_status", "interruptible", "run_main"]
