"""The official ADOPT (iShohei220/adopt ``src/adopt/adopt.py``, ``_single_tensor_adopt``) in NumPy.

Written from the official per-tensor step, in its own variable names: optional L2 decay
added to the gradient, a first step that only fills ``exp_avg_sq``, then decoupled decay
(``decouple=True``), ``normed_grad = grad / max(sqrt(exp_avg_sq), eps)`` clipped to
``clip_lambda(step)`` with the step count before the increment, ``exp_avg.lerp_``,
``p -= lr * exp_avg`` and the second-moment update. Arrays stay in ``dtype``.
"""

from __future__ import annotations

import numpy as np

from tests.reference import (
    CONSTANT_LR,
    Trajectory,
    gradient_sequence,
    initial_params,
    learning_rates,
)


def run_official_adopt(
    dtype,
    schedule: bool,
    *,
    betas: tuple[float, float] = (0.9, 0.9999),
    eps: float = 1e-6,
    clip_lambda=lambda step: step**0.25,
    weight_decay: float = 0.0,
    decouple: bool = False,
) -> Trajectory:
    """Params after every step, fed ``tests.reference.gradient_sequence()``."""
    beta1, beta2 = betas
    lrs = learning_rates() if schedule else None
    params = {k: v.astype(dtype) for k, v in initial_params().items()}
    state = {
        k: {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
        for k, p in params.items()
    }
    trajectory = []
    for index, grads in enumerate(gradient_sequence()):
        lr = lrs[index] if schedule else CONSTANT_LR
        for name, param in params.items():
            st = state[name]
            grad = grads[name].astype(dtype)
            exp_avg, exp_avg_sq, step = st["exp_avg"], st["exp_avg_sq"], st["step"]
            if weight_decay != 0 and not decouple:
                grad = grad + dtype(weight_decay) * param
            if step == 0:
                exp_avg_sq += grad * grad
                st["step"] += 1
                continue
            if weight_decay != 0 and decouple:
                param += param * dtype(-lr * weight_decay)
            denom = np.maximum(np.sqrt(exp_avg_sq), dtype(eps))
            normed_grad = grad / denom
            if clip_lambda is not None:
                clip = dtype(clip_lambda(step))
                normed_grad = np.clip(normed_grad, -clip, clip)
            exp_avg += dtype(1 - beta1) * (normed_grad - exp_avg)  # lerp_
            param += dtype(-lr) * exp_avg
            exp_avg_sq *= dtype(beta2)
            exp_avg_sq += dtype(1 - beta2) * grad * grad
            st["step"] += 1
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
