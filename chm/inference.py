"""Cascade inference: run trained classifiers over whole level images.

Per-image work, as top-level functions so joblib can ship them to any backend. The filter bank
runs once per level; each classifier's contexts come from the maps computed before it in the
same run (chm-reference 1.6).
"""

from threadpoolctl import threadpool_limits

from . import pyramid
from .cache import bank_features
from .contexts import context_features, context_maps

__all__ = ["cascade", "evaluate", "level_map", "predict_image"]


def evaluate(bank_feats, ctx, clf, spec):
    """Classifier output over one level image, from its filter-bank features (H, W, F) and
    context maps; ``spec`` is (radius, dilation per context map)."""
    h, w, f = bank_feats.shape
    blocks = [bank_feats.reshape(h * w, f)]  # a view: the bank block is never copied
    C = context_features(ctx, spec, (h, w))
    if C is not None:
        blocks.append(C)
    return clf.predict_proba(blocks).reshape(h, w)


def level_map(image, l, bank, ctx, clf, spec, cache=None):
    """A training context map. Threaded BLAS rounds the classifier's GEMM differently from one
    thread (1 ulp in about a third of the pixels), and SGD amplifies that: one BLAS thread keeps
    the model the same for any ``n_jobs`` (joblib workers run one thread already)."""
    with threadpool_limits(1, user_api="blas"):
        return evaluate(bank_features(pyramid.downsample_n(image, l), bank, cache), ctx, clf, spec)


def cascade(image, bank, classifiers, schedule, levels, stencils, cache=None):
    """Run the classifiers of ``schedule`` on one image.

    ``stencils`` maps each (stage, level) to its (radius, dilation per context map). Returns the
    map of every (stage, level) and the filter-bank features of every level used.
    """
    imgs = pyramid.pyramid(image, levels)
    bank_feats = {}
    maps = {}
    for s, l in schedule:
        if l not in bank_feats:
            bank_feats[l] = bank_features(imgs[l], bank, cache)
        ctx = context_maps(maps, s, l, levels, imgs[l].shape)
        maps[(s, l)] = evaluate(bank_feats[l], ctx, classifiers[(s, l)], stencils[(s, l)])
    return maps, bank_feats


def predict_image(image, bank, classifiers, schedule, levels, stencils, cache=None):
    """The last classifier's map of one image (see :func:`cascade`)."""
    return cascade(image, bank, classifiers, schedule, levels, stencils, cache)[0][schedule[-1]]
