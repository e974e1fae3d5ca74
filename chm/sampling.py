"""Spatial-loss centres for SGD: fresh 3 x 3 neighbourhoods for every epoch.

The unsupervised loss of the paper (eq. 2, 7) sums over *every* pixel of the training images.
SGD estimates it with ``spatial_rate`` x (labelled pixels) centres per epoch; drawing them
afresh for every epoch, uniformly over all interior pixels of all training images, makes the
estimate unbiased and lets each epoch see different pixels (a fixed pool would optimise the
loss on those pixels only).

A sampler has one method, ``draw(rng, n) -> (rows, neighbourhoods, weights)``: ``rows`` the
feature rows of the centres' neighbourhoods (float32, already normalised like the training
rows), ``neighbourhoods`` (n, 9) indices into ``rows`` (row-major 3 x 3), ``weights`` the
per-centre stencil weights of a contrast-sensitive loss, or None.
"""

import numpy as np

from features import stencil_offsets

__all__ = ["NeighbourhoodPool", "ImageCentres", "stencil_rows"]


def stencil_rows(m, flat, radius, dilation=1):
    """``features.stencil(m, radius, dilation=dilation)`` at the flat positions ``flat`` only."""
    offs = stencil_offsets(radius) * dilation
    p = radius * dilation
    pad = np.pad(m, p, mode="symmetric")
    ys, xs = np.divmod(flat, m.shape[1])
    return pad[ys[:, None] + p + offs[:, 0], xs[:, None] + p + offs[:, 1]].astype(np.float32)


class NeighbourhoodPool:
    """Centres drawn (with replacement) from a fixed set of neighbourhoods of known rows.

    Parameters
    ----------
    rows : ndarray, shape (m, d)
    neighbourhoods : ndarray of int, shape (n_centres, 9)
        Indices into ``rows``.
    weights : ndarray, shape (n_centres, n_filters), optional
    """

    def __init__(self, rows, neighbourhoods, weights=None):
        self.rows = np.asarray(rows, dtype=np.float32)
        self.neighbourhoods = np.asarray(neighbourhoods, dtype=np.int64)
        if self.neighbourhoods.ndim != 2 or self.neighbourhoods.shape[1] != 9 or not len(self.neighbourhoods):
            raise ValueError(f"neighbourhoods must be (n_centres >= 1, 9), got {self.neighbourhoods.shape}")
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)

    def draw(self, rng, n):
        idx = rng.integers(0, len(self.neighbourhoods), size=n)
        return self.rows, self.neighbourhoods[idx], None if self.weights is None else self.weights[idx]


class ImageCentres:
    """Fresh centres, uniform over the interior pixels of a set of level images.

    Parameters
    ----------
    bank : list of ndarray, shape (H, W, F)
        Filter-bank features of each image (memory-mapped arrays are read row by row).
    contexts : list of list of ndarray
        Context maps of each image at the same size (may be empty lists).
    stencil_spec : (int, list of int)
        Context stencil radius and one dilation per context map.
    offset, scale : ndarray, shape (d,)
        Normalisation of the training rows: ``(x - offset) / scale``.
    images : list of ndarray, optional
        The level images, for the per-centre weights of a contrast-sensitive ``loss``.
    loss : SpatialLoss, optional
    """

    def __init__(self, bank, contexts, stencil_spec, offset, scale, images=None, loss=None):
        self.bank, self.contexts = bank, contexts
        self.radius, self.dilations = stencil_spec
        self.offset = np.asarray(offset, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.images, self.loss = images, loss
        sizes = np.array([max(h - 2, 0) * max(w - 2, 0) for h, w, _ in (b.shape for b in bank)], dtype=float)
        if sizes.sum() == 0:
            raise ValueError("no image has an interior pixel (all are narrower than 3 px)")
        self.p = sizes / sizes.sum()
        self._weighted = loss is not None and loss.contrast is not None
        if self._weighted and images is None:
            raise ValueError(f"the {loss.name!r} loss needs the images")
        self._sigma = None
        if self._weighted:
            from .mrf import default_sigma

            self._sigma = [default_sigma(im) for im in images]

    def draw(self, rng, n):
        counts = rng.multinomial(n, self.p)
        dy, dx = np.divmod(np.arange(9), 3)
        rows, weights = [], []
        for i in np.flatnonzero(counts):
            h, w, f = self.bank[i].shape
            ys = rng.integers(1, h - 1, size=counts[i])
            xs = rng.integers(1, w - 1, size=counts[i])
            flat = ((ys[:, None] + dy - 1) * w + (xs[:, None] + dx - 1)).ravel()
            block = [np.asarray(self.bank[i].reshape(h * w, f)[flat], dtype=np.float32)]
            block += [stencil_rows(c, flat, self.radius, d) for c, d in zip(self.contexts[i], self.dilations)]
            rows.append(np.concatenate(block, axis=1) if len(block) > 1 else block[0])
            if self._weighted:
                weights.append(self.loss.centre_weights(self.images[i], ys, xs, sigma=self._sigma[i]))
        X = np.concatenate(rows)
        X -= self.offset
        X /= self.scale
        return X, np.arange(9 * n, dtype=np.int64).reshape(n, 9), np.concatenate(weights) if self._weighted else None
