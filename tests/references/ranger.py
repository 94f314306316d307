"""Ranger (lessw2020/Ranger-Deep-Learning-Optimizer ``ranger/ranger.py``) in NumPy.

Written from Ranger's ``step``, in its own variable names: gradient centralization on
leaves with more than ``gc_gradient_threshold`` axes, the Adam moments, ``N_sma`` and
``step_size`` from Python floats (strict ``N_sma > N_sma_threshhold``; otherwise SGD
with bias-corrected momentum), decoupled weight decay on every step, then the
integrated Lookahead on every ``k``-th step with ``slow_buffer`` taken from the params
at the first step. The per-step cache of ``(N_sma, step_size)`` only saves work and is
left out. Arrays stay in ``dtype`` (the original computes in float32 whatever the
params' dtype).
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


def run_ranger(
    dtype,
    schedule: bool,
    *,
    alpha: float = 0.5,
    k: int = 6,
    N_sma_threshhold: float = 5,
    betas: tuple[float, float] = (0.95, 0.999),
    eps: float = 1e-5,
    weight_decay: float = 0.0,
    use_gc: bool = True,
    gc_conv_only: bool = False,
    params: dict[str, np.ndarray] | None = None,
    grad_sequence: list[dict[str, np.ndarray]] | None = None,
) -> Trajectory:
    """Params after every step, fed ``grad_sequence`` (the harness gradients by default).

    With ``schedule`` the group's lr is set to ``learning_rates()[t]`` before step t.
    """
    beta1, beta2 = betas
    gc_gradient_threshold = 3 if gc_conv_only else 1
    grad_sequence = gradient_sequence() if grad_sequence is None else grad_sequence
    start = initial_params() if params is None else params
    params = {k_: v.astype(dtype) for k_, v in start.items()}
    lrs = learning_rates() if schedule else None
    state = {}
    trajectory = []
    for index, grads in enumerate(grad_sequence):
        lr = lrs[index] if schedule else CONSTANT_LR
        for name in params:
            grad = grads[name].astype(dtype)
            p_data_fp32 = params[name]
            if name not in state:
                state[name] = {
                    "step": 0,
                    "exp_avg": np.zeros_like(p_data_fp32),
                    "exp_avg_sq": np.zeros_like(p_data_fp32),
                    "slow_buffer": p_data_fp32.copy(),
                }
            st = state[name]
            exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]

            if use_gc and grad.ndim > gc_gradient_threshold:
                grad = grad - grad.mean(axis=tuple(range(1, grad.ndim)), keepdims=True)

            st["step"] += 1
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            exp_avg *= beta1
            exp_avg += (1 - beta1) * grad

            beta2_t = beta2 ** st["step"]
            N_sma_max = 2 / (1 - beta2) - 1
            N_sma = N_sma_max - 2 * st["step"] * beta2_t / (1 - beta2_t)
            if N_sma > N_sma_threshhold:
                step_size = math.sqrt(
                    (1 - beta2_t)
                    * (N_sma - 4)
                    / (N_sma_max - 4)
                    * (N_sma - 2)
                    / N_sma
                    * N_sma_max
                    / (N_sma_max - 2)
                ) / (1 - beta1 ** st["step"])
            else:
                step_size = 1.0 / (1 - beta1 ** st["step"])

            if weight_decay != 0:
                p_data_fp32 = p_data_fp32 + p_data_fp32 * dtype(-weight_decay * lr)

            if N_sma > N_sma_threshhold:
                denom = np.sqrt(exp_avg_sq) + dtype(eps)
                p_data_fp32 = p_data_fp32 + dtype(-step_size * lr) * (exp_avg / denom)
            else:
                p_data_fp32 = p_data_fp32 + dtype(-step_size * lr) * exp_avg
            params[name] = p_data_fp32

            if st["step"] % k == 0:
                slow_p = st["slow_buffer"]
                slow_p = slow_p + dtype(alpha) * (params[name] - slow_p)
                st["slow_buffer"] = slow_p
                params[name] = slow_p.copy()
        trajectory.append({k_: v.copy() for k_, v in params.items()})
    return trajectory
