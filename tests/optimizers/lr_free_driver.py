"""Trajectories of the learning-rate-free optimizers (Prodigy, D-Adaptation) and their
references, on gradients that let the distance estimate d grow.

tests/reference.py's gradients are independent draws: they never point the same way,
so d would stay at d0 and a wrong estimate would go unnoticed. Here every gradient is a
fixed drift plus noise, with an all-zero step and a x10 step, so d grows by orders of
magnitude over the run (and a growth_rate cap binds). The learning rate multiplies
the adapted step: LR, or ``learning_rates`` set before each step of the torch
optimizer and ``lr_schedule`` of the count on the JAX side.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import optix
from tests.reference import SHAPES, initial_params, max_relative_difference

STEPS = 20
ZERO_STEP = 4
LARGE_STEP = 12
LR = 0.8


def gradients(steps: int = STEPS, zero_first: bool = False) -> list[dict[str, np.ndarray]]:
    """Drift plus half as much noise; zero at ZERO_STEP (and at step 0 with zero_first),
    x10 at LARGE_STEP."""
    rng = np.random.default_rng(2)
    drift = {k: rng.normal(size=shape) for k, shape in SHAPES.items()}
    grads = []
    for t in range(steps):
        g = {k: drift[k] + 0.5 * rng.normal(size=shape) for k, shape in SHAPES.items()}
        if t == ZERO_STEP or (zero_first and t == 0):
            g = {k: np.zeros_like(v) for k, v in g.items()}
        if t == LARGE_STEP:
            g = {k: 10.0 * v for k, v in g.items()}
        grads.append(g)
    return grads


def learning_rates(steps: int = STEPS) -> list[float]:
    return [LR * (1.0 + 0.5 * np.sin(t)) for t in range(steps)]


def lr_schedule(count):
    return LR * (1.0 + 0.5 * jnp.sin(jnp.asarray(count, jnp.result_type(float))))


def run_jax(tx, dtype, grads, apply_updates: Callable = optix.apply_updates):
    """Params after every jitted step of ``tx`` fed ``grads``."""
    cast = lambda tree: jax.tree.map(lambda x: jnp.asarray(x, dtype), tree)
    params = cast(initial_params())
    state = tx.init(params)

    @jax.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return apply_updates(params, updates), state

    out = []
    for g in grads:
        params, state = step(params, state, cast(g))
        out.append(jax.tree.map(np.asarray, params))
    return out


def run_torch(make, dtype, grads, lrs=None):
    """Params after every step of ``make(params)``, a torch optimizer, fed ``grads``;
    ``lrs`` sets the group's lr before each step. torch's default dtype is ``dtype``
    while it runs."""
    import torch

    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)
    try:
        tensors = {k: torch.tensor(v, dtype=torch_dtype) for k, v in initial_params().items()}
        optimizer = make(list(tensors.values()))
        out = []
        for t, g in enumerate(grads):
            if lrs is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lrs[t]
            for k, x in tensors.items():
                x.grad = torch.tensor(g[k], dtype=torch_dtype)
            optimizer.step()
            out.append({k: x.detach().numpy().copy() for k, x in tensors.items()})
        return out
    finally:
        torch.set_default_dtype(previous)


def run_optax(tx, dtype, grads):
    import optax

    # Optax's code relies on standard promotion.
    with jax.numpy_dtype_promotion("standard"), jax.enable_x64(dtype == np.float64):
        return run_jax(tx, dtype, grads, optax.apply_updates)


def assert_close(actual, expected, rtol, min_moved=1e-3):
    """Every step agrees to ``rtol``, and the run went somewhere (so agreement means
    something): the params moved by more than ``min_moved`` relative."""
    difference = max_relative_difference(actual, expected)
    assert difference <= rtol, f"trajectories differ by {difference:.3g} > rtol={rtol:.3g}"
    moved = max_relative_difference(expected[-1:], [initial_params()])
    assert moved > min_moved, f"the parameters moved by {moved:.3g} only"


def check_torch(make_optix, make_torch, dtype, schedule, f32_rtol, grads=None):
    """``make_optix(lr)`` follows ``make_torch(params, lr)`` (lr: LR or the per-step
    rates): float64 to 1e-10; float32 within ``f32_rtol`` of the float64 reference and
    of the float32 one."""
    grads = gradients() if grads is None else grads
    lrs = learning_rates() if schedule else None
    lr = lr_schedule if schedule else LR
    reference = lambda dt: run_torch(lambda ps: make_torch(ps, LR), dt, grads, lrs)
    expected = reference(np.float64)
    if dtype == np.float64:
        with jax.enable_x64(True):
            actual = run_jax(make_optix(lr), np.float64, grads)
        assert_close(actual, expected, 1e-10)
        return
    actual = run_jax(make_optix(lr), np.float32, grads)
    assert_close(actual, expected, f32_rtol)
    assert_close(actual, reference(np.float32), f32_rtol)


def check_optax(make_optix, make_optax, dtype, schedule, f32_rtol, grads=None):
    """``make_optix(lr)`` follows ``make_optax(lr)``: float64 to 1e-10, float32 within
    ``f32_rtol`` of Optax's float64 run."""
    grads = gradients() if grads is None else grads
    lr = lr_schedule if schedule else LR
    expected = run_optax(make_optax(lr), np.float64, grads)
    if dtype == np.float64:
        with jax.enable_x64(True):
            actual = run_jax(make_optix(lr), np.float64, grads)
        assert_close(actual, expected, 1e-10)
        return
    assert_close(run_jax(make_optix(lr), np.float32, grads), expected, f32_rtol)
