"""Feature normalisation of the training matrices: robust per-feature scaling.

The scaling is learned on a classifier's training rows and folded into its first-layer weights
afterwards (``clf.fold_affine``), so models act on raw features.
"""

import numpy as np

__all__ = ["normalise", "robust_scaling"]


def robust_scaling(X, bank):
    """Robust per-feature scaling of the filter columns: x -> (x - offset) / scale.

    PyCHM's median-MAD rule maps the median to 0.5 and +-2.5 robust SD to 0 and 1. Features that
    are 0 on most pixels (clipped Gabor responses) have a near-zero MAD, so the scale is floored
    at 4 standard deviations; otherwise rare responses would be blown up 10^4-fold and dominate.
    Intensity and context columns are already in [0, 1] and stay as they are (chm-reference 2.8).

    Parameters
    ----------
    X : ndarray, shape (n, d)
        Training rows: the filter-bank columns of ``bank`` first, then context columns.
    bank : features.FilterBank

    Returns
    -------
    offset, scale : ndarray, shape (d,)
    """
    offset = np.zeros(X.shape[1])
    scale = np.ones(X.shape[1])
    cols = np.ones(X.shape[1], dtype=bool)
    cols[bank.n_features:] = False
    if "intensity" in bank.slices:
        cols[bank.slices["intensity"]] = False
    if cols.any():
        Xc = X[:: -(-len(X) // 200_000), cols].astype(np.float64)  # <= 200k rows estimate it well
        med = np.median(Xc, axis=0)
        s = np.maximum(np.median(np.abs(Xc - med), axis=0) * 1.4826 * 5, Xc.std(axis=0) * 4)
        s[s < 1e-8] = 1.0
        scale[cols] = s
        offset[cols] = med - 0.5 * s
    return offset, scale


def normalise(X, offset, scale, chunk=65536):
    """``X = (X - offset) / scale`` in place and in chunks (X can be gigabytes); returns X."""
    off32, scale32 = offset.astype(np.float32), scale.astype(np.float32)
    for a in range(0, len(X), chunk):
        X[a:a + chunk] = (X[a:a + chunk] - off32) / scale32
    return X
