"""Progress output of long loops: a tqdm bar on a terminal, a few plain lines in a log file.

Every ``progress`` parameter and option takes three values:

* ``None`` (the default): a bar when stderr is a terminal; otherwise a plain line when a stage
  ends, and one at each quarter of a stage that has run for :data:`LINE_INTERVAL` seconds since
  the last line -- at most four lines per stage, never a carriage return;
* ``True``: a bar, even when stderr is a file or a pipe;
* ``False``: nothing;
* a callable ``fn(desc, done, total)``: called when a stage starts (``done`` 0) and after each of
  its steps (``total`` may be None), e.g. to drive a GUI's progress bar. An exception it raises
  stops the work (a Cancel button); the stage's iterable is closed, so joblib drops its pending jobs.
"""

import sys
import time

from tqdm.auto import tqdm

__all__ = ["bar", "wants_bar"]

#: Seconds a stage must have run since its last plain line before it reports a quarter.
LINE_INTERVAL = 30.0


def wants_bar(progress):
    """True when ``progress`` asks for a tqdm bar (see the module docstring)."""
    if progress is None:
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):  # no stderr, or a closed one
            return False
    return bool(progress)


def bar(iterable=None, total=None, desc=None, enabled=None, leave=False, **tqdm_kwargs):
    """A progress reporter for ``iterable`` or ``total`` steps, chosen by ``enabled`` (a ``progress`` value).

    Returns a tqdm bar, a :class:`_Calls` or a :class:`_Lines`, with the same small interface: iteration,
    ``update(n)``, ``set_postfix(**values)``, ``close()`` and use as a context manager.
    ``tqdm_kwargs`` (e.g. ``unit="B", unit_scale=True``) go to the bar; the lines use ``unit``
    and ``unit_scale`` too.
    """
    if callable(enabled):
        return _Calls(iterable, total, desc, enabled)
    if enabled is False or wants_bar(enabled):
        return tqdm(iterable, total=total, desc=desc, disable=enabled is False, leave=leave, dynamic_ncols=True,
                    **tqdm_kwargs)
    return _Lines(iterable, total, desc, tqdm_kwargs.get("unit", "it"), tqdm_kwargs.get("unit_scale", False))


class _Lines:
    """Plain progress lines on stderr (resolved at each write, so redirections are honoured)."""

    def __init__(self, iterable, total, desc, unit, unit_scale):
        self.iterable = iterable
        self.total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
        self.desc = desc or "progress"
        self.unit, self.unit_scale = unit, unit_scale
        self.n = 0
        self.postfix = ""
        self.start = self.last = time.perf_counter()
        self.quarter = 0  # quarters of ``total`` already reported
        self.closed = False

    def __iter__(self):
        try:
            for item in self.iterable:
                self.update(1)  # counted when produced: a consumer may stop pulling after the last one
                yield item
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, **values):
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def _count(self, n):
        if self.unit_scale:
            return tqdm.format_sizeof(n, self.unit, 1024 if self.unit == "B" else 1000)
        return f"{n} {self.unit}" if self.unit != "it" else str(n)

    def _write(self, text):
        tail = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.desc}: {text}{tail}", file=sys.stderr, flush=True)

    def update(self, n=1):
        self.n += n
        if not self.total:
            return
        quarter = min(3, 4 * self.n // self.total)
        now = time.perf_counter()
        if quarter > self.quarter and now - self.last >= LINE_INTERVAL:
            self.quarter = quarter
            self.last = now
            self._write(f"{self._count(self.n)}/{self._count(self.total)} after {now - self.start:.0f} s")

    def close(self):
        if self.closed:
            return
        self.closed = True
        count = self._count(self.n) + (f"/{self._count(self.total)}" if self.total else "")
        what = "stopped at" if self.total and self.n < self.total else "done,"
        self._write(f"{what} {count} in {time.perf_counter() - self.start:.1f} s")


class _Calls:
    """Progress as calls of ``fn(desc, done, total)``: when the stage starts and after each step."""

    def __init__(self, iterable, total, desc, fn):
        self.iterable = iterable
        self.total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
        self.desc = desc or "progress"
        self.fn = fn
        self.n = 0
        fn(self.desc, 0, self.total)

    def __iter__(self):
        try:
            for item in self.iterable:
                self.update(1)  # counted when produced, as by _Lines
                yield item
        finally:
            close = getattr(self.iterable, "close", None)  # a stop: joblib's generator drops pending jobs
            if close is not None:
                close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, **values):
        pass

    def update(self, n=1):
        self.n += n
        self.fn(self.desc, self.n, self.total)

    def close(self):
        pass
