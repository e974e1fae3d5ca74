"""The module paths of chm 0.1 (flat modules), for one release: ``import chm.pyramid`` still works,
warns, and gives the module's new home (``chm.cascade.pyramid``). Removed in the next release."""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: chm 0.1's module -> where it lives now (the paths docs/reference.md cited).
MOVED = {
    "chm.cache": "chm.cascade.cache", "chm.contexts": "chm.cascade.contexts", "chm.files": "chm.io.files",
    "chm.images": "chm.io.images", "chm.inference": "chm.cascade.inference", "chm.losses": "chm.semi.losses",
    "chm.normalisation": "chm.cascade.normalisation", "chm.patchnet": "chm.convnet.patchnet",
    "chm.persistence": "chm.io.persistence", "chm.pyramid": "chm.cascade.pyramid",
    "chm.sampling": "chm.cascade.sampling", "chm.scenes": "chm.datasets.scenes",
    "chm.selftraining": "chm.semi.selftraining", "chm.softmax": "chm.classifiers.softmax",
    "chm.superpixels": "chm.semi.superpixels", "chm.training": "chm.cascade.training",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and loads a thin module that forwards every attribute to the new one."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        new = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} is now {new}; the old path goes in the next release",
                      DeprecationWarning, stacklevel=2)
        target = importlib.import_module(new)
        module.__getattr__ = lambda name: getattr(target, name)
        module.__dir__ = lambda: dir(target)
        module.__all__ = list(getattr(target, "__all__", []))


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.append(_Alias())
