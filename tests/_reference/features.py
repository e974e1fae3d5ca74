"""Numpy references of the numba kernels of :mod:`chm.features`.

* :func:`hog_assemble_reference` mirrors ``chm.features.hog._assemble``;
* :func:`sift_assemble_reference` mirrors ``chm.features.sift._assemble``;
* :func:`contrasts_reference` mirrors ``chm.features.haar._contrasts``;
* :func:`gather_reference` mirrors ``chm.features.stencil.gather`` (its ``_gather_kernel``).

Each writes whole shifted slices of its input (in row bands where the kernel normalises) instead of
the kernel's pixel-by-pixel loop, and returns ``out``.
"""

import numpy as np

from chm.features.haar import _EPS as _HAAR_EPS, _HALF as _HAAR_HALF, _SIZE as _HAAR_SIZE
from chm.features.hog import _CELL, _CLIP as _HOG_CLIP, _EPS as _HOG_EPS, _NBINS
from chm.features.sift import _NANGLES

_BAND = 16   # rows per band of the references (keeps their temporaries small)


# ---------------------------------------------------------------- HOG
def l2hys(block):
    """In-place L2-Hys over the last axis of a float32 ``block`` (``v / sqrt(|v|^2 + eps^2)``,
    clip at 0.2, renormalise), as ``chm.features.hog._assemble`` does per pixel."""
    norm = np.sqrt(np.einsum("...k,...k->...", block, block) + _HOG_EPS**2)
    block /= norm[..., None]
    np.minimum(block, _HOG_CLIP, out=block)
    norm = np.sqrt(np.einsum("...k,...k->...", block, block) + _HOG_EPS**2)
    block /= norm[..., None]


def hog_assemble_reference(votes, first, out):
    """Plain numpy reference for ``chm.features.hog._assemble``: row bands of shifted slices, then
    :func:`l2hys`."""
    H, W = out.shape[:2]
    for y0 in range(0, H, _BAND):
        m = min(_BAND, H - y0)
        buf = np.empty((m, W, out.shape[2]), dtype=np.float32)
        for a in range(2):
            for b in range(2):
                k = _NBINS * (2 * a + b)
                r0, c0 = y0 + first + _CELL * a, first + _CELL * b
                buf[:, :, k:k + _NBINS] = votes[r0:r0 + m, c0:c0 + W]
        l2hys(buf)
        out[y0:y0 + m] = buf
    return out


# ---------------------------------------------------------------- SIFT
def lowe_normalise(v):
    """In place: Lowe normalisation of the descriptors (last axis) with norm > 1 (divide by the
    norm, clip at 0.2, renormalise), as ``chm.features.sift._assemble`` does per pixel.

    Masks instead of fancy indexing (no gather/scatter of the rows).
    """
    norm = np.sqrt(np.einsum("...k,...k->...", v, v))
    big = norm > 1.0
    if not big.any():
        return
    v *= np.where(big, 1.0 / np.maximum(norm, 1.0), 1.0)[..., None]
    np.minimum(v, 0.2, out=v, where=big[..., None])
    norm = np.sqrt(np.einsum("...k,...k->...", v, v))
    v *= np.where(big, 1.0 / np.maximum(norm, 1e-30), 1.0)[..., None]


def sift_assemble_reference(channels, pad, samples, out):
    """Plain numpy reference for ``chm.features.sift._assemble``: row bands of shifted slices, then
    :func:`lowe_normalise`."""
    H, W = out.shape[:2]
    for y0 in range(0, H, _BAND):
        m = min(_BAND, H - y0)
        buf = np.empty((m, W, out.shape[2]), dtype=np.float32)
        for ix, dx in enumerate(samples):
            for iy, dy in enumerate(samples):
                k = _NANGLES * (len(samples) * ix + iy)
                buf[:, :, k:k + _NANGLES] = channels[pad + y0 + dy:pad + y0 + dy + m, pad + dx:pad + dx + W]
        lowe_normalise(buf)
        out[y0:y0 + m] = buf
    return out


# ---------------------------------------------------------------- Haar
def contrasts_reference(ii, top, out):
    """Plain numpy reference for ``chm.features.haar._contrasts`` (the same float64 operations in
    the same order, so the same values)."""
    H, W = out.shape[:2]

    def box(r0, r1, c0, c1):
        """Sums of padded[y+r0 : y+r1, x+c0 : x+c1] for all (y, x)."""
        return (ii[r1:r1 + H, c1:c1 + W] - ii[r0:r0 + H, c1:c1 + W]
                - ii[r1:r1 + H, c0:c0 + W] + ii[r0:r0 + H, c0:c0 + W])

    left = top                     # same offset for columns
    bottom, right = top + _HAAR_SIZE, left + _HAAR_SIZE
    total = box(top, bottom, left, right)
    lhalf = box(top, bottom, left, left + _HAAR_HALF)
    thalf = box(top, top + _HAAR_HALF, left, right)
    # right - left = total - 2*left half (same for bottom - top)
    denom = total + _HAAR_EPS
    valid = total > 0
    out[:, :, 0] = np.where(valid, (total - 2.0 * lhalf) / denom, 0.0)
    out[:, :, 1] = np.where(valid, (total - 2.0 * thalf) / denom, 0.0)
    return out


# ---------------------------------------------------------------- stencil
def gather_reference(padded, pad, offsets, out):
    """Plain numpy reference for ``chm.features.stencil.gather``: one shifted slice per map and
    offset."""
    padded, offsets = np.asarray(padded), np.asarray(offsets)
    if padded.ndim == 2:
        padded, offsets = padded[None], offsets[None]
    H, W = out.shape[:2]
    n = offsets.shape[1]
    for b in range(len(padded)):
        for k, (dy, dx) in enumerate(offsets[b]):
            out[:, :, b * n + k] = padded[b, pad + dy:pad + dy + H, pad + dx:pad + dx + W]
    return out
