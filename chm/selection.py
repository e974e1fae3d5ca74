"""Choosing weights from sparse labels only: held-out training images.

With N labelled pixels per image there is no dense mask to tune on, and the test images must not
take part in any choice. The rule used for every weight (the MRF's beta, the TV / contrast
``alpha``, the L2 ``weight_decay``): hold out a fifth of the training *images*, fit on the rest
with their sparse labels, and score each candidate by the error on the held-out images' sparse
labels (ties go to the smaller weight). Held-out images rather than held-out pixels, because the
cascade's outputs on images it was trained on are better than on new ones.
"""

import numpy as np

__all__ = ["heldout_split", "sparse_error", "choose"]


def heldout_split(n_images, rng, fraction=0.2):
    """(fit, held) index arrays: a random ``fraction`` of the images held out (at least one)."""
    if n_images < 2:
        raise ValueError(f"need at least 2 images to hold some out, got {n_images}")
    order = np.random.default_rng(rng).permutation(n_images)
    k = min(n_images - 1, max(1, int(round(fraction * n_images))))
    return np.sort(order[k:]), np.sort(order[:k])


def sparse_error(masks, labels):
    """Fraction of labelled pixels (label >= 0) whose predicted class differs from their label.

    Parameters
    ----------
    masks : list of ndarray
        Predicted classes (or booleans) per pixel.
    labels : list of ndarray of int
        Sparse labels, -1 = unlabelled.
    """
    wrong = total = 0
    for m, lab in zip(masks, labels):
        lab = np.asarray(lab)
        known = lab >= 0
        wrong += int(np.sum(np.asarray(m)[known].astype(np.int64) != lab[known]))
        total += int(known.sum())
    if total == 0:
        raise ValueError("no labelled pixel to score against")
    return wrong / total


def choose(scores):
    """The candidate with the smallest score; ties go to the smallest candidate.

    Parameters
    ----------
    scores : dict
        ``{candidate weight: held-out score}``.
    """
    if not scores:
        raise ValueError("no candidate to choose from")
    return min(scores, key=lambda w: (scores[w], w))
