"""Colour features (18): CIELAB channels smoothed at six scales.

The other families see the luminance only. Colour tells sky from water and grass from trees
where texture does not; region colour at several scales is the colour part of scikit-image's
``multiscale_basic_features``. CIELAB makes distances roughly perceptual and separates lightness
from chroma. Channels are scaled to about [0, 1] (L / 100, a / 200 + 0.5, b / 200 + 0.5) and
Gaussian-smoothed with sigma 0 (raw), 1, 2, 4, 8 and 16 px (edge-including mirror padding);
feature order: channel-major (L at the six scales, then a, then b).
"""

import numpy as np
from scipy import ndimage

from ._utils import prepare_out

__all__ = ["colour", "SIGMAS"]

SIGMAS = (0, 1, 2, 4, 8, 16)
N_FEATURES = 3 * len(SIGMAS)


def check_colour_image(image):
    """Validate an (H, W, 3) float RGB image in [0, 1]; return it as float64."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"colour features need an (H, W, 3) RGB image, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"image must have a real floating dtype with values in [0, 1], got {image.dtype}")
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    return image.astype(np.float64, copy=False)


def colour(image, *, out=None):
    """CIELAB channels at six Gaussian scales.

    Parameters
    ----------
    image : (H, W, 3) ndarray of float
        RGB in [0, 1].
    out : (H, W, 18) float32 ndarray, optional
        Where to write the result (may be a non-contiguous view).

    Returns
    -------
    features : (H, W, 18) float32 ndarray
    """
    from skimage.color import rgb2lab

    image = check_colour_image(image)
    out = prepare_out(out, image.shape[:2], N_FEATURES)
    lab = rgb2lab(np.clip(image, 0.0, 1.0))
    lab[..., 0] /= 100.0
    lab[..., 1:] = lab[..., 1:] / 200.0 + 0.5
    for c in range(3):
        for k, sigma in enumerate(SIGMAS):
            ch = lab[..., c] if sigma == 0 else ndimage.gaussian_filter(lab[..., c], sigma, mode="reflect")
            out[:, :, c * len(SIGMAS) + k] = ch
    return out
