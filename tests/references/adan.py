"""The official Adan (sail-sg/Adan ``adan.py``, single-tensor path) transliterated to NumPy.

Written from the official step, loop by loop, in its own variable names: the global
clipping factor (``.item()`` of the clamped ratio), the per-group step, the stored
``neg_pre_grad`` (minus the previous clipped gradient, re-initialised on step 1),
the in-place clipped gradient, proximal or ``no_prox`` weight decay, and
``restart_opt()``. Fed the gradients of tests/reference.py, it returns a trajectory
in that module's format.
"""

from __future__ import annotations

import math

import numpy as np

from tests.reference import (
    CONSTANT_LR,
    STEPS,
    Trajectory,
    gradient_sequence,
    initial_params,
    learning_rates,
)


def run_official_adan(
    dtype,
    schedule: bool,
    *,
    betas: tuple[float, float, float] = (0.98, 0.92, 0.99),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    max_grad_norm: float = 0.0,
    no_prox: bool = False,
    restart_after: tuple[int, ...] = (),
) -> Trajectory:
    """Params after every step; ``restart_opt()`` is called after the listed step numbers."""
    beta1, beta2, beta3 = betas
    params = {k: v.astype(dtype) for k, v in initial_params().items()}
    lrs = learning_rates() if schedule else [CONSTANT_LR] * STEPS
    state: dict[str, dict[str, np.ndarray]] = {}
    group_step = 0
    trajectory = []
    for index, raw_grads in enumerate(gradient_sequence()):
        lr = lrs[index]
        grads = {k: g.astype(dtype) for k, g in raw_grads.items()}

        if max_grad_norm > 0:
            global_grad_norm = np.zeros(1, dtype)
            for g in grads.values():
                global_grad_norm += np.sum(g**2)
            global_grad_norm = np.sqrt(global_grad_norm)
            ratio = np.asarray(max_grad_norm, dtype) / (global_grad_norm + eps)
            clip_global_grad_norm = float(np.minimum(ratio, 1.0)[0])
        else:
            clip_global_grad_norm = 1.0

        group_step += 1
        bias_correction1 = 1.0 - beta1**group_step
        bias_correction2 = 1.0 - beta2**group_step
        bias_correction3 = 1.0 - beta3**group_step

        for name, grad in grads.items():
            param = params[name]
            if name not in state:
                state[name] = {
                    "exp_avg": np.zeros_like(param),
                    "exp_avg_sq": np.zeros_like(param),
                    "exp_avg_diff": np.zeros_like(param),
                }
            s = state[name]
            if "neg_pre_grad" not in s or group_step == 1:
                s["neg_pre_grad"] = grad * -clip_global_grad_norm

            grad = grad * clip_global_grad_norm
            neg_grad_or_diff = s["neg_pre_grad"] + grad
            s["exp_avg"] = s["exp_avg"] * beta1 + grad * (1 - beta1)
            s["exp_avg_diff"] = s["exp_avg_diff"] * beta2 + neg_grad_or_diff * (1 - beta2)
            neg_grad_or_diff = neg_grad_or_diff * beta2 + grad
            s["exp_avg_sq"] = s["exp_avg_sq"] * beta3 + neg_grad_or_diff * neg_grad_or_diff * (
                1 - beta3
            )

            denom = np.sqrt(s["exp_avg_sq"]) / math.sqrt(bias_correction3) + eps
            step_size_diff = lr * beta2 / bias_correction2
            step_size = lr / bias_correction1
            if no_prox:
                param = param * (1 - lr * weight_decay)
                param = param - step_size * s["exp_avg"] / denom
                param = param - step_size_diff * s["exp_avg_diff"] / denom
            else:
                param = param - step_size * s["exp_avg"] / denom
                param = param - step_size_diff * s["exp_avg_diff"] / denom
                param = param / (1 + lr * weight_decay)
            params[name] = param.astype(dtype)
            s["neg_pre_grad"] = -grad

        trajectory.append({k: v.copy() for k, v in params.items()})
        if index + 1 in restart_after:
            group_step = 0
            for s in state.values():
                s["exp_avg"] = np.zeros_like(s["exp_avg"])
                s["exp_avg_sq"] = np.zeros_like(s["exp_avg_sq"])
                s["exp_avg_diff"] = np.zeros_like(s["exp_avg_diff"])
    return trajectory


def official_reference(**options):
    """A ``run_reference`` for tests/reference.py's ``compare``."""
    return lambda dtype, schedule: run_official_adan(dtype, schedule, **options)
