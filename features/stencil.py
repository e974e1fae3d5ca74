"""Stencil neighbourhood features: raw values at a star of offsets.

The MATLAB CHM ``StencilNeighborhood(r)`` takes the union of the horizontal,
vertical and both diagonal lines of half-length ``r`` through the pixel
(``8r + 1`` offsets). ``intensity`` is the radius-10 stencil of the image (81
features); the CHM cascade also applies the radius-7 stencil (57 features) to
every context probability map, so :func:`stencil` is written to be cheap: it
pads once and copies one shifted slice per offset (no loop over pixels).
"""

import numpy as np

from ._utils import check_image, pad_symmetric, prepare_out

__all__ = ["stencil_offsets", "stencil", "intensity"]

_BAND = 16    # rows per band in gather()


def stencil_offsets(radius):
    """Offsets of the star-shaped stencil of the MATLAB CHM.

    Parameters
    ----------
    radius : int
        Half-length ``r >= 0`` of the four lines.

    Returns
    -------
    offsets : ndarray of int, shape (8 * radius + 1, 2)
        ``(dy, dx)`` pairs in MATLAB order: rows ``dy = -r .. r``; row 0
        holds every ``dx = -r .. r``, any other row holds
        ``dx = -|dy|, 0, +|dy|``.

    Examples
    --------
    >>> stencil_offsets(1).tolist()
    [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 0], [0, 1], [1, -1], [1, 0], [1, 1]]
    """
    r = _check_radius(radius)
    rows = []
    for dy in range(-r, r + 1):
        dxs = range(-r, r + 1) if dy == 0 else (-abs(dy), 0, abs(dy))
        rows.extend((dy, dx) for dx in dxs)
    return np.array(rows, dtype=np.intp).reshape(-1, 2)


def stencil(image, radius, *, dilation=1, out=None):
    """Values of ``image`` at the stencil offsets around every pixel.

    Parameters
    ----------
    image : (H, W) ndarray of float
        Image or probability map (values are not range-checked, so bicubic
        overshoot of context maps is kept as is).
    radius : int
        Stencil radius ``r >= 0``.
    dilation : int
        Spacing ``d >= 1`` of the offsets: ``(d dy, d dx)``. A map upsampled
        from level j by pixel replication is sampled at its own pixel
        spacing with ``d = 2**j``.
    out : (H, W, 8r+1) float32 ndarray, optional
        Where to write the result (may be a non-contiguous view).

    Returns
    -------
    features : (H, W, 8r+1) float32 ndarray
        ``features[y, x, k] = padded[y + d dy_k, x + d dx_k]`` with edge-including
        mirror padding (numpy ``'symmetric'``, MATLAB ``padReflect``), offsets
        as in :func:`stencil_offsets`.
    """
    image = check_image(image)
    d = _check_dilation(dilation)
    offsets = stencil_offsets(radius) * d
    out = prepare_out(out, image.shape, len(offsets))
    pad = int(radius) * d
    gather(pad_symmetric(image, pad), pad, offsets, out)
    return out


def intensity(image, *, out=None):
    """Intensity features: the radius-10 stencil of the image (81 features).

    Parameters
    ----------
    image : (H, W) ndarray of float
        Grey image in [0, 1].
    out : (H, W, 81) float32 ndarray, optional
        Where to write the result.

    Returns
    -------
    features : (H, W, 81) float32 ndarray
        See :func:`stencil`.
    """
    return stencil(image, 10, out=out)


def gather(padded, pad, offsets, out):
    """Copy ``padded`` shifted by each offset into the channels of ``out``.

    ``out[y, x, k] = padded[pad + y + dy_k, pad + x + dx_k]``: one slice copy
    per offset and row band, into a small contiguous band buffer that stays in
    cache, then one write per band into the (often strided) output.
    """
    H, W, n = out.shape
    band = np.empty((min(H, _BAND), W, n), dtype=np.float32)
    for y0 in range(0, H, _BAND):
        m = min(_BAND, H - y0)
        buf = band[:m]
        for k, (dy, dx) in enumerate(offsets):
            r0, c0 = pad + y0 + dy, pad + dx
            buf[:, :, k] = padded[r0:r0 + m, c0:c0 + W]
        out[y0:y0 + m] = buf
    return out


def _check_dilation(dilation):
    if isinstance(dilation, (bool, np.bool_)) or not isinstance(dilation, (int, np.integer)) or dilation < 1:
        raise ValueError(f"dilation must be an integer >= 1, got {dilation!r}")
    return int(dilation)


def _check_radius(radius):
    if isinstance(radius, (bool, np.bool_)) or not isinstance(radius, (int, np.integer)):
        raise TypeError(f"radius must be an int, got {type(radius).__name__}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    return int(radius)
