"""Between napari's layer data and chm's arrays, with no napari import (so it is tested without Qt).

napari's Labels layers hold 0 = unlabelled and 1 .. K = classes, the convention of chm's label
files; chm's API takes the values - 1. An Image layer is a 2-D image, gray ``(H, W)`` or colour
``(H, W, 3|4)`` (``rgb``), or a stack of them along a leading axis ``(Z, H, W[, 3|4])``, which
the plugin trains and predicts slice by slice with one model. Another Image layer of the image's
size may serve as its feature channels (:func:`channel_slices`; :meth:`chm.CHM.fit`'s ``channels``).
"""

import numpy as np

from chm.io.images import check_image
from chm.io.stacks import labelled_slices

__all__ = ["LayerError", "as_slices", "channel_slices", "class_count", "results", "spatial_shape", "training_slices"]


class LayerError(ValueError):
    """A layer the plugin cannot use as it is; the message says why and what to do."""


def spatial_shape(data, rgb):
    """``(H, W)`` or ``(Z, H, W)``: the image layer's shape without its colour axis."""
    shape = tuple(np.shape(data))
    return shape[:-1] if rgb else shape


def as_slices(data, rgb, name="image"):
    """The 2-D images chm takes, one per slice of the layer: ``(images, is_stack)``.

    uint8, uint16, bool and floats in [0, 1] pass as they are; other numbers (e.g. int16 or
    float microscopy data) are scaled to [0, 1] by the layer's minimum and maximum, one scale for
    the whole stack so that every slice means the same. An alpha channel is dropped.

    Raises
    ------
    LayerError
        A multiscale layer, or one that is neither 2-D nor a 3-D stack.
    """
    if isinstance(data, (list, tuple)):
        raise LayerError(f"'{name}' is a multiscale (pyramid) layer: open its full-resolution level as an image")
    data = np.asarray(data)
    if rgb:
        data = data[..., :3]
    shape = spatial_shape(data, rgb)
    if len(shape) not in (2, 3):
        raise LayerError(f"'{name}' has shape {np.shape(data)}: the plugin takes 2-D images (H, W), (H, W, 3) "
                         "and 3-D stacks (Z, H, W[, 3]); select one channel or time point first")
    data = _unit_range(data)
    slices = [data] if len(shape) == 2 else list(data)
    for i, im in enumerate(slices):
        check_image(im, name=f"'{name}'" + (f" slice {i}" if len(shape) == 3 else ""))
    return slices, len(shape) == 3


def _unit_range(data):
    if data.dtype in (np.uint8, np.uint16, bool):
        return data
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        return data  # check_image names the problem
    lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
    if np.issubdtype(data.dtype, np.floating) and lo >= 0 and hi <= 1:
        return data
    return ((data.astype(np.float32) - lo) / (hi - lo if hi > lo else 1.0)).clip(0, 1)


def channel_slices(data, rgb, shape, name="channels", image_name="image"):
    """The feature channels an Image layer gives each slice of an image: (H, W, E) arrays.

    Parameters
    ----------
    data : array
        The channel layer's data: the image's spatial ``shape``, one channel (or an RGB layer's
        three); raw values of any scale (chm standardises them).
    rgb : bool
        The channel layer is RGB(A): its colour planes are three channels (alpha dropped).
    shape : tuple of int
        The image layer's :func:`spatial_shape`.

    Returns
    -------
    list of ndarray
        One (H, W, E) array per slice of the image (one for a 2-D image).

    Raises
    ------
    LayerError
        A multiscale layer, or one that is not of the image's size.
    """
    if isinstance(data, (list, tuple)):
        raise LayerError(f"'{name}' is a multiscale (pyramid) layer: open its full-resolution level as an image")
    data = np.asarray(data)
    if spatial_shape(data, rgb) != tuple(shape):
        raise LayerError(f"feature-channel layer '{name}' has shape {spatial_shape(data, rgb)} but image "
                         f"'{image_name}' has {tuple(shape)}: choose a layer of the image's size")
    planes = data[..., :3] if rgb else data[..., None]
    return [planes] if len(shape) == 2 else list(planes)


def training_slices(image, rgb, labels, image_name="image", labels_name="labels"):
    """The slices of one (image, labels) pair that hold labels: ``(images, api_labels, indices)``.

    ``api_labels`` are the Labels values - 1 (-1 unlabelled, 0 .. K-1 classes); ``indices`` are
    the slices' positions in a stack (``[0]`` for a 2-D image).

    Raises
    ------
    LayerError
        The labels' shape is not the image's, or the image cannot be used (:func:`as_slices`).
    """
    labels = np.asarray(labels)
    if labels.shape != spatial_shape(image, rgb):
        raise LayerError(f"labels '{labels_name}' have shape {labels.shape} but image '{image_name}' has "
                         f"{spatial_shape(image, rgb)}: paint in a Labels layer of the image's size "
                         "(Layers > New Labels Layer while the image is selected)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise LayerError(f"labels '{labels_name}' hold {labels.dtype} values; a Labels layer holds integers")
    images, _ = as_slices(image, rgb, image_name)
    stack = labels if labels.ndim == 3 else labels[None]
    return labelled_slices(images, stack.astype(np.int16) - 1, f"image '{image_name}'", f"labels '{labels_name}'")


def class_count(labels, names=()):
    """K, the number of classes that ``labels`` (API labels of every training slice) hold.

    Raises
    ------
    LayerError
        No labelled pixel, a single class, or a class between 1 and the largest with no pixel
        (its model would never predict it).
    """
    present = set()
    for lab in labels:
        present.update(np.unique(lab[lab >= 0]).tolist())
    where = f" in {', '.join(repr(n) for n in names)}" if names else ""
    if not present:
        raise LayerError(f"no labels{where}: paint with label 1 on the background and label 2 on the object "
                         "(3, 4, ... for more classes), a few strokes each, then train")
    if len(present) == 1:
        only = present.pop() + 1
        raise LayerError(f"only label {only} is painted{where}: paint at least two classes (label 1 = background, "
                         "label 2 = object)")
    k = max(present) + 1
    missing = sorted(set(range(k)) - present)
    if missing:
        raise LayerError(f"labels {', '.join(str(m + 1) for m in missing)} have no painted pixel{where} but label "
                         f"{k} has: paint every label from 1 to {k}, or renumber the labels")
    return k


def results(probas, decide, stack):
    """Layer data of one layer's per-slice probability maps, stacked back as the layer was.

    Parameters
    ----------
    probas : list of arrays
        ``CHM.predict_proba`` of each slice: (H, W) P(class 2) for two classes, (H, W, K) else.
    decide : callable
        The model's decision rule (``CHM.decide``), list of maps -> list of class maps.
    stack : bool
        The layer is a stack (Z, H, W): keep the slice axis; else ``probas`` is one 2-D map.

    Returns
    -------
    probability : float32 array
        Two classes: P(label 2) per pixel, shaped like the layer; K classes: one map per class
        along a leading axis (K, ...).
    prediction : uint8 or uint16 array
        Labels values: the decided class + 1 (0 stays napari's "unlabelled").
    uncertainty : float32 array
        The entropy of each pixel's class distribution over log K: 0 certain, 1 undecided.
    """
    p = np.stack([np.asarray(q, dtype=np.float32) for q in probas])
    binary = p.ndim == 3
    dist = np.stack([1.0 - p, p], axis=-1) if binary else p
    k = dist.shape[-1]
    entropy = -(dist * np.log(np.clip(dist, 1e-12, 1.0))).sum(axis=-1) / np.log(k)
    prediction = np.stack(decide(probas)).astype(np.uint16) + 1
    if not stack:
        p, entropy, prediction = p[0], entropy[0], prediction[0]
    probability = p if binary else np.moveaxis(p, -1, 0)
    return (probability, prediction.astype(np.uint8 if k < 255 else np.uint16),
            entropy.clip(0, 1).astype(np.float32))
