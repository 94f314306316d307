"""LAMB as TF-Addons and cybertronai's pytorch-lamb compute it, in NumPy float64.

``run_tfa_lamb``: tensorflow_addons/optimizers/lamb.py ``_resource_apply_dense``:
Adam moments with bias correction (``local_step = iterations + 1``), ``update = m_hat /
(sqrt(v_hat) + epsilon)``, plus ``weight_decay * var`` unless the variable's name is in
``exclude_from_weight_decay``; the ratio ``||var|| / ||update||`` (1 if either is 0)
unless the name is in ``exclude_from_layer_adaptation``, which defaults to the weight
decay exclusions.

``run_cybertronai_lamb``: pytorch_lamb/lamb.py ``Lamb.step``: no bias correction
(paper v3), ``adam_step = exp_avg / (sqrt(exp_avg_sq) + eps) + weight_decay * p``,
``weight_norm = clamp(||p||, 0, 10)``, ``trust_ratio = weight_norm / adam_norm`` (1 if
either is 0, or if ``adam=True``).

Norms are summed one scalar at a time, so nothing is shared with optix's code.
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
from tests.references import explicit_norm


def run_tfa_lamb(
    schedule: bool,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-6,
    weight_decay: float = 0.0,
    exclude_from_weight_decay: tuple[str, ...] = (),
    exclude_from_layer_adaptation: tuple[str, ...] | None = None,
) -> Trajectory:
    """Params after every step, float64, fed ``tests.reference.gradient_sequence()``."""
    if not exclude_from_layer_adaptation:
        exclude_from_layer_adaptation = exclude_from_weight_decay
    params = {k: v.astype(np.float64).copy() for k, v in initial_params().items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(x) for k, x in params.items()}
    lrs = learning_rates() if schedule else None
    trajectory = []
    for step, grads in enumerate(gradient_sequence()):
        local_step = step + 1
        lr_t = lrs[step] if schedule else CONSTANT_LR
        beta_1_power = beta_1**local_step
        beta_2_power = beta_2**local_step
        for name, var in params.items():
            grad = grads[name]
            update = np.zeros_like(var)
            for i in np.ndindex(var.shape):
                m[name][i] = m[name][i] * beta_1 + (1 - beta_1) * grad[i]
                v[name][i] = v[name][i] * beta_2 + (1 - beta_2) * grad[i] * grad[i]
                m_t_hat = m[name][i] / (1 - beta_1_power)
                v_t_hat = v[name][i] / (1 - beta_2_power)
                update[i] = m_t_hat / (math.sqrt(v_t_hat) + epsilon)
                if name not in exclude_from_weight_decay:
                    update[i] += weight_decay * var[i]
            ratio = 1.0
            if name not in exclude_from_layer_adaptation:
                w_norm, g_norm = explicit_norm(var), explicit_norm(update)
                ratio = w_norm / g_norm if w_norm > 0 and g_norm > 0 else 1.0
            for i in np.ndindex(var.shape):
                var[i] = var[i] - ratio * lr_t * update[i]
        trajectory.append({k: x.copy() for k, x in params.items()})
    return trajectory


def run_cybertronai_lamb(
    schedule: bool,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    adam: bool = False,
    clamp: float = 10.0,
) -> Trajectory:
    """Params after every step, float64, fed ``tests.reference.gradient_sequence()``.

    ``clamp`` is the constant 10 of ``weight_norm.clamp(0, 10)``, lowered in tests to
    reach the clipped branch with parameters of norm about 3.
    """
    beta1, beta2 = betas
    params = {k: v.astype(np.float64).copy() for k, v in initial_params().items()}
    exp_avg = {k: np.zeros_like(v) for k, v in params.items()}
    exp_avg_sq = {k: np.zeros_like(v) for k, v in params.items()}
    lrs = learning_rates() if schedule else None
    trajectory = []
    for step, grads in enumerate(gradient_sequence()):
        step_size = lrs[step] if schedule else CONSTANT_LR
        for name, p in params.items():
            grad = grads[name]
            adam_step = np.zeros_like(p)
            for i in np.ndindex(p.shape):
                exp_avg[name][i] = exp_avg[name][i] * beta1 + (1 - beta1) * grad[i]
                exp_avg_sq[name][i] = exp_avg_sq[name][i] * beta2 + (1 - beta2) * grad[i] ** 2
            weight_norm = min(max(explicit_norm(p), 0.0), clamp)
            for i in np.ndindex(p.shape):
                adam_step[i] = exp_avg[name][i] / (math.sqrt(exp_avg_sq[name][i]) + eps)
                if weight_decay != 0:
                    adam_step[i] += weight_decay * p[i]
            adam_norm = explicit_norm(adam_step)
            trust_ratio = 1.0 if weight_norm == 0 or adam_norm == 0 else weight_norm / adam_norm
            if adam:
                trust_ratio = 1.0
            for i in np.ndindex(p.shape):
                p[i] = p[i] - step_size * trust_ratio * adam_step[i]
        trajectory.append({k: x.copy() for k, x in params.items()})
    return trajectory
