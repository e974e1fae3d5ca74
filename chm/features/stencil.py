"""Stencil neighbourhood features: raw values at a star of offsets.

The MATLAB CHM ``StencilNeighborhood(r)`` takes the union of the horizontal,
vertical and both diagonal lines of half-length ``r`` through the pixel
(``8r + 1`` offsets). ``intensity`` is the radius-10 stencil of the image (81
features); the CHM cascade also applies the radius-7 stencil (57 features) to
every context probability map (a K-class model: every channel of every map), so
the copy is one numba loop (:func:`gather`) that writes each pixel's row of
features once, contiguously, whatever the number of maps; ``gather_reference``
in tests/_reference/features.py is its plain numpy statement.
"""

import numpy as np
from numba import njit

from ._utils import check_image, pad_symmetric, prepare_out

__all__ = ["stencil_offsets", "stencil", "stencils", "StencilRows", "intensity"]


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
    return stencils([image], radius, [dilation], out=out)


def stencils(images, radius, dilations, *, out=None):
    """:func:`stencil` of several equally shaped maps, side by side in one array.

    Parameters
    ----------
    images : sequence of (H, W) ndarray of float
        The maps (e.g. the context probability maps, channel by channel).
    radius : int
        Stencil radius ``r >= 0`` (the same for every map).
    dilations : sequence of int
        One dilation ``d >= 1`` per map.
    out : (H, W, n_maps * (8r+1)) float32 ndarray, optional
        Where to write the result (may be a non-contiguous view).

    Returns
    -------
    features : (H, W, n_maps * (8r+1)) float32 ndarray
        Map b's stencil in channels ``b * (8r+1) .. (b+1) * (8r+1) - 1``.
    """
    rows = StencilRows(images, radius, dilations)
    out = prepare_out(out, rows.image_shape, rows.shape[1])
    return rows.band(0, rows.image_shape[0], out)


class StencilRows:
    """:func:`stencils` as an (H * W, n) matrix whose rows are computed when sliced.

    A classifier that reads its input a chunk of pixels at a time (``rows[a:b]``) then never
    holds the whole matrix: with K-class context maps it is H * W * 57 * (channels) floats
    (0.5 GB for a 240 x 320 image and 28 channels), written and read again for nothing.

    Parameters
    ----------
    images, radius, dilations
        As in :func:`stencils`.
    """

    def __init__(self, images, radius, dilations):
        images = [np.asarray(im, dtype=np.float32) for im in images]
        if not images or any(im.ndim != 2 or im.shape != images[0].shape for im in images):
            raise ValueError("stencils() needs one or more 2-D maps of equal shape, got shapes "
                             f"{[np.shape(im) for im in images]}")
        if len(dilations) != len(images):
            raise ValueError(f"{len(images)} maps but {len(dilations)} dilations")
        base = stencil_offsets(radius)
        ds = [_check_dilation(d) for d in dilations]
        self.offsets = np.stack([base * d for d in ds])
        # One padding wide enough for the largest dilation: a mirror padding is the same at a
        # given place whatever its width, so the smaller dilations read what their own padding
        # would hold.
        self.pad = int(radius) * max(ds)
        self.padded = np.stack([pad_symmetric(im, self.pad) for im in images])
        self.image_shape = images[0].shape
        self.shape = (images[0].size, len(images) * len(base))
        self.ndim = 2

    def __len__(self):
        return self.shape[0]

    def band(self, y0, y1, out=None):
        """Image rows ``y0 .. y1 - 1``: (y1 - y0, W, n) float32."""
        if out is None:
            out = np.empty((y1 - y0, self.image_shape[1], self.shape[1]), dtype=np.float32)
        return gather(self.padded[:, y0:y1 + 2 * self.pad], self.pad, self.offsets, out)

    def __getitem__(self, key):
        """Rows ``a:b`` (a slice of flat pixel indices, step 1) as an (b - a, n) float32 array."""
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("StencilRows supports only contiguous row slices rows[a:b]")
        a, b, _ = key.indices(self.shape[0])
        if b <= a:
            return np.empty((0, self.shape[1]), dtype=np.float32)
        w = self.image_shape[1]
        y0, y1 = a // w, -(-b // w)
        return self.band(y0, y1).reshape(-1, self.shape[1])[a - y0 * w:b - y0 * w]


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

    ``padded`` is (H + 2 pad, W + 2 pad) with ``offsets`` (n, 2), or a stack of B such maps
    (B, H + 2 pad, W + 2 pad) with ``offsets`` (B, n, 2); then
    ``out[y, x, b * n + k] = padded[b, pad + y + dy_bk, pad + x + dx_bk]``.
    """
    padded = np.asarray(padded, dtype=np.float32)
    offsets = np.asarray(offsets, dtype=np.intp)
    if padded.ndim == 2:
        padded, offsets = padded[None], offsets[None]
    _gather_kernel(padded, int(pad), offsets, out)
    return out


@njit(cache=True, nogil=True)
def _gather_kernel(padded, pad, offsets, out):
    # Pixel by pixel, all maps and offsets in turn: each output row is written once, in order.
    nb, n = offsets.shape[0], offsets.shape[1]
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            c = 0
            for b in range(nb):
                for k in range(n):
                    out[y, x, c] = padded[b, pad + y + offsets[b, k, 0], pad + x + offsets[b, k, 1]]
                    c += 1


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
