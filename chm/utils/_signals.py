"""Stop cleanly on Ctrl-C, SIGTERM and SIGHUP: no orphaned workers, finished results kept.

Python's default action for SIGTERM and SIGHUP ends the process at once, without unwinding:
joblib's loky workers and resource trackers are then orphaned and keep running (measured: a
killed ``experiments/weizmann.py`` left four processes alive for 44 minutes). Inside
:func:`interruptible` these signals raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the
main thread, like Ctrl-C, so ``finally`` clauses run, joblib aborts the running batch, and the
reusable worker pool is shut down before the exception goes on. A signal arriving during a
long numba call takes effect when that call returns (one SGD epoch at most).
"""

import contextlib
import signal
import sys
import threading
from pathlib import Path

__all__ = ["Interrupted", "interruptible", "exit_status", "run_main", "stop_workers"]

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by a stopping signal; ``signum`` says which."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum, frame):
    raise Interrupted(signum)


def stop_workers():
    """Shut down joblib's reusable loky worker pool now, killing busy workers too.

    joblib starts a new pool when it is next needed, so this is safe at any time.
    """
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)  # loky's module-level pool, if any
    if executor is not None:
        executor.shutdown(wait=False, kill_workers=True)


@contextlib.contextmanager
def interruptible():
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`; on any
    ``KeyboardInterrupt`` the worker pool is stopped. Signals the parent set to be ignored
    (``nohup``, background jobs) stay ignored; outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in _SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, _raise)
    try:
        yield
    except KeyboardInterrupt:
        stop_workers()
        from ..cascade.cache import remove_orphans

        remove_orphans()  # temp files of the feature-cache entries the killed workers were writing
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_status(exc):
    """The shell's status for a process stopped by ``exc``: 128 + signal number (130 for Ctrl-C)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def run_main(main, argv=None):
    """Run a script's ``main(argv)`` under :func:`interruptible`; on a stop, say so in one line
    and exit with :func:`exit_status` (results written so far stay: scripts write atomically)."""
    try:
        with interruptible():
            return main(argv)
    except KeyboardInterrupt as exc:
        name = signal.Signals(getattr(exc, "signum", signal.SIGINT)).name
        print(f"{Path(sys.argv[0]).name}: interrupted by {name}; finished results are kept", file=sys.stderr)
        sys.exit(exit_status(exc))
