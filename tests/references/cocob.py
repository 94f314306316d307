"""COCOB-Backprop, Algorithm 2 of Orabona & Tommasi (arXiv:1705.07795), in NumPy float64.

Written from the paper's pseudocode, per coordinate i, with w1 the initial weights:

    L_t = max(L_{t-1}, |g_t|)          G_t = G_{t-1} + |g_t|
    Reward_t = max(Reward_{t-1} - (w_t - w1) g_t, 0)
    theta_t = theta_{t-1} - g_t
    w_{t+1} = w1 + theta_t / (L_t max(G_t + L_t, alpha L_t)) (L_t + Reward_t)

The paper starts L at 0; ``l0`` sets the start (Optax starts it at its eps).
"""

from __future__ import annotations

import numpy as np

from tests.reference import Trajectory, gradient_sequence, initial_params


def run_cocob_backprop(alpha: float = 100.0, l0: float = 0.0, steps: int = 20) -> Trajectory:
    """Weights after every step, fed ``tests.reference.gradient_sequence()``."""
    w1 = initial_params()
    w = {k: v.copy() for k, v in w1.items()}
    big_l = {k: np.full_like(v, l0) for k, v in w1.items()}
    big_g = {k: np.zeros_like(v) for k, v in w1.items()}
    reward = {k: np.zeros_like(v) for k, v in w1.items()}
    theta = {k: np.zeros_like(v) for k, v in w1.items()}
    trajectory = []
    for g in gradient_sequence(steps):
        for k in w:
            big_l[k] = np.maximum(big_l[k], np.abs(g[k]))
            big_g[k] = big_g[k] + np.abs(g[k])
            reward[k] = np.maximum(reward[k] - (w[k] - w1[k]) * g[k], 0.0)
            theta[k] = theta[k] - g[k]
            denominator = big_l[k] * np.maximum(big_g[k] + big_l[k], alpha * big_l[k])
            w[k] = w1[k] + theta[k] / denominator * (big_l[k] + reward[k])
        trajectory.append({k: v.copy() for k, v in w.items()})
    return trajectory
