"""Sparse labels from dense masks: the seed paper's supervision of N random pixels per image."""

import numpy as np

__all__ = ["sample_sparse_labels"]


def sample_sparse_labels(masks, n_per_image, rng=None, ignore=None):
    """Keep the labels of ``n_per_image`` random pixels per image.

    This is the seed paper's sparse supervision: pixels are drawn uniformly
    without replacement, independently of their class (any number of classes).

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
        reserved for unlabelled).
    """
    if isinstance(n_per_image, bool) or not isinstance(n_per_image, (int, np.integer)):
        raise TypeError(f"n_per_image must be an integer, got {n_per_image!r}")
    if n_per_image < 0:
        raise ValueError(f"n_per_image must be >= 0, got {n_per_image}")
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
        idx = known[rng.choice(known.size, size=min(n_per_image, known.size), replace=False)]
        lab = np.full(m.shape, -1, dtype=dtype)
        lab.flat[idx] = m.flat[idx]
        out.append(lab)
    return out
