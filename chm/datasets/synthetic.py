"""Synthetic data sets for tests, examples and smoke runs (like ``sklearn.datasets.make_blobs``):
noisy binary shapes and K-class colour scenes with their dense masks."""

import numpy as np

__all__ = ["make_scenes", "make_shapes"]


def make_shapes(n_images, shape=(48, 48), noise=0.35, rng=None):
    """Images of 1-3 random rectangles/ellipses (foreground 0.65, background 0.35) plus Gaussian noise.

    Returns
    -------
    images : list of float64 arrays in [0, 1]
    masks : list of uint8 arrays (1 = foreground)
    """
    rng = np.random.default_rng(rng)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    images, masks = [], []
    for _ in range(n_images):
        mask = np.zeros(shape, bool)
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
            ry, rx = rng.uniform(0.1, 0.3) * h, rng.uniform(0.1, 0.3) * w
            if rng.random() < 0.5:
                mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            else:
                mask |= (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        img = np.where(mask, 0.65, 0.35) + rng.normal(scale=noise, size=shape)
        images.append(np.clip(img, 0, 1))
        masks.append(mask.astype(np.uint8))
    return images, masks


def make_scenes(n_images, shape=(48, 64), n_classes=4, noise=0.15, rng=None):
    """Colour images of K-class scenes: horizontal bands (a sky, ground, ...) with a blob in one,
    each class with its own mean colour, plus Gaussian noise.

    Returns
    -------
    images : list of float64 arrays (H, W, 3) in [0, 1]
    masks : list of uint8 arrays (H, W), classes 0 .. n_classes-1
    """
    rng = np.random.default_rng(rng)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    colours = np.random.default_rng(12345).uniform(0.15, 0.85, size=(n_classes, 3))
    images, masks = [], []
    for _ in range(n_images):
        order = rng.permutation(n_classes)
        cuts = np.sort(rng.uniform(0.15, 0.85, size=min(2, n_classes - 1))) * h
        mask = np.full(shape, order[0], dtype=np.uint8)
        for c, cut in zip(order[1:], cuts):
            mask[yy >= cut + rng.normal(0, 2, size=w)[None, :]] = c
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.1, 0.25) * h, rng.uniform(0.1, 0.25) * w
        mask[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = order[-1]
        img = colours[mask] + rng.normal(scale=noise, size=shape + (3,))
        images.append(np.clip(img, 0, 1))
        masks.append(mask)
    return images, masks
