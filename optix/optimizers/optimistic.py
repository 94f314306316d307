"""Optimistic gradient methods: extrapolate with the previous gradient (for min-max games)."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain
from optix.optimizers.adam import check_moment_args, scale_by_adam
from optix.transforms.scaling import scale_by_learning_rate
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.math import zeros_like


class ScaleByOptimisticGradientState(NamedTuple):
    """State of ``scale_by_optimistic_gradient`` (Optax's fields; no step count)."""

    is_initial_step: jax.Array  # bool scalar: no gradient seen yet
    previous_gradient: Any  # param-shaped: the previous incoming update


def _check(fn: str, alpha: Any, beta: Any) -> None:
    if callable(alpha) or callable(beta):
        raise TypeError(f"{fn}: alpha and beta must be numbers, got alpha={alpha!r}, beta={beta!r}")
    _checks.non_negative(fn, alpha=alpha, beta=beta)


def scale_by_optimistic_gradient(alpha: float = 1.0, beta: float = 1.0) -> GradientTransformation:
    """Generalized optimistic gradient: extrapolate from the previous incoming update.

    For each leaf, with g the incoming update and g_prev the previous one (g itself at
    the first step):

        u = (alpha + beta) * g - beta * g_prev
        g_prev = g

    With alpha = beta = 1 this is optimistic gradient descent, ``2 * g - g_prev``.

    Args:
        alpha: Weight of the current update, >= 0.
        beta: Weight of the extrapolation (negative momentum), >= 0.

    Returns:
        A GradientTransformation whose state is ``ScaleByOptimisticGradientState``.

    References:
        Mokhtari, Ozdaglar & Pattathil, "A Unified Analysis of Extra-gradient and
        Optimistic Gradient Methods for Saddle Point Problems: Proximal Point Approach",
        AISTATS 2020, arXiv:1901.08511.
        Checked against optax.scale_by_optimistic_gradient in
        tests/optimizers/test_optimistic.py.
    """
    _check("scale_by_optimistic_gradient", alpha, beta)

    def leaf(g, prev, first):
        dt = compute_dtype(g, prev)
        g_ = g.astype(dt)
        prev_ = jnp.where(first, g_, prev.astype(dt))
        u = jnp.asarray(alpha + beta, dt) * g_ - jnp.asarray(beta, dt) * prev_
        return u.astype(g.dtype), g.astype(prev.dtype)

    def init(params):
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.asarray(True), previous_gradient=zeros_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        first = state.is_initial_step
        updates, previous = map_leaves(
            lambda g, prev: leaf(g, prev, first), updates, state.previous_gradient, n_out=2
        )
        return updates, ScaleByOptimisticGradientState(jnp.asarray(False), previous)

    return GradientTransformation(init, update)


def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule, alpha: float = 1.0, beta: float = 1.0
) -> GradientTransformation:
    """Optimistic GD: ``chain(scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate)``.

    Each step is ``p -= learning_rate * ((alpha + beta) * g - beta * g_prev)``; see
    ``scale_by_optimistic_gradient``. ``alpha`` and ``beta`` are numbers (Optax's type
    hints allow schedules, which its code cannot use).
    """
    _check("optimistic_gradient_descent", alpha, beta)
    _checks.finite("optimistic_gradient_descent", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nesterov: bool = True,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Optimistic Adam: the optimistic extrapolation of Adam's direction.

    ``chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
    scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(learning_rate))``:
    with r the output of ``scale_by_adam`` and r_prev the previous one,

        u = -learning_rate * ((alpha + beta) * r - beta * r_prev)

    Arguments: see ``scale_by_adam`` (``mu_dtype`` and ``nu_dtype`` too) and
    ``scale_by_optimistic_gradient``; ``previous_gradient`` keeps the params' dtype.

    References:
        Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with Optimism", ICLR 2018,
        arXiv:1711.00141.
        Checked against optax.optimistic_adam_v2 in tests/optimizers/test_optimistic.py.
    """
    _check("optimistic_adam_v2", alpha, beta)
    check_moment_args(
        "optimistic_adam_v2", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )
    _checks.finite("optimistic_adam_v2", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


def optimistic_adam(
    learning_rate: jax.typing.ArrayLike,
    optimism: jax.typing.ArrayLike | None = None,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = True,
) -> GradientTransformation:
    """Optimistic Adam, Optax's first version (deprecated there, and here: it warns).

    ``chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
    scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism), scale(-1))``: with
    r the output of ``scale_by_adam`` and r_prev the previous one (r itself at the first
    step),

        u = -(learning_rate * r + optimism * (r - r_prev))

    ``optimism`` defaults to ``learning_rate``, as in the paper. The learning rate is a
    number, not a schedule; ``optimistic_adam_v2(learning_rate, alpha=1.0,
    beta=optimism / learning_rate)`` is the same optimizer and takes schedules.

    Args:
        learning_rate: Weight of the current direction, a number >= 0.
        optimism: Weight of the extrapolation, >= 0; ``None`` means ``learning_rate``.
        b1: Decay of the first moment, as in ``scale_by_adam``.
        b2: Decay of the second moment, as in ``scale_by_adam``.
        eps: Added to the root of the second moment, as in ``scale_by_adam``.
        eps_root: Added under that root, as in ``scale_by_adam``.
        mu_dtype: Dtype of the first moment, as in ``scale_by_adam``.
        nesterov: Nesterov's form of the first moment, as in ``scale_by_adam``.

    Returns:
        A GradientTransformation (a ``chain``).

    References:
        Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with Optimism", ICLR 2018,
        arXiv:1711.00141.
        Checked against optax.optimistic_adam in tests/optimizers/test_optimistic_adam.py.
    """
    warnings.warn(
        "optimistic_adam is deprecated, use `optimistic_adam_v2` instead (it takes schedules)",
        DeprecationWarning,
        stacklevel=2,
    )
    if callable(learning_rate):
        raise ValueError(
            "optimistic_adam: learning_rate must be a number, got a schedule "
            f"learning_rate={learning_rate!r}; optimistic_adam_v2 takes schedules"
        )
    alpha: Any = learning_rate
    beta: Any = learning_rate if optimism is None else optimism
    fn = "optimistic_adam"
    _checks.non_negative(fn, learning_rate=alpha, optimism=beta)
    check_moment_args(fn, b1, b2, eps, eps_root, mu_dtype=mu_dtype)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(1.0),
    )
