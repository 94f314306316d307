"""davda54/sam's ``SAM`` (sam.py) over torch.optim.SGD, in NumPy.

Written from ``first_step`` / ``second_step``: the gradient norm is the 2-norm of the
stack of per-tensor 2-norms of ``(|p| if adaptive else 1) * grad``; each tensor climbs
by ``e_w = (p**2 if adaptive else 1) * grad * rho / (norm + 1e-12)``; the gradient is
taken again at the climbed point; the params go back to ``old_p`` and SGD steps with the
new gradient (torch's single-tensor SGD: ``d = g + weight_decay * p``, the buffer is
``d`` on the first step and ``momentum * buf + d`` afterwards, Nesterov adds
``momentum * buf`` to ``d``). Arrays stay in ``dtype``.

The loss is a test objective with a nonlinear gradient, a different "batch" ``t`` per
step: ``sum(log(cosh(p - t)) + 0.05 * p**2)``, gradient ``tanh(p - t) + 0.1 * p``.
"""

from __future__ import annotations

import numpy as np

from tests.reference import Trajectory, gradient_sequence, initial_params


def batch_targets(steps: int, dtype) -> list[dict[str, np.ndarray]]:
    """The targets ``t`` of each step (the harness gradients, scaled down)."""
    return [{k: (0.5 * v).astype(dtype) for k, v in g.items()} for g in gradient_sequence(steps)]


def loss_gradient(p: dict, t: dict) -> dict:
    return {k: np.tanh(p[k] - t[k]) + 0.1 * p[k] for k in p}


def run_davda54_sam(
    dtype,
    steps: int,
    *,
    lr: float,
    rho: float,
    adaptive: bool = False,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> Trajectory:
    params = {k: np.asarray(v, dtype) for k, v in initial_params().items()}
    buffers: dict[str, np.ndarray] = {}
    trajectory = []
    for t in batch_targets(steps, dtype):
        grad = loss_gradient(params, t)
        # first_step
        per_tensor = [
            np.linalg.norm(((np.abs(params[k]) if adaptive else 1.0) * grad[k]).ravel())
            for k in params
        ]
        grad_norm = np.linalg.norm(np.asarray(per_tensor, dtype))
        scale = dtype(rho) / (grad_norm + dtype(1e-12))
        old_p = {k: v.copy() for k, v in params.items()}
        for k in params:
            e_w = (params[k] ** 2 if adaptive else 1.0) * grad[k] * scale
            params[k] = params[k] + e_w
        # closure: the gradient at w + e(w)
        grad = loss_gradient(params, t)
        # second_step: back to w, then torch SGD
        params = old_p
        for k in params:
            d = grad[k] + dtype(weight_decay) * params[k] if weight_decay else grad[k]
            if momentum:
                buf = d.copy() if k not in buffers else dtype(momentum) * buffers[k] + d
                buffers[k] = buf
                d = d + dtype(momentum) * buf if nesterov else buf
            params[k] = params[k] - dtype(lr) * d
        trajectory.append({k: v.copy() for k, v in params.items()})
    return trajectory
