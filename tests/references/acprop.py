"""The official ACProp (juntang-zhuang/ACProp-Optimizer ``optimizers/ACProp.py``) in NumPy.

Written from the official ``step`` with ``rectify=False``, ``amsgrad=False`` and
``momentum_update=False``, in its own variable names: decoupled (default) or L2 weight
decay, a first step ``p -= lr * exp_avg / bias_correction1``, later steps that add
``eps`` to the stored ``exp_avg_var`` and divide the gradient by
``sqrt(exp_avg_var) / sqrt(1 - beta2**(step - 1)) + eps``, then the residual
``grad - exp_avg`` (the updated momentum) into ``exp_avg_var``. Arrays stay in ``dtype``.
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


def run_official_acprop(
    dtype,
    schedule: bool,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-16,
    weight_decay: float = 0.0,
    weight_decouple: bool = True,
) -> Trajectory:
    """Params after every step, fed ``tests.reference.gradient_sequence()``."""
    beta1, beta2 = betas
    lrs = learning_rates() if schedule else None
    params = {k: v.astype(dtype) for k, v in initial_params().items()}
    state = {
        k: {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_var": np.zeros_like(p)}
        for k, p in params.items()
    }
    trajectory = []
    for index, grads in enumerate(gradient_sequence()):
        lr = lrs[index] if schedule else CONSTANT_LR
        for name, p in params.items():
            st = state[name]
            grad = grads[name].astype(dtype)
            if weight_decouple:
                p *= dtype(1.0 - lr * weight_decay)
            elif weight_decay != 0:
                grad = grad + dtype(weight_decay) * p
            exp_avg, exp_avg_var = st["exp_avg"], st["exp_avg_var"]
            st["step"] += 1
            bias_correction1 = 1 - beta1 ** st["step"]
            bias_correction2 = 1 - beta2 ** (st["step"] - 1)
            exp_avg *= dtype(beta1)
            exp_avg += dtype(1 - beta1) * grad
            if st["step"] > 1:
                exp_avg_var += dtype(eps)
                denom = np.sqrt(exp_avg_var) / dtype(math.sqrt(bias_correction2)) + dtype(eps)
            if st["step"] <= 1:
                p += dtype(-lr) * (exp_avg / dtype(bias_correction1))
            else:
                numerator = grad * dtype(bias_correction1)
                step_size = lr / bias_correction1
                p += dtype(-step_size) * (numerator / denom)
            grad_residual = grad - exp_avg
            exp_avg_var *= dtype(beta2)
            exp_avg_var += dtype(1 - beta2) * grad_residual * grad_residual
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
