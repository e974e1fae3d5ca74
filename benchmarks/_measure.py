"""Measuring helpers of the benchmarks: peak memory and CPU time of this process and its workers.

:class:`PeakRSS` samples the summed RSS of the process tree during a block (an upper bound: pages
shared between processes count once per process); :func:`peak_rss_gb` reads the kernel's high-water
marks instead (no thread, but the largest single process, not the sum); :func:`cpu_seconds` adds
the CPU time of live joblib workers to that of finished children.
"""

import gc
import os
import resource
import threading

import psutil

__all__ = ["PeakRSS", "cpu_seconds", "gb", "peak_rss_gb"]


class PeakRSS:
    """Context manager: max over the block of RSS(this process + all children), sampled every 0.2 s;
    ``start`` is that sum when the block begins."""

    def __init__(self, interval=0.2):
        self.interval = interval
        self._proc = psutil.Process(os.getpid())
        self.start = self.peak = 0

    def _sample(self):
        total = 0
        try:
            total += self._proc.memory_info().rss
        except psutil.Error:
            pass
        for child in self._proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # a worker that just exited
                pass
        self.peak = max(self.peak, total)
        return total

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        gc.collect()
        self.start = self.peak = self._sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        return False


def peak_rss_gb():
    """The largest peak RSS (GiB) of this process or any finished child, from ``getrusage``."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024 ** 2  # ru_maxrss is in KiB on Linux


def cpu_seconds():
    """CPU seconds (user + system) of this process, its finished children and its live workers."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + ru.ru_utime + ru.ru_stime


def gb(nbytes):
    """``nbytes`` as GiB, for tables."""
    return f"{nbytes / 1024 ** 3:.2f} GB"
