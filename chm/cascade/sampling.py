"""Training sets of the cascade's classifiers: labelled rows, and spatial-loss centres.

:func:`training_rows` picks, per image and level, the labelled pixels SGD will use (after the
per-class sample caps) and keeps their filter-bank features; :func:`assemble` stacks them with
their context features into the training matrix of one classifier.

Spatial-loss centres for SGD: fresh 3 x 3 neighbourhoods for every epoch.

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

from ..features import stencil_offsets
from ..mrf import default_sigma
from . import pyramid
from .cache import CachedFeatures
from .contexts import context_keys, context_maps, stencil_rows

__all__ = ["NeighbourhoodPool", "ImageCentres", "assemble", "training_rows"]


def training_rows(image, labels, levels, caps, source, seed, pooling="max", n_classes=2):
    """Per level: the labelled pixels SGD will use, their filter-bank features and targets.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        Float image in [0, 1].
    labels : ndarray of int, shape (H, W)
        -1 = unlabelled, 0 .. ``n_classes``-1.
    levels : int
    caps : list of int or None
        Per level, labelled pixels kept per class (at random), or None for all.
    source : chm.cascade.cache.FeatureSource
        The filter bank, through a cache or not.
    seed : int
    pooling : {"max", "mean"}
        Coarse labels: "max" pools to the largest class (two classes: foreground if any) or,
        for K > 2, to the majority class; "mean" adds each coarse pixel's class fractions as
        soft targets.
    n_classes : int

    Returns
    -------
    list of dict, one per level
        ``flat`` (kept pixels, flat indices), ``y`` (their classes), ``X`` (float16 features),
        ``shape`` (level size) and ``soft`` (foreground fraction (two classes), class fractions
        (n, K), or None).
    """
    rng = np.random.default_rng(seed)
    out = []
    img_l = image
    for l in range(levels + 1):
        if l:
            img_l = pyramid.downsample(img_l)
        if n_classes == 2:
            lab = pyramid.maxpool_labels(labels, l).ravel()
        else:
            lab = pyramid.majority_pool_labels(labels, l, n_classes).ravel()
        h, w = img_l.shape[:2]
        flat = np.flatnonzero(lab >= 0)
        if caps[l] is not None and len(flat):  # an image may have no labelled pixel at all
            keep = [rng.permutation(flat[lab[flat] == c])[:caps[l]] for c in np.unique(lab[flat])]
            flat = np.sort(np.concatenate(keep))
        if source.cache is None and source.bank.crops_pay((h, w), len(flat)):
            # a few labelled pixels: their features from crops, not the whole image's bank
            feats = source.bank.at(img_l, *np.divmod(flat, w)).astype(np.float16)
        else:
            feats = source(img_l, scratch_key=("bank", l)).reshape(h * w, -1)[flat].astype(np.float16)
        soft = None
        if pooling == "mean" and l > 0:
            frac = pyramid.pool_label_fractions(labels, l, n_classes)
            soft = frac[:, :, 1].ravel()[flat] if n_classes == 2 else frac.reshape(h * w, n_classes)[flat]
        out.append({"flat": flat, "y": lab[flat].astype(np.int8 if n_classes <= 128 else np.int16), "X": feats,
                    "shape": (h, w), "soft": soft})
    return out


def assemble(rows, maps, s, l, levels, stencil_spec, release=False):
    """Training matrix (float16) of classifier (s, l) over all images.

    Returns X, y and the soft targets (None when unused). ``stencil_spec`` is (radius, dilation
    per context). ``release=True`` (the last classifier, whose output is no one's context)
    empties each image's ``maps`` once its rows are built, so the maps and the matrix are not
    held in full at once.
    """
    radius, dilations = stencil_spec
    n_rows = sum(len(r[l]["y"]) for r in rows)
    n_bank = rows[0][l]["X"].shape[1]
    ctx0 = [maps[0][k] for k in context_keys(s, l, levels)]
    n_ctx = len(stencil_offsets(radius)) * sum(1 if m.ndim == 2 else m.shape[2] for m in ctx0)
    X = np.empty((n_rows, n_bank + n_ctx), dtype=np.float16)  # filled in place: no second copy
    ys, softs, n = [], [], 0
    for r, m in zip(rows, maps):
        r = r[l]
        ctx = context_maps(m, s, l, levels, r["shape"])
        k = len(r["flat"])
        X[n:n + k, :n_bank] = r["X"]
        col = n_bank
        for c, d in zip(ctx, dilations):
            block = stencil_rows(c, r["flat"], radius, d)
            X[n:n + k, col:col + block.shape[1]] = block
            col += block.shape[1]
        n += k
        if release:
            m.clear()
        ys.append(r["y"])
        softs.append(r["soft"])
    soft = None if softs[0] is None else np.concatenate(softs)
    return X, np.concatenate(ys), soft


class NeighbourhoodPool:
    """Centres drawn (with replacement) from a fixed set of neighbourhoods of known rows.

    Parameters
    ----------
    rows : ndarray, shape (m, d)
        float16 rows are kept as they are (the K-class classifier converts per mini-batch).
    neighbourhoods : ndarray of int, shape (n_centres, 9)
        Indices into ``rows``.
    weights : ndarray, shape (n_centres, n_filters), optional
    """

    def __init__(self, rows, neighbourhoods, weights=None):
        rows = np.asarray(rows)
        self.rows = rows if rows.dtype in (np.float16, np.float32) else rows.astype(np.float32)
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
    bank : list of ndarray, shape (H, W, F), or of CachedFeatures
        Filter-bank features of each image (memory-mapped arrays are read row by row; a
        :class:`chm.cascade.cache.CachedFeatures` is mapped for the length of a draw only).
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
            feats = self.bank[i].open() if isinstance(self.bank[i], CachedFeatures) else self.bank[i]
            block = [np.asarray(feats.reshape(h * w, f)[flat], dtype=np.float32)]
            del feats  # unmapped: its pages leave this process's memory
            block += [stencil_rows(c, flat, self.radius, d) for c, d in zip(self.contexts[i], self.dilations)]
            rows.append(np.concatenate(block, axis=1) if len(block) > 1 else block[0])
            if self._weighted:
                weights.append(self.loss.centre_weights(self.images[i], ys, xs, sigma=self._sigma[i]))
        X = np.concatenate(rows)
        X -= self.offset
        X /= self.scale
        return X, np.arange(9 * n, dtype=np.int64).reshape(n, 9), np.concatenate(weights) if self._weighted else None
