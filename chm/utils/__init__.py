"""Helpers for scripts built on chm: :func:`run_main` runs a script's ``main`` so that Ctrl-C,
SIGTERM and SIGHUP stop it cleanly (no orphaned workers, finished results kept), and
:func:`interruptible` does the same for a block."""

from ._signals import Interrupted, exit_status, interruptible, run_main

__all__ = ["Interrupted", "exit_status", "interruptible", "run_main"]
