"""Losses on the classifier output: the supervised squared error and spatial losses.

A *spatial loss* (paper section 3) penalises a function of the n x n neighbourhood
of every pixel of the output probability map. Every spatial loss here has the form

    E_U = sum_k sum_f rho( s_f . p(k) )

where ``p(k)`` is the vectorised 3 x 3 neighbourhood (row-major) of centre pixel k,
``s_f`` are linear stencils and ``rho`` is a penalty. Its subgradient with respect to
the neighbourhood is

    dE_U / dp_i = sum_f rho'(s_f . p) s_f[i]                       (paper eq. 15)

which is all an SGD kernel has to ask the loss for: the *coefficients* of the pixels it
touched. The total-variation loss of the paper (eq. 8-15) is ``rho = |.|`` with the two
Sobel stencils of eq. 11; a curvilinear/Hessian loss is another set of stencils.

Borders: only centres whose whole 3 x 3 neighbourhood lies inside the image count
("valid" positions), so no padding value ever enters the loss.
"""

import numpy as np
from scipy import ndimage

__all__ = ["SOBEL_X", "SOBEL_Y", "SpatialLoss", "TV", "squared_error", "get_spatial_loss"]

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
    """

    def __init__(self, stencils, penalty="l1", name="custom"):
        stencils = np.asarray(stencils, dtype=np.float64)
        if stencils.ndim != 3 or stencils.shape[1:] != (3, 3):
            raise ValueError(f"stencils must have shape (n_filters, 3, 3), got {stencils.shape}")
        if penalty not in _PENALTIES:
            raise ValueError(f"penalty must be one of {sorted(_PENALTIES)}, got {penalty!r}")
        self.stencils = stencils
        self.penalty = penalty
        self.name = name

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

    def responses(self, prob):
        """Stencil responses at the valid centres: (n_filters, H-2, W-2[, K])."""
        prob = _as_map(prob)
        out = []
        for s in self.stencils:
            w = s if prob.ndim == 2 else s[:, :, None]
            r = ndimage.correlate(prob, w, mode="constant")
            out.append(r[1:-1, 1:-1])
        return np.stack(out)

    def value(self, prob):
        """Loss of a probability map (H, W) or class-probability image (H, W, K).

        For K classes the loss is summed over the class channels (TV of the vector image).
        """
        return float(np.sum(self._rho(self.responses(prob))))

    def gradient(self, prob):
        """Subgradient of :meth:`value` with respect to every pixel of ``prob``."""
        prob = _as_map(prob)
        d = self._drho(self.responses(prob))
        grad = np.zeros_like(prob)
        for s, df in zip(self.stencils, d):
            grad += _scatter(df, s)
        return grad

    def coefficients(self, patch):
        """dE/dp for one neighbourhood ``patch`` (9,) (numpy reference of the kernel)."""
        p = np.asarray(patch, dtype=np.float64).reshape(9)
        s = self.flat_stencils
        return self._drho(s @ p) @ s

    def to_dict(self):
        return {"name": self.name, "penalty": self.penalty, "stencils": self.stencils.tolist()}

    @classmethod
    def from_dict(cls, d):
        return cls(np.asarray(d["stencils"]), d["penalty"], d["name"])

    def __repr__(self):
        return f"SpatialLoss(name={self.name!r}, penalty={self.penalty!r}, n_filters={len(self.stencils)})"


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


_REGISTRY = {"tv": TV}


def get_spatial_loss(spec):
    """Resolve ``"tv"``, a :class:`SpatialLoss`, or a dict from :meth:`SpatialLoss.to_dict`."""
    if isinstance(spec, SpatialLoss):
        return spec
    if isinstance(spec, dict):
        return SpatialLoss.from_dict(spec)
    if isinstance(spec, str) and spec in _REGISTRY:
        return _REGISTRY[spec]()
    raise ValueError(f"unknown spatial loss {spec!r}; use one of {sorted(_REGISTRY)} or a SpatialLoss")
