"""Contexts: which output maps each classifier of the cascade sees, and their stencil features.

Classifier (stage s, level l) sees (chm-reference 1.2):

* stage 1 or level > 0: the outputs of the same stage's lower levels, halved down to level l;
* stage >= 2, level 0 (the top-down fusion): every level's output of the previous stage,
  pixel-replicated up to full size.

Each map gives its values at a star stencil of offsets around the pixel (radius 7: 57 values).
A binary cascade's map is P(foreground), one channel. A K-class cascade's map is the K-vector of
class probabilities, compressed to a few channels by a :class:`ContextProjection` (principal
components of the training outputs), so that the context features grow with
min(K - 1, ``max_channels``) rather than with K.
"""

import numpy as np

from ..features import StencilRows, stencil_offsets

from . import pyramid

__all__ = ["ContextProjection", "context_features", "context_keys", "context_maps", "is_fusion", "n_contexts",
           "stencil_rows", "stencil_spec"]


def is_fusion(s, l):
    """Whether classifier (s, l) is a top-down fusion (stage >= 2, level 0): its contexts are the
    previous stage's maps of every level, upsampled; the others' are the same stage's lower
    levels, halved."""
    return s >= 2 and l == 0


def n_contexts(s, l, levels):
    """How many context maps classifier (s, l) sees: every level of the previous stage for the
    top-down fusion, else the same stage's lower levels."""
    return levels + 1 if is_fusion(s, l) else l


def stencil_spec(fusion_context, radius, s, l, levels):
    """(radius, dilation per context map) of classifier (s, l): 2**j for the level-j map of a
    fusion classifier under ``fusion_context="scaled"``, else 1."""
    scaled = fusion_context == "scaled" and is_fusion(s, l)
    return radius, [2 ** j if scaled else 1 for j in range(n_contexts(s, l, levels))]


def context_keys(s, l, levels):
    """The (stage, level) of each map classifier (s, l) sees, in feature order."""
    prev = s - 1 if is_fusion(s, l) else s
    return [(prev, j) for j in range(n_contexts(s, l, levels))]


def context_maps(maps, s, l, levels, shape):
    """Context maps of classifier (s, l) at the level-l ``shape`` (chm-reference 1.2).

    ``maps`` holds the output map (or its compressed channels) of every (stage, level) trained so far.
    """
    if is_fusion(s, l):
        return [pyramid.upsample(maps[k], k[1], shape[:2]) for k in context_keys(s, l, levels)]
    return [pyramid.downsample_n(maps[k], l - k[1]) for k in context_keys(s, l, levels)]


def _channels(m):
    return [m] if m.ndim == 2 else [m[:, :, c] for c in range(m.shape[2])]


def stencil_rows(m, flat, radius, dilation=1):
    """``chm.features.stencil(m, radius, dilation=dilation)`` at the flat positions ``flat`` only.

    A multi-channel map (H, W, c) gives the stencil of each channel in turn: (n, c * (8r + 1)).
    """
    offs = stencil_offsets(radius) * dilation
    h, w = m.shape[:2]
    ys, xs = np.divmod(flat, w)
    # the mirror padding's indices, without padding the whole map for a few rows
    iy, ix = mirror_index(ys[:, None] + offs[:, 0], h), mirror_index(xs[:, None] + offs[:, 1], w)
    out = [ch[iy, ix].astype(np.float32) for ch in _channels(m)]
    return out[0] if len(out) == 1 else np.concatenate(out, axis=1)


def mirror_index(idx, n):
    """Indices into a length-``n`` axis (``n`` may be an array broadcast with ``idx``) of numpy's
    ``'symmetric'`` padding, at any depth."""
    m = np.minimum(np.maximum(idx, -1 - idx), 2 * n - 1 - idx)  # one reflection: all a stencil needs
    if m.size and (m.min() < 0 or (m >= n).any()):  # deeper than the axis is long: reflect again
        m = idx % (2 * n)
        m = np.where(m < n, m, 2 * n - 1 - m)
    return m


def context_features(ctx, spec):
    """Stencil features of every pixel of the context maps ``ctx``, or None: a
    :class:`features.StencilRows` (H * W, n) whose rows are computed when a classifier slices it.

    ``spec`` is (radius, dilation per map); channels of a map follow each other, as in
    :func:`stencil_rows`.
    """
    if not ctx:
        return None
    radius, dilations = spec
    blocks = [(ch, d) for c, d in zip(ctx, dilations) for ch in _channels(c)]
    return StencilRows([ch for ch, _ in blocks], radius, [d for _, d in blocks])


class ContextProjection:
    """Compression of K-class probability maps to their leading principal components.

    A K-vector of probabilities lies in a (K - 1)-dimensional simplex, and a classifier's outputs
    over real images fill few of its directions: most pixels are one of a few common classes.
    Projecting onto the top ``n_channels`` principal directions of the training outputs keeps
    what the next classifiers can use and makes their context features independent of K
    (``benchmarks/scenes_budget.py`` measures the trade-off).

    Parameters
    ----------
    mean : ndarray, shape (K,)
    components : ndarray, shape (c, K)
        Orthonormal rows.
    """

    def __init__(self, mean, components):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.components = np.asarray(components, dtype=np.float32)

    @classmethod
    def fit(cls, samples, max_channels):
        """Principal components of probability vectors ``samples`` (n, K): min(K - 1, max_channels)."""
        samples = np.asarray(samples, dtype=np.float64)
        k = samples.shape[1]
        c = max(1, min(k - 1, int(max_channels)))
        mean = samples.mean(axis=0)
        _, _, vt = np.linalg.svd(samples - mean, full_matrices=False)
        comps = vt[:c]
        # A fixed sign per component (largest entry positive), so equal data give equal files.
        comps *= np.sign(comps[np.arange(c), np.abs(comps).argmax(axis=1)])[:, None]
        return cls(mean, comps)

    @property
    def n_channels(self):
        return len(self.components)

    def transform(self, proba):
        """(..., K) probabilities -> (..., c) float16 channels (half the memory of float32; the
        context features of training and of prediction both pass through it)."""
        return ((np.asarray(proba, dtype=np.float32) - self.mean) @ self.components.T).astype(np.float16)

    def to_arrays(self):
        return {"ctx_mean": self.mean, "ctx_components": self.components}

    @classmethod
    def from_arrays(cls, arrays):
        return cls(arrays["ctx_mean"], arrays["ctx_components"])
