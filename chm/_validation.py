"""Input checks shared by the public entry points: one place, messages that name the argument."""

import numbers

import numpy as np

__all__ = ["check_random_state", "check_labels", "check_image_list", "check_pooled_classes"]


def check_random_state(seed):
    """Turn ``None``, an int or a Generator into a :class:`numpy.random.Generator`."""
    if seed is None or isinstance(seed, (numbers.Integral, np.integer)):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    raise TypeError(f"random_state must be None, an int or a numpy Generator, got {type(seed).__name__}")


def check_image_list(images, name="images"):
    """Validate a non-empty list of (H, W) or (H, W, 3) images; return them unconverted
    (:func:`chm.images.as_float_image` converts each one where it is used, so a large set of
    uint8 colour images is never held as float64 all at once)."""
    from .images import check_image

    if isinstance(images, np.ndarray) and (images.ndim == 2 or (images.ndim == 3 and images.shape[2] == 3)):
        raise TypeError(f"{name} must be a list of images, got a single image of shape {images.shape}; "
                        "wrap it in a list")
    try:
        images = list(images)
    except TypeError:
        raise TypeError(f"{name} must be a list of (H, W) or (H, W, 3) arrays, got {type(images).__name__}") from None
    if not images:
        raise ValueError(f"{name} is empty")
    return [check_image(im, name=f"{name}[{i}]") for i, im in enumerate(images)]


def check_labels(labels, images, n_classes=2, name="labels"):
    """Validate sparse label maps: int arrays shaped like the images, -1 = unlabelled.

    Returns int8 arrays. Raises if a label is out of range, if no pixel is labelled, or if the
    labelled pixels hold fewer than two classes.
    """
    try:
        labels = list(labels)
    except TypeError:
        raise TypeError(f"{name} must be a list of integer arrays, got {type(labels).__name__}") from None
    if len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} label maps")
    out = []
    seen = set()
    for i, (lab, im) in enumerate(zip(labels, images)):
        lab = np.asarray(lab)
        if lab.shape != im.shape[:2]:
            raise ValueError(f"{name}[{i}] has shape {lab.shape} but images[{i}] has shape {im.shape}")
        if lab.dtype == bool:
            raise TypeError(f"{name}[{i}] is boolean: sparse labels need -1 for unlabelled pixels; "
                            "use e.g. chm.datasets.sample_sparse_labels or mask.astype(int) for dense labels")
        if not np.issubdtype(lab.dtype, np.integer):
            if np.issubdtype(lab.dtype, np.floating) and np.isfinite(lab).all() and np.all(lab == np.round(lab)):
                lab = lab.astype(np.int64)
            else:
                raise TypeError(f"{name}[{i}] must hold integers (-1 = unlabelled, 0..{n_classes - 1} = class), "
                                f"got dtype {lab.dtype}")
        bad = (lab < -1) | (lab >= n_classes)
        if bad.any():
            raise ValueError(f"{name}[{i}] has values outside -1..{n_classes - 1} "
                             f"(e.g. {lab[bad].flat[0]}); -1 = unlabelled, 0..{n_classes - 1} = class")
        seen.update(np.unique(lab[lab >= 0]).tolist())
        out.append(lab.astype(np.int8 if n_classes <= 128 else np.int16))
    if not seen:
        raise ValueError(f"{name} has no labelled pixel (all are -1)")
    if len(seen) < 2:
        need = ("labelled pixels of both background (0) and foreground (1) are needed" if n_classes == 2
                else "labelled pixels of two or more classes are needed")
        raise ValueError(f"{name} holds a single class ({seen.pop()}); {need}")
    return out


def check_pooled_classes(labels, levels, n_classes=2):
    """Raise unless every pyramid level keeps labelled pixels of two classes or more.

    Binary coarse labels are max-pooled (a block with a foreground click is foreground), so
    background clicks close to foreground ones vanish at coarse levels; K-class ones take each
    block's majority. Checked before any features are computed, with what to do about it.
    """
    from .pyramid import majority_pool_labels, maxpool_labels

    if n_classes > 2:
        for level in range(1, levels + 1):
            seen = set()
            for lab in labels:
                p = majority_pool_labels(lab, level, n_classes)
                seen.update(np.unique(p[p >= 0]).tolist())
            if len(seen) < 2:
                raise ValueError(f"at pyramid level {level} every labelled {2 ** level} x {2 ** level} block has the "
                                 f"same majority class ({seen.pop() if seen else '-'}), so that level has one class "
                                 f"to learn from; label more classes or use levels={level - 1}")
        return
    for level in range(1, levels + 1):
        pooled = [maxpool_labels(lab, level) for lab in labels]
        if not any((p == 0).any() for p in pooled):
            side = 2 ** level
            raise ValueError(f"at pyramid level {level} every labelled background pixel shares its {side} x {side} "
                             "block with a labelled foreground pixel, so that level has no background to learn "
                             f"from; label background farther (> {side} px) from the foreground, or use "
                             f"levels={level - 1}")
