"""The official RAdam (LiyuanLucasLiu/RAdam ``radam/radam.py``, class RAdam) in NumPy.

Written from the official ``step``, in its own variable names: the moments are updated
first, ``N_sma`` and ``step_size`` come from Python floats, and a step with
``N_sma < 5`` either degenerates to SGD with bias-corrected momentum
(``degenerated_to_sgd=True``) or leaves the parameter untouched, weight decay included.
The per-step cache of ``(N_sma, step_size)`` only saves work and is left out. Arrays
stay in ``dtype`` (the official code computes in float32 for float32 params).
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


def run_official_radam(
    dtype,
    schedule: bool,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    degenerated_to_sgd: bool = False,
) -> Trajectory:
    """Params after every step, fed ``tests.reference.gradient_sequence()``."""
    beta1, beta2 = betas
    params = {k: v.astype(dtype) for k, v in initial_params().items()}
    state = {
        k: {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
        for k, p in params.items()
    }
    lrs = learning_rates() if schedule else None
    trajectory = []
    for index, grads in enumerate(gradient_sequence()):
        lr = lrs[index] if schedule else CONSTANT_LR
        for name, p_data in params.items():
            grad = grads[name].astype(dtype)
            st = state[name]
            exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            exp_avg *= beta1
            exp_avg += (1 - beta1) * grad

            st["step"] += 1
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
                if weight_decay != 0:
                    p_data += p_data * (-weight_decay * lr)
                denom = np.sqrt(exp_avg_sq) + eps
                p_data += (-step_size * lr) * exp_avg / denom
            elif step_size > 0:
                if weight_decay != 0:
                    p_data += p_data * (-weight_decay * lr)
                p_data += (-step_size * lr) * exp_avg
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
