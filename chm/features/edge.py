"""Edge features (49): 7x7 neighbourhood of a derivative-of-Gaussian magnitude.

Follows MATLAB CHM ``ConstructEdgeFilt``: two 7x7 kernels, the first
derivative of a sigma=1 Gaussian along one axis times a sigma=1 Gaussian along
the other, each scaled to unit L2 norm; gradient magnitude
``sqrt(Ix**2 + Iy**2)``; then the values of the magnitude map at the 7x7 square
of offsets around the pixel (``dx`` slowest, ``dy`` fastest, as MATLAB's
``SquareNeighborhood``), reflect-padded by 3.

Choice vs MATLAB: MATLAB's ``conv2(..., 'same')`` zero-pads the image, which
puts a strong artificial edge along the whole border of every image or tile.
Here the derivatives use edge-including mirror padding (scipy ``'reflect'``),
like PyCHM's non-compat mode. Convolution vs correlation only flips the sign
of Ix and Iy, which the magnitude does not see.
"""

import numpy as np
from scipy import ndimage as ndi

from ._utils import check_image, pad_symmetric, prepare_out
from .stencil import gather

__all__ = ["edge"]

_RADIUS = 3      # kernel half-width (7 taps) and neighbourhood radius
_SIGMA = 1.0


def _kernels():
    """1-D factors (gauss, dgauss) of the unit-L2-norm 7x7 kernels."""
    t = np.arange(-_RADIUS, _RADIUS + 1, dtype=np.float64)
    g = np.exp(-t**2 / (2 * _SIGMA**2))
    dg = -t / _SIGMA**2 * g
    # the 2-D kernel outer(g, dg) has L2 norm |g| * |dg|: fold it into dg
    dg /= np.linalg.norm(g) * np.linalg.norm(dg)
    return g, dg


_GAUSS, _DGAUSS = _kernels()


def _neighbourhood_offsets(radius):
    """(dy, dx) of a square, dx slowest then dy, as MATLAB SquareNeighborhood."""
    r = np.arange(-radius, radius + 1)
    dx, dy = np.meshgrid(r, r, indexing="ij")
    return np.stack([dy.ravel(), dx.ravel()], axis=1)


_OFFSETS = _neighbourhood_offsets(_RADIUS)


def edge_magnitude(image):
    """Gradient magnitude from the unit-norm 7x7 derivative-of-Gaussian kernels.

    Parameters
    ----------
    image : (H, W) ndarray of float
        Grey image in [0, 1].

    Returns
    -------
    magnitude : (H, W) float32 ndarray
    """
    image = check_image(image).astype(np.float32, copy=False)
    # separable: derivative along one axis, smoothing along the other
    ix = ndi.correlate1d(image, _GAUSS, axis=0, mode="reflect")
    ndi.correlate1d(ix, _DGAUSS, axis=1, mode="reflect", output=ix)
    iy = ndi.correlate1d(image, _DGAUSS, axis=0, mode="reflect")
    ndi.correlate1d(iy, _GAUSS, axis=1, mode="reflect", output=iy)
    return np.hypot(ix, iy, out=ix)


def edge(image, *, out=None):
    """Edge features: 7x7 neighbourhood of the gradient magnitude.

    Parameters
    ----------
    image : (H, W) ndarray of float
        Grey image in [0, 1].
    out : (H, W, 49) float32 ndarray, optional
        Where to write the result (may be a non-contiguous view).

    Returns
    -------
    features : (H, W, 49) float32 ndarray
        ``features[y, x, 7 * (dx + 3) + (dy + 3)] = magnitude[y + dy, x + dx]``
        with edge-including mirror padding; channel 24 is the magnitude at the
        pixel itself. A unit step gives a peak magnitude of about 1.82.
    """
    image = check_image(image)
    out = prepare_out(out, image.shape, len(_OFFSETS))
    mag = edge_magnitude(image)
    gather(pad_symmetric(mag, _RADIUS), _RADIUS, _OFFSETS, out)
    return out
