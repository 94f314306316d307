"""AdaBound and AMSBound: Adam whose per-element step is clipped to bounds that close on SGD."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, safe_increment, zero_count
from optix.optimizers.adam import check_moment_args, moments
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    bias_correction_factor,
    compute_dtype,
    map_leaves,
    real_dtype,
    real_part,
)
from optix.tree.math import zeros_like


class ScaleByAdaBoundState(NamedTuple):
    """State of ``scale_by_adabound``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of g**2 (dtype nu_dtype)
    nu_max: Any  # param-shaped running maximum of nu with amsbound (dtype nu_dtype), else None


def check_bound_args(fn: str, final_lr: Any, gamma: Any) -> None:
    """Range checks of the bound hyperparameters."""
    _checks.non_negative(fn, final_lr=final_lr)
    _checks.positive(fn, gamma=gamma)
    _checks.in_unit_interval(fn, gamma=gamma)


def scale_by_adabound(
    b1: float = 0.9,
    b2: float = 0.999,
    final_lr: float = 0.1,
    gamma: float = 1e-3,
    eps: float = 1e-8,
    *,
    base_lr: jax.typing.ArrayLike = 1e-3,
    amsbound: bool = False,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by AdaBound: Adam's per-element step clipped to dynamic bounds.

    The bounds start wide (near 0 and near final_lr / (base_lr * gamma)) and close on
    ``final_lr / base_lr`` as t grows, so the method moves from Adam to momentum SGD.
    The result is meant to be scaled by the learning rate lr_t
    (``scale_by_learning_rate``), as ``adabound`` does.

    For each leaf, with g the incoming update and t = count + 1:

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        nu_max = max(nu_max, nu),   v = nu_max          if amsbound (else v = nu)
        step = sqrt(1 - b2**t) / (1 - b1**t) / (sqrt(v) + eps)
        lower = final_lr / base_lr * gamma * t / (gamma * t + 1)
        upper = final_lr / base_lr * (gamma * t + 1) / (gamma * t)
        u = clip(step, lower, upper) * mu

    Multiplied by lr_t this is the official update clamp(lr_t * step, lr_t * lower,
    lr_t * upper) * mu, with bounds final_lr * lr_t / base_lr * (1 - 1 / (gamma * t + 1))
    and final_lr * lr_t / base_lr * (1 + 1 / (gamma * t)): under a schedule they follow
    lr_t / base_lr, base_lr being the learning rate the official optimizer was built
    with. ``lower`` avoids the official form's cancellation (1 - 1 / (gamma * t + 1)
    loses three digits in float32 at gamma * t = 1e-3). eps is added to the raw root,
    with the bias correction folded into the step, as in the official code.

    Args:
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Decay of the EMA of g**2, in [0, 1).
        final_lr: The SGD learning rate the bounds converge to (at lr_t = base_lr), >= 0.
        gamma: Convergence speed of the bounds, in (0, 1).
        eps: Added to sqrt(v), >= 0.
        base_lr: The learning rate ``final_lr`` refers to, > 0 (``adabound`` passes its
            constant learning rate, or the schedule's value at step 0).
        amsbound: Use the running maximum of nu (AMSBound).
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu`` and ``nu_max``; ``None`` keeps the params' dtype. The
            moments are updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdaBoundState``.

    References:
        Luo, Xiong, Liu & Sun, "Adaptive Gradient Methods with Dynamic Bound of Learning
        Rate", ICLR 2019, arXiv:1902.09843.
        Checked against run_official_adabound (the official Luolc/AdaBound step in NumPy)
        in tests/optimizers/test_adabound.py.
    """
    check_moment_args("scale_by_adabound", b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    check_bound_args("scale_by_adabound", final_lr, gamma)
    _checks.positive("scale_by_adabound", base_lr=base_lr)

    def leaf(step_size, lower, upper, g, mu, nu, nu_max=None):
        dt = compute_dtype(g, mu, nu)
        rdt = real_dtype(dt)
        _, mu_new, nu_new = moments(g, mu, nu, b1, b2, dt)
        v = nu_new if nu_max is None else jnp.maximum(real_part(nu_max).astype(rdt), nu_new)
        step = step_size.astype(rdt) / (jnp.sqrt(v) + eps)
        u = jnp.clip(step, lower.astype(rdt), upper.astype(rdt)).astype(dt) * mu_new
        new = (u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype))
        return (*new, v.astype(nu_max.dtype)) if nu_max is not None else new

    def init(params):
        return ScaleByAdaBoundState(
            count=zero_count(),
            mu=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params, dtype=nu_dtype),
            nu_max=zeros_like(params, dtype=nu_dtype) if amsbound else None,
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        dtype = jnp.result_type(float)
        step_size = jnp.sqrt(bias_correction_factor(b2, count)) / bias_correction_factor(b1, count)
        ratio = jnp.asarray(final_lr / base_lr, dtype)
        gamma_t = jnp.asarray(gamma, dtype) * jnp.asarray(count, dtype)
        lower = ratio * gamma_t / (gamma_t + 1)
        upper = ratio * (gamma_t + 1) / gamma_t
        leaf_at_t = functools.partial(leaf, step_size, lower, upper)
        if amsbound:
            updates, mu, nu, nu_max = map_leaves(
                leaf_at_t, updates, state.mu, state.nu, state.nu_max, n_out=4
            )
        else:
            updates, mu, nu = map_leaves(leaf_at_t, updates, state.mu, state.nu, n_out=3)
            nu_max = None
        return updates, ScaleByAdaBoundState(count=count, mu=mu, nu=nu, nu_max=nu_max)

    return GradientTransformation(init, update)


def _base_lr(
    fn: str, learning_rate: ScalarOrSchedule, base_lr: jax.typing.ArrayLike | None
) -> jax.typing.ArrayLike:
    """The learning rate ``final_lr`` refers to: given, the constant, or the schedule at 0."""
    if base_lr is None:
        base_lr = learning_rate(0) if callable(learning_rate) else learning_rate
    try:
        _checks.positive(fn, base_lr=base_lr)
    except ValueError as error:
        raise ValueError(
            f"{error} (it defaults to the learning rate at step 0; pass base_lr=... when that is 0)"
        ) from None
    return base_lr


def adabound(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    final_lr: float = 0.1,
    gamma: float = 1e-3,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    base_lr: float | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """AdaBound as the official code defines it, with coupled (L2) weight decay.

    ``chain(add_decayed_weights(weight_decay), scale_by_adabound(..., base_lr=base_lr),
    scale_by_learning_rate(learning_rate))``: g = g + weight_decay * p before the moments.
    ``base_lr`` defaults to the constant ``learning_rate`` or ``learning_rate(0)``; the
    bounds then scale with the current learning rate over it, so a decaying schedule
    also lowers ``final_lr`` (the official code's workaround for lr schedulers). Update
    rule and arguments: see ``scale_by_adabound``.
    """
    args = (learning_rate, b1, b2, final_lr, gamma, eps, weight_decay, base_lr)
    return _bounded("adabound", *args, mu_dtype=mu_dtype, nu_dtype=nu_dtype)


def amsbound(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    final_lr: float = 0.1,
    gamma: float = 1e-3,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    base_lr: float | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """AMSBound: ``adabound`` with the running maximum of nu (official ``amsbound=True``)."""
    args = (learning_rate, b1, b2, final_lr, gamma, eps, weight_decay, base_lr)
    return _bounded("amsbound", *args, True, mu_dtype=mu_dtype, nu_dtype=nu_dtype)


def _bounded(
    fn: str,
    learning_rate: ScalarOrSchedule,
    b1: float,
    b2: float,
    final_lr: float,
    gamma: float,
    eps: float,
    weight_decay: ScalarOrSchedule,
    base_lr: jax.typing.ArrayLike | None,
    amsbound: bool = False,
    **dtypes: Any,
) -> GradientTransformation:
    """The chain of ``adabound`` and ``amsbound``, validated under the alias's name."""
    check_moment_args(fn, b1, b2, eps, **dtypes)
    check_bound_args(fn, final_lr, gamma)
    _checks.non_negative(
        fn, allow_schedule=True, learning_rate=learning_rate, weight_decay=weight_decay
    )
    base_lr = _base_lr(fn, learning_rate, base_lr)
    return chain(
        add_decayed_weights(weight_decay),
        scale_by_adabound(
            b1, b2, final_lr, gamma, eps, base_lr=base_lr, amsbound=amsbound, **dtypes
        ),
        scale_by_learning_rate(learning_rate),
    )
