"""Decision rules that undo the class rebalancing of per-class sample caps.

``CHM(max_samples=...)`` keeps at most so many labelled pixels per class, which changes the class
balance the classifiers see. By Bayes' rule, the classifier's posterior under the sampled balance
q differs from the one under the labelled pixels' own balance pi by the odds factor
(pi_k / q_k); the functions here turn that into a threshold (two classes) or per-class weights.

The balance pi is the labelled pixels' own. Clicks placed by a user
(a few per class) say little about how much of the image each class covers, so
:func:`em_prior` estimates it from the model's outputs on the unlabelled pixels instead
(``CHM(class_prior="em")``), after :func:`calibrate` (EM needs calibrated posteriors: the
cascade's are squeezed towards even odds, and EM then runs to a class fraction of 0).
"""

import numpy as np
from scipy.optimize import minimize

__all__ = ["calibrate", "calibrated", "class_weights", "decision_threshold", "em_prior"]


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


def em_prior(posteriors, train_prior, n_iter=200, tol=1e-7):
    """Class prior of unlabelled pixels, by EM on a classifier's posteriors.

    Saerens, Latinne & Decaestecker (Neural Computation 14, 2002): a classifier trained under
    the class balance q gives posteriors p_k(x) under q; under another prior pi they become
    p_k(x) pi_k / q_k, renormalised. EM alternates that adjustment with pi = the mean adjusted
    posterior over the unlabelled pixels; the fixed point is the maximum-likelihood prior when
    the posteriors are calibrated.

    Parameters
    ----------
    posteriors : ndarray, shape (n,) or (n, K)
        P(foreground) (two classes) or class probabilities under ``train_prior``.
    train_prior : float or ndarray, shape (K,)
        The class balance q the classifier was trained under (two classes: the foreground
        fraction).
    n_iter : int
        Most EM steps.
    tol : float
        Stop when no class fraction moves more than this.

    Returns
    -------
    float (two classes: the foreground fraction) or ndarray, shape (K,)
    """
    p = np.asarray(posteriors, dtype=np.float64)
    binary = p.ndim == 1
    if binary:
        p = np.stack([1.0 - p, p], axis=1)
        q = np.array([1.0 - float(train_prior), float(train_prior)])
    else:
        q = np.asarray(train_prior, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(q) or not len(p):
        raise ValueError(f"posteriors must be (n,) or (n, K) with K = {len(q)} and n >= 1, got {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0:
        raise ValueError("posteriors must be finite and >= 0")
    if np.any(q <= 0):
        raise ValueError(f"train_prior must be > 0 for every class, got {q}")
    q = q / q.sum()
    pi = q.copy()
    for _ in range(n_iter):
        a = p * (pi / q)
        a /= np.maximum(a.sum(axis=1, keepdims=True), 1e-300)
        new = a.mean(axis=0)
        done = np.abs(new - pi).max() < tol
        pi = new
        if done:
            break
    return float(pi[1]) if binary else pi



def _log_probs(p, binary):
    p = np.asarray(p, dtype=np.float64)
    p = np.stack([1.0 - p, p], axis=1) if binary else p
    return np.log(np.clip(p, 1e-6, 1.0))


def calibrate(labelled, labels):
    """Temperature and class biases that calibrate a model's outputs on labelled pixels.

    Fits ``softmax(a log p + b)`` (b_0 = 0) to the labelled pixels' classes by maximum
    likelihood: Platt scaling for two classes, temperature-and-bias scaling for K. The
    calibrated posterior (:func:`calibrated`) is one under the labelled pixels' class balance.

    Parameters
    ----------
    labelled : ndarray, shape (m,) or (m, K)
        A model's P(foreground) or class probabilities at labelled pixels.
    labels : ndarray of int, shape (m,)
        Their classes.

    Returns
    -------
    a : float
    b : ndarray, shape (K,)
    """
    binary = np.ndim(labelled) == 1
    z, y = _log_probs(labelled, binary), np.asarray(labels, dtype=np.int64)
    K = z.shape[1]
    if len(y) != len(z) or not len(y):
        raise ValueError(f"need one label per labelled output, got {len(y)} labels for {len(z)} outputs")

    def nll(w):
        u = w[0] * z + np.r_[0.0, w[1:]]
        u -= u.max(axis=1, keepdims=True)
        return float(np.sum(np.log(np.exp(u).sum(axis=1)) - u[np.arange(len(y)), y]))

    w = minimize(nll, np.r_[1.0, np.zeros(K - 1)], method="L-BFGS-B").x
    return float(w[0]), np.r_[0.0, w[1:]]


def calibrated(posteriors, a, b):
    """``softmax(a log p + b)`` of :func:`calibrate`'s fit: P(foreground) (two classes) or (n, K)."""
    binary = np.ndim(posteriors) == 1
    u = a * _log_probs(posteriors, binary) + b
    u = np.exp(u - u.max(axis=1, keepdims=True))
    u /= u.sum(axis=1, keepdims=True)
    return u[:, 1] if binary else u
