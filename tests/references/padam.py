"""The official Padam (uclaml/Padam ``Padam.py``, class Padam) in NumPy.

Written from the official ``step``, in its own variable names: L2 weight decay added
to the gradient, AMSGrad's running maximum (on by default), and the update
``p -= lr * sqrt(bc2) / bc1 * exp_avg / denom**(2 * partial)`` with
``denom = sqrt(v) + eps``. Arrays stay in ``dtype``.
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


def run_official_padam(
    dtype,
    schedule: bool,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = True,
    partial: float = 1 / 4,
) -> Trajectory:
    """Params after every step, fed ``tests.reference.gradient_sequence()``."""
    beta1, beta2 = betas
    lrs = learning_rates() if schedule else None
    params = {k: v.astype(dtype) for k, v in initial_params().items()}
    state = {}
    trajectory = []
    for index, grads in enumerate(gradient_sequence()):
        lr = lrs[index] if schedule else CONSTANT_LR
        for name, p in params.items():
            grad = grads[name].astype(dtype)
            if name not in state:
                state[name] = {
                    "step": 0,
                    "exp_avg": np.zeros_like(p),
                    "exp_avg_sq": np.zeros_like(p),
                }
                if amsgrad:
                    state[name]["max_exp_avg_sq"] = np.zeros_like(p)
            st = state[name]
            exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
            st["step"] += 1

            if weight_decay != 0:
                grad = grad + weight_decay * p

            exp_avg *= beta1
            exp_avg += (1 - beta1) * grad
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            if amsgrad:
                np.maximum(st["max_exp_avg_sq"], exp_avg_sq, out=st["max_exp_avg_sq"])
                denom = np.sqrt(st["max_exp_avg_sq"]) + eps
            else:
                denom = np.sqrt(exp_avg_sq) + eps

            bias_correction1 = 1 - beta1 ** st["step"]
            bias_correction2 = 1 - beta2 ** st["step"]
            step_size = lr * math.sqrt(bias_correction2) / bias_correction1

            p -= step_size * exp_avg / denom ** (partial * 2)
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
