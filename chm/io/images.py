"""Reading and validating images.

Every image that enters the toolkit passes through :func:`check_image` (validation, no copy) and,
where pixels are computed on, :func:`as_float_image`: a float64 image in [0, 1], either
``(H, W)`` gray or ``(H, W, 3)`` colour (RGB). :func:`to_channels` turns one into the other
(colour -> luminance, gray -> three equal channels), so a model uses the channels it was trained on.
"""

import os

import numpy as np

__all__ = ["read_image", "read_mask", "read_pixels", "as_float_image", "check_image", "check_image_list", "check_labels",
           "to_channels"]


def check_image(array, name="image"):
    """Validate an in-memory image without converting it.

    Parameters
    ----------
    array : array_like
        ``(H, W)`` gray or ``(H, W, 3)`` colour (RGB). Supported dtypes: uint8 (divided by 255
        when converted), uint16 (by 65535), bool, and floats in [0, 1].
    name : str, optional
        What to call the array in error messages.

    Returns
    -------
    ndarray
        The array itself (no copy).

    Raises
    ------
    TypeError
        Unsupported dtype (e.g. signed integers, whose range is ambiguous).
    ValueError
        Empty array, a shape that is neither (H, W) nor (H, W, 3), NaN/inf, or float values
        outside [0, 1].
    """
    arr = np.asarray(array)
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        hint = "; drop the alpha channel (image[..., :3])" if arr.ndim == 3 and arr.shape[2] == 4 else ""
        raise ValueError(f"{name} must be (H, W) gray or (H, W, 3) colour, got shape {arr.shape}{hint}")
    if arr.dtype in (np.uint8, np.uint16, bool):
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} has unsupported dtype {arr.dtype}; use uint8, uint16, bool or float in [0, 1]")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi > 1:
        raise ValueError(f"{name} is float with values in [{lo:g}, {hi:g}], expected [0, 1]")
    return arr


def as_float_image(array, name="image", dtype=np.float64):
    """Validate an in-memory image and return it as floats in [0, 1] (always a new array).

    Parameters
    ----------
    array : array_like
        As :func:`check_image`: ``(H, W)`` or ``(H, W, 3)``; uint8, uint16, bool or float in [0, 1].
    name : str, optional
        What to call the array in error messages.
    dtype : float dtype, optional
        float64 (the cascade) or float32 (the ConvNet); integers are divided by their maximum in
        this precision.

    Returns
    -------
    ndarray of ``dtype``, shape (H, W) or (H, W, 3)

    Raises
    ------
    TypeError, ValueError
        As :func:`check_image`.
    """
    arr = check_image(array, name)
    if arr.dtype in (np.uint8, np.uint16):
        return arr.astype(dtype) / np.iinfo(arr.dtype).max
    return arr.astype(dtype)


def to_channels(image, n_channels):
    """A float image with ``n_channels`` channels: 1 -> (H, W) (colour becomes its luminance,
    :func:`skimage.color.rgb2gray`), 3 -> (H, W, 3) (gray repeated)."""
    if n_channels == 1 and image.ndim == 3:
        from skimage.color import rgb2gray

        # rgb2gray's weights sum to 1 only up to rounding; clip so the [0, 1] promise holds.
        return np.clip(rgb2gray(image), 0.0, 1.0)
    if n_channels == 3 and image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image


def read_pixels(path):
    """``(path, pixels)`` of an image file as stored (any dtype and channels), every failure
    mapped to FileNotFoundError / ValueError; :func:`read_image` and :func:`read_mask` build on it."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"image file not found: '{path}'")
    if os.path.isdir(path):
        raise ValueError(f"cannot read image '{path}': it is a directory")
    # imageio directly rather than skimage.io.imread (a thin wrapper over
    # it), whose channel-order guess turns a 3- or 4-row gray+alpha image
    # sideways.
    import imageio.v3 as iio

    try:
        arr = np.asarray(iio.imread(path))
    except Exception as exc:  # decoders raise many types; callers need one
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "backend" in reason:
            # imageio's "no backend" text suggests installing plugins, which
            # misleads when the file is simply not an image.
            reason = "unknown format or corrupt file"
        raise ValueError(f"cannot read image '{path}': {reason}") from exc
    if arr.size == 0 or arr.ndim not in (2, 3):
        raise ValueError(
            f"cannot read image '{path}': expected a single 2-D image, got shape {arr.shape}"
        )
    if arr.ndim == 3 and arr.shape[2] == 2:
        # gray + alpha: keep the gray channel.
        arr = arr[..., 0]
    return path, arr


def read_image(path):
    """Read an image file as a float64 image in [0, 1].

    Parameters
    ----------
    path : str or os.PathLike
        Any format imageio reads (PNG, JPEG, TIFF, ...). 8- and 16-bit integers are divided by
        their dtype's maximum; an alpha channel is dropped.

    Returns
    -------
    ndarray of float64, shape (H, W) or (H, W, 3)
        Gray for gray files and for colour files whose three channels are equal (gray saved
        as RGB, gray palettes); colour otherwise.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is corrupt, truncated, not an image, a stack of images, or
        of an unsupported pixel type; the message names the path.
    """
    path, arr = read_pixels(path)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[..., :3]
        if (arr == arr[..., :1]).all():
            arr = arr[..., 0]
    try:
        return as_float_image(arr, name="pixel data")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read image '{path}': {exc}") from exc


def read_mask(path, threshold=127):
    """Read a mask file as a boolean array (pixel value > ``threshold``).

    Parameters
    ----------
    path : str or os.PathLike
        Single-channel mask. JPEG masks are fine: compression noise around
        0 and 255 is removed by the threshold. Colour masks are reduced to
        their luminance first.
    threshold : float, optional
        In the file's own pixel units (0-255 for 8-bit files, 0-65535 for
        16-bit). Ignored for 1-bit files, which are returned as stored.

    Returns
    -------
    ndarray of bool, shape (H, W)

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is corrupt, truncated or not a single image.
    """
    path, arr = read_pixels(path)
    if arr.dtype == bool:
        return arr.copy() if arr.ndim == 2 else arr[..., 0].copy()
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"cannot read image '{path}': unsupported pixel type {arr.dtype}")
    if arr.ndim == 3:
        if arr.shape[2] not in (3, 4):
            raise ValueError(
                f"cannot read image '{path}': expected a mask, got shape {arr.shape}"
            )
        from skimage.color import rgb2gray

        # Luminance in the file's units, so the threshold means the same
        # thing for gray and colour masks.
        arr = rgb2gray(arr[..., :3].astype(np.float64))
    return arr > threshold


def check_image_list(images, name="images"):
    """Validate a non-empty list of (H, W) or (H, W, 3) images; return them unconverted
    (:func:`as_float_image` converts each one where it is used, so a large set of
    uint8 colour images is never held as float64 all at once).

    A stack is the list of its slices, ``list(stack)``. One array is taken as its slices along
    the first axis too ((Z, H, W) or (Z, H, W, 3)), except a 3-D array whose last axis has at most
    4 entries: it may as well be one (H, W, C) image, so it is refused (TypeError) as ambiguous.
    """
    if isinstance(images, np.ndarray) and images.ndim == 2:
        raise TypeError(f"{name} must be a list of images, got a single image of shape {images.shape}; "
                        "wrap it in a list: [image]")
    if isinstance(images, np.ndarray) and images.ndim == 3 and images.shape[2] <= 4:
        z, h, w = images.shape
        raise TypeError(f"{name} is one array of shape {images.shape}: a single image with {w} channels, "
                        f"or a stack of {z} slices of {h} x {w} pixels? Pass [image] for one image, list(stack) "
                        "for the slices of a stack")
    try:
        images = list(images)
    except TypeError:
        raise TypeError(f"{name} must be a list of (H, W) or (H, W, 3) arrays, got {type(images).__name__}") from None
    if not images:
        raise ValueError(f"{name} is empty")
    return [check_image(im, name=f"{name}[{i}]") for i, im in enumerate(images)]


def check_labels(labels, images, n_classes=2, name="labels"):
    """Validate sparse label maps: int arrays shaped like the images, -1 = unlabelled.

    Returns int8 arrays. Raises if a label is out of range, if no pixel is labelled, or if the
    labelled pixels hold fewer than two classes.
    """
    try:
        labels = list(labels)
    except TypeError:
        raise TypeError(f"{name} must be a list of integer arrays, got {type(labels).__name__}") from None
    if len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} label maps")
    out = []
    seen = set()
    for i, (lab, im) in enumerate(zip(labels, images)):
        lab = np.asarray(lab)
        if lab.shape != im.shape[:2]:
            raise ValueError(f"{name}[{i}] has shape {lab.shape} but images[{i}] has shape {im.shape}")
        if lab.dtype == bool:
            raise TypeError(f"{name}[{i}] is boolean: sparse labels need -1 for unlabelled pixels; "
                            "use e.g. chm.datasets.sample_sparse_labels or mask.astype(int) for dense labels")
        if not np.issubdtype(lab.dtype, np.integer):
            if np.issubdtype(lab.dtype, np.floating) and np.isfinite(lab).all() and np.all(lab == np.round(lab)):
                lab = lab.astype(np.int64)
            else:
                raise TypeError(f"{name}[{i}] must hold integers (-1 = unlabelled, 0..{n_classes - 1} = class), "
                                f"got dtype {lab.dtype}")
        bad = (lab < -1) | (lab >= n_classes)
        if bad.any():
            raise ValueError(f"{name}[{i}] has values outside -1..{n_classes - 1} "
                             f"(e.g. {lab[bad].flat[0]}); -1 = unlabelled, 0..{n_classes - 1} = class")
        seen.update(np.unique(lab[lab >= 0]).tolist())
        out.append(lab.astype(np.int8 if n_classes <= 128 else np.int16))
    if not seen:
        raise ValueError(f"{name} has no labelled pixel (all are -1)")
    if len(seen) < 2:
        need = ("labelled pixels of both background (0) and foreground (1) are needed" if n_classes == 2
                else "labelled pixels of two or more classes are needed")
        raise ValueError(f"{name} holds a single class ({seen.pop()}); {need}")
    return out
