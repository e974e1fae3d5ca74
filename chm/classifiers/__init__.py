"""The cascade's pixel classifiers and their registry.

Two classes: :class:`LDNN` (logistic disjunctive normal network) and :class:`LogisticRegression`
(``ldnn``), trained by per-pixel SGD in numba (``_sgd``); K > 2 classes: :class:`SoftmaxMLP`
(``softmax``). Rows are evaluated in chunks by ``_rows``. This module makes the classifier of each
(stage, level) and reads one back from a model file.
"""

import numpy as np

from .ldnn import LDNN, LogisticRegression, kmeans
from .softmax import SoftmaxMLP

__all__ = ["LDNN", "LogisticRegression", "NETWORKS", "SoftmaxMLP", "from_state", "kmeans", "make_classifier",
           "shrink_to_labels"]

_TYPES = {"LDNN": LDNN, "LogisticRegression": LogisticRegression, "SoftmaxMLP": SoftmaxMLP}


#: LDNN sizes (groups x nodes) of the cascade, as (full resolution, coarse levels).
#: "original": the original CHM's 10 x 20 and 24 x 24 (chm-reference 3.3), best with dense labels;
#: "small": 6 x 6 everywhere, as accurate with sparse labels (N = 10 in benchmarks/run.py:
#: 15.80 % vs 15.73 % test error) with 2.5x less fit time and 2.9x less predict time.
NETWORKS = {"small": ((6, 6), (6, 6)), "original": ((10, 20), (24, 24))}


def make_classifier(kind, coarse, network="small", random_state=None, n_classes=2, **overrides):
    """The cascade's classifier for one (stage, level).

    Two classes: ``coarse`` selects the level > 0 settings of the original CHM (dropout,
    per-sample SGD, lr 0.05, chm-reference 3.3); full resolution uses mini-batch 100, lr 0.01.
    ``network`` names the LDNN sizes (:data:`NETWORKS`).

    K > 2 classes: a :class:`chm.softmax.SoftmaxMLP` at every level, with as many hidden units
    as the LDNN of ``network`` has units (N x M) for "ldnn", none (multinomial logistic
    regression) for "logistic".

    ``overrides`` replace any constructor argument.
    """
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {sorted(NETWORKS)}, got {network!r}")
    if kind not in ("ldnn", "logistic"):
        raise ValueError(f"classifier must be 'ldnn' or 'logistic', got {kind!r}")
    if n_classes > 2:
        n_groups, n_nodes = NETWORKS[network][1 if coarse else 0]
        n_groups, n_nodes = overrides.get("n_groups", n_groups), overrides.get("n_nodes", n_nodes)
        params = dict(n_hidden=n_groups * n_nodes if kind == "ldnn" else 0)
        params.update({k: v for k, v in overrides.items() if k not in ("n_groups", "n_nodes", "dropout", "targets")})
        return SoftmaxMLP(n_classes=n_classes, random_state=random_state, **params)
    if kind == "ldnn":
        n_groups, n_nodes = NETWORKS[network][1 if coarse else 0]
        params = dict(n_groups=n_groups, n_nodes=n_nodes)
        params.update(dict(dropout=True, batch_size=1, learning_rate=0.05) if coarse
                      else dict(dropout=False, batch_size=100, learning_rate=0.01))
        params.update(overrides)
        return LDNN(random_state=random_state, **params)
    params = dict(batch_size=1, learning_rate=0.05) if coarse else dict(batch_size=100, learning_rate=0.01)
    params.update({k: v for k, v in overrides.items() if k not in ("n_groups", "n_nodes", "dropout")})
    return LogisticRegression(random_state=random_state, **params)


def shrink_to_labels(clf, y):
    """``clf`` with no more LDNN groups than labelled foreground rows, nor nodes than background rows.

    The k-means initialisation gives group i a foreground centre and node j a background centre,
    so a few clicks cannot fill a larger network: it is made smaller instead (without dropout
    when a side falls below the 2 units dropout needs). A user's first try, a handful of clicks
    on two images, then trains.

    Parameters
    ----------
    clf : LDNN or LogisticRegression
    y : ndarray of int
        Classes of the training rows (-1 = unlabelled).

    Returns
    -------
    clf : the same object, its ``n_groups``/``n_nodes`` (and ``dropout``) lowered if needed
    note : str or None
        "N x M -> n x m" when the size changed, else None.
    """
    if not isinstance(clf, LDNN) or isinstance(clf, LogisticRegression):
        return clf, None
    n_fg, n_bg = int(np.count_nonzero(y == 1)), int(np.count_nonzero(y == 0))
    groups, nodes = min(clf.n_groups, max(n_fg, 1)), min(clf.n_nodes, max(n_bg, 1))
    if (groups, nodes) == (clf.n_groups, clf.n_nodes):
        return clf, None
    note = f"{clf.n_groups} x {clf.n_nodes} -> {groups} x {nodes}"
    clf.set_params(n_groups=groups, n_nodes=nodes, dropout=clf.dropout and min(groups, nodes) >= 2)
    return clf, note


def from_state(meta, arrays):
    """The classifier of a model file's entry (any type of the cascade; ``to_state``'s output)."""
    return _TYPES[meta["type"]].from_state(meta, arrays)
