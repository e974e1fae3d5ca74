"""Input validation and small helpers shared by the filter families."""

import numpy as np

__all__ = ["check_image", "prepare_out", "pad_symmetric"]


def check_image(image):
    """Validate a 2-D grey image and return it as a float array.

    Parameters
    ----------
    image : array_like, shape (H, W)
        Floating-point image, nominally in [0, 1]. ``H, W >= 1``.

    Returns
    -------
    image : ndarray, shape (H, W)
        float32 and float64 inputs are returned as they are (no copy); other
        floating types are converted to float64.

    Raises
    ------
    TypeError
        If the dtype is not a real floating type. Integer images are refused
        on purpose: a uint8 image would silently be 255x too bright.
    ValueError
        If the image is not 2-D, is empty, or holds NaN/inf.
    """
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(
            f"image must have a real floating dtype (float32 or float64 with "
            f"values in [0, 1]), got {image.dtype}; convert integer images "
            f"with e.g. skimage.util.img_as_float")
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be at least 1x1, got shape {image.shape}")
    if image.dtype not in (np.float32, np.float64):
        image = image.astype(np.float64)
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    return image


def prepare_out(out, shape, n_features):
    """Return a float32 (H, W, n_features) array to write a family into.

    ``out`` may be a (non-contiguous) view into a bigger feature array, which is
    how :class:`features.FilterBank` lets every family write its own block.
    """
    expected = (shape[0], shape[1], n_features)
    if out is None:
        return np.empty(expected, dtype=np.float32)
    if not isinstance(out, np.ndarray) or out.dtype != np.float32:
        raise TypeError("out must be a float32 numpy array")
    if out.shape != expected:
        raise ValueError(f"out must have shape {expected}, got {out.shape}")
    return out


def pad_symmetric(image, before, after=None):
    """Edge-including mirror padding (numpy 'symmetric' = MATLAB padReflect).

    Works for pads larger than the image (numpy repeats the reflection),
    which keeps 1x1 and other tiny images valid.
    """
    if after is None:
        after = before
    return np.pad(image, ((before, after), (before, after)), mode="symmetric")
