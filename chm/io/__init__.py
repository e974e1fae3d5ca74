"""Files in and out: ``images`` (reading and the one image contract of every estimator),
``files`` (image folders, label files, atomic writes), ``stacks`` (TIFF stacks of slices and of
labels) and ``persistence`` (model files).

The readers and writers a user needs are here too: :func:`read_image`, :func:`read_labels`,
:func:`read_stack`, :func:`read_label_stack`, :func:`write_stack`, :func:`labelled_slices`.
"""

from .files import read_labels
from .images import read_image
from .stacks import labelled_slices, read_label_stack, read_stack, write_stack

__all__ = ["labelled_slices", "read_image", "read_label_stack", "read_labels", "read_stack", "write_stack"]
