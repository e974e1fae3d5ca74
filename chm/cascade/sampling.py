"""Training sets of the cascade's classifiers: labelled rows, and spatial-loss centres.

:func:`training_rows` picks, per image and level, the labelled pixels SGD will use (after the
per-class sample caps) and keeps their filter-bank features; :func:`assemble` stacks them with
their context features into the training matrix of one classifier.

Spatial-loss centres for SGD: fresh 3 x 3 neighbourhoods for every epoch.

The unsupervised loss of the paper (eq. 2, 7) sums over *every* pixel of the training images.
SGD estimates it with ``spatial_rate`` x (labelled pixels) centres per epoch; drawing them
afresh for every epoch, uniformly over all interior pixels of all training images, makes the
estimate unbiased and lets each epoch see different pixels (a fixed pool would optimise the
loss on those pixels only). All of a fit's centres are drawn before it starts
(:class:`CentrePool`), so the filter bank of each image is computed once for all of them.

A sampler has one method, ``draw(rng, n) -> (rows, neighbourhoods, weights)``: ``rows`` the
feature rows of the centres' neighbourhoods (float32, already normalised like the training
rows), ``neighbourhoods`` (n, 9) indices into ``rows`` (row-major 3 x 3), ``weights`` the
per-centre stencil weights of a contrast-sensitive loss, or None.
"""

import tempfile

import numpy as np

from ..features import stencil_offsets
from ..mrf import default_sigma
from . import pyramid
from .contexts import context_keys, context_maps, stencil_rows

__all__ = ["CentrePool", "ImageCentres", "NeighbourhoodPool", "assemble", "draw_centres", "neighbourhood_features",
           "neighbourhoods", "training_rows"]


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


def draw_centres(shapes, n, rng):
    """``n`` centres i.i.d. uniform over the interior pixels of level images of these ``shapes``.

    Returns
    -------
    index, ys, xs : ndarray of int, shape (n,)
        Each centre's image and position, in the order drawn.
    """
    hs = np.array([h for h, _ in shapes], dtype=np.int64)
    ws = np.array([w for _, w in shapes], dtype=np.int64)
    sizes = (np.maximum(hs - 2, 0) * np.maximum(ws - 2, 0)).astype(float)
    if sizes.sum() == 0:
        raise ValueError("no image has an interior pixel (all are narrower than 3 px)")
    index = rng.choice(len(shapes), size=n, p=sizes / sizes.sum())
    return index, rng.integers(1, hs[index] - 1), rng.integers(1, ws[index] - 1)


def neighbourhoods(ys, xs, width):
    """Flat indices (n, 9) of the centres' 3 x 3 neighbourhoods (row-major) in an image ``width`` wide."""
    dy, dx = np.divmod(np.arange(9), 3)
    return (ys[:, None] + dy - 1) * width + (xs[:, None] + dx - 1)


def neighbourhood_features(features, ys, xs):
    """(n, 9, F) float16 rows of one image's (H, W, F) ``features`` at the centres' neighbourhoods."""
    h, w, f = features.shape
    flat = neighbourhoods(ys, xs, w).ravel()
    return np.asarray(features.reshape(h * w, f)[flat], dtype=np.float16).reshape(len(ys), 9, f)


class CentrePool:
    """Every spatial-loss centre of one level's classifiers, drawn before they train, and the
    filter-bank rows of their neighbourhoods.

    Drawn beforehand, the centres' features are read in one pass over the images (each image's
    bank computed once and dropped), and the fit neither holds nor caches whole images'
    features. The rows live image by image in an anonymous temporary file, mapped only while a
    draw reads them, so they stay out of the process's memory (the system's page cache holds
    them); centres are served in the order drawn.

    Parameters
    ----------
    index, ys, xs : ndarray of int, shape (n,)
        The centres (:func:`draw_centres`), in the order they are served.
    shapes : list of (H, W)
        The level images' sizes.
    n_features : int
        Filter-bank columns; :meth:`write` stores each image's rows.
    """

    def __init__(self, index, ys, xs, shapes, n_features):
        layout = np.argsort(index, kind="stable")  # file position -> drawn position
        self.index, self.ys, self.xs = index[layout], ys[layout], xs[layout]  # image by image
        self.stream = np.empty_like(layout)  # drawn position -> file position
        self.stream[layout] = np.arange(len(layout))
        self.bounds = np.r_[0, np.cumsum(np.bincount(index, minlength=len(shapes)))]
        self.shapes = [tuple(sh) for sh in shapes]
        self._shape = (len(index), 9, int(n_features))
        self._file = tempfile.TemporaryFile(prefix="chm-centres-")
        self._file.truncate(2 * int(np.prod(self._shape)))

    def __len__(self):
        return self._shape[0]

    @property
    def n_features(self):
        """Filter-bank columns of each stored row."""
        return self._shape[2]

    def of_image(self, i):
        """The slice of image ``i``'s centres in :attr:`index`, :attr:`ys`, :attr:`xs`."""
        return slice(int(self.bounds[i]), int(self.bounds[i + 1]))

    def write(self, i, rows):
        """Store image ``i``'s neighbourhood rows, (its centres, 9, F) float16."""
        sl = self.of_image(i)
        rows = np.ascontiguousarray(rows, dtype=np.float16)
        if rows.shape != (sl.stop - sl.start,) + self._shape[1:]:
            raise ValueError(f"image {i} has {sl.stop - sl.start} centres of {self._shape[1:]} rows, got {rows.shape}")
        self._file.seek(2 * sl.start * self._shape[1] * self._shape[2])
        self._file.write(rows.tobytes())
        self._file.flush()  # visible to the draws' maps

    def centres(self, start, stop):
        """(index, ys, xs) of the centres served ``start:stop``."""
        at = self.stream[start:stop]
        return self.index[at], self.ys[at], self.xs[at]

    def features(self, start, stop, out=None):
        """float32 rows (stop - start, 9, F) of the centres served ``start:stop`` (into ``out``)."""
        at = self.stream[start:stop]
        ordered = np.argsort(at)  # read the file in order
        if out is None:
            out = np.empty((len(at),) + self._shape[1:], np.float32)
        mm = np.memmap(self._file, dtype=np.float16, mode="r", shape=self._shape)
        out[ordered] = mm[at[ordered]]
        del mm  # unmapped: its pages leave this process's memory
        return out


class ImageCentres:
    """A classifier's spatial-loss centres: each draw the next ``n`` of a :class:`CentrePool`,
    fresh i.i.d. centres uniform over every interior pixel of the level images (eq. 2).

    The pool was drawn with the fit's random generator, so ``draw``'s ``rng`` is not used.
    Classifiers of one level share the pool: each sampler starts at its first centre.

    Parameters
    ----------
    pool : CentrePool
    contexts : iterable of list of ndarray
        Context maps of each image at its level size (may be empty lists), read once (a
        generator keeps one image's maps at a time).
    stencil_spec : (int, list of int)
        Context stencil radius and one dilation per context map.
    offset, scale : ndarray, shape (d,)
        Normalisation of the training rows: ``(x - offset) / scale``.
    images : list of ndarray, optional
        The level images, for the per-centre weights of a contrast-sensitive ``loss``.
    loss : SpatialLoss, optional
    """

    def __init__(self, pool, contexts, stencil_spec, offset, scale, images=None, loss=None):
        self.pool = pool
        self.radius, self.dilations = stencil_spec
        self.offset = np.asarray(offset, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.images, self.loss = images, loss
        self._weighted = loss is not None and loss.contrast is not None
        if self._weighted and images is None:
            raise ValueError(f"the {loss.name!r} loss needs the images")
        self._sigma = [default_sigma(im) for im in images] if self._weighted else None
        # Each context map of every image, mirror-padded for its stencil, in one (pixels,
        # channels) array: a draw reads the stencils of all its centres in one gather per map.
        # Filled image by image, so that only one image's maps exist besides the arrays.
        pads = [self.radius * d for d in self.dilations]
        self._ctx = []
        for i, maps in enumerate(contexts):
            if not len(maps):
                break
            if not self._ctx:
                for j, (m, p) in enumerate(zip(maps, pads)):
                    hw = np.array([(h + 2 * p, w + 2 * p) for h, w in pool.shapes], dtype=np.int64)
                    sizes = hw[:, 0] * hw[:, 1]
                    # float16, as the labelled rows' context columns (chm.cascade.sampling.assemble)
                    store = np.empty((int(sizes.sum()), 1 if m.ndim == 2 else m.shape[2]), np.float16)
                    self._ctx.append((store, np.r_[0, np.cumsum(sizes)[:-1]], hw[:, 1], p,
                                      stencil_offsets(self.radius) * self.dilations[j]))
            for (store, first, widths, p, _), m in zip(self._ctx, maps):
                padded = np.pad(m, [(p, p), (p, p)] + [(0, 0)] * (m.ndim - 2), mode="symmetric")
                n_px = padded.shape[0] * padded.shape[1]
                store[first[i]:first[i] + n_px] = padded.reshape(n_px, -1)
        self._width = pool.n_features + sum(len(c[4]) * c[0].shape[1] for c in self._ctx)
        self._next = 0

    def draw(self, rng, n):
        a, b = self._next, self._next + n
        if b > len(self.pool):
            raise RuntimeError(f"the fit asked for more than the {len(self.pool)} spatial-loss centres drawn for it")
        self._next = b
        # one (n, 9, d) matrix: the bank's columns, then each map's stencils
        X = np.empty((n, 9, self._width), np.float32)
        col = self.pool.n_features
        self.pool.features(a, b, out=X[:, :, :col])
        index, ys, xs = self.pool.centres(a, b)
        weights = None
        if self._ctx:
            dy, dx = np.divmod(np.arange(9), 3)
            y9, x9 = (ys[:, None] + dy - 1).ravel(), (xs[:, None] + dx - 1).ravel()
            i9 = np.repeat(index, 9)
            for store, first, widths, p, offs in self._ctx:
                w = widths[i9]
                at = (first[i9] + (y9 + p) * w + x9 + p)[:, None] + offs[:, 0] * w[:, None] + offs[:, 1]
                k = len(offs) * store.shape[1]
                # (rows, offsets, channels) -> each channel's stencil in turn, as stencil_rows
                X[:, :, col:col + k] = store[at].transpose(0, 2, 1).reshape(n, 9, k)
                col += k
        if self._weighted:
            weights = np.empty((n, len(self.loss.flat_stencils)))
            for i in np.unique(index):
                sel = np.flatnonzero(index == i)
                weights[sel] = self.loss.centre_weights(self.images[i], ys[sel], xs[sel], sigma=self._sigma[i])
        X = X.reshape(9 * n, self._width)
        X -= self.offset
        X /= self.scale
        return X, np.arange(9 * n, dtype=np.int64).reshape(n, 9), weights
