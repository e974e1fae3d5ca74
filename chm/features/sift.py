"""Dense SIFT features (128): a 4x4 grid of 8-orientation histograms per pixel.

Follows MATLAB CHM ``ConstructSift`` / ``dense_sift`` (Lazebnik's dense SIFT,
patch 16, grid spacing 1):

1. pre-smooth with the 7x7 sigma=1 Gaussian, replicated border (as MATLAB);
2. divide by the maximum of the smoothed image (skipped when it is <= 0, e.g.
   an all-black image, instead of MATLAB's division by zero);
3. gradients by correlation with the numerical gradient of the 5x5 sigma=1
   Gaussian, each kernel scaled so that sum(|k|) = 2 (MATLAB ``gen_dgauss``
   and ``filter2``), so ``theta = atan2(I_Y, I_X)`` uses MATLAB's sign
   convention (I_X ~ -dI/dx);
4. 8 orientation channels ``max(cos(theta - a), 0)**9 * magnitude``,
   ``a = 0, pi/4, ..., 7pi/4``;
5. separable triangle smoothing with taps [1, 3, 5, 7, 7, 5, 3, 1] / 8 at
   offsets -2..+5 (MATLAB's ``conv2`` kernel is not centred: we keep that,
   it puts the 4x4 bin centres at -5.5, -1.5, 2.5, 6.5, i.e. a 16x16 patch
   covering -7..+8 like the Haar window);
6. sampling at the offsets {-7, -3, 1, 5} in y and in x: 16 positions x 8
   angles, position index ``4 * ix + iy`` (y fastest), angle fastest;
7. Lowe normalisation, only for descriptors whose L2 norm is > 1: divide by
   the norm, clip at 0.2, renormalise. Others are left as they are.

Choices vs MATLAB: no uint8 rounding after the pre-smoothing; the image is
*symmetric*-padded for steps 3-6 instead of zero-padded (zero padding creates
strong fake gradients along the border of every image or tile, the same
reason the edge family uses reflection); float32 arithmetic.
"""

import numpy as np
from numba import njit
from scipy import ndimage as ndi

from ._utils import check_image, prepare_out

__all__ = ["sift", "peak"]

_NANGLES = 8
_SAMPLES = (-7, -3, 1, 5)
_TRIANGLE = np.array([1, 3, 5, 7, 7, 5, 3, 1], dtype=np.float64) / 8.0
_TRI_ORIGIN = -2        # scipy origin that puts the 8 taps at offsets -2..+5
_PAD_BEFORE = 7 + 2 + 2  # sample -7, triangle -2, gradient kernel radius 2
_PAD_AFTER = 5 + 5 + 2   # sample +5, triangle +5, gradient kernel radius 2
#: Farthest pixel (rows or columns) whose value reaches a pixel's features: samples -7..+5,
#: triangle -2..+5, gradient 2, pre-smoothing 3 (besides the image-wide ``peak``).
SUPPORT = 15


def _gauss(size, sigma):
    t = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-t**2 / (2.0 * sigma**2))
    return g / g.sum()


_PRESMOOTH = _gauss(7, 1.0)
_G5 = _gauss(5, 1.0)
# 2-D kernel GX = outer(G5, D): numerical gradient (np.gradient = MATLAB
# gradient) along x of the 5x5 Gaussian; sum|GX| = sum(G5) * sum|D| = sum|D|.
_D5 = np.gradient(_G5)
_D5 *= 2.0 / np.abs(_D5).sum()


def sift(image, *, out=None, peak=None):
    """Dense SIFT descriptor of every pixel (MATLAB CHM variant).

    Parameters
    ----------
    image : (H, W) ndarray of float
        Grey image in [0, 1].
    out : (H, W, 128) float32 ndarray, optional
        Where to write the result (may be a non-contiguous view).
    peak : float, optional
        What the pre-smoothed image is divided by; default its maximum, :func:`peak`. Pass the
        whole image's to compute the features of a crop as they are in the whole image.

    Returns
    -------
    features : (H, W, 128) float32 ndarray
        ``features[y, x, 8 * (4 * ix + iy) + a]``: orientation channel ``a``
        sampled at ``(y + S[iy], x + S[ix])``, ``S = (-7, -3, 1, 5)``.
        Non-negative; rows with norm > 1 are Lowe-normalised (unit norm,
        entries <= 0.2 before the final renormalisation). A constant image
        gives 0.
    """
    image = check_image(image)
    H, W = image.shape
    out = prepare_out(out, image.shape, len(_SAMPLES) ** 2 * _NANGLES)

    im = _presmooth(image)
    if peak is None:
        peak = im.max()
    if peak > 0:
        im /= peak
    padded = np.pad(im, ((_PAD_BEFORE, _PAD_AFTER), (_PAD_BEFORE, _PAD_AFTER)),
                    mode="symmetric")
    del im

    channels = _orientation_channels(padded)        # (Hp, Wp, 8)
    del padded
    # the padded border rows/columns that 'reflect' touches are never sampled
    for axis in (0, 1):
        ndi.correlate1d(channels, _TRIANGLE, axis=axis, mode="reflect",
                        origin=_TRI_ORIGIN, output=channels)

    _assemble(channels, _PAD_BEFORE, np.array(_SAMPLES), out)
    return out


def peak(image, window=None):
    """The maximum of the pre-smoothed image, which :func:`sift` divides by.

    ``window`` (a pair of slices): the maximum over that part only, e.g. a tile's core, whose
    pre-smoothed values are the whole image's when the tile reaches 3 pixels past it; the largest
    over tiles whose cores cover the image is then the whole image's peak.
    """
    im = _presmooth(check_image(image))
    return (im if window is None else im[window]).max()


def _presmooth(image):
    """The 7 x 7 sigma = 1 Gaussian blur of step 1 (float32, replicated border)."""
    im = ndi.correlate1d(image.astype(np.float32, copy=False), _PRESMOOTH, axis=0, mode="nearest")
    return ndi.correlate1d(im, _PRESMOOTH, axis=1, mode="nearest", output=im)


@njit(cache=True, nogil=True, fastmath=True)
def _assemble(channels, pad, samples, out):
    # Steps 6-7 pixel by pixel: gather the 128 values, normalise them in a small buffer, write the
    # output row once (one pass over memory instead of numpy's ~7 over the (H, W, 128) array).
    # float32 sums, as numpy's; fastmath lets them vectorise (the inputs are finite).
    # tests/_reference/features.py holds its numpy reference (sift_assemble_reference).
    H, W, F = out.shape
    na = channels.shape[2]
    ns = samples.shape[0]
    v = np.empty(F, dtype=np.float32)
    for y in range(H):
        for x in range(W):
            for ix in range(ns):
                cx = pad + x + samples[ix]
                for iy in range(ns):
                    cy = pad + y + samples[iy]
                    k = na * (ns * ix + iy)
                    for a in range(na):
                        v[k + a] = channels[cy, cx, a]
            ss = np.float32(0.0)
            for k in range(F):
                ss += v[k] * v[k]
            if ss > 1.0:  # Lowe normalisation only for descriptors of norm > 1
                inv = np.float32(1.0) / np.sqrt(ss)
                ss = np.float32(0.0)
                for k in range(F):
                    c = min(v[k] * inv, np.float32(0.2))
                    v[k] = c
                    ss += c * c
                inv = np.float32(1.0) / np.sqrt(max(ss, np.float32(1e-30)))
                for k in range(F):
                    out[y, x, k] = v[k] * inv
            else:
                for k in range(F):
                    out[y, x, k] = v[k]


def _orientation_channels(padded):
    """``max(cos(theta - a), 0)**9 * mag`` for the 8 angles, channels-last."""
    ix = ndi.correlate1d(padded, _G5, axis=0, mode="reflect")
    ndi.correlate1d(ix, _D5, axis=1, mode="reflect", output=ix)
    iy = ndi.correlate1d(padded, _D5, axis=0, mode="reflect")
    ndi.correlate1d(iy, _G5, axis=1, mode="reflect", output=iy)
    mag = np.hypot(ix, iy)
    # cos(theta - a) = (ix cos a + iy sin a) / mag; no atan2/cos/sin needed.
    inv = np.divide(1.0, mag, out=np.zeros_like(mag), where=mag > 0)
    ix *= inv
    iy *= inv                                  # now (cos theta, sin theta)
    del inv
    channels = np.empty(mag.shape + (_NANGLES,), dtype=np.float32)
    r = np.float32(np.sqrt(0.5))
    # angles a and a + pi have opposite cosines: one odd power serves both
    for a, cos_a in enumerate((ix, (ix + iy) * r, iy, (iy - ix) * r)):
        c2 = cos_a * cos_a
        c8 = c2 * c2
        c8 *= c8
        u = c8 * cos_a
        u *= mag
        np.maximum(u, 0.0, out=channels[..., a])
        np.negative(u, out=u)
        np.maximum(u, 0.0, out=channels[..., a + 4])
    return channels
