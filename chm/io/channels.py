"""Feature-channel files: the command line's ``--channels DIR``, one file per image, matched by stem.

The feature channels of ``name.ext`` are ``DIR/name.npy`` (a NumPy array) or ``DIR/name.tif``
(``.tiff``): one (H, W) channel or several, as (H, W, E) or channels-first (E, H, W), the layout
ImageJ and tifffile write; which of the two a 3-D array is follows from its image's size. Values
are any real numbers (:mod:`chm.features.channels` standardises them). Images themselves are
never taken as channel files, so ``DIR`` may be the images' folder.
"""

from pathlib import Path

import numpy as np

from .files import check_unique_stems

__all__ = ["CHANNEL_SUFFIXES", "match_channels", "read_channels"]

#: Extensions (lower case) of feature-channel files.
CHANNEL_SUFFIXES = (".npy", ".tif", ".tiff")


def match_channels(images, folder):
    """The feature-channel file of every image, matched by file stem.

    Parameters
    ----------
    images : list of pathlib.Path
    folder : str or os.PathLike
        Folder of ``<stem>.npy`` / ``.tif`` / ``.tiff`` files; files that match no image are
        left alone (one folder may serve training and new images).

    Returns
    -------
    list of pathlib.Path
        One file per image, in the same order.

    Raises
    ------
    FileNotFoundError
        ``folder`` is not a folder.
    ValueError
        An image has no channel file or several, or two images share a stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"feature-channel folder '{folder}' does not exist or is not a folder")
    check_unique_stems(images, "their feature-channel files cannot be told apart")
    image_set = {p.resolve() for p in images}
    by_stem = {}
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if (p.is_file() and p.suffix.lower() in CHANNEL_SUFFIXES and not p.name.startswith(".")
                and p.resolve() not in image_set):
            by_stem.setdefault(p.stem, []).append(p)
    matched = []
    for image in images:
        candidates = by_stem.get(image.stem, [])
        if not candidates:
            raise ValueError(f"no feature-channel file for '{image}': expected '{folder / image.stem}.npy' "
                             "(or .tif, .tiff)")
        if len(candidates) > 1:
            raise ValueError(f"several feature-channel files match '{image}': "
                             + ", ".join(f"'{c}'" for c in candidates) + "; keep one")
        matched.append(candidates[0])
    return matched


def read_channels(path, shape, image=None):
    """Read a feature-channel file as an (H, W, E) array for an image of ``shape``.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy`` or ``.tif`` / ``.tiff`` file.
    shape : tuple of int
        The image's shape; its (H, W) decides the layout of a 3-D array.
    image : str or os.PathLike, optional
        The image's file, for messages.

    Returns
    -------
    ndarray, shape (H, W, E)
        As stored (any real dtype); :meth:`chm.CHM.fit` and :meth:`chm.CHM.predict_proba`
        check the values.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file cannot be read, or its array is not of the image's size.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature-channel file not found: '{path}'")
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            import imageio.v3 as iio

            arr = np.asarray(iio.imread(path))
    except Exception as exc:  # decoders raise many exception types; the caller needs one
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot read feature-channel file '{path}': {reason}") from exc
    h, w = shape[:2]
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.ndim == 3 and arr.shape[:2] != (h, w) and arr.shape[1:] == (h, w):
        arr = np.moveaxis(arr, 0, -1)  # channels first, as ImageJ and tifffile write them
    if arr.ndim != 3 or arr.shape[:2] != (h, w):
        of = f"its image '{image}'" if image is not None else "its image"
        raise ValueError(f"feature-channel file '{path}' holds an array of shape {arr.shape} but {of} is "
                         f"{h} x {w}: expected ({h}, {w}), ({h}, {w}, E) or (E, {h}, {w})")
    return arr
