"""The official AdEMAMix (apple/ml-ademamix ``pytorch/ademamix.py``, class AdEMAMix) and the
official simplified AdEMAMix (DepenM/Simplified-AdEMAMix ``simplified_AdEMAMix.py``, class
SimAdEMAMix) in NumPy.

Written from the official ``step`` methods, in their own variable names, with their
warmup schedulers evaluated at the 1-based step (``linear_hl_warmup_scheduler`` adds
1e-8 to beta inside its log). The official SimAdEMAMix constructor checks ``betas[2]``
of its two betas and cannot be built as published; its ``step`` is transliterated here.
Arrays stay in ``dtype``.
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


def linear_warmup_scheduler(step, alpha_end, alpha_start=0, warmup=1):
    if step < warmup:
        a = step / float(warmup)
        return (1.0 - a) * alpha_start + a * alpha_end
    return alpha_end


def linear_hl_warmup_scheduler(step, beta_end, beta_start=0, warmup=1):
    def f(beta, eps=1e-8):
        return math.log(0.5) / math.log(beta + eps) - 1

    def f_inv(t):
        return math.pow(0.5, 1 / (t + 1))

    if step < warmup:
        a = step / float(warmup)
        return f_inv((1.0 - a) * f(beta_start) + a * f(beta_end))
    return beta_end


def _run(dtype, schedule, step_fn) -> Trajectory:
    lrs = learning_rates() if schedule else None
    params = {k: v.astype(dtype) for k, v in initial_params().items()}
    state: dict = {}
    trajectory = []
    for index, grads in enumerate(gradient_sequence()):
        lr = lrs[index] if schedule else CONSTANT_LR
        for name, p in params.items():
            step_fn(p, grads[name].astype(dtype), state.setdefault(name, {}), lr)
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory


def run_official_ademamix(
    dtype,
    schedule: bool,
    *,
    betas=(0.9, 0.999, 0.9999),
    alpha=2.0,
    beta3_warmup=None,
    alpha_warmup=None,
    eps=1e-8,
    weight_decay=0.0,
) -> Trajectory:
    """Params after every step of the official AdEMAMix."""
    beta1, beta2, beta3_final = betas

    def step(p, grad, state, lr):
        if not state:
            state.update(step=0, exp_avg_fast=np.zeros_like(p), exp_avg_slow=np.zeros_like(p))
            state["exp_avg_sq"] = np.zeros_like(p)
        exp_avg_fast, exp_avg_slow = state["exp_avg_fast"], state["exp_avg_slow"]
        exp_avg_sq = state["exp_avg_sq"]
        state["step"] += 1
        bias_correction1 = 1 - beta1 ** state["step"]
        bias_correction2 = 1 - beta2 ** state["step"]
        a = alpha
        if alpha_warmup is not None:
            a = linear_warmup_scheduler(state["step"], alpha, 0, alpha_warmup)
        beta3 = beta3_final
        if beta3_warmup is not None:
            beta3 = linear_hl_warmup_scheduler(state["step"], beta3_final, beta1, beta3_warmup)
        exp_avg_fast *= dtype(beta1)
        exp_avg_fast += dtype(1 - beta1) * grad
        exp_avg_slow *= dtype(beta3)
        exp_avg_slow += dtype(1 - beta3) * grad
        exp_avg_sq *= dtype(beta2)
        exp_avg_sq += dtype(1 - beta2) * grad * grad
        denom = np.sqrt(exp_avg_sq) / dtype(math.sqrt(bias_correction2)) + dtype(eps)
        update = (exp_avg_fast / dtype(bias_correction1) + dtype(a) * exp_avg_slow) / denom
        update += dtype(weight_decay) * p
        p += dtype(-lr) * update

    return _run(dtype, schedule, step)


def run_official_simplified_ademamix(
    dtype,
    schedule: bool,
    *,
    betas=(0.99, 0.95),
    alpha=0.0,
    beta1_warmup=None,
    eps=1e-8,
    weight_decay=0.0,
    min_beta1=0.9,
) -> Trajectory:
    """Params after every step of the official SimAdEMAMix (bias_correction2 on, 1 off)."""
    beta1_final, beta2 = betas

    def step(p, grad, state, lr):
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
            state.update(num_sum=0.0, den_sum=0.0)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        beta1 = beta1_final
        if beta1_warmup is not None:
            beta1 = linear_hl_warmup_scheduler(state["step"], beta1_final, min_beta1, beta1_warmup)
        exp_avg *= dtype(beta1)
        exp_avg += grad
        exp_avg_sq *= dtype(beta2)
        exp_avg_sq += dtype(1 - beta2) * grad * grad
        state["den_sum"] = beta2 * state["den_sum"] + (1.0 - beta2)
        denom = np.sqrt(exp_avg_sq) + dtype(eps * math.sqrt(state["den_sum"]))
        update = (dtype(alpha) * grad + exp_avg) / denom
        update = update * dtype(math.sqrt(state["den_sum"]))
        update += dtype(weight_decay) * p
        p += dtype(-lr) * update

    return _run(dtype, schedule, step)
