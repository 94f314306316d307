"""Independent NumPy float64 transliterations of reference implementations."""

import math

import numpy as np


def explicit_norm(x: np.ndarray) -> float:
    """The L2 norm by an explicit float64 loop, independent of NumPy's reductions."""
    total = 0.0
    for value in x.reshape(-1):
        total += float(value) * float(value)
    return math.sqrt(total)
