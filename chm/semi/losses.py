"""Losses on the classifier output: the supervised squared error and spatial losses.

A *spatial loss* (paper section 3) penalises a function of the n x n neighbourhood
of every pixel of the output probability map. Every spatial loss here has the form

    E_U = sum_k sum_f w_kf rho( s_f . p(k) )

where ``p(k)`` is the vectorised 3 x 3 neighbourhood (row-major) of centre pixel k,
``s_f`` are linear stencils, ``rho`` is a penalty and ``w_kf >= 0`` are per-centre weights
(1 unless the loss takes them from the image). Its subgradient with respect to the
neighbourhood is

    dE_U / dp_i = sum_f w_kf rho'(s_f . p) s_f[i]                  (paper eq. 15)

which is all an SGD kernel has to ask the loss for: the *coefficients* of the pixels it
touched. The total-variation loss of the paper (eq. 8-15) is ``rho = |.|`` with the two
Sobel stencils of eq. 11 and unit weights; :func:`ContrastSensitive` compares the centre with
its 8 neighbours, weighted by how alike the image is there (so boundaries along image edges
are cheap); a curvilinear/Hessian loss would be another set of stencils.

Borders: only centres whose whole 3 x 3 neighbourhood lies inside the image count
("valid" positions), so no padding value ever enters the loss.
"""

import numpy as np
from scipy import ndimage

from ..mrf import default_sigma

__all__ = ["SOBEL_X", "SOBEL_Y", "SpatialLoss", "TV", "ContrastSensitive", "squared_error",
           "get_spatial_loss", "map_tv", "paper_alpha_factor"]

# Paper eq. 11 (its "X" derivative runs down the rows).
SOBEL_X = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64)
SOBEL_Y = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)

_PENALTIES = {"l1": 0, "l2": 1}
# |response| below this counts as 0 for the L1 subgradient: a flat region must give sign 0,
# not the sign of a rounding residue (the numba kernel uses the same dead zone).
DEAD_ZONE = 1e-9


def squared_error(f, t):
    """Supervised loss ``0.5 * sum (f - t)**2`` and its derivative ``f - t``.

    Parameters
    ----------
    f, t : array_like
        Classifier outputs and targets.

    Returns
    -------
    loss : float
    dloss : ndarray
        Derivative with respect to ``f``.
    """
    f = np.asarray(f, dtype=np.float64)
    r = f - np.asarray(t, dtype=np.float64)
    return 0.5 * float(np.sum(r * r)), r


class SpatialLoss:
    """A penalty on linear 3 x 3 stencils of the output probability map.

    Parameters
    ----------
    stencils : array_like, shape (n_filters, 3, 3)
        Correlation stencils applied to the probability map.
    penalty : {"l1", "l2"}
        ``rho(r) = |r|`` (total variation) or ``rho(r) = r**2 / 2``.
    name : str
        Name used in model files and reports.
    contrast : float or None
        None: unit weights. A number c > 0 makes the loss contrast-sensitive: stencil f of a
        centre k weighs ``exp(-|I_k - I_q(f)|^2 / (2 (c sigma)^2))`` where q(f) is the pixel the
        stencil compares with the centre (its other non-zero tap) and ``sigma`` the image's RMS
        neighbour difference (:func:`chm.mrf.default_sigma`). Only stencils of the form
        ``a (e_centre - e_q)`` qualify.
    """

    def __init__(self, stencils, penalty="l1", name="custom", contrast=None):
        stencils = np.asarray(stencils, dtype=np.float64)
        if stencils.ndim != 3 or stencils.shape[1:] != (3, 3):
            raise ValueError(f"stencils must have shape (n_filters, 3, 3), got {stencils.shape}")
        if penalty not in _PENALTIES:
            raise ValueError(f"penalty must be one of {sorted(_PENALTIES)}, got {penalty!r}")
        if contrast is not None:
            if not (np.isfinite(contrast) and contrast > 0):
                raise ValueError(f"contrast must be None or a number > 0, got {contrast!r}")
            flat = stencils.reshape(len(stencils), 9)
            if np.any(flat[:, 4] == 0) or np.any((flat != 0).sum(axis=1) != 2) or np.any(flat.sum(axis=1) != 0):
                raise ValueError("a contrast-sensitive loss needs pair stencils a (e_centre - e_q)")
        self.stencils = stencils
        self.penalty = penalty
        self.name = name
        self.contrast = contrast

    @property
    def flat_stencils(self):
        """(n_filters, 9) row-major stencils, as the SGD kernels take them."""
        return np.ascontiguousarray(self.stencils.reshape(len(self.stencils), 9))

    @property
    def penalty_code(self):
        return _PENALTIES[self.penalty]

    def _rho(self, r):
        return np.where(np.abs(r) > DEAD_ZONE, np.abs(r), 0.0) if self.penalty == "l1" else 0.5 * r * r

    def _drho(self, r):
        return np.where(np.abs(r) > DEAD_ZONE, np.sign(r), 0.0) if self.penalty == "l1" else r

    def _partners(self):
        """Flat 3 x 3 index of the pixel each stencil compares with the centre."""
        flat = self.stencils.reshape(len(self.stencils), 9).copy()
        flat[:, 4] = 0
        return np.abs(flat).argmax(axis=1)

    def centre_weights(self, image, ys, xs, sigma=None):
        """Weights ``w_kf`` of the centres (ys, xs) of ``image``: (n, n_filters), or None for unit
        weights. Centres must be interior pixels; ``sigma`` defaults to the image's own."""
        if self.contrast is None:
            return None
        img = np.asarray(image, dtype=np.float64)
        img = img[..., None] if img.ndim == 2 else img
        s = (default_sigma(img) if sigma is None else sigma) * self.contrast
        dy, dx = np.divmod(self._partners(), 3)
        ys, xs = np.asarray(ys)[:, None], np.asarray(xs)[:, None]
        d2 = ((img[ys, xs] - img[ys + dy - 1, xs + dx - 1]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * s * s))

    def weight_maps(self, image, sigma=None):
        """Weights ``w_kf`` of every valid centre of ``image`` (H, W) or (H, W, C), H, W >= 3:
        (n_filters, H-2, W-2), or None for unit weights.

        ``sigma`` defaults to the image's own; give the whole image's when ``image`` is a crop of
        it, and the crop's maps are the image's weights at the crop's valid centres.
        """
        if self.contrast is None:
            return None
        h, w = np.shape(image)[:2]
        ys, xs = np.mgrid[1:h - 1, 1:w - 1]
        cw = self.centre_weights(image, ys.ravel(), xs.ravel(), sigma=sigma)
        return cw.T.reshape(len(self.stencils), h - 2, w - 2)

    def _weight_maps(self, shape, image, sigma=None):
        """Per-stencil weights of every valid centre: (n_filters, H-2, W-2[, 1])."""
        h, w = shape[:2]
        if image is None:
            if self.contrast is not None:
                raise ValueError(f"the {self.name!r} loss is contrast-sensitive: pass the image")
            return np.ones((len(self.stencils), h - 2, w - 2) + (1,) * (len(shape) - 2))
        if np.shape(image)[:2] != (h, w):
            raise ValueError(f"image shape {np.shape(image)} does not match the map's {shape[:2]}")
        wm = self.weight_maps(image, sigma)
        wm = np.ones((len(self.stencils), h - 2, w - 2)) if wm is None else wm
        return wm.reshape(wm.shape + (1,) * (len(shape) - 2))

    def responses(self, prob):
        """Stencil responses at the valid centres: (n_filters, H-2, W-2[, K])."""
        prob = _as_map(prob)
        out = []
        for s in self.stencils:
            w = s if prob.ndim == 2 else s[:, :, None]
            r = ndimage.correlate(prob, w, mode="constant")
            out.append(r[1:-1, 1:-1])
        return np.stack(out)

    def value(self, prob, image=None, sigma=None):
        """Loss of a probability map (H, W) or class-probability image (H, W, K).

        For K classes the loss is summed over the class channels (TV of the vector image).
        ``image`` (H, W) or (H, W, C) is needed by contrast-sensitive losses, and ``sigma`` is
        their contrast scale (:meth:`weight_maps`; default the image's own).
        """
        prob = _as_map(prob)
        return float(np.sum(self._weight_maps(prob.shape, image, sigma) * self._rho(self.responses(prob))))

    def gradient(self, prob, image=None, sigma=None):
        """Subgradient of :meth:`value` with respect to every pixel of ``prob``."""
        prob = _as_map(prob)
        d = self._weight_maps(prob.shape, image, sigma) * self._drho(self.responses(prob))
        grad = np.zeros_like(prob)
        for s, df in zip(self.stencils, d):
            grad += _scatter(df, s)
        return grad

    def coefficients(self, patch, weights=None):
        """dE/dp for one neighbourhood ``patch`` (9,) with stencil ``weights`` (numpy reference
        of the kernel)."""
        p = np.asarray(patch, dtype=np.float64).reshape(9)
        s = self.flat_stencils
        w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
        return (w * self._drho(s @ p)) @ s

    def to_dict(self):
        return {"name": self.name, "penalty": self.penalty, "stencils": self.stencils.tolist(),
                "contrast": self.contrast}

    @classmethod
    def from_dict(cls, d):
        return cls(np.asarray(d["stencils"]), d["penalty"], d["name"], d.get("contrast"))

    def __repr__(self):
        extra = "" if self.contrast is None else f", contrast={self.contrast!r}"
        return (f"SpatialLoss(name={self.name!r}, penalty={self.penalty!r}, "
                f"n_filters={len(self.stencils)}{extra})")


def _as_map(prob):
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim not in (2, 3) or prob.shape[0] < 3 or prob.shape[1] < 3:
        raise ValueError(f"a probability map of shape (H, W) or (H, W, K) with H, W >= 3 is needed, got {prob.shape}")
    return prob


def _scatter(d, s):
    """Add ``d[y, x] * s`` onto each window (y..y+2, x..x+2): the adjoint of a valid correlation."""
    h, w = d.shape[:2]
    out = np.zeros((h + 2, w + 2) + d.shape[2:])
    for dy in range(3):
        for dx in range(3):
            out[dy:dy + h, dx:dx + w] += d * s[dy, dx]
    return out


def TV():
    """The total-variation loss of the paper: L1 of the two Sobel responses (eq. 8-15).

    The stencils are eq. 11 divided by 8, the gain that makes a Sobel response equal the
    derivative of a linear ramp, so the loss is the TV of the map in per-pixel units
    (a unit step costs 0.5 per centre and axis). This only rescales alpha: alpha here equals
    alpha / 8 with the raw eq. 11 stencils.
    """
    return SpatialLoss(np.stack([SOBEL_X, SOBEL_Y]) / 8.0, penalty="l1", name="tv")


def map_tv(p):
    """The total variation of a probability map per pixel, as the TV loss measures it.

    :func:`TV`'s value (eq. 8 with the derivative-normalised Sobel stencils) divided by the
    number of its centres, the pixels whose 3 x 3 neighbourhood lies inside the map: the mean of
    |dp/dy| + |dp/dx| over them, summed over the class channels of a K-class map. 0 for a constant
    map; a unit step across every row costs 1 per row.

    Parameters
    ----------
    p : array_like, shape (H, W) or (H, W, K)
        A probability map (two classes: P(foreground)) or K-class probabilities; H, W >= 3.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros((5, 6)); p[:, 3:] = 1.0
    >>> map_tv(p)  # one unit step per row of 4 centres
    0.25
    """
    p = _as_map(p)
    return TV().value(p) / ((p.shape[0] - 2) * (p.shape[1] - 2))


def ContrastSensitive(penalty="l1", contrast=1.0):
    """A contrast-sensitive pairwise loss: each centre against its 8 neighbours.

    ``E = sum_k sum_q exp(-|I_k - I_q|^2 / (2 (contrast sigma)^2)) rho(c_q (p_k - p_q))`` over the
    8 neighbours q of every centre k, with ``c_q`` = 1/2 for the 4 axis neighbours and
    1/(2 sqrt 2) for the diagonal ones (1/distance, halved because every pair is seen from both
    ends), and ``sigma`` the image's RMS neighbour difference. A label change costs little where
    the image changes too, so the loss smooths the map inside regions without paying for
    boundaries on image edges; ``penalty="l1"`` is a contrast-weighted TV, ``"l2"`` the graph
    Laplacian of label propagation. This is the local-window, contrast-sensitive Potts
    relaxation of Tang et al. (ECCV 2018) and Obukhov et al. (2019) in the form of eq. 15.
    """
    stencils = []
    for q in (0, 1, 2, 3, 5, 6, 7, 8):
        s = np.zeros(9)
        c = 0.5 * (2 ** -0.5 if q in (0, 2, 6, 8) else 1.0)
        s[4], s[q] = c, -c
        stencils.append(s.reshape(3, 3))
    return SpatialLoss(np.stack(stencils), penalty=penalty, name="contrast", contrast=contrast)


_REGISTRY = {"tv": TV, "contrast": ContrastSensitive}


def get_spatial_loss(spec):
    """Resolve ``"tv"``, a :class:`SpatialLoss`, or a dict from :meth:`SpatialLoss.to_dict`."""
    if isinstance(spec, SpatialLoss):
        return spec
    if isinstance(spec, dict):
        return SpatialLoss.from_dict(spec)
    if isinstance(spec, str) and spec in _REGISTRY:
        return _REGISTRY[spec]()
    raise ValueError(f"unknown spatial loss {spec!r}; use one of {sorted(_REGISTRY)} or a SpatialLoss")


def paper_alpha_factor(labels, supervised="squared_error"):
    """The factor f with ``alpha = f * alpha_paper``: this library's weight of a spatial loss for
    the paper's weight of the same objective.

    The paper minimises sums (eq. 1, 2): ``sum_S (f - L)^2 + alpha_paper * sum_I E_U``, the first
    over the labelled pixels S, the second over every pixel I of the training images. ``chm``
    weighs means: ``mean_S loss + alpha * mean_I E_U`` (the supervised loss per labelled pixel;
    the spatial loss per valid 3 x 3 centre, the pixels whose neighbourhood lies inside the
    image). Dividing the paper's objective by ``2 |S|`` (our squared error is
    ``0.5 (f - t)^2``, eq. 1 has no half) gives ours with ``alpha = alpha_paper |I| / (2 |S|)``.
    Weizmann horses at N = 10: about 3,050 (at N = 50: 610).

    Parameters
    ----------
    labels : sequence of array_like of int, shape (H, W)
        The training images' labels at full resolution (the level the loss is added at): >= 0
        labelled, < 0 unlabelled.
    supervised : {"squared_error", "cross_entropy"}
        The supervised loss: the LDNN's squared error (eq. 1, hence the half), or the ConvNet's
        and the K-class networks' cross-entropy, which eq. 1 does not define; for it the factor
        is the ratio of the sums' counts alone, ``|I| / |S|``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> lab = -np.ones((12, 12), int); lab[5, 5] = 1
    >>> paper_alpha_factor([lab])            # 100 centres, 1 label, squared error
    50.0
    """
    if supervised not in ("squared_error", "cross_entropy"):
        raise ValueError(f"supervised must be 'squared_error' or 'cross_entropy', got {supervised!r}")
    labels = [np.asarray(lab) for lab in labels]
    if not labels or any(lab.ndim != 2 for lab in labels):
        raise ValueError("labels must be a non-empty sequence of (H, W) label images")
    n_labelled = sum(int((lab >= 0).sum()) for lab in labels)
    if n_labelled == 0:
        raise ValueError("labels hold no labelled pixel (all < 0)")
    centres = sum(max(0, lab.shape[0] - 2) * max(0, lab.shape[1] - 2) for lab in labels)
    return centres / n_labelled / (2.0 if supervised == "squared_error" else 1.0)
