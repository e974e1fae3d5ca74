"""The record every data-set loader returns: a train/test split of images and dense masks."""

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    """A train/test split of a segmentation data set.

    Attributes
    ----------
    train_images, test_images : list of ndarray
        (H, W) gray or (H, W, 3) colour images.
    train_masks, test_masks : list of ndarray of int, shape (H, W)
        Classes 0 .. K-1 (-1 = no class, where a data set has unknown pixels).
    train_names, test_names : list of str
    classes : tuple of str
        Class names, index = mask value.
    root : pathlib.Path
        The folder the data were read from.
    """

    train_images: list
    train_masks: list
    test_images: list
    test_masks: list
    train_names: list
    test_names: list
    classes: tuple
    root: Path = field(default=None, compare=False)
