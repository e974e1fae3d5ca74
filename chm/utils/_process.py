"""Whether a process still runs: the feature cache and the experiments' claims both ask it of a
writer that may have died."""

import os

__all__ = ["process_alive"]


def process_alive(pid):
    """Whether process ``pid`` still runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: trust os.kill
