"""TF-Addons' Yogi (tensorflow_addons/optimizers/yogi.py, dense path), in NumPy float64.

Written from TF-Addons' ``_resource_apply_dense`` with ``activation="sign"`` and no
l1/l2 regularization: ``m`` starts at 0, ``v`` at ``initial_accumulator_value``, and
the bias corrections scale the learning rate (eps is added to the raw ``sqrt(v)``).
One scalar at a time, so it shares no code path with optix.
"""

from __future__ import annotations

import math

import numpy as np

from tests.reference import (
    CONSTANT_LR,
    Trajectory,
    gradient_sequence,
    initial_params,
    learning_rates,
)


def run_tfa_yogi(
    schedule: bool,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-3,
    initial_accumulator_value: float = 1e-6,
) -> Trajectory:
    """Params after every step, float64, fed ``tests.reference.gradient_sequence()``."""
    params = {k: v.astype(np.float64).copy() for k, v in initial_params().items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.full_like(x, initial_accumulator_value) for k, x in params.items()}
    lrs = learning_rates() if schedule else None
    trajectory = []
    for step, grads in enumerate(gradient_sequence()):
        local_step = step + 1
        lr_t = lrs[step] if schedule else CONSTANT_LR
        lr = lr_t * math.sqrt(1 - beta2**local_step) / (1 - beta1**local_step)
        for name in params:
            var, m_s, v_s = params[name].reshape(-1), m[name].reshape(-1), v[name].reshape(-1)
            grad = grads[name].reshape(-1)
            for i in range(var.size):
                m_s[i] = m_s[i] * beta1 + grad[i] * (1 - beta1)
                grad2 = grad[i] * grad[i]
                sign = float(np.sign(grad2 - v_s[i]))
                v_s[i] = v_s[i] + (1 - beta2) * sign * grad2
                per_coord_lr = lr / (math.sqrt(v_s[i]) + epsilon)
                var[i] = var[i] - per_coord_lr * m_s[i]
        trajectory.append({k: x.copy() for k, x in params.items()})
    return trajectory
