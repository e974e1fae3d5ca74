"""Scene-labelling datasets of the paper's Tables 2 and 3: Stanford Background and SIFT Flow.

The data are never shipped with the package: each loader takes the folder of a staged copy (or
its parent). Images are colour ``(H, W, 3)`` uint8; label maps are int8 with classes
``0 .. K-1`` and ``-1`` where the dataset has no class (Stanford's "unknown", SIFT Flow's
"unlabeled"): such pixels are never drawn as sparse labels
(``sample_sparse_labels(..., ignore=-1)``) and are left out of the error
(``pixel_error(..., ignore=-1)``). Both loaders are re-exported by :mod:`chm.datasets`.
"""

from pathlib import Path

import numpy as np

from ..io.files import read_label_values
from ..io.images import read_pixels
from .record import Dataset

__all__ = ["SceneDataset", "load_stanford_background", "load_siftflow", "STANFORD_CLASSES",
           "STANFORD_FOLDS", "SIFTFLOW_CLASSES"]

STANFORD_CLASSES = ("sky", "tree", "road", "grass", "water", "building", "mountain", "foreground")
STANFORD_FOLDS = 5
_STANFORD_TEST = 143  # 715 images = 5 folds of 143
SIFTFLOW_CLASSES = ("awning", "balcony", "bird", "boat", "bridge", "building", "bus", "car", "cow",
                    "crosswalk", "desert", "door", "fence", "field", "grass", "moon", "mountain", "person",
                    "plant", "pole", "river", "road", "rock", "sand", "sea", "sidewalk", "sign", "sky",
                    "staircase", "streetlight", "sun", "tree", "window")


class SceneDataset(Dataset):
    """A train/test split of a scene-labelling dataset.

    Attributes
    ----------
    train_images, test_images : list of ndarray of uint8, shape (H, W, 3)
    train_masks, test_masks : list of ndarray of int8, shape (H, W)
        Classes 0 .. K-1; -1 = no class (unknown / unlabelled in the dataset).
    train_names, test_names : list of str
    classes : tuple of str
        Class names, index = label.
    root : pathlib.Path
        The folder the data were read from.
    """


def _find(root, dirname):
    """``root`` itself or ``root/dirname``, whichever holds ``images/`` and ``labels/``."""
    root = Path(root).expanduser()
    for cand in (root, root / dirname):
        if (cand / "images").is_dir() and (cand / "labels").is_dir():
            return cand
    raise FileNotFoundError(f"no {dirname} data in '{root}': expected images/ and labels/ in it or in "
                            f"'{root / dirname}' (see the dataset README)")


def _names(path):
    if not path.is_file():
        raise FileNotFoundError(f"list file not found: '{path}'")
    names = [s.strip() for s in path.read_text().splitlines() if s.strip()]
    if not names:
        raise ValueError(f"list file '{path}' is empty")
    return names


def _read_pair(root, name, ext, decode):
    _, img = read_pixels(root / "images" / f"{name}{ext}")
    lab = read_label_values(root / "labels" / f"{name}.png")
    if img.ndim == 2:
        img = np.dstack([img] * 3)
    if img.dtype != np.uint8 or img.shape[2] != 3:
        raise ValueError(f"{name}: expected an 8-bit RGB image, got {img.dtype} of shape {img.shape}")
    if lab.ndim != 2 or lab.shape != img.shape[:2]:
        raise ValueError(f"{name}: label map of shape {lab.shape} does not match image shape {img.shape}")
    return img, decode(lab.astype(np.int16))


def _load(root, train, test, ext, decode, classes):
    pairs = [[_read_pair(root, n, ext, decode) for n in names] for names in (train, test)]
    return SceneDataset(train_images=[p[0] for p in pairs[0]], train_masks=[p[1] for p in pairs[0]],
                        test_images=[p[0] for p in pairs[1]], test_masks=[p[1] for p in pairs[1]],
                        train_names=list(train), test_names=list(test), classes=classes, root=root)


def _stanford_labels(lab):
    out = np.where((lab < 0) | (lab == 255), -1, lab)
    if out.max() >= len(STANFORD_CLASSES):
        raise ValueError(f"Stanford label value {int(out.max())} is not a class (0..7) nor unknown (255)")
    return out.astype(np.int8)


def _siftflow_labels(lab):
    if lab.max() > len(SIFTFLOW_CLASSES):
        raise ValueError(f"SIFT Flow label value {int(lab.max())} is not 0 (unlabelled) nor a class (1..33)")
    return (lab - 1).astype(np.int8)  # 0 (unlabelled) -> -1


def stanford_folds(names, seed=0):
    """The 5 cross-validation folds: a seeded permutation of ``names`` cut into 5 x 143."""
    if len(names) != STANFORD_FOLDS * _STANFORD_TEST:
        raise ValueError(f"Stanford Background has 715 images, the list holds {len(names)}")
    perm = np.random.default_rng(seed).permutation(sorted(names))
    return [list(perm[f * _STANFORD_TEST:(f + 1) * _STANFORD_TEST]) for f in range(STANFORD_FOLDS)]


def load_stanford_background(root, fold=0, seed=0):
    """Stanford Background (Gould et al. 2009), one fold of 5-fold cross-validation.

    The paper's protocol: the 715 images are split at random into 5 bins of 143; fold ``f`` tests
    on bin ``f`` and trains on the other 572. The bins are a permutation of the sorted ids by
    ``numpy.random.default_rng(seed)`` (the dataset has no official folds), so a seed fixes all 5.

    Parameters
    ----------
    root : path-like
        The staged folder (holding ``images/``, ``labels/``, ``all.txt``) or its parent.
    fold : int
        0 .. 4.
    seed : int
        Seed of the bin assignment.

    Returns
    -------
    SceneDataset
        572 training and 143 test images (RGB uint8, 8 classes; unknown = -1).
    """
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < STANFORD_FOLDS:
        raise ValueError(f"fold must be an integer in 0..{STANFORD_FOLDS - 1}, got {fold!r}")
    root = _find(root, "stanford_background")
    bins = stanford_folds(_names(root / "all.txt"), seed)
    train = sorted(n for f, b in enumerate(bins) if f != fold for n in b)
    return _load(root, train, bins[fold], ".jpg", _stanford_labels, STANFORD_CLASSES)


def load_siftflow(root):
    """SIFT Flow (Liu et al. 2011) with the standard split: 2488 training, 200 test images.

    Parameters
    ----------
    root : path-like
        The staged folder (holding ``images/``, ``labels/``, ``train.txt``, ``test.txt``) or its
        parent.

    Returns
    -------
    SceneDataset
        256 x 256 RGB uint8 images; 33 classes (file value k + 1 = class k; 0 = unlabelled = -1).
    """
    root = _find(root, "siftflow")
    return _load(root, _names(root / "train.txt"), _names(root / "test.txt"), ".jpg", _siftflow_labels,
                 SIFTFLOW_CLASSES)
