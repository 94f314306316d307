"""Rprop: per-coordinate step sizes adapted to sign changes, as torch.optim.Rprop."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, chain
from optix.transforms.scaling import scale
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.math import full_like, zeros_like


class ScaleByRpropState(NamedTuple):
    """State of ``scale_by_rprop``, with Optax's field names (no step count is needed)."""

    step_sizes: Any  # param-shaped: the current step size of each coordinate
    prev_updates: Any  # param-shaped: the previous output, step_size * sign(g) or 0


def _number(value: Any) -> float | None:
    """The value as a float if it is a concrete number (tracers and arrays give None)."""
    try:
        return float(value)
    except TypeError:
        return None


OPTAX_NAMES = ("learning_rate", "eta_minus", "eta_plus", "min_step_size", "max_step_size")


def check_rprop_args(
    fn: str, values: tuple[Any, ...], names: tuple[str, ...] = OPTAX_NAMES
) -> None:
    """Range checks of (learning_rate, eta_minus, eta_plus, min_step, max_step).

    ``names`` are the arguments' names in the caller's signature, for the messages.
    """
    learning_rate, eta_minus, eta_plus, min_step, max_step = values
    lr_name, minus_name, plus_name, min_name, max_name = names
    if callable(learning_rate):
        raise TypeError(
            f"{fn}: {lr_name} is the initial step size and cannot be a schedule, "
            f"got {lr_name}={learning_rate!r}"
        )
    _checks.non_negative(fn, **{lr_name: learning_rate, min_name: min_step, max_name: max_step})
    _checks.in_interval(fn, "(0, 1)", **{minus_name: eta_minus})
    _checks.in_interval(fn, "(1, inf]", **{plus_name: eta_plus})
    low, high = _number(min_step), _number(max_step)
    if low is not None and high is not None and low > high:
        raise ValueError(
            f"{fn}: {min_name} must be <= {max_name}, got "
            f"{min_name}={min_step!r}, {max_name}={max_step!r}"
        )


def scale_by_rprop(
    learning_rate: jax.typing.ArrayLike,
    eta_minus: jax.typing.ArrayLike = 0.5,
    eta_plus: jax.typing.ArrayLike = 1.2,
    min_step_size: jax.typing.ArrayLike = 1e-6,
    max_step_size: jax.typing.ArrayLike = 50.0,
) -> GradientTransformation:
    """Rprop (without weight backtracking): signed steps with adaptive sizes.

    For each leaf, with g the incoming update, step_size = learning_rate and
    prev_updates = 0 before the first update:

        s = sign(g) * sign(prev_updates)
        step_size = clip(step_size * (eta_plus if s > 0 else eta_minus if s < 0 else 1),
                         min_step_size, max_step_size)
        u = 0 if s < 0 else step_size * sign(g)
        prev_updates = u

    The output u is the step (the alias negates it). This is torch.optim.Rprop: the
    first update moves every coordinate with a nonzero g by learning_rate, and after
    a sign change the coordinate stays put and the next comparison is skipped.
    Optax's ``scale_by_rprop`` keeps the same state (bit for bit) but returns the
    previous step's u (zeroed where s < 0) instead of the current one, so its first
    update is zero and every later one lags a step behind the gradient it answers;
    optix returns the current step (google-deepmind/optax PR #1725 proposes the same).
    Step sizes are clipped on every step, as in torch (Optax skips the clip when s = 0).

    Args:
        learning_rate: The initial step size, >= 0 (a number, not a schedule).
        eta_minus: Factor applied to a step size after a sign change, in (0, 1).
        eta_plus: Factor applied when the sign is kept, > 1.
        min_step_size: Lower bound of the step sizes, >= 0.
        max_step_size: Upper bound of the step sizes, >= 0.

    Returns:
        A GradientTransformation whose state is ``ScaleByRpropState``.

    References:
        Riedmiller & Braun, "A direct adaptive method for faster backpropagation
        learning: the RPROP algorithm", IEEE ICNN 1993. Igel & Huesken, "Empirical
        evaluation of the improved Rprop learning algorithms", Neurocomputing 50, 2003
        (this is their Rprop-).
        Checked against torch.optim.Rprop and optax.scale_by_rprop in
        tests/optimizers/test_rprop.py.
    """
    hyperparameters = (learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)
    check_rprop_args("scale_by_rprop", hyperparameters)

    def leaf(g, step_size, prev):
        _checks.real_params("scale_by_rprop", g, "Rprop compares the signs of successive updates")
        dt = compute_dtype(g, step_size, prev)
        g_ = g.astype(dt)
        s = jnp.sign(g_) * jnp.sign(prev.astype(dt))
        one, up, down = jnp.ones([], dt), jnp.asarray(eta_plus, dt), jnp.asarray(eta_minus, dt)
        factor = jnp.where(s > 0, up, jnp.where(s < 0, down, one))
        new_step = jnp.clip(
            step_size.astype(dt) * factor,
            jnp.asarray(min_step_size, dt),
            jnp.asarray(max_step_size, dt),
        )
        u = jnp.where(s < 0, jnp.zeros([], dt), new_step * jnp.sign(g_))
        return u.astype(g.dtype), new_step.astype(step_size.dtype), u.astype(prev.dtype)

    def init(params):
        return ScaleByRpropState(
            step_sizes=full_like(params, learning_rate), prev_updates=zeros_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, step_sizes, prev_updates = map_leaves(
            leaf, updates, state.step_sizes, state.prev_updates, n_out=3
        )
        return updates, ScaleByRpropState(step_sizes=step_sizes, prev_updates=prev_updates)

    return GradientTransformation(init, update)


def rprop(
    learning_rate: jax.typing.ArrayLike,
    eta_minus: jax.typing.ArrayLike = 0.5,
    eta_plus: jax.typing.ArrayLike = 1.2,
    min_step_size: jax.typing.ArrayLike = 1e-6,
    max_step_size: jax.typing.ArrayLike = 50.0,
) -> GradientTransformation:
    """Rprop: ``chain(scale_by_rprop(...), scale(-1))``, torch.optim.Rprop's numbers.

    Update rule, arguments and the difference from Optax's lagged ``rprop``: see
    ``scale_by_rprop``.
    """
    check_rprop_args("rprop", (learning_rate, eta_minus, eta_plus, min_step_size, max_step_size))
    return chain(
        scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
        scale(-1.0),
    )
