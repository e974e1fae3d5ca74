"""Dense HOG features (36): one 2x2-cell block of 9-bin histograms per pixel.

MATLAB CHM runs a full Dalal-Triggs HOG on the 15x15 patch of every pixel
(one HOG call per pixel, gradients zero-padded inside each patch). Here we use
the dense formulation of PyCHM's own models ("hog_new", 30-35x faster),
with soft orientation binning where PyCHM bins hard:

* gradients: centred differences ``[-1, 0, 1]`` on the symmetric-padded image
  (real neighbours, so no artificial gradients at the patch border), ``dy``
  positive upward as in MATLAB's HoG.cpp;
* 9 unsigned orientation bins over [0, pi), bin centres at (k + 1/2) * 20 deg,
  each pixel voting its magnitude *linearly split between the two nearest
  bins* (the orientation part of Dalal-Triggs' trilinear vote; it costs one
  extra vote and makes the features vary smoothly with the angle);
* cells: 8x8 box sums of each orientation's vote map (hard spatial binning,
  which is what makes the dense version a handful of box filters instead of
  one HOG per pixel; the spatial part of the trilinear vote is dropped);
* block: the 2x2 cells around the pixel, rows/columns ``-7..0`` and ``1..8``
  (a 16x16 support, half a pixel off-centre in the same direction as the
  Haar window and the SIFT bins);
* L2-Hys normalisation: ``v / sqrt(|v|^2 + eps^2)``, clip at 0.2, renormalise.

Order of the 36 values: cell row, cell column, bin (as MATLAB). A flat region
has an all-zero histogram and gives all-zero features.
"""

import numpy as np
from numba import njit
from scipy import ndimage as ndi

from ._utils import check_image, pad_symmetric, prepare_out

__all__ = ["hog"]

_NBINS = 9
_CELL = 8
_CLIP = 0.2
_EPS = 1e-5          # L2-Hys denominator guard (as skimage)
_PAD = _CELL + 1     # vote-map padding: cells reach 7 rows up, 8 down


def hog(image, *, out=None):
    """Dense HOG: 2x2 cells of 8x8 px, 9 unsigned bins, L2-Hys (clip 0.2).

    Parameters
    ----------
    image : (H, W) ndarray of float
        Grey image in [0, 1].
    out : (H, W, 36) float32 ndarray, optional
        Where to write the result (may be a non-contiguous view).

    Returns
    -------
    features : (H, W, 36) float32 ndarray
        ``features[y, x, 9 * (2 * a + b) + k]`` is bin ``k`` (orientation
        ``(k + 1/2) * 20`` degrees, counter-clockwise from +x with y up) of
        cell ``(a, b)``, which covers rows ``y - 7 + 8a .. y + 8a`` and
        columns ``x - 7 + 8b .. x + 8b``. Values in [0, 1], L2 norm 1
        per pixel except on flat regions, where they are 0.
    """
    image = check_image(image)
    H, W = image.shape
    out = prepare_out(out, image.shape, 4 * _NBINS)

    votes = _orientation_votes(image)               # (H+18, W+18, 9)
    # 8x8 box filter per orientation: running means (double accumulators
    # inside scipy); the votes were pre-scaled by 64 so means are cell sums.
    # With size 8, box i covers votes[i-4 : i+4].
    for axis in (0, 1):
        ndi.uniform_filter1d(votes, _CELL, axis=axis, output=votes)
    np.maximum(votes, 0.0, out=votes)       # drop rounding noise below 0
    # pixel y sits at vote row y + 9; its top cell (image rows y-7..y) is
    # vote rows y+2..y+9, i.e. box y + 6; its bottom cell is box y + 14
    _assemble(votes, _PAD - (_CELL - 1) + _CELL // 2, out)
    return out


@njit(cache=True, nogil=True, fastmath=True)
def _assemble(votes, first, out):
    # The 2 x 2 cells of every pixel gathered and L2-Hys-normalised in a small buffer, each output
    # row written once (one pass over memory instead of numpy's several); float32 sums as numpy's.
    # tests/_reference/features.py holds its numpy reference (hog_assemble_reference).
    H, W, F = out.shape
    nb = votes.shape[2]
    v = np.empty(F, dtype=np.float32)
    eps2 = np.float32(_EPS * _EPS)
    for y in range(H):
        for x in range(W):
            for a in range(2):
                for b in range(2):
                    k = nb * (2 * a + b)
                    for j in range(nb):
                        v[k + j] = votes[y + first + _CELL * a, x + first + _CELL * b, j]
            ss = np.float32(0.0)
            for k in range(F):
                ss += v[k] * v[k]
            inv = np.float32(1.0) / np.sqrt(ss + eps2)
            ss = np.float32(0.0)
            for k in range(F):
                c = min(v[k] * inv, np.float32(_CLIP))
                v[k] = c
                ss += c * c
            inv = np.float32(1.0) / np.sqrt(ss + eps2)
            for k in range(F):
                out[y, x, k] = v[k] * inv


def _orientation_votes(image):
    """Per-bin gradient-magnitude vote maps on the image padded by ``_PAD``."""
    p = pad_symmetric(image.astype(np.float32, copy=False), _PAD + 1)
    gx = p[1:-1, 2:] - p[1:-1, :-2]
    gy = p[:-2, 1:-1] - p[2:, 1:-1]          # positive upward
    mag = np.hypot(gx, gy)
    mag *= _CELL * _CELL                      # see hog(): box means -> sums
    angle = np.arctan2(gy, gx)
    angle %= np.pi                            # unsigned orientation [0, pi)
    pos = angle * (_NBINS / np.pi) - 0.5      # position between bin centres
    lo = np.floor(pos)
    w_hi = pos - lo
    lo = lo.astype(np.intp) % _NBINS          # -1 wraps to bin 8
    hi = (lo + 1) % _NBINS

    votes = np.zeros(mag.shape + (_NBINS,), dtype=np.float32)
    flat = votes.reshape(-1, _NBINS)
    pix = np.arange(flat.shape[0])
    # lo != hi for every pixel, so neither fancy assignment has duplicates
    flat[pix, lo.ravel()] = (mag * (1 - w_hi)).ravel()
    flat[pix, hi.ravel()] = (mag * w_hi).ravel()
    return votes
