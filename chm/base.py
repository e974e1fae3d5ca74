"""The estimator contract shared by every public model (scikit-learn's conventions).

Parameters are the keyword arguments of ``__init__``, stored verbatim as attributes of the same
names; learned state ends with an underscore. :class:`Estimator` derives ``get_params``,
``set_params`` and a repr of the non-default parameters from the ``__init__`` signature, so the
parameter list is written once and ``sklearn.base.clone`` works without scikit-learn being a
dependency. :class:`Segmenter` is the scaffold of the image segmenters (:class:`chm.CHM`,
:class:`chm.ConvNet`): ``predict`` is ``decide(predict_proba(...))``, one fitted check, one ``save``.
"""

import inspect
import numbers

from .io.persistence import write_container

__all__ = ["Estimator", "Segmenter"]


class Estimator:
    """Mixin: ``get_params(deep=True)``, ``set_params(**params)`` and ``__repr__``."""

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        names = []
        for name, p in sig.parameters.items():
            if name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must take explicit keyword parameters, not *{name}")
            names.append(name)
        return sorted(names)

    def get_params(self, deep=True):
        """Parameters of this estimator, by name.

        Parameters
        ----------
        deep : bool
            Also return the parameters of nested estimators (as ``name__param``).

        Returns
        -------
        dict
        """
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params):
        """Set parameters by name (``name__param`` reaches a nested estimator); returns ``self``."""
        valid = self._param_names()
        nested = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub in nested.items():
            getattr(self, name).set_params(**sub)
        return self

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        changed = []
        for name, p in sig.parameters.items():
            if name == "self":
                continue
            value = getattr(self, name)
            if p.default is inspect.Parameter.empty or not _same(value, p.default):
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


def _same(a, b):
    """Parameter equality for the repr: tuples and lists compare by value, arrays never equal."""
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        return a == b
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False


class Segmenter(Estimator):
    """Mixin of the image segmenters.

    A subclass sets ``_FORMAT`` (its model-file format, :mod:`chm.io.persistence`) and
    ``_FITTED`` (an attribute only a fitted model has), and defines ``fit``,
    ``predict_proba(images, ...)``, ``decide(probas, threshold=None)``, ``_to_state()`` and
    ``_from_state(header, arrays)``.
    """

    _FORMAT = None
    _FITTED = None

    def check_is_fitted(self):
        """Raise ``RuntimeError`` unless the model is fitted (or loaded)."""
        if not hasattr(self, self._FITTED):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit(images, labels) or "
                               "chm.load(path)")

    def predict(self, images, threshold=None, **kwargs):
        """Label maps: uint8 0/1 masks (two classes) or class indices 0 .. K-1 (uint8; int16 above
        256 classes). ``decide(predict_proba(images, **kwargs), threshold)``."""
        return self.decide(self.predict_proba(images, **kwargs), threshold)

    def save(self, path):
        """Write the model to ``path`` (.npz + JSON header, no pickle; see :mod:`chm.io.persistence`),
        with the permissions the umask gives new files. Returns the path written (``.npz`` is
        appended if missing)."""
        self.check_is_fitted()
        return write_container(path, self._FORMAT, *self._to_state())
