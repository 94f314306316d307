"""TF-Addons LazyAdam in NumPy float64, one row at a time.

Transliterated from ``LazyAdam._resource_apply_sparse`` (tensorflow/addons @ d208d752,
tensorflow_addons/optimizers/lazy_adam.py) as described in the research notes: Keras
first sums the values of repeated indices (``_deduplicate_indexed_slices``), then for
every unique row r, with the global step t = iterations + 1:

    lr_t = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
    m[r] = beta_1 * m[r] + (1 - beta_1) * g[r]
    v[r] = beta_2 * v[r] + (1 - beta_2) * g[r]**2
    var[r] -= lr_t * m[r] / (sqrt(v[r]) + epsilon)

Rows not in the gradient keep m, v and var; ``iterations`` grows by one per step.
"""

from __future__ import annotations

import math

import numpy as np


def deduplicate(indices, values) -> dict[int, np.ndarray]:
    """Sum the values of repeated indices, in order of appearance."""
    rows: dict[int, np.ndarray] = {}
    for index, value in zip(indices, values, strict=True):
        index = int(index)
        rows[index] = rows[index] + value if index in rows else np.array(value, np.float64)
    return rows


def run_lazy_adam(
    params: dict[str, np.ndarray],
    gradients: list[dict[str, tuple[np.ndarray, np.ndarray]]],
    learning_rates: list[float],
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
) -> list[dict[str, np.ndarray]]:
    """Params after every step; ``gradients[t][name]`` is an IndexedSlices ``(indices, values)``."""
    var = {k: np.array(p, np.float64) for k, p in params.items()}
    m = {k: np.zeros_like(p) for k, p in var.items()}
    v = {k: np.zeros_like(p) for k, p in var.items()}
    trajectory = []
    # iterations: the number of steps applied so far, shared by every variable.
    for iterations, grads in enumerate(gradients):
        t = iterations + 1
        lr = learning_rates[iterations] * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for name, (indices, values) in grads.items():
            for r, g in deduplicate(indices, values).items():
                m[name][r] = beta_1 * m[name][r] + (1 - beta_1) * g
                v[name][r] = beta_2 * v[name][r] + (1 - beta_2) * g * g
                var[name][r] = var[name][r] - lr * m[name][r] / (np.sqrt(v[name][r]) + epsilon)
        trajectory.append({k: p.copy() for k, p in var.items()})
    return trajectory
