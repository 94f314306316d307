"""The L-BFGS two-loop recursion in NumPy float64, loop by loop.

Written from Nocedal & Wright, "Numerical Optimization" (2006), Algorithms 7.4 and 7.5,
not from optix. The memory is a Python list with one entry per update, oldest first, the
last ``memory_size`` of them (Optax's memory of the last m updates): the curvature pair
(s, y) of the update, or None when the pair is skipped, on the first update and when
s.y <= 0 or 1 / s.y is not finite (section 7.2's skipping rule). The initial matrix is
gamma * I with gamma = s.y / y.y of the newest pair (equation 7.20); with no pair in the
memory it is min(1, 1 / ||g||), Optax's first step; without scaling it is 1. Inner
products are explicit float64 loops over all leaves, in the order of
``tests.reference.SHAPES``.
"""

from __future__ import annotations

import math

import numpy as np

from tests.reference import (
    CONSTANT_LR,
    SHAPES,
    Trajectory,
    gradient_sequence,
    initial_params,
    learning_rates,
)
from tests.references import explicit_norm


def _flat(tree: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(tree[k], np.float64).reshape(-1) for k in SHAPES])


def _unflat(vector: np.ndarray) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name, shape in SHAPES.items():
        size = math.prod(shape)
        out[name] = vector[start : start + size].reshape(shape).copy()
        start += size
    return out


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for x, y in zip(a, b, strict=True):
        total += float(x) * float(y)
    return total


class TwoLoop:
    """Inverse-Hessian products from the pairs stored in the last ``memory_size`` updates."""

    def __init__(self, memory_size: int, scale_init_precond: bool = True):
        self.memory_size = memory_size
        self.scale_init_precond = scale_init_precond
        self.memory: list[tuple[np.ndarray, np.ndarray, float] | None] = []  # (s, y, rho)
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.accepted = 0
        self.skipped = 0

    def direction(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """H g for the params and gradient of this step (a descent step subtracts it)."""
        entry = None
        if self.previous is not None:
            s, y = params - self.previous[0], grad - self.previous[1]
            ys = _dot(y, s)
            if ys > 0 and math.isfinite(ys) and math.isfinite(1.0 / ys):
                entry = (s, y, 1.0 / ys)
                self.accepted += 1
            else:
                self.skipped += 1
        self.memory = [*self.memory, entry][-self.memory_size :]
        pairs = [pair for pair in self.memory if pair is not None]
        self.previous = (params.copy(), grad.copy())
        if not self.scale_init_precond:
            gamma = 1.0
        elif pairs:
            s, y, _ = pairs[-1]
            gamma = _dot(y, s) / _dot(y, y)
        else:
            norm = explicit_norm(grad)
            gamma = min(1.0, 1.0 / norm) if norm > 0 else 1.0
        q = grad.copy()
        alphas = []
        for s, y, rho in reversed(pairs):
            alpha = rho * _dot(s, q)
            q = q - alpha * y
            alphas.append(alpha)
        r = gamma * q
        for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
            beta = rho * _dot(y, r)
            r = r + (alpha - beta) * s
        return r


def run_two_loop(
    schedule: bool, memory_size: int = 10, scale_init_precond: bool = True
) -> tuple[Trajectory, TwoLoop]:
    """Params after every step of ``p -= lr * H g``, fed ``tests.reference.gradient_sequence()``.

    Returns the float64 trajectory and the recursion (its ``accepted`` and ``skipped``
    counts say which pair rules the run exercised).
    """
    params = _flat(initial_params())
    two_loop = TwoLoop(memory_size, scale_init_precond)
    lrs = learning_rates() if schedule else None
    trajectory = []
    for step, grads in enumerate(gradient_sequence()):
        lr = lrs[step] if schedule else CONSTANT_LR
        params = params - lr * two_loop.direction(params, _flat(grads))
        trajectory.append(_unflat(params))
    return trajectory, two_loop
