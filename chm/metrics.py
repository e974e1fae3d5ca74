"""Segmentation scores.

The seed paper reports the *pooled* pixel error on the Weizmann horse test
set: wrong pixels over all images divided by all pixels, so large images
weigh more than small ones (unlike a mean of per-image errors).

Beside it, the intersection over union per class (:func:`class_iou`), pooled the same way, and
its mean over the classes (:func:`mean_iou`): the pixel error hides a small class that is never
found, the IoU does not.
"""

import numpy as np

__all__ = ["pixel_error", "confusion", "class_iou", "mean_iou"]


def _as_pairs(pred, true, name_pred="pred", name_true="true"):
    """Return matching lists of arrays from single arrays or sequences."""
    single = isinstance(pred, np.ndarray) or isinstance(true, np.ndarray)
    if single:
        preds, trues = [np.asarray(pred)], [np.asarray(true)]
    else:
        preds = [np.asarray(p) for p in pred]
        trues = [np.asarray(t) for t in true]
    if len(preds) != len(trues):
        raise ValueError(
            f"got {len(preds)} {name_pred} arrays but {len(trues)} {name_true} arrays"
        )
    if not preds:
        raise ValueError("no images given")
    for i, (p, t) in enumerate(zip(preds, trues)):
        if p.shape != t.shape:
            where = "" if single else f"image {i}: "
            raise ValueError(
                f"{where}{name_pred} shape {p.shape} != {name_true} shape {t.shape}"
            )
    return preds, trues


def pixel_error(pred_masks, true_masks, ignore=None):
    """Pooled fraction of wrongly labelled pixels (any number of classes).

    Parameters
    ----------
    pred_masks, true_masks : ndarray or sequence of ndarray
        Predicted and true label maps (bool or integer; compared by value,
        so ``True == 1``). Either two arrays or two equally long sequences
        of arrays with pairwise equal shapes.
    ignore : int or None, optional
        A true-mask value that is no class (e.g. -1, the unknown pixels of
        the scene datasets): those pixels count neither as wrong nor in
        the total.

    Returns
    -------
    float
        ``sum_i #(pred_i != true_i) / sum_i size_i`` over the counted pixels.

    Raises
    ------
    ValueError
        Different numbers of images, a shape mismatch (the message names the
        image index), or no pixels at all.

    Examples
    --------
    >>> pixel_error([np.array([1, 0]), np.array([1, 1, 1])],
    ...             [np.array([1, 1]), np.array([1, 1, 1])])
    0.2
    """
    preds, trues = _as_pairs(pred_masks, true_masks, "pred_masks", "true_masks")
    if ignore is None:
        wrong = sum(int(np.count_nonzero(p != t)) for p, t in zip(preds, trues))
        total = sum(t.size for t in trues)
    else:
        wrong = sum(int(np.count_nonzero((p != t) & (t != ignore))) for p, t in zip(preds, trues))
        total = sum(int(np.count_nonzero(t != ignore)) for t in trues)
    if total == 0:
        raise ValueError("the masks contain no pixels" + ("" if ignore is None else f" other than {ignore}"))
    return wrong / total


def confusion(pred, true, n_classes):
    """Pixel confusion matrix pooled over images.

    Parameters
    ----------
    pred, true : ndarray or sequence of ndarray
        Integer (or bool) label maps with values in ``0 .. n_classes-1``,
        as for :func:`pixel_error`.
    n_classes : int
        Number of classes ``K >= 1``.

    Returns
    -------
    ndarray of int64, shape (K, K)
        Entry ``[i, j]`` counts pixels of true class ``i`` predicted as
        class ``j``; the diagonal holds the correct pixels.

    Raises
    ------
    ValueError
        Shape mismatch, or labels outside ``0 .. n_classes-1``.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    preds, trues = _as_pairs(pred, true)
    k = int(n_classes)
    out = np.zeros(k * k, dtype=np.int64)
    for i, (p, t) in enumerate(zip(preds, trues)):
        for name, a in (("pred", p), ("true", t)):
            if a.dtype != bool and not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"image {i}: {name} labels must be integers, got {a.dtype}")
            if a.size and (a.min() < 0 or a.max() >= k):
                raise ValueError(
                    f"image {i}: {name} labels must lie in 0..{k - 1}, "
                    f"got {int(a.min())}..{int(a.max())}"
                )
        # One bincount over combined codes is far cheaper than K*K masks.
        codes = t.astype(np.int64).ravel() * k + p.astype(np.int64).ravel()
        out += np.bincount(codes, minlength=k * k)
    return out.reshape(k, k)


def class_iou(pred_masks, true_masks, n_classes, ignore=None):
    """Intersection over union of every class, pooled over images.

    IoU_k = TP_k / (TP_k + FP_k + FN_k) with the counts summed over all images
    (like :func:`pixel_error`, not a mean of per-image IoUs).

    Parameters
    ----------
    pred_masks, true_masks : ndarray or sequence of ndarray
        Predicted and true label maps (bool or integer, classes ``0 .. n_classes-1``), as
        for :func:`pixel_error`.
    n_classes : int
        Number of classes ``K >= 1`` (2 for a foreground mask; its IoU is entry 1).
    ignore : int or None, optional
        A true-mask value that is no class (e.g. -1): those pixels are left out, whatever
        their prediction.

    Returns
    -------
    ndarray of float64, shape (K,)
        IoU per class; NaN for a class neither in the truth nor predicted (its IoU is
        undefined, not 0). A class predicted but absent from the truth scores 0.

    Raises
    ------
    ValueError
        As :func:`confusion`: shape mismatch or labels outside ``0 .. n_classes-1``.

    Examples
    --------
    >>> class_iou(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]]), 2)
    array([0.66666667, 0.5       ])
    """
    preds, trues = _as_pairs(pred_masks, true_masks, "pred_masks", "true_masks")
    if ignore is not None:
        keep = [t != ignore for t in trues]
        preds = [p[k] for p, k in zip(preds, keep)]
        trues = [t[k] for t, k in zip(trues, keep)]
    c = confusion(preds, trues, n_classes).astype(np.float64)
    tp = np.diag(c)
    union = c.sum(0) + c.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(pred_masks, true_masks, n_classes, ignore=None):
    """Mean over the classes of :func:`class_iou` (classes with an undefined IoU left out).

    Parameters
    ----------
    pred_masks, true_masks, n_classes, ignore
        As in :func:`class_iou`.

    Returns
    -------
    float
        ``nanmean(class_iou(...))``; NaN if no class occurs at all.

    Examples
    --------
    >>> float(mean_iou(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]]), 2))
    0.5833333333333333
    """
    iou = class_iou(pred_masks, true_masks, n_classes, ignore)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
