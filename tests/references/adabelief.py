"""The official AdaBelief (adabelief-pytorch 0.2.1, ``AdaBelief.step``) in NumPy.

Written from the official ``step``, in its own variable names and order: weight decay
first (decoupled ``p *= 1 - lr * wd`` or ``1 - wd``, or L2 on the gradient), then the
moments, ``eps`` added in place to ``exp_avg_var`` (inside ``max`` with AMSGrad), then
either the plain step or RAdam's rectified one with ``N_sma`` and ``step_size`` from
Python floats. The rectified branch divides by ``sqrt(exp_avg_var) + eps`` even with
AMSGrad, and with ``degenerated_to_sgd=False`` it leaves the parameter alone while
``N_sma < 5`` (after the weight decay). The per-step cache of ``(N_sma, step_size)``
only saves work and is left out. Arrays stay in ``dtype``.
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


def run_official_adabelief(
    dtype,
    schedule: bool,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-16,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    weight_decouple: bool = True,
    fixed_decay: bool = False,
    rectify: bool = True,
    degenerated_to_sgd: bool = True,
) -> Trajectory:
    """Params after every step, fed ``tests.reference.gradient_sequence()``."""
    beta1, beta2 = betas
    params = {k: v.astype(dtype) for k, v in initial_params().items()}
    state = {
        k: {
            "step": 0,
            "exp_avg": np.zeros_like(p),
            "exp_avg_var": np.zeros_like(p),
            "max_exp_avg_var": np.zeros_like(p),
        }
        for k, p in params.items()
    }
    lrs = learning_rates() if schedule else None
    trajectory = []
    for index, grads in enumerate(gradient_sequence()):
        lr = lrs[index] if schedule else CONSTANT_LR
        for name, p_data in params.items():
            grad = grads[name].astype(dtype)
            st = state[name]

            if weight_decouple:
                if not fixed_decay:
                    p_data *= 1.0 - lr * weight_decay
                else:
                    p_data *= 1.0 - weight_decay
            elif weight_decay != 0:
                grad = grad + weight_decay * p_data

            exp_avg, exp_avg_var = st["exp_avg"], st["exp_avg_var"]
            st["step"] += 1
            bias_correction1 = 1 - beta1 ** st["step"]
            bias_correction2 = 1 - beta2 ** st["step"]

            exp_avg *= beta1
            exp_avg += (1 - beta1) * grad
            grad_residual = grad - exp_avg
            exp_avg_var *= beta2
            exp_avg_var += (1 - beta2) * grad_residual * grad_residual

            exp_avg_var += eps
            if amsgrad:
                max_exp_avg_var = st["max_exp_avg_var"]
                np.maximum(max_exp_avg_var, exp_avg_var, out=max_exp_avg_var)
                denom = np.sqrt(max_exp_avg_var) / math.sqrt(bias_correction2) + eps
            else:
                denom = np.sqrt(exp_avg_var) / math.sqrt(bias_correction2) + eps

            if not rectify:
                step_size = lr / bias_correction1
                p_data -= step_size * (exp_avg / denom)
                continue

            beta2_t = beta2 ** st["step"]
            N_sma_max = 2 / (1 - beta2) - 1
            N_sma = N_sma_max - 2 * st["step"] * beta2_t / (1 - beta2_t)
            if N_sma >= 5:
                step_size = math.sqrt(
                    (1 - beta2_t)
                    * (N_sma - 4)
                    / (N_sma_max - 4)
                    * (N_sma - 2)
                    / N_sma
                    * N_sma_max
                    / (N_sma_max - 2)
                ) / (1 - beta1 ** st["step"])
            elif degenerated_to_sgd:
                step_size = 1.0 / (1 - beta1 ** st["step"])
            else:
                step_size = -1

            if N_sma >= 5:
                denom = np.sqrt(exp_avg_var) + eps
                p_data -= (step_size * lr) * (exp_avg / denom)
            elif step_size > 0:
                p_data -= (step_size * lr) * exp_avg
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
