"""The official AdaBound (Luolc/AdaBound ``adabound/adabound.py``, class AdaBound) in NumPy.

Written from the official ``step``, in its own variable names: L2 weight decay added
to the gradient, ``base_lr`` captured when the optimizer is built, the step size and
both bounds formed from Python floats, then an element-wise clamp of
``step_size / denom`` multiplied by ``exp_avg``. Arrays stay in ``dtype``.
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


def run_official_adabound(
    dtype,
    schedule: bool,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    final_lr: float = 0.1,
    gamma: float = 1e-3,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsbound: bool = False,
) -> Trajectory:
    """Params after every step, fed ``tests.reference.gradient_sequence()``.

    With ``schedule`` the group's lr is set to ``learning_rates()[t]`` before step t;
    the optimizer is built with the first of them, so that is ``base_lr``.
    """
    beta1, beta2 = betas
    lrs = learning_rates() if schedule else None
    base_lr = lrs[0] if schedule else CONSTANT_LR
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
                if amsbound:
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
            if amsbound:
                np.maximum(st["max_exp_avg_sq"], exp_avg_sq, out=st["max_exp_avg_sq"])
                denom = np.sqrt(st["max_exp_avg_sq"]) + eps
            else:
                denom = np.sqrt(exp_avg_sq) + eps

            bias_correction1 = 1 - beta1 ** st["step"]
            bias_correction2 = 1 - beta2 ** st["step"]
            step_size = lr * math.sqrt(bias_correction2) / bias_correction1

            final_lr_t = final_lr * lr / base_lr
            lower_bound = final_lr_t * (1 - 1 / (gamma * st["step"] + 1))
            upper_bound = final_lr_t * (1 + 1 / (gamma * st["step"]))
            step = np.full_like(denom, step_size)
            step = np.clip(step / denom, lower_bound, upper_bound) * exp_avg

            p -= step
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
