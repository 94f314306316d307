"""NumPy transliteration of Keller Jordan's Muon (github.com/KellerJordan/Muon, muon.py).

``zeropower_via_newtonschulz5``, ``muon_update``, ``adam_update`` and the steps of
``SingleDeviceMuon`` / ``SingleDeviceMuonWithAuxAdam``, written from the official file.
The official code casts to bfloat16 before the iteration; here the precision is a
parameter: ``precision="float64"`` runs everything in float64 (for 1e-10 comparisons),
``precision="bfloat16"`` rounds the result of every operation of the iteration to
bfloat16 (computed in float32 in between, as torch's CPU kernels accumulate).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

COEFFS = (3.4445, -4.7750, 2.0315)


def _rounder(precision: str):
    if precision == "float64":
        return lambda x: np.asarray(x, np.float64)
    if precision == "bfloat16":
        return lambda x: np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    raise ValueError(precision)


def zeropower_via_newtonschulz5(G, steps, precision="bfloat16", eps=1e-7, coeffs=COEFFS):
    """The official iteration on the last two axes (leading axes are a batch)."""
    r = _rounder(precision)
    a, b, c = coeffs
    X = r(G)
    tall = G.shape[-2] > G.shape[-1]
    if tall:
        X = np.swapaxes(X, -1, -2)
    norm = r(np.sqrt(np.sum(np.square(X, dtype=np.float64), axis=(-2, -1), keepdims=True)))
    X = r(X / r(norm + eps))
    for _ in range(steps):
        A = r(X @ np.swapaxes(X, -1, -2))
        B = r(r(b * A) + r(r(c * A) @ A))
        X = r(r(a * X) + r(B @ X))
    if tall:
        X = np.swapaxes(X, -1, -2)
    return X


def muon_update(grad, momentum, beta=0.95, ns_steps=5, nesterov=True, precision="bfloat16"):
    """New momentum and the update, as the official ``muon_update`` (which also
    overwrites ``grad`` with the Nesterov mix; the shape factor reads grad's shape)."""
    momentum = momentum + (1 - beta) * (grad - momentum)  # momentum.lerp_(grad, 1 - beta)
    update = grad + beta * (momentum - grad) if nesterov else momentum
    if update.ndim == 4:  # conv filters: (out, in * kh * kw)
        update = update.reshape(len(update), -1)
    update = zeropower_via_newtonschulz5(update, ns_steps, precision)
    update = update * max(1, grad.shape[-2] / grad.shape[-1]) ** 0.5
    return momentum, update


def muon_step(p, grad, state, lr, weight_decay, momentum, precision="bfloat16", nesterov=True):
    """One ``SingleDeviceMuon`` step of one parameter; returns (p, state)."""
    buf = state if state is not None else np.zeros_like(p)
    buf, update = muon_update(grad, buf, momentum, nesterov=nesterov, precision=precision)
    p = p * (1 - lr * weight_decay)
    return p - lr * update.reshape(p.shape), buf


def adam_update(grad, buf1, buf2, step, betas, eps):
    buf1 = buf1 + (1 - betas[0]) * (grad - buf1)
    buf2 = buf2 + (1 - betas[1]) * (grad**2 - buf2)
    buf1c = buf1 / (1 - betas[0] ** step)
    buf2c = buf2 / (1 - betas[1] ** step)
    return buf1c / (np.sqrt(buf2c) + eps), buf1, buf2


def adam_step(p, grad, state, lr, weight_decay, betas=(0.9, 0.95), eps=1e-10):
    """One AdamW step of ``SingleDeviceMuonWithAuxAdam``'s Adam groups."""
    buf1, buf2, step = state if state is not None else (np.zeros_like(p), np.zeros_like(p), 0)
    step += 1
    update, buf1, buf2 = adam_update(grad, buf1, buf2, step, betas, eps)
    p = p * (1 - lr * weight_decay)
    return p - lr * update, (buf1, buf2, step)


def run(params, grads, lrs, use_muon, muon_group, adam_group, precision="bfloat16"):
    """Trajectory of ``SingleDeviceMuonWithAuxAdam`` over a dict of float64 arrays.

    ``use_muon[name]`` picks the group; ``lrs[t]`` is the Muon learning rate at step t
    and ``adam_group["lr_scale"] * lrs[t]`` Adam's.
    """
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    states = dict.fromkeys(params)
    trajectory = []
    for t, g in enumerate(grads):
        for k in params:
            if use_muon[k]:
                params[k], states[k] = muon_step(
                    params[k], g[k], states[k], lrs[t], precision=precision, **muon_group
                )
            else:
                group = dict(adam_group)
                lr = group.pop("lr_scale") * lrs[t]
                params[k], states[k] = adam_step(params[k], g[k], states[k], lr, **group)
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
