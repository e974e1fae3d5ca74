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
