"""The random-state check every estimator and classifier shares."""

import numbers

import numpy as np

__all__ = ["check_random_state"]


def check_random_state(seed):
    """Turn ``None``, an int or a Generator into a :class:`numpy.random.Generator`."""
    if seed is None or isinstance(seed, (numbers.Integral, np.integer)):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    raise TypeError(f"random_state must be None, an int or a numpy Generator, got {type(seed).__name__}")
