"""Cascade inference: run trained classifiers over whole level images.

Per-image work, as top-level functions so joblib can ship them to any backend. The filter bank
runs once per level; each classifier's contexts come from the maps computed before it in the
same run (chm-reference 1.6).
"""


from . import pyramid
from ..utils._blas import one_blas_thread
from .contexts import context_features, context_maps

__all__ = ["cascade", "evaluate", "level_map"]


def evaluate(bank_feats, ctx, clf, spec, n_threads=1):
    """Classifier output over one level image, from its filter-bank features (H, W, F) and
    context maps; ``spec`` is (radius, dilation per context map). (H, W) P(foreground) for a
    binary classifier, (H, W, K) class probabilities for a K-class one. The pixels are shared by
    ``n_threads`` threads (the same result for any number)."""
    h, w, f = bank_feats.shape
    blocks = [bank_feats.reshape(h * w, f)]  # a view: the bank block is never copied
    C = context_features(ctx, spec)
    if C is not None:
        blocks.append(C)
    p = clf.predict_proba(blocks, n_threads=n_threads)
    return p.reshape(h, w) if p.ndim == 1 else p.reshape(h, w, -1)


def level_map(image, l, source, ctx, clf, spec, projection=None):
    """A training context map (compressed by ``projection`` if given); ``source`` is the
    :class:`chm.cascade.cache.FeatureSource` of the bank.

    Threaded BLAS rounds the classifier's GEMM differently from one thread (1 ulp in about a
    third of the pixels), and SGD amplifies that: one BLAS thread keeps the model the same for
    any ``n_jobs`` (joblib workers run one thread already).
    """
    with one_blas_thread():
        p = evaluate(source(pyramid.downsample_n(image, l), scratch_key=("bank", l)), ctx, clf, spec)
    return p if projection is None else projection.transform(p)


def cascade(image, source, classifiers, schedule, levels, stencils, projections=None, n_threads=1, reuse=False,
            frames=None):
    """Run the classifiers of ``schedule`` on one image.

    ``source`` is the :class:`chm.cascade.cache.FeatureSource` of the bank; ``stencils`` maps each
    (stage, level) to its (radius, dilation per context map); ``projections`` (K-class models)
    maps each to the :class:`chm.cascade.contexts.ContextProjection` that compresses its output
    into context channels. Returns the map of every (stage, level), compressed where it was only
    a context (the last one is always the probabilities), and the filter-bank features of every
    level used. ``n_threads`` threads compute the bank of the levels (without a cache) and share
    each classifier's pixels. ``reuse``: the bank goes into this thread's reusable buffers
    (:func:`chm.cascade._scratch.scratch`), so the returned features are valid only until the
    next such call. ``frames``: the image is a tile of a larger image, and ``frames[l]`` the
    :class:`chm.features.Frame` of its level-l image (:mod:`chm.cascade.tiling`).
    """
    projections = projections or {}
    imgs = pyramid.pyramid(image, levels)
    used = sorted({l for _, l in schedule})
    keys = [("bank", l) for l in used] if reuse else None
    level_frames = None if frames is None else [frames[l] for l in used]
    bank_feats = dict(zip(used, source.many([imgs[l] for l in used], n_threads, scratch_keys=keys,
                                            frames=level_frames)))
    maps = {}
    for s, l in schedule:
        ctx = context_maps(maps, s, l, levels, imgs[l].shape)
        p = evaluate(bank_feats[l], ctx, classifiers[(s, l)], stencils[(s, l)], n_threads)
        last = (s, l) == schedule[-1]
        maps[(s, l)] = p if last or (s, l) not in projections else projections[(s, l)].transform(p)
    return maps, bank_feats
