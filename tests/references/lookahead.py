"""The authors' Lookahead (michaelrzhang/lookahead ``lookahead_pytorch.py``) in NumPy.

Written from the wrapper's ``step``, in its own variable names, around torch.optim.SGD's
momentum step (single-tensor path): the inner step runs, ``_la_step`` counts it, and
when it reaches ``la_steps`` the params are interpolated toward ``cached_params``, which
take their new value; then ``pullback_momentum`` "reset" replaces the momentum buffer
by zeros and "pullback" interpolates it toward ``cached_mom``, which takes its new value.
``cached_mom`` is kept as a copy: in the PyTorch original it becomes the very tensor
SGD updates in place, an aliasing the wrapper does not intend (see
``optix.transforms.lookahead``). Arrays stay in ``dtype``.
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


def run_authors_lookahead(
    dtype,
    schedule: bool,
    *,
    la_steps: int = 5,
    la_alpha: float = 0.8,
    pullback_momentum: str = "none",
    momentum: float = 0.9,
    dampening: float = 0.0,
    nesterov: bool = False,
    slow: bool = False,
) -> Trajectory:
    """Params after every step (``cached_params`` with ``slow``), fed the harness gradients.

    With ``schedule`` the group's lr is set to ``learning_rates()[t]`` before step t.
    """
    lrs = learning_rates() if schedule else None
    params = {k: v.astype(dtype) for k, v in initial_params().items()}
    cached_params = {k: v.copy() for k, v in params.items()}
    cached_mom = {k: np.zeros_like(v) for k, v in params.items()}
    momentum_buffer: dict[str, np.ndarray | None] = {k: None for k in params}
    la_step = 0
    trajectory = []
    for index, grads in enumerate(gradient_sequence()):
        lr = lrs[index] if schedule else CONSTANT_LR
        # optimizer.step(): torch.optim.SGD
        for name, param in params.items():
            grad = grads[name].astype(dtype)
            buf = momentum_buffer[name]
            if buf is None:
                buf = grad.copy()
            else:
                buf = buf * dtype(momentum) + grad * dtype(1 - dampening)
            momentum_buffer[name] = buf
            step = grad + buf * dtype(momentum) if nesterov else buf
            params[name] = param + step * dtype(-lr)
        la_step += 1
        if la_step >= la_steps:
            la_step = 0
            for name in params:
                params[name] = params[name] * dtype(la_alpha) + cached_params[name] * dtype(
                    1.0 - la_alpha
                )
                cached_params[name] = params[name].copy()
                if pullback_momentum == "pullback":
                    internal_momentum = momentum_buffer[name]
                    momentum_buffer[name] = internal_momentum * dtype(la_alpha) + cached_mom[
                        name
                    ] * dtype(1.0 - la_alpha)
                    cached_mom[name] = momentum_buffer[name].copy()
                elif pullback_momentum == "reset":
                    momentum_buffer[name] = np.zeros_like(params[name])
        source = cached_params if slow else params
        trajectory.append({k: v.copy() for k, v in source.items()})
    return trajectory
