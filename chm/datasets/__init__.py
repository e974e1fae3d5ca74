"""Data sets: the Weizmann horses (``weizmann``), Stanford Background and SIFT Flow (``scenes``),
synthetic shapes and scenes (``synthetic``), and the sparse-label samplers: clicks and strokes (``sparse``)."""

from .record import Dataset
from .scenes import (SIFTFLOW_CLASSES, STANFORD_CLASSES, STANFORD_FOLDS, SceneDataset, load_siftflow,
                     load_stanford_background)
from .sparse import CLICK_PROTOCOLS, sample_sparse_labels, sample_strokes
from .synthetic import make_scenes, make_shapes
from .weizmann import (CACHE_ENV, DATA_ENV, WEIZMANN_URL, WeizmannHorse, cache_dir, find_data_root,
                       load_weizmann_horse, verify_weizmann)

__all__ = ["CACHE_ENV", "CLICK_PROTOCOLS", "DATA_ENV", "Dataset", "SIFTFLOW_CLASSES", "STANFORD_CLASSES", "STANFORD_FOLDS", "SceneDataset",
           "WEIZMANN_URL", "WeizmannHorse", "cache_dir", "find_data_root", "load_siftflow",
           "load_stanford_background", "load_weizmann_horse", "make_scenes", "make_shapes", "sample_sparse_labels",
           "sample_strokes", "verify_weizmann"]
