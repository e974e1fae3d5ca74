"""Position features (2): where in the image a pixel lies.

Scene classes have strong location priors (sky at the top, road and sea at the bottom) that no
translation-invariant filter sees; a location term is part of classic scene-labelling models
(TextonBoost's location potential). The features are the pixel centre's row and column as
fractions of the image height and width, ``(y + 0.5) / H`` and ``(x + 0.5) / W``, so every pyramid
level of an image gives the same value at the same place.
"""

import numpy as np

from ._utils import check_image, prepare_out

__all__ = ["position"]

N_FEATURES = 2


def position(image, *, out=None):
    """Relative row and column of every pixel.

    Parameters
    ----------
    image : (H, W) ndarray of float
        Only its shape is used (validated as the other families do).
    out : (H, W, 2) float32 ndarray, optional
        Where to write the result.

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
    out = prepare_out(out, (h, w), N_FEATURES)
    out[:, :, 0] = ((np.arange(h) + 0.5) / h)[:, None]
    out[:, :, 1] = ((np.arange(w) + 0.5) / w)[None, :]
    return out
