"""Decision rules that undo the class rebalancing of per-class sample caps.

``CHM(max_samples=...)`` keeps at most so many labelled pixels per class, which changes the class
balance the classifiers see. By Bayes' rule, the classifier's posterior under the sampled balance
q differs from the one under the labelled pixels' own balance pi by the odds factor
(pi_k / q_k); the functions here turn that into a threshold (two classes) or per-class weights.
"""

import numpy as np

__all__ = ["class_weights", "decision_threshold"]


def decision_threshold(labels, sampled, targets):
    """Output threshold that undoes the class rebalancing of per-class sample caps.

    The full-resolution classifiers regress targets t0/t1 on the sampled rows, so their output
    estimates t0 + (t1 - t0) P_s(foreground | x) under the sampled class balance q. Bayes' rule
    with the labelled pixels' own balance pi scales the odds by (pi1 / pi0) / (q1 / q0); the
    decision P(foreground | x) > 1/2 is then output > t0 + (t1 - t0) r / (1 + r) with
    r = (q1 / q0) / (pi1 / pi0). Without caps q = pi, so the threshold is (t0 + t1) / 2 = 0.5.

    Parameters
    ----------
    labels : list of ndarray of int
        The labelled pixels given to fit (-1 = unlabelled).
    sampled : list of ndarray of int
        The classes of the rows the full-resolution classifier trained on.
    targets : (float, float)
        Regression targets t0, t1.

    Returns
    -------
    float
    """
    pi = sum(np.bincount(lab[lab >= 0], minlength=2) for lab in labels).astype(np.float64)
    q = sum(np.bincount(y[y >= 0], minlength=2) for y in sampled).astype(np.float64)
    r = (q[1] * pi[0]) / (q[0] * pi[1])  # exactly 1.0 when q == pi
    t0, t1 = targets
    return float(t0 + (t1 - t0) * r / (1 + r))


def class_weights(labels, sampled, n_classes):
    """Per-class weights of the K-class decision rule ``argmax_k w_k p_k``.

    The classifier's posterior under the sampled balance q becomes the one under the labelled
    pixels' balance pi when multiplied by pi_k / q_k (and renormalised, which the argmax does not
    need). Without caps q = pi and every weight is 1; a class never sampled keeps weight 1.

    Parameters
    ----------
    labels, sampled : list of ndarray of int
        As :func:`decision_threshold`.
    n_classes : int

    Returns
    -------
    ndarray of float64, shape (K,)
    """
    pi = sum(np.bincount(lab[lab >= 0].astype(np.int64), minlength=n_classes) for lab in labels).astype(np.float64)
    q = sum(np.bincount(y[y >= 0].astype(np.int64), minlength=n_classes) for y in sampled).astype(np.float64)
    pi, q = pi / pi.sum(), q / q.sum()
    w = np.ones(n_classes)
    seen = q > 0
    w[seen] = pi[seen] / q[seen]
    return w
