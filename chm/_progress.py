"""Progress bars (tqdm) that the ``progress`` parameter of every long loop can silence."""

from tqdm.auto import tqdm


def bar(iterable=None, total=None, desc=None, enabled=True, leave=False):
    """A tqdm bar on stderr, or a silent pass-through when ``enabled`` is False."""
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=leave, dynamic_ncols=True)
