"""Per-pixel image features of the CHM (Contextual Hierarchical Model).

Every family maps a 2-D float image ``(H, W)`` (float32/float64, values in
[0, 1], any ``H, W >= 1``) to a channels-last float32 array ``(H, W, k)``;
:class:`FilterBank` stacks a selection of families into one array. Families,
in MATLAB CHM order (476 features in all), then colour and position:

========== === ==========================================================
family      k  what
========== === ==========================================================
haar        2  16x16 half-window contrasts / window sum (integral image)
hog        36  dense HOG: 2x2 cells of 8x8 px, 9 unsigned bins, L2-Hys
edge       49  7x7 neighbourhood of a derivative-of-Gaussian magnitude
gabor     180  5 sigmas x 12 orientations x 3 wavelengths, clipped energy
sift      128  dense SIFT, 4x4 bins x 8 orientations, Lowe normalisation
intensity  81  image values on the radius-10 star stencil
colour     18  CIELAB channels smoothed at 6 scales (colour images only)
position    2  the pixel's relative row and column (any image)
========== === ==========================================================

The first six (:data:`FAMILIES`, the original bank) work on gray images (on an
RGB image's luminance in :class:`FilterBank`); ``colour``
(:data:`COLOUR_FAMILIES`) needs an ``(H, W, 3)`` RGB image; ``position``
(:data:`POSITION_FAMILIES`) uses only the image's shape.

The user's own per-pixel feature images (other microscope channels, another model's output) join
a bank as its last columns: ``FilterBank(families, channels=FeatureChannels(...))``
(:mod:`chm.features.channels`; :meth:`chm.CHM.fit` makes one from its ``channels=``).

:meth:`FilterBank.at` gives the features of a few pixels only, from crops as wide as each family's
:data:`chm.features.bank.SUPPORT` (training reads its sparse labels' features this way). Given a
:class:`Frame` (its origin in a larger image, that image's shape and SIFT peak), the bank of a tile
is the larger image's away from the tile's sides (:data:`FRAME_SUPPORT`; tiled prediction,
:mod:`chm.cascade.tiling`).

:func:`stencil` (any radius) also gives the CHM context features
(``stencil(prob_map, 7)``, 57 per map; :func:`stencils` for several maps at once).

Choices vs the MATLAB CHM (details in each module's docstring):

* padding is the edge-including mirror (numpy ``'symmetric'``) everywhere;
  MATLAB zero-pads the edge filter and SIFT (fake edges at every border) and
  the gradients inside each HOG patch;
* HOG uses the dense formulation (PyCHM's "hog_new": box-filtered cells, real
  neighbours, orientation votes split linearly between the two nearest bins)
  instead of one Dalal-Triggs HOG per 15x15 patch;
* Gabor keeps MATLAB's clipping of each phase response to [0, 1] (it makes
  theta and theta + pi differ) but drops the rounding to 1/255 steps;
* SIFT drops the uint8 rounding after the pre-blur and divides by the image
  maximum only when it is > 0;
* all outputs are float32; no feature standardisation is applied here.
"""

from .channels import FeatureChannels, check_channels
from .bank import ALL_FAMILIES, COLOUR_FAMILIES, FAMILIES, FRAME_SUPPORT, POSITION_FAMILIES, FilterBank, Frame
from .colour import colour
from .edge import edge
from .gabor import gabor
from .haar import haar
from .hog import hog
from .position import position
from .sift import sift
from .stencil import StencilRows, intensity, stencil, stencil_offsets, stencils

__all__ = ["FilterBank", "Frame", "FRAME_SUPPORT", "ALL_FAMILIES", "FAMILIES", "COLOUR_FAMILIES", "POSITION_FAMILIES",
           "FeatureChannels", "check_channels", "colour", "haar", "hog",
           "edge", "gabor", "sift", "intensity", "position", "stencil", "stencil_offsets", "stencils", "StencilRows"]
