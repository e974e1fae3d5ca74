import numpy as np
import pytest

from chm import CHM
from chm.classifiers import LDNN, LogisticRegression


def test_get_set_params_round_trip():
    m = CHM(levels=2, alpha=0.3)
    p = m.get_params()
    assert p["levels"] == 2 and p["alpha"] == 0.3 and "random_state" in p
    assert CHM(**m.get_params(deep=False)).get_params() == p
    assert m.set_params(levels=4, stages=3) is m
    assert (m.levels, m.stages) == (4, 3)
    with pytest.raises(ValueError, match="invalid parameter 'level'.*valid parameters"):
        m.set_params(level=2)


def test_repr_shows_non_default_parameters():
    assert repr(CHM()) == "CHM()"
    assert repr(CHM(levels=4, alpha=0.1)) == "CHM(levels=4, alpha=0.1)"
    assert repr(CHM(weight_decay=0)) == "CHM()"  # 0 == 0.0: not a change
    assert repr(LDNN(n_groups=3)) == "LDNN(n_groups=3)"


def test_sklearn_clone():
    base = pytest.importorskip("sklearn.base")
    m = CHM(levels=2, features=("haar",), random_state=np.random.default_rng(0))
    c = base.clone(m)
    assert type(c) is CHM and c is not m
    assert c.levels == 2 and c.features == ("haar",)
    for cls in (LDNN, LogisticRegression):
        assert base.clone(cls(epochs=3)).epochs == 3


def _public_estimators():
    """Every public class of the chm package built on chm.base.Estimator (modules whose optional
    dependency is missing are skipped: their estimators cannot be built here anyway)."""
    import importlib
    import pkgutil

    import chm
    from chm.base import Estimator, Segmenter

    found = {}
    for info in pkgutil.walk_packages(chm.__path__, "chm."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # e.g. chm.convnet without torch
            continue
        for name, obj in vars(module).items():
            if (isinstance(obj, type) and issubclass(obj, Estimator) and obj not in (Estimator, Segmenter)
                    and not name.startswith("_") and obj.__module__.startswith("chm.")):
                found[obj.__qualname__] = obj
    return sorted(found.values(), key=lambda c: c.__qualname__)


def test_every_public_estimator_follows_the_contract():
    base = pytest.importorskip("sklearn.base")
    estimators = _public_estimators()
    assert {c.__name__ for c in estimators} >= {"CHM", "LDNN", "LogisticRegression", "SoftmaxMLP"}
    for cls in estimators:
        default = cls()
        params = default.get_params(deep=False)
        assert set(vars(default)) == set(params), f"{cls.__name__}.__init__ must only store its parameters"
        assert repr(default) == f"{cls.__name__}()"
        clone = base.clone(default)  # sklearn checks that every parameter is stored verbatim
        assert type(clone) is cls and clone.get_params(deep=False) == params
        assert default.set_params(**params).get_params(deep=False) == params


def test_clone_of_a_fitted_model_is_unfitted():
    base = pytest.importorskip("sklearn.base")
    rng = np.random.default_rng(0)
    X = rng.random((60, 3))
    y = (X[:, 0] > 0.5).astype(np.int8)
    fitted = LDNN(n_groups=2, n_nodes=2, epochs=2, random_state=0).fit(X, y)
    assert hasattr(fitted, "W_")
    clone = base.clone(fitted)
    assert not hasattr(clone, "W_") and clone.get_params() == fitted.get_params()
