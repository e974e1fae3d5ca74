"""Sparse labels from dense masks: the seed paper's supervision of N random pixels per image.

Two click protocols: ``"uniform"`` (the paper's: N pixels drawn uniformly at random, whatever
their class) and ``"balanced"`` (a user clicking every class in view: N split evenly over the
classes present in the image). :func:`sample_strokes` paints short strokes instead, as a user
does with a brush (the napari plugin's benchmark and screenshot).
"""

import numpy as np
from scipy import ndimage

__all__ = ["CLICK_PROTOCOLS", "sample_sparse_labels", "sample_strokes"]

#: The click protocols of :func:`sample_sparse_labels`.
CLICK_PROTOCOLS = ("uniform", "balanced")


def sample_sparse_labels(masks, n_per_image, rng=None, ignore=None, protocol="uniform"):
    """Keep the labels of ``n_per_image`` random pixels per image.

    ``protocol="uniform"`` is the seed paper's sparse supervision: pixels are drawn uniformly
    without replacement, independently of their class (any number of classes).
    ``protocol="balanced"`` models a user who clicks every class in view: each of the K'
    classes present in the image gets ``n_per_image // K'`` pixels, drawn uniformly within the
    class; the remainder ``n_per_image % K'`` goes one pixel each to classes chosen at random
    (by ``rng``); a class with fewer pixels than its share gives all it has and the rest is
    shared among the other classes the same way.

    Parameters
    ----------
    masks : sequence of array_like, each shape (H, W)
        Dense label maps with classes ``0 .. K-1`` (bool is read as 0/1).
    n_per_image : int
        Labelled pixels per image, ``0 <= n_per_image <= H * W``.
    rng : numpy.random.Generator or int or None, optional
        Random generator or seed; the same seed gives the same draw. One
        generator is used for all images in order.
    ignore : int or None, optional
        A mask value that is no class (e.g. -1 for the unknown pixels of
        :func:`load_stanford_background`): such pixels are never drawn, and
        ``n_per_image`` counts among the others; an image with fewer
        pixels of a class than that (SIFT Flow has wholly unlabelled ones)
        keeps all it has.
    protocol : {"uniform", "balanced"}, optional
        How the pixels are chosen (above); default "uniform", whose draws are those of the
        versions before ``protocol`` existed (same seed, same pixels).

    Returns
    -------
    list of ndarray of int8 (int16 if K > 128)
        Same shapes as ``masks``: the mask value at the drawn pixels and -1
        (unlabelled) everywhere else.

    Raises
    ------
    ValueError
        ``n_per_image`` exceeds an image's pixel count, a mask is not 2-D,
        or a mask holds negative values other than ``ignore`` (-1 is
        reserved for unlabelled); or an unknown ``protocol``.
    """
    if isinstance(n_per_image, bool) or not isinstance(n_per_image, (int, np.integer)):
        raise TypeError(f"n_per_image must be an integer, got {n_per_image!r}")
    if n_per_image < 0:
        raise ValueError(f"n_per_image must be >= 0, got {n_per_image}")
    if protocol not in CLICK_PROTOCOLS:
        raise ValueError(f"protocol must be one of {CLICK_PROTOCOLS}, got {protocol!r}")
    rng = np.random.default_rng(rng)
    out = []
    for i, m in enumerate(masks):
        m = np.asarray(m)
        if m.ndim != 2:
            raise ValueError(f"mask {i} must be 2-D, got shape {m.shape}")
        if m.dtype != bool and not np.issubdtype(m.dtype, np.integer):
            raise ValueError(f"mask {i} must hold integer classes, got dtype {m.dtype}")
        known = np.arange(m.size) if ignore is None else np.flatnonzero(m.ravel() != ignore)
        if n_per_image > m.size:
            raise ValueError(
                f"mask {i} has {m.size} pixels, fewer than n_per_image={n_per_image}"
            )
        top = int(m.max()) if m.size else 0
        if known.size and m.ravel()[known].min() < 0:
            raise ValueError(f"mask {i} holds negative values; -1 means unlabelled "
                             "(pass ignore=-1 for masks whose -1 means 'no class')")
        if top > np.iinfo(np.int16).max:
            raise ValueError(f"mask {i} has class {top}, too large for int16")
        dtype = np.int8 if top <= np.iinfo(np.int8).max else np.int16
        if protocol == "uniform":
            idx = known[rng.choice(known.size, size=min(n_per_image, known.size), replace=False)]
        else:
            idx = _balanced(m.ravel(), known, n_per_image, rng)
        lab = np.full(m.shape, -1, dtype=dtype)
        lab.flat[idx] = m.flat[idx]
        out.append(lab)
    return out


def _balanced(flat, known, n, rng):
    """Pixel indices of one balanced draw: ``n`` split over the classes of ``flat[known]``."""
    values = flat[known]
    classes, counts = np.unique(values, return_counts=True)
    quota = np.zeros(len(classes), dtype=np.int64)
    left, open_ = min(n, int(counts.sum())), np.ones(len(classes), dtype=bool)
    while left and open_.any():
        share = left // int(open_.sum())
        full = open_ & (counts <= share)  # too few pixels for an even share: all of them
        if not full.any():
            quota[open_] += share
            extra = rng.choice(np.flatnonzero(open_), size=left - share * int(open_.sum()), replace=False)
            quota[extra] += 1  # every open class has more than `share` pixels: room for one more
            break
        quota[full], open_[full] = counts[full], False
        left -= int(counts[full].sum())
    picks = [known[values == c][rng.choice(int(k), size=int(q), replace=False)]
             for c, k, q in zip(classes, counts, quota) if q]
    return np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)


def sample_strokes(mask, n_per_class, rng=None, length=30, width=3, margin=3, labels=None):
    """Straight brush strokes inside each class of ``mask``, as a user paints them.

    Each stroke starts at a random pixel at least ``margin`` px inside its class (where the class
    is that wide), runs ``length`` px in a random direction with a square brush ``width`` px wide,
    and keeps only the pixels of its class: a user stays within the object.

    Parameters
    ----------
    mask : array_like, (H, W)
        Dense classes 0 .. K-1.
    n_per_class : int
        Strokes per class present in the mask.
    rng : numpy.random.Generator or int or None, optional
    length, width, margin : int, optional
    labels : ndarray, optional
        A label map to add the strokes to, in place (more strokes after a first fit).

    Returns
    -------
    ndarray of int8
        -1 unlabelled, the class on the strokes (``labels`` itself when given).
    """
    mask = np.asarray(mask)
    rng = np.random.default_rng(rng)
    if labels is None:
        labels = np.full(mask.shape, -1, np.int8)
    half = width // 2
    brush = np.arange(-half, width - half)
    t = np.arange(length) - length / 2
    for c in np.unique(mask):
        region = mask == c
        inner = ndimage.binary_erosion(region, iterations=margin) if margin else region
        ys, xs = np.nonzero(inner if inner.any() else region)
        for i in rng.choice(len(ys), size=n_per_class):
            angle = rng.uniform(0, np.pi)
            line_y = np.rint(ys[i] + t * np.sin(angle)).astype(int)
            line_x = np.rint(xs[i] + t * np.cos(angle)).astype(int)
            py = (line_y[:, None, None] + brush[None, :, None]).repeat(width, axis=2).ravel()
            px = (line_x[:, None, None] + brush[None, None, :]).repeat(width, axis=1).ravel()
            ok = (py >= 0) & (py < mask.shape[0]) & (px >= 0) & (px < mask.shape[1])
            py, px = py[ok], px[ok]
            inside = region[py, px]
            labels[py[inside], px[inside]] = c
    return labels
