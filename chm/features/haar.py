"""Haar-like features (2): horizontal and vertical half-window contrast.

Follows MATLAB CHM ``ConstructHaar`` / ``cc_Haar_features``: a 16x16 window
covering rows ``y-7 .. y+8`` and columns ``x-7 .. x+8`` (the pixel sits at
index 7, so the window is half a pixel off-centre, as in MATLAB), box sums
from an integral image of the symmetric-padded image, and contrasts divided by
the window's intensity sum (+1e-5), not by its pixel count.
"""

import numpy as np
from numba import njit

from ._utils import check_image, pad_symmetric, prepare_out

__all__ = ["haar"]

_SIZE = 16     # window side
_HALF = 8      # half window = MATLAB's "mid"
_BEFORE = 7    # rows/columns of the window before the pixel
_EPS = 1e-5    # MATLAB's denominator guard


def haar(image, *, out=None):
    """Haar-like contrast features of every pixel.

    Parameters
    ----------
    image : (H, W) ndarray of float
        Grey image in [0, 1].
    out : (H, W, 2) float32 ndarray, optional
        Where to write the result (may be a non-contiguous view).

    Returns
    -------
    features : (H, W, 2) float32 ndarray
        ``[..., 0] = Hx = (right half - left half) / (window sum + 1e-5)`` and
        ``[..., 1] = Hy = (bottom half - top half) / (window sum + 1e-5)``,
        over the 16x16 window rows ``y-7..y+8``, columns ``x-7..x+8``, with
        edge-including mirror padding. Both lie in [-1, 1]; windows whose sum
        is <= 0 (all black) give 0, as in MATLAB.

    Notes
    -----
    A bright right half gives ``Hx > 0``; a bright lower half (larger row
    index) gives ``Hy > 0``.
    """
    image = check_image(image)
    H, W = image.shape
    out = prepare_out(out, image.shape, 2)

    # Pad so that the window of pixel (y, x) is padded[y+1 : y+17, x+1 : x+17];
    # float64 integral image: the sums of ~1e5 px need more than float32.
    pad = _HALF
    padded = pad_symmetric(image.astype(np.float64, copy=False), pad)
    ii = np.zeros((H + 2 * pad + 1, W + 2 * pad + 1))
    np.cumsum(np.cumsum(padded, axis=0), axis=1, out=ii[1:, 1:])

    _contrasts(ii, pad - _BEFORE, out)
    return out


@njit(cache=True, nogil=True)
def _contrasts(ii, top, out):
    # The three box sums of every pixel from the integral image and both contrasts, written once
    # per pixel (numpy needs a dozen whole-image temporaries and two strided writes); the same
    # float64 operations in the same order as its numpy reference, ``contrasts_reference`` in
    # tests/_reference/features.py, so the same values.
    H, W = out.shape[:2]
    bottom, half = top + _SIZE, top + _HALF
    for y in range(H):
        for x in range(W):
            total = (ii[bottom + y, bottom + x] - ii[top + y, bottom + x]
                     - ii[bottom + y, top + x] + ii[top + y, top + x])
            lhalf = (ii[bottom + y, half + x] - ii[top + y, half + x]
                     - ii[bottom + y, top + x] + ii[top + y, top + x])
            thalf = (ii[half + y, bottom + x] - ii[top + y, bottom + x]
                     - ii[half + y, top + x] + ii[top + y, top + x])
            if total > 0:
                denom = total + _EPS
                out[y, x, 0] = (total - 2.0 * lhalf) / denom
                out[y, x, 1] = (total - 2.0 * thalf) / denom
            else:
                out[y, x, 0] = 0.0
                out[y, x, 1] = 0.0
