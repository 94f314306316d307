"""Drive optix and a reference implementation with the same explicit gradients.

Only the optimizer is compared: the gradients are a fixed sequence of NumPy arrays
(not autodiff of a model), with a zero-gradient step and a large-gradient step, and
the whole parameter trajectory is compared, not just the end point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix

SHAPES = {"w": (3, 4), "b": (4,), "s": ()}
STEPS = 20
ZERO_STEP = 4
LARGE_STEP = 9


def initial_params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=shape) for k, shape in SHAPES.items()}


def gradient_sequence(steps: int = STEPS, seed: int = 1) -> list[dict[str, np.ndarray]]:
    """Float64 gradients: standard normal, all zero at ZERO_STEP, x1000 at LARGE_STEP."""
    rng = np.random.default_rng(seed)
    grads = []
    for t in range(steps):
        g = {k: rng.normal(size=shape) for k, shape in SHAPES.items()}
        if t == ZERO_STEP:
            g = {k: np.zeros_like(v) for k, v in g.items()}
        if t == LARGE_STEP:
            g = {k: 1e3 * v for k, v in g.items()}
        grads.append(g)
    return grads


def learning_rates(steps: int = STEPS) -> list[float]:
    """A learning rate that changes at every step (and is not monotone)."""
    return [1e-2 * (1.0 + 0.5 * np.sin(t)) for t in range(steps)]


def lr_schedule(count):
    """``learning_rates`` as a JAX schedule of the step count."""
    return 1e-2 * (1.0 + 0.5 * jnp.sin(jnp.asarray(count, jnp.result_type(float))))


Trajectory = list[dict[str, np.ndarray]]


def run_jax(
    tx,
    dtype,
    steps: int = STEPS,
    apply_updates: Callable = optix.apply_updates,
) -> Trajectory:
    """Params after every step of ``tx`` (an optix or optax transformation)."""
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    trajectory = []
    for g in gradient_sequence(steps):
        params, state = step(params, state, jax.tree.map(lambda x: jnp.asarray(x, dtype), g))
        trajectory.append(jax.tree.map(np.asarray, params))
    return trajectory


def run_torch(
    make_optimizer: Callable,
    dtype,
    steps: int = STEPS,
    lrs: Sequence[float] | None = None,
) -> Trajectory:
    """Params after every step of a torch optimizer fed the same gradients.

    ``lrs`` sets ``param_group["lr"]`` before each step. torch's default dtype is set
    to ``dtype`` while it runs, because torch keeps scalar state (step counts, NAdam's
    mu_product) in the default dtype.
    """
    import torch

    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[np.dtype(dtype).type]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)
    try:
        names = list(SHAPES)
        tensors = {
            k: torch.tensor(v, dtype=torch_dtype, requires_grad=True)
            for k, v in initial_params().items()
        }
        optimizer = make_optimizer([tensors[k] for k in names])
        trajectory = []
        for t, g in enumerate(gradient_sequence(steps)):
            if lrs is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lrs[t]
            for k in names:
                tensors[k].grad = torch.tensor(g[k], dtype=torch_dtype)
            optimizer.step()
            trajectory.append({k: tensors[k].detach().numpy().copy() for k in names})
        return trajectory
    finally:
        torch.set_default_dtype(previous)


def max_relative_difference(actual: Trajectory, expected: Trajectory) -> float:
    """Largest |actual - expected| / max(|expected|, 1e-3) over every step and element; a NaN
    on either side counts as an infinite difference (NaN would slip through ``max``)."""
    worst = 0.0
    for a, e in zip(actual, expected, strict=True):
        for k in e:
            diff = np.abs(np.asarray(a[k], np.float64) - e[k]) / np.maximum(np.abs(e[k]), 1e-3)
            worst = max(worst, float(np.max(np.where(np.isnan(diff), np.inf, diff))))
    return worst


def assert_trajectories_close(actual: Trajectory, expected: Trajectory, rtol: float) -> None:
    """Every parameter at every step agrees to ``rtol`` (relative, floored at 1e-3)."""
    difference = max_relative_difference(actual, expected)
    assert difference <= rtol, f"trajectories differ by {difference:.3g} > rtol={rtol:.3g}"
    moved = max_relative_difference(actual[-1:], [initial_params()])
    assert moved > 10 * rtol, "the parameters barely moved: the comparison would prove nothing"


def compare(
    make_optix: Callable,
    run_reference: Callable[[type, bool], Trajectory],
    dtype,
    schedule: bool,
    f32_rtol: float,
    f64_rtol: float = 1e-10,
    same_dtype_reference: bool = True,
) -> None:
    """Run ``make_optix(lr)`` in ``dtype`` and assert it follows the reference.

    float64 runs must match the reference's float64 trajectory to ``f64_rtol``.
    float32 runs must stay within ``f32_rtol`` of the reference's float64 trajectory
    (the exact answer) and, with ``same_dtype_reference``, of its float32 trajectory.
    Optax passes ``same_dtype_reference=False``: its float32 runs drift up to 2.5e-3
    from its own float64 runs because it forms ``1 - b**t`` in float32.

    With ``schedule`` the learning rate changes at every step: optix gets the schedule
    ``lr_schedule``, the reference gets ``learning_rates()`` set before each step.
    ``run_reference(dtype, schedule)`` returns the reference trajectory.
    """
    lr = lr_schedule if schedule else CONSTANT_LR
    expected = run_reference(np.float64, schedule)
    if dtype == np.float64:
        with jax.enable_x64(True):
            actual = run_jax(make_optix(lr), np.float64)
        assert_trajectories_close(actual, expected, f64_rtol)
        return
    actual = run_jax(make_optix(lr), np.float32)
    assert_trajectories_close(actual, expected, f32_rtol)
    if same_dtype_reference:
        assert_trajectories_close(actual, run_reference(np.float32, schedule), f32_rtol)


CONSTANT_LR = 0.05


def torch_reference(make_torch: Callable) -> Callable[[type, bool], Trajectory]:
    """A ``run_reference`` for ``compare`` from ``make_torch(params, lr)``."""

    def run(dtype, schedule):
        lrs = learning_rates() if schedule else None
        first_lr = lrs[0] if schedule else CONSTANT_LR
        return run_torch(lambda ps: make_torch(ps, first_lr), dtype, lrs=lrs)

    return run


def optax_reference(make_optax: Callable) -> Callable[[type, bool], Trajectory]:
    """A ``run_reference`` for ``compare`` from ``make_optax(lr)``."""
    import optax

    def run(dtype, schedule):
        lr = lr_schedule if schedule else CONSTANT_LR
        # Optax's code relies on standard promotion (float ** int32 counts).
        with jax.numpy_dtype_promotion("standard"), jax.enable_x64(dtype == np.float64):
            return run_jax(make_optax(lr), dtype, apply_updates=optax.apply_updates)

    return run


def torch_cases(table) -> list:
    """pytest params ``(name, torch_cls, kwargs)`` from ``[(name, torch_cls, {case: kwargs})]``."""
    return [
        pytest.param(name, torch_cls, kwargs, id=f"{name}-{case}")
        for name, torch_cls, cases in table
        for case, kwargs in cases.items()
    ]


def compare_torch_constructor(name, torch_cls, kwargs, dtype, schedule, f32_rtol) -> None:
    """``compare`` for ``optix.torch.<name>(lr=..., **kwargs)`` against ``torch_cls``."""
    compare(
        lambda lr: getattr(optix.torch, name)(lr=lr, **kwargs),
        torch_reference(lambda params, lr: torch_cls(params, lr=lr, **kwargs)),
        dtype,
        schedule,
        f32_rtol,
    )


DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
SCHEDULES = pytest.mark.parametrize("schedule", [False, True], ids=["constant_lr", "lr_every_step"])
