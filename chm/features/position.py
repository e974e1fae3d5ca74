"""Position features (2): where in the image a pixel lies.

Scene classes have strong location priors (sky at the top, road and sea at the bottom) that no
translation-invariant filter sees; a location term is part of classic scene-labelling models
(TextonBoost's location potential). The features are the pixel centre's row and column as
fractions of the image height and width, ``(y + 0.5) / H`` and ``(x + 0.5) / W``, so every pyramid
level of an image gives the same value at the same place. A tile of a larger image is given its
origin and the larger image's shape, so that its features are the larger image's.
"""

import numpy as np

from ._utils import check_image, prepare_out

__all__ = ["position"]

N_FEATURES = 2


def position(image, *, out=None, origin=(0, 0), shape=None):
    """Relative row and column of every pixel.

    Parameters
    ----------
    image : (H, W) ndarray of float
        Only its shape is used (validated as the other families do).
    out : (H, W, 2) float32 ndarray, optional
        Where to write the result.
    origin : (int, int), optional
        Row and column of the image's first pixel in the larger image it was cut from.
    shape : (int, int), optional
        That larger image's (H, W); default the image's own.

    Returns
    -------
    features : (H, W, 2) float32 ndarray
        ``[..., 0]`` the row, ``[..., 1]`` the column, both in (0, 1).

    Examples
    --------
    >>> position(np.zeros((2, 4)))[:, 0, 0]
    array([0.25, 0.75], dtype=float32)
    """
    image = check_image(image)
    h, w = image.shape
    y0, x0 = (int(v) for v in origin)
    H, W = (h, w) if shape is None else (int(v) for v in shape)
    if y0 < 0 or x0 < 0 or y0 + h > H or x0 + w > W:
        raise ValueError(f"an image of shape {(h, w)} at origin {(y0, x0)} does not lie in a {(H, W)} image")
    out = prepare_out(out, (h, w), N_FEATURES)
    # The same float64 operations for a tile as for the whole image, so the same values.
    out[:, :, 0] = ((np.arange(y0, y0 + h) + 0.5) / H)[:, None]
    out[:, :, 1] = ((np.arange(x0, x0 + w) + 0.5) / W)[None, :]
    return out
