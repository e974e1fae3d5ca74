"""Stop cleanly on Ctrl-C, SIGTERM and SIGHUP: no orphaned workers, finished results kept.

Python's default action for SIGTERM and SIGHUP ends the process at once, without unwinding:
joblib's loky workers and resource trackers are then orphaned and keep running (measured: a
killed ``experiments/weizmann.py`` left four processes alive for 44 minutes). Inside
:func:`interruptible` these signals raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the
main thread, like Ctrl-C, so ``finally`` clauses run, joblib aborts the running batch, and the
reusable worker pool is shut down before the exception goes on. A signal arriving during a
long numba call takes effect when that call returns (one SGD epoch at most).

Python runs a signal's handler between any two bytecodes of the main thread, also inside a
callback whose exceptions cannot propagate (a ctypes callback, ``__del__``): there the
:class:`Interrupted` is printed as "Exception ignored" and lost. numba compiles through such a
callback (llvmlite's object cache), so a stop during a first run's JIT compilation could be
lost: the run then died of numba's "no compiled object yet" ``RuntimeError`` with status 1
instead of 143, or went on as if never stopped (3 of about 55 runs of
``test_experiment_stopped_leaves_no_worker`` with a cold numba cache). So a stop is remembered:
a lost :class:`Interrupted` is raised again shortly after, outside the callback, and any other
exception that ends the block after a stop is reported as that stop (:class:`Interrupted`
raised from it). Once the block is stopping, further signals are ignored until it has ended.

Lower layers clean up after a stop through :func:`on_interrupt` (the feature cache removes the
temporary files of the workers a stop killed) without this module importing them.
"""

import _thread
import contextlib
import signal
import sys
import threading
from pathlib import Path

__all__ = ["Interrupted", "interruptible", "exit_status", "on_interrupt", "run_main", "stop_workers"]

_CLEANUPS = []  # on_interrupt's functions, in registration order

#: Seconds after a lost Interrupted (raised where exceptions cannot propagate) before it is raised
#: again: callbacks take microseconds, so the main thread has left the callback by then.
RETRY_DELAY = 0.05

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by a stopping signal; ``signum`` says which."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def on_interrupt(fn):
    """Have :func:`interruptible` call ``fn()`` after a stop, once the workers are stopped.

    For cleanups of lower layers (modules this one must not import). Functions run in the order
    they were first registered; registering one again does nothing. Returns ``fn``.
    """
    if fn not in _CLEANUPS:
        _CLEANUPS.append(fn)
    return fn


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
    ``KeyboardInterrupt`` the worker pool is stopped, then the :func:`on_interrupt` cleanups run.
    Signals the parent set to be ignored (``nohup``, background jobs) stay ignored; outside the
    main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stop = _Stop()
    previous = {}
    for sig in _SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, stop.handler)
    previous_hook, sys.unraisablehook = sys.unraisablehook, stop.unraisable_hook(sys.unraisablehook)
    try:
        yield
    except KeyboardInterrupt:
        stop.done = True
        _after_stop()
        raise
    except BaseException as exc:
        if stop.signum is None:
            raise
        stop.done = True  # a stop whose Interrupted was lost, then something else failed
        _after_stop()
        raise Interrupted(stop.signum) from exc
    finally:
        stop.done = True
        if stop.retry is not None:
            stop.retry.cancel()
        sys.unraisablehook = previous_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Stop:
    """One :func:`interruptible` block's stop: the signal received, and a lost one raised again."""

    def __init__(self):
        self.signum = None  # the first stopping signal received
        self.done = False  # the block is ending: nothing more to raise
        self.retry = None  # the timer raising a lost Interrupted again

    def handler(self, signum, frame):
        if self.done:
            return
        if self.signum is None:
            self.signum = signum
        raise Interrupted(signum)

    def unraisable_hook(self, previous):
        def hook(unraisable):
            if not isinstance(unraisable.exc_value, Interrupted):
                return previous(unraisable)
            if self.done:
                return
            # Lost where exceptions cannot propagate: signal again from another thread, so the
            # handler runs in the main thread once it has left the callback.
            self.retry = threading.Timer(RETRY_DELAY, self._again, (unraisable.exc_value.signum,))
            self.retry.daemon = True
            self.retry.start()

        return hook

    def _again(self, signum):
        if not self.done:
            _thread.interrupt_main(signum)


def _after_stop():
    stop_workers()
    for fn in list(_CLEANUPS):
        fn()


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
