"""Image and label files: finding them, decoding label images, writing outputs atomically.

Shared by the command line (:mod:`chm.cli`) and the dataset loaders (:mod:`chm.scenes`).

Label images follow the scikit-image / ilastik convention, since an image file cannot hold -1:
**0 = unlabelled, k + 1 = class k** (two classes: 1 = background, 2 = foreground). They are
single-channel integer images (gray PNG/TIFF, or an indexed PNG whose palette indices are the
values); JPEG compression alters values, so avoid it.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "LABEL_SUFFIX", "labels_from_values", "list_images", "match_labels",
           "output_paths", "read_label_values", "read_labels", "write_atomic"]

#: Extensions (lower case) taken as image files in folders.
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".pnm", ".webp")
#: A label image is named like its image, optionally with this suffix added to the stem.
LABEL_SUFFIX = "_labels"


def _is_image_file(path):
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _image_files_in(folder):
    return sorted((p for p in folder.iterdir() if p.is_file() and _is_image_file(p)), key=lambda p: p.name)


def list_images(source):
    """The image files named by a command-line ``IMAGES`` argument.

    Parameters
    ----------
    source : str or os.PathLike
        A folder (its image files, sorted by name), a single image file, or a text file
        with one image path per line (``#`` comments and blank lines skipped; relative
        paths are relative to the list file's folder).

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    FileNotFoundError
        ``source`` or a listed file does not exist.
    ValueError
        No image found, or the list file is not text.
    """
    source = Path(source)
    if source.is_dir():
        paths = _image_files_in(source)
        if not paths:
            raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder '{source}'")
        return paths
    if not source.exists():
        raise FileNotFoundError(f"no such file or folder: '{source}'")
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return [source]
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"'{source}' is neither an image (by its extension) nor a text file listing "
                         "image paths") from None
    paths = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line).expanduser()
        if not path.is_absolute():
            path = source.parent / path
        if not path.is_file():
            raise FileNotFoundError(f"'{path}' (line {number} of '{source}') is not an existing file")
        paths.append(path)
    if not paths:
        raise ValueError(f"the image list '{source}' names no file")
    return paths


def check_unique_stems(paths, why):
    """Raise ValueError naming two of ``paths`` with the same stem (``why`` says what that breaks)."""
    seen = {}
    for p in paths:
        if p.stem in seen:
            raise ValueError(f"'{seen[p.stem]}' and '{p}' have the same name stem '{p.stem}': {why}")
        seen[p.stem] = p


def match_labels(images, label_dir):
    """The label image of every image, matched by file stem.

    The label image of ``name.ext`` is ``label_dir/name.*`` or ``label_dir/name_labels.*``
    (any extension of :data:`IMAGE_SUFFIXES`). An image file is never its own label image.

    Parameters
    ----------
    images : list of pathlib.Path
    label_dir : str or os.PathLike
        Folder of label images.

    Returns
    -------
    list of pathlib.Path
        One label image per image, in the same order.

    Raises
    ------
    FileNotFoundError
        ``label_dir`` is not a folder.
    ValueError
        An image has no label image or several, two images share a stem, or a label image
        matches no image.
    """
    label_dir = Path(label_dir)
    if not label_dir.is_dir():
        raise FileNotFoundError(f"label folder '{label_dir}' does not exist or is not a folder")
    check_unique_stems(images, "their label images cannot be told apart")
    image_set = {p.resolve() for p in images}
    by_stem = {}
    for p in _image_files_in(label_dir):
        if p.resolve() not in image_set:  # labels may sit next to their images
            by_stem.setdefault(p.stem, []).append(p)
    matched, used = [], set()
    for image in images:
        candidates = by_stem.get(image.stem, []) + by_stem.get(image.stem + LABEL_SUFFIX, [])
        if not candidates:
            raise ValueError(f"no label image for '{image}': expected '{label_dir / image.stem}.<ext>' "
                             f"or '{label_dir / (image.stem + LABEL_SUFFIX)}.<ext>'")
        if len(candidates) > 1:
            raise ValueError(f"several label images match '{image}': "
                             + ", ".join(f"'{c}'" for c in candidates) + "; keep one")
        matched.append(candidates[0])
        used.add(candidates[0])
    unmatched = [p for group in by_stem.values() for p in group if p not in used]
    if unmatched:
        shown = ", ".join(f"'{p}'" for p in unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
        raise ValueError(f"{len(unmatched)} label image(s) in '{label_dir}' match no training image: {shown} "
                         f"(a label image is named like its image, optionally with '{LABEL_SUFFIX}' "
                         "added to the stem)")
    return matched


def labels_from_values(values, name="label image"):
    """Convert label-image values (0 = unlabelled, k + 1 = class k) to API labels (-1, 0 .. K-1).

    Parameters
    ----------
    values : array_like of int
        Pixel values of a label image; bool and integral floats are accepted.
    name : str
        What to call the array in error messages (e.g. the file name).

    Returns
    -------
    ndarray of int8 (int16 above 128 classes)
        -1 = unlabelled, k = class k (value - 1).

    Raises
    ------
    TypeError
        Non-integral values.
    ValueError
        Negative values, or only the values 0 and 255 (a black-and-white mask, not labels).
    """
    arr = np.asarray(values)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    elif not np.issubdtype(arr.dtype, np.integer):
        integral = (np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all()
                    and np.array_equal(arr, np.round(arr)))
        if not integral:
            raise TypeError(f"{name} must hold integers (0 = unlabelled, k + 1 = class k), got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} has negative values (e.g. {arr[arr < 0].flat[0]:g}); label images use "
                         "0 = unlabelled, k + 1 = class k")
    top = int(arr.max()) if arr.size else 0
    if top == 255 and np.isin(arr, (0, 255)).all():
        raise ValueError(f"{name} holds only 0 and 255: it looks like a 0/255 mask, not labels; label images use "
                         "0 = unlabelled, 1 = background, 2 = foreground (k + 1 = class k)")
    if top - 1 > np.iinfo(np.int16).max:
        raise ValueError(f"{name} has value {top}: too many classes")
    return arr.astype(np.int8 if top - 1 <= np.iinfo(np.int8).max else np.int16) - 1


def read_label_values(path):
    """The raw integer values of a single-channel label image file (palette indices of an indexed PNG).

    Parameters
    ----------
    path : str or os.PathLike
        Gray image, gray stored as identical RGB channels, or an indexed (palette) PNG.

    Returns
    -------
    ndarray of int, shape (H, W)

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unreadable file, colour or multi-image file; the message names the file.
    """
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label image not found: '{path}'")
    try:
        arr = np.asarray(iio.imread(path))
        if arr.ndim == 3 and iio.immeta(path).get("mode") == "P":
            # imageio applies the palette by default; the indices are the label values.
            arr = np.asarray(iio.imread(path, mode="P"))
    except Exception as exc:  # decoders raise many exception types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot read label image '{path}': {reason}") from exc
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[2] in (2, 3, 4):
        colour = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1]
        if not (colour == colour[..., :1]).all():
            raise ValueError(f"label image '{path}' has colour pixels: save labels as a single-channel "
                             "image (0 = unlabelled, k + 1 = class k) or an indexed PNG")
        arr = arr[..., 0]  # gray saved as RGB(A) by a paint program
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"label image '{path}' must be a single 2-D image, got shape {arr.shape}")
    return arr


def read_labels(path):
    """Read a label image file and convert it with :func:`labels_from_values`.

    Returns
    -------
    ndarray of int8, shape (H, W)
        -1 = unlabelled, k = class k.

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        As :func:`read_label_values` and :func:`labels_from_values`; the message names the file.
    """
    return labels_from_values(read_label_values(path), name=f"label image '{path}'")


def output_paths(inputs, outdir, suffix, overwrite):
    """Output file of every input, named by its stem and ``suffix`` (one for all, or a list of one
    per input); refuses collisions and, unless told, existing files."""
    check_unique_stems(inputs, "their outputs would have the same name")
    suffixes = [suffix] * len(inputs) if isinstance(suffix, str) else list(suffix)
    outputs = [outdir / (p.stem + s) for p, s in zip(inputs, suffixes)]
    input_set = {p.resolve() for p in inputs}
    for out in outputs:
        if out.resolve() in input_set:  # even overwrite must not destroy the inputs
            raise ValueError(f"output '{out}' would replace an input image; choose another output folder")
    existing = [out for out in outputs if out.exists()]
    if existing and not overwrite:
        shown = ", ".join(f"'{p}'" for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise FileExistsError(f"{len(existing)} output file(s) exist already: {shown}; "
                              "use --overwrite to replace them")
    return outputs


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path, write):
    """Write through ``write(file_object)`` to a temporary file, then rename it to ``path``
    (with the usual permissions), so no file is ever half-written."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".part{path.suffix}")
    try:
        # Opened by name, not os.fdopen(fd): tifffile takes a file object's name for a path,
        # and fails on os.fdopen's, the descriptor number.
        os.close(fd)
        with open(tmp, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates owner-only files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
