"""TIFF stacks: a ``(Z, H, W)`` or ``(Z, H, W, 3)`` TIFF file is Z slices, each an image as chm takes it.

The estimators take lists of 2-D images, so a stack enters them as the list of its slices,
``list(stack)``: :meth:`chm.CHM.predict` then predicts the slices in parallel (``n_jobs``) with
one model, and :meth:`chm.CHM.fit` trains on them. A label stack has the image stack's shape and
the label files' convention (0 = unlabelled, k + 1 = class k, :mod:`chm.io.files`); its slices
without any label are left out of training (:func:`labelled_slices`).

Stacks are read and written with tifffile, which knows a file's axes: the samples of an RGB
page are colour, every other axis besides the image's rows and columns is the slice axis, so an
(H, W, 3) colour page is never taken for three slices, nor three pages for a colour image.
"""

import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .files import labels_from_values, read_labels, write_atomic
from .images import check_image

__all__ = ["STACK_SUFFIXES", "is_stack_file", "labelled_slices", "read_label_stack", "read_stack", "write_stack"]

logger = logging.getLogger(__name__)

#: Extensions (lower case) of the files that may hold a stack.
STACK_SUFFIXES = (".tif", ".tiff")

_IMAGE_AXES = "YXS"  # tifffile's rows, columns and samples (colour) of a page


@contextmanager
def _tifffile_messages(messages):
    """Collect what tifffile logs (it logs rather than raises some damage, e.g. a page offset past
    the end of the file) instead of letting it reach the user's stderr as bare lines."""
    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect(logging.WARNING)
    tiff_logger = logging.getLogger("tifffile")
    tiff_logger.addHandler(handler)
    try:
        yield
    finally:
        tiff_logger.removeHandler(handler)


def _tiff_series(path, what, read=True):
    """``(data, axes)`` of a TIFF file's first series (tifffile's axis letters; data None unless
    ``read``), every failure a FileNotFoundError / ValueError naming the file."""
    import tifffile

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: '{path}'")
    messages = []
    try:
        with _tifffile_messages(messages), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data, axes = (series.asarray() if read else None), series.axes
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, IndexError, ... on damaged files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if messages:  # what tifffile logged says more than e.g. an IndexError
            reason = "corrupt or truncated file (" + re.sub(r"^<[^>]*>\s*", "", messages[0]) + ")"
        raise ValueError(f"cannot read {what} '{path}': {reason}") from exc
    if read and data.size == 0:
        raise ValueError(f"cannot read {what} '{path}': it holds no pixels (shape {data.shape})")
    return data, axes


def _slice_axis(axes, shape, path, what):
    """The position of the slice axis in ``axes`` (None for a 2-D file); raises if there are several."""
    others = [i for i, a in enumerate(axes) if a not in _IMAGE_AXES]
    if len(others) > 1:
        raise ValueError(f"cannot read {what} '{path}': it has axes {axes} of shape {shape}, but a stack has one "
                         "axis of slices (Z, H, W) or (Z, H, W, 3); save one channel or time point per file")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"cannot read {what} '{path}': no image rows and columns in its axes {axes}")
    return others[0] if others else None


def _as_zyxs(data, axes, path, what):
    """The data as (Z, H, W, S): Z = 1 for a 2-D file, S the samples per pixel (1 without)."""
    z = _slice_axis(axes, data.shape, path, what)
    if "S" not in axes:
        data, axes = data[..., None], axes + "S"
    if z is None:
        data, axes = data[None], "Z" + axes
    order = [axes.index(a) for a in ("Z", "Y", "X", "S")] if z is None else \
        [z] + [axes.index(a) for a in ("Y", "X", "S")]
    return np.transpose(data, order)


def is_stack_file(path):
    """Whether ``path`` is a TIFF file with a slice axis (pages, Z, time, ...), even of one slice.

    Reads only the file's header and page descriptions. Other files, and TIFFs of a single
    (H, W) or (H, W, 3) image, are 2-D images: :func:`chm.io.images.read_image` reads them.

    Raises
    ------
    FileNotFoundError, ValueError
        A TIFF file that does not exist or cannot be read; the message names the file.
    """
    if Path(path).suffix.lower() not in STACK_SUFFIXES:
        return False
    _, axes = _tiff_series(path, "image", read=False)
    return any(a not in _IMAGE_AXES for a in axes)


def read_stack(path):
    """Read a TIFF stack as an array of slices.

    Parameters
    ----------
    path : str or os.PathLike
        A TIFF file (tifffile): pages, or any single axis besides the image's rows, columns and
        colour samples (ImageJ's Z, T or C, tifffile's shaped files), are the slices. A 2-D TIFF
        is a stack of one slice.

    Returns
    -------
    ndarray, shape (Z, H, W) gray or (Z, H, W, 3) colour
        The pixels as stored (uint8, uint16, bool or float in [0, 1]), each slice an image as
        :meth:`chm.CHM.predict` takes it: pass ``list(stack)``. As :func:`chm.io.images.read_image`:
        an alpha channel is dropped, gray + alpha keeps the gray, and a colour stack whose
        three channels are equal everywhere is gray.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        A corrupt or truncated file, not a TIFF, more than one slice axis (e.g. Z and channels),
        or pixels chm does not take (e.g. int16, or floats outside [0, 1]); the message names the file.
    """
    data, axes = _tiff_series(path, "stack")
    stack = _as_zyxs(data, axes, path, "stack")
    channels = stack.shape[3]
    if channels in (3, 4):
        stack = stack[..., :3]
        if (stack == stack[..., :1]).all():
            stack = stack[..., 0]
    elif channels in (1, 2):
        stack = stack[..., 0]  # gray, or gray + alpha
    else:
        raise ValueError(f"cannot read stack '{path}': its pixels have {channels} samples; a stack is gray "
                         "(Z, H, W) or colour (Z, H, W, 3)")
    for z in range(len(stack)):
        try:
            check_image(stack[z], name=f"slice {z}")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot read stack '{path}': {exc}") from exc
    return stack


def read_label_stack(path):
    """Read a label stack: the label files' values (0 = unlabelled, k + 1 = class k) as API labels.

    Parameters
    ----------
    path : str or os.PathLike
        A TIFF file of integer slices, laid out as :func:`read_stack` reads them (e.g. a napari
        Labels layer saved as TIFF). Any other label image (a PNG) is a stack of one slice.

    Returns
    -------
    ndarray of int8 (int16 above 128 classes), shape (Z, H, W)
        -1 = unlabelled, k = class k (:func:`chm.io.files.labels_from_values`).

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        As :func:`read_stack` and :func:`chm.io.files.labels_from_values`; colour pixels; the
        message names the file.
    """
    if Path(path).suffix.lower() not in STACK_SUFFIXES:
        return read_labels(path)[None]
    data, axes = _tiff_series(path, "label stack")
    values = _as_zyxs(data, axes, path, "label stack")
    if not (values == values[..., :1]).all():
        raise ValueError(f"label stack '{path}' has several different samples per pixel: save labels as one "
                         "integer per pixel (0 = unlabelled, k + 1 = class k)")
    return labels_from_values(values[..., 0], name=f"label stack '{path}'")


def write_stack(path, stack):
    """Write a stack as a TIFF file, atomically (:func:`chm.io.files.write_atomic`).

    Parameters
    ----------
    path : str or os.PathLike
    stack : array_like, (Z, H, W) or (Z, H, W, C), or a list of Z (H, W[, C]) arrays
        Any dtype TIFF holds (uint8 masks and class indices, float32 probabilities, ...). C = 3
        is written as RGB; other C as C channels per slice. The axes are stored with the data,
        so :func:`read_stack` and tifffile read back the same shape, a stack of one slice included.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import tifffile

    stack = np.asarray(stack)
    if stack.ndim not in (3, 4) or stack.size == 0:
        raise ValueError(f"a stack is (Z, H, W) or (Z, H, W, C), got shape {stack.shape}")
    if stack.ndim == 3:
        options = dict(photometric="minisblack", metadata={"axes": "ZYX"})
    elif stack.shape[3] == 3:
        options = dict(photometric="rgb", metadata={"axes": "ZYXS"})
    else:
        options = dict(photometric="minisblack", metadata={"axes": "ZYXC"})
    path = Path(path)
    write_atomic(path, lambda fh: tifffile.imwrite(fh, stack, **options))
    return path


def labelled_slices(stack, labels, image_name="image stack", labels_name="label stack"):
    """The slices of a stack that hold labels, for :meth:`chm.CHM.fit`: ``(images, labels, indices)``.

    Parameters
    ----------
    stack : array_like (Z, H, W[, 3]) or list of Z images
    labels : array_like (Z, H, W) or list of Z int arrays
        API labels (-1 = unlabelled, 0 .. K-1 = class), e.g. :func:`read_label_stack`'s.
    image_name, labels_name : str
        What to call them in messages (e.g. the file names).

    Returns
    -------
    images : list of arrays
    labels : list of arrays
        The slices with at least one labelled pixel, in order; the others are left out (one log
        line, at INFO, says how many).
    indices : list of int
        Their positions in the stack.

    Raises
    ------
    ValueError
        The label stack's number of slices or slice size differs from the stack's; the message
        gives both shapes.
    """
    images, labels = list(stack), list(labels)
    if len(images) != len(labels) or any(np.shape(lab) != np.shape(im)[:2] for im, lab in zip(images, labels)):
        raise ValueError(f"{labels_name} has shape {_stack_shape(labels)} but {image_name} has shape "
                         f"{_stack_shape(images)}: a label stack has the image stack's Z slices of H x W pixels")
    keep = [z for z, lab in enumerate(labels) if np.any(np.asarray(lab) >= 0)]
    if len(keep) < len(images):
        logger.info("%s: %d of %d slices hold labels; the %d without are left out of training",
                    image_name, len(keep), len(images), len(images) - len(keep))
    return [images[z] for z in keep], [np.asarray(labels[z]) for z in keep], keep


def _stack_shape(slices):
    """(Z, H, W[, C]) of a list of slices, from its first (for messages)."""
    return (len(slices),) + (tuple(np.shape(slices[0])) if slices else ())
