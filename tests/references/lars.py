"""MoCo v3 / MAE's LARS (facebookresearch/mae ``util/lars.py``) in NumPy float64.

Written from ``LARS.step``: for ``p.ndim > 1`` only, ``dp = grad + weight_decay * p`` and
``dp *= q`` with ``q = trust_coefficient * ||p|| / ||dp||`` where both norms are
positive, else 1; parameters with ndim <= 1 use the raw gradient. Then the momentum
buffer ``mu = momentum * mu + dp`` (starting at 0) and ``p -= lr * mu``: the learning
rate multiplies the buffer, it is not accumulated in it.
"""

from __future__ import annotations

import numpy as np

from tests.reference import (
    CONSTANT_LR,
    Trajectory,
    gradient_sequence,
    initial_params,
    learning_rates,
)
from tests.references import explicit_norm


def run_mae_lars(
    schedule: bool,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    trust_coefficient: float = 0.001,
) -> Trajectory:
    """Params after every step, float64, fed ``tests.reference.gradient_sequence()``."""
    params = {k: v.astype(np.float64).copy() for k, v in initial_params().items()}
    mu = {k: np.zeros_like(v) for k, v in params.items()}
    lrs = learning_rates() if schedule else None
    trajectory = []
    for step, grads in enumerate(gradient_sequence()):
        lr = lrs[step] if schedule else CONSTANT_LR
        for name, p in params.items():
            dp = grads[name].astype(np.float64).copy()
            if p.ndim > 1:
                for i in np.ndindex(p.shape):
                    dp[i] = dp[i] + weight_decay * p[i]
                param_norm, update_norm = explicit_norm(p), explicit_norm(dp)
                q = 1.0
                if param_norm > 0.0 and update_norm > 0:
                    q = trust_coefficient * param_norm / update_norm
                for i in np.ndindex(p.shape):
                    dp[i] = dp[i] * q
            for i in np.ndindex(p.shape):
                mu[name][i] = mu[name][i] * momentum + dp[i]
                p[i] = p[i] - lr * mu[name][i]
        trajectory.append({k: x.copy() for k, x in params.items()})
    return trajectory
