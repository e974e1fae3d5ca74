"""Work shared by several processes on the same ``--out``: claim a result before computing it.

An experiment's results are files (one JSON per run); a process that starts a run first creates
``<result>.claim`` atomically (``O_CREAT | O_EXCL``), holding its host and pid, and removes it when
the run ends, finished or not. Another process skips a claimed run and comes back to it later, so
the same command started twice splits the work instead of doing it twice. A claim left by a
process that died without removing it (``kill -9``, power cut) is taken over when its pid is no
longer running on this host; a claim from another host is trusted until its file is deleted.
"""

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from chm.utils import process_alive

__all__ = ["claimed", "wait"]

SUFFIX = ".claim"
POLL = 10.0  # seconds between looks at the runs other processes hold


def _owner():
    return f"{socket.gethostname()} {os.getpid()}"


def _stale(lock):
    """Whether the claim ``lock`` belongs to a process of this host that no longer runs."""
    try:
        host, pid = lock.read_text().rsplit(" ", 1)
    except (OSError, ValueError):
        return False  # being written this instant (or unreadable): not ours to judge
    return host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid))


def _take(lock):
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _stale(lock):
                return False
            lock.unlink(missing_ok=True)  # a dead process's claim: try once more to take it
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(_owner())
        return True
    return False


@contextmanager
def claimed(result):
    """Yield True when this process holds the claim on ``result`` (a path) for the block's duration.

    False means another live process holds it: skip the work and look again later. The claim is
    released when the block ends, also on an exception or Ctrl-C.
    """
    lock = Path(str(result) + SUFFIX)
    mine = _take(lock)
    try:
        yield mine
    finally:
        if mine:
            lock.unlink(missing_ok=True)


def wait(pending, say=print):
    """Call ``pending()`` until it returns an empty list, sleeping :data:`POLL` s between calls.

    ``pending`` returns the results still missing (computed by other processes, or left for
    this one to retry: it should do any work it can claim before returning). Says once what it
    waits for.
    """
    told = False
    while True:
        left = pending()
        if not left:
            return
        if not told:
            say(f"waiting for {len(left)} run(s) claimed by other processes sharing this --out "
                f"(e.g. {Path(left[0]).name}; delete stale *{SUFFIX} files if none is running)", flush=True)
            told = True
        time.sleep(POLL)
