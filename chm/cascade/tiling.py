"""Tiled prediction: a large image predicted a tile at a time, with the whole image's result.

The filter bank of a whole image must fit in memory when it is predicted at once (the default
bank: about 0.9 KB per pixel at full resolution, a third more over the pyramid; a 6000 x 6000
image needs over 40 GB). Here the image is cut into tiles; each is padded with a halo as wide
as the cascade's receptive field (:func:`receptive_radius`), predicted by the per-image path
(:meth:`chm.cascade.spec.FittedCascade.predict_image`), and only its core is kept. Three things
make a tile's core equal to the whole image's map:

* tile origins and halos are multiples of ``2**levels``, so the pyramid of a padded tile halves
  on the whole image's pixel grid at every level;
* the halo reaches every pixel a core pixel's output depends on, through every level's filters,
  halvings, context stencils and upsamplings, so the tile's own borders never reach the core;
* each level image is given its :class:`chm.features.Frame`: the position family reads where the
  tile lies in the whole image, and SIFT divides by the whole level image's peak, which a first,
  cheap pass over the tiles finds (pyramid and pre-smoothing only);
* the user's feature channels, if the model reads any, are cut with the same tiles and halos and
  stacked behind the tile's planes (:meth:`chm.cascade.spec.CascadeSpec.prepare`), so they are
  halved with it; a channel is a per-pixel value and reaches no farther than the halvings do.

What remains is float rounding: Haar's box sums are differences of an integral image that starts
at the tile's corner (about 1e-8 in a feature, 1e-6 in a map of a 1000 x 1000 image), and the
Gabor family's FFTs have other sizes. Memory grows with the tile, not with the image (the image
and the output map aside). Tiles are computed without a feature cache, which keys whole images.
"""

import numpy as np

from ..features import FRAME_SUPPORT, Frame
from .contexts import context_keys, is_fusion
from .pyramid import HALVING_REACH, level_shape, pyramid

__all__ = ["TILE_BYTES", "auto_tile_size", "check_tile_size", "halo", "predict_tiled", "receptive_radius", "tiles"]

#: Bytes of filter-bank features (float32, every level used) that automatic tiling allows a padded
#: tile: an image whose whole bank is larger is tiled. 1 GiB keeps a prediction under about 1.5 GB
#: (the bank's families need temporaries of their own) and the default model's tiles at 648 px,
#: at most (968 / 648)**2 = 2.2 times the work of a whole image (512 MiB: 360 px tiles, up to 3.6
#: times); and every image of the datasets used here (Weizmann gray horses up to 508 x 560,
#: Stanford Background, SIFT Flow) stays whole with either bank, as before, cache included.
TILE_BYTES = 2**30


def _reaches(cascade, stage=None):
    """(stage, level) -> how far, in full-resolution pixels past its ``2**level`` block, a pixel of
    that classifier's output reaches into the image."""
    spec, bank_support = cascade.spec, max(FRAME_SUPPORT[f] for f in cascade.bank.families)
    reach = {}
    for s, l in cascade.schedule(stage):
        # The bank of the level-l image: its filters' support in level-l pixels, and what the
        # halvings that made that image read.
        r = bank_support * 2 ** l + HALVING_REACH * (2 ** l - 1)
        radius, dilations = spec.stencil(s, l)
        for (ks, j), d in zip(context_keys(s, l, spec.levels), dilations):
            if is_fusion(s, l):  # the level-j map, pixel-replicated up to full size
                ctx = reach[(ks, j)] + 2 ** j - 1
            else:  # the level-j map, halved l - j times
                ctx = reach[(ks, j)] + HALVING_REACH * (2 ** l - 2 ** j)
            r = max(r, ctx + radius * d * 2 ** l)  # the stencil's farthest offset, in level-l pixels
        reach[(s, l)] = r
    return reach


def receptive_radius(cascade, stage=None):
    """The cascade's receptive-field radius at full resolution.

    A pixel's output depends on no pixel farther than this many rows or columns away, besides the
    image-wide values a :class:`chm.features.Frame` carries (the image's shape and SIFT peak).
    Derived from the cascade's spec: every level's filter support (:data:`chm.features.FRAME_SUPPORT`)
    and halvings (:data:`chm.cascade.pyramid.HALVING_REACH`), scaled by ``2**level``, and each
    classifier's context stencils on the maps of the classifiers before it, added up along the
    cascade's schedule.

    Parameters
    ----------
    cascade : chm.cascade.spec.FittedCascade
    stage : int, optional
        The output of that stage (as :meth:`chm.CHM.predict_proba`); default the last.

    Returns
    -------
    int
    """
    return _reaches(cascade, stage)[cascade.schedule(stage)[-1]]


def halo(cascade, stage=None):
    """The margin each tile is padded with: :func:`receptive_radius` rounded up to a multiple of
    ``2**levels``, so that padded tiles start on the coarsest level's pixel grid."""
    align = 2 ** cascade.spec.levels
    return -(-receptive_radius(cascade, stage) // align) * align


def check_tile_size(tile_size, levels):
    """Raise ValueError unless ``tile_size`` is None or a positive multiple of ``2**levels``."""
    align = 2 ** levels
    if tile_size is None:
        return
    if isinstance(tile_size, (bool, np.bool_)) or not isinstance(tile_size, (int, np.integer)) \
            or tile_size < 1 or tile_size % align:
        raise ValueError(f"tile_size must be None (tile large images automatically) or a positive multiple of "
                         f"2**levels = {align}, so that the tiles' pyramids halve on the image's pixel grid "
                         f"(e.g. {16 * align}), got {tile_size!r}")


def tiles(shape, tile_size, margin):
    """The tiles of an image of ``shape``, row by row.

    Parameters
    ----------
    shape : tuple of int
        (H, W, ...) of the image.
    tile_size : int
        Side of a tile's core; the last row and column of tiles are cut by the image.
    margin : int
        Halo around each core, cut by the image's border.

    Returns
    -------
    list of (core, padded)
        Each a (row slice, column slice) of the image.
    """
    H, W = shape[:2]
    return [((slice(y, min(y + tile_size, H)), slice(x, min(x + tile_size, W))),
             (slice(max(y - margin, 0), min(y + tile_size + margin, H)),
              slice(max(x - margin, 0), min(x + tile_size + margin, W))))
            for y in range(0, H, tile_size) for x in range(0, W, tile_size)]


def auto_tile_size(cascade, shape, stage=None):
    """The tile side :meth:`chm.CHM.predict_proba` uses when ``tile_size`` is None.

    None (the whole image at once) when the bank of the image's levels fits in :data:`TILE_BYTES`;
    else the largest multiple of ``2**levels`` whose padded tile's bank fits, but at least the
    halo (a model whose halo alone exceeds the budget still computes at most 9 tile areas per
    output area, with memory set by the model, not by the image). None too when a padded tile
    would be as tall and as wide as the image: tiles would cost time and save little memory.
    """
    levels = sorted({l for _, l in cascade.schedule(stage)})
    per_pixel = 4 * cascade.bank.n_features  # float32 features
    whole = per_pixel * sum(int(np.prod(level_shape(shape[:2], l))) for l in levels)
    if whole <= TILE_BYTES:
        return None
    align, margin = 2 ** cascade.spec.levels, halo(cascade, stage)
    side = int(np.sqrt(TILE_BYTES / (per_pixel * sum(4.0 ** -l for l in levels))))
    tile = max((side - 2 * margin) // align * align, margin, align)
    return None if all(tile + 2 * margin >= n for n in shape[:2]) else tile


def predict_tiled(cascade, image, tile_size, stage=None, n_threads=1, channels=None):
    """The map of one image, predicted in tiles: equal to the whole image's up to float rounding.

    Parameters
    ----------
    cascade : chm.cascade.spec.FittedCascade
    image : ndarray, (H, W) or (H, W, 3)
        As :meth:`chm.CHM.predict_proba` takes it (each padded tile is converted on its own).
    tile_size : int
        Side of the tiles' cores, a multiple of ``2**levels``.
    stage : int, optional
        As :meth:`chm.CHM.predict_proba`.
    n_threads : int
        Threads that share each tile (:meth:`chm.cascade.spec.FittedCascade.predict_image`).
    channels : (H, W, E) ndarray or None
        The image's feature channels, when the cascade's bank reads some
        (:func:`chm.features.check_channels`).

    Returns
    -------
    float32 ndarray
        (H, W) P(foreground) or (H, W, K) class probabilities.
    """
    check_tile_size(tile_size, cascade.spec.levels)
    shape = image.shape[:2]
    grid = tiles(shape, tile_size, halo(cascade, stage))
    peaks = _sift_peaks(cascade, image, grid, stage, channels)
    out = None
    for core, padded in grid:
        y0, x0 = padded[0].start, padded[1].start
        frames = [Frame((y0 >> l, x0 >> l), level_shape(shape, l), peaks[l]) for l in range(cascade.spec.levels + 1)]
        p = cascade.predict_image(_prepared_tile(cascade, image, channels, padded), stage, None, n_threads, frames)
        if out is None:
            out = np.empty(shape + p.shape[2:], dtype=np.float32)
        out[core] = p[core[0].start - y0:core[0].stop - y0, core[1].start - x0:core[1].stop - x0]
    return out


def _prepared_tile(cascade, image, channels, window):
    """The padded tile ``window`` of the image, with its feature channels, as the cascade takes it."""
    return cascade.spec.prepare(image[window], None if channels is None else channels[window])


def _sift_peaks(cascade, image, grid, stage, channels=None):
    """Per level, the whole level image's SIFT peak (None where unused, or without SIFT): the
    largest over the tiles' cores, whose level images the halo makes the whole image's."""
    levels = cascade.spec.levels
    peaks = [None] * (levels + 1)
    if "sift" not in cascade.bank.families:
        return peaks
    used = sorted({l for _, l in cascade.schedule(stage)})
    for core, padded in grid:
        imgs = pyramid(_prepared_tile(cascade, image, channels, padded), max(used))
        y0, x0 = padded[0].start, padded[1].start
        for l in used:
            f = 2 ** l  # the core's level-l pixels, in the padded tile's level-l image
            window = (slice((core[0].start - y0) // f, -(-(core[0].stop - y0) // f)),
                      slice((core[1].start - x0) // f, -(-(core[1].stop - x0) // f)))
            p = cascade.bank.sift_peak(imgs[l], window)
            peaks[l] = p if peaks[l] is None else max(peaks[l], p)
    return peaks
