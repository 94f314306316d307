"""SGD with Polyak's step size, from the loss value passed to ``update``."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, init_empty_state
from optix.optimizers.sgd import sgd
from optix.tree.leafwise import compute_dtype
from optix.tree.shards import leaf_total

NO_VALUE = (
    "{fn} needs the current loss value: call update(grads, state, params, value=loss), "
    "e.g. with loss, grads = jax.value_and_grad(loss_fn)(params)."
)
# Optax's threshold for a vanishing gradient: double precision's machine epsilon.
_TINY = float(np.finfo(np.float64).eps)


def scale_by_polyak(
    f_min: float = 0.0,
    max_learning_rate: float = 1.0,
    eps: float = 0.0,
    variant: Literal["sps", "sps+"] = "sps",
) -> GradientTransformation:
    """Scale the updates by Polyak's step size, from the loss ``value`` given to ``update``.

    With g the incoming updates, ||g|| the norm of all of them together and value the
    loss at the current params:

        gap = value - f_min
        gap = max(gap, 0)                                      if variant == "sps+"
        step = min(gap / (||g||**2 + eps), max_learning_rate)
        step = 0                                               if ||g||**2 + eps <= 2.2e-16
        u = step * g

    Args:
        f_min: A lower bound of the loss (f* in the paper); 0 for interpolating models.
        max_learning_rate: Cap of the step (gamma_b in the paper), >= 0.
        eps: Added to ||g||**2, >= 0.
        variant: "sps" (Loizou et al.) or "sps+" (Garrigos et al.: the gap's positive part).

    Returns:
        A GradientTransformation whose state is ``EmptyState``; ``update`` needs the
        keyword argument ``value``.

    References:
        Loizou, Vaswani, Laradji & Lacoste-Julien, "Stochastic Polyak Step-size for SGD:
        An Adaptive Learning Rate for Fast Convergence", AISTATS 2021, arXiv:2002.10542.
        Garrigos, Gower & Schaipp, "Function Value Learning: Adaptive Learning Rates
        Based on the Polyak Stepsize and Function Splitting in ERM", arXiv:2307.14528.
        Checked against optax.scale_by_polyak in tests/optimizers/test_polyak.py.
    """
    fn = "scale_by_polyak"
    _checks.non_negative(fn, max_learning_rate=max_learning_rate, eps=eps)
    _checks.finite(fn, f_min=f_min)
    _checks.one_of(fn, "variant", variant, ("sps", "sps+"))

    def update(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise _checks.MissingExtraArgumentError(NO_VALUE.format(fn=fn))
        leaves = [_widen(g) for g in jax.tree.leaves(updates)]
        dt = jnp.finfo(compute_dtype(*leaves)).dtype
        squared_norm = jnp.zeros([], dt)
        for g in leaves:
            partial = jnp.sum(jnp.real(g * jnp.conj(g)))  # this device's block under shard_map
            squared_norm = squared_norm + leaf_total(partial).astype(dt)
        gap = jnp.asarray(value, dt) - jnp.asarray(f_min, dt)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0)
        denominator = squared_norm + jnp.asarray(eps, dt)
        vanishing = denominator <= _TINY
        ratio = gap / jnp.where(vanishing, jnp.ones([], dt), denominator)
        step = jnp.where(vanishing, 0, jnp.minimum(ratio, jnp.asarray(max_learning_rate, dt)))
        new_updates = jax.tree.map(
            lambda g: (step.astype(compute_dtype(g)) * _widen(g)).astype(g.dtype), updates
        )
        return new_updates, state

    return GradientTransformation(init_empty_state, update)


def _widen(g: jax.Array) -> jax.Array:
    return g.astype(compute_dtype(g))


def polyak_sgd(
    max_learning_rate: float = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: float = 0.0,
    eps: float = 0.0,
    variant: Literal["sps", "sps+"] = "sps",
) -> GradientTransformation:
    """SGD with Polyak's step size: ``chain(sgd(learning_rate=scaling), scale_by_polyak(...))``.

    Call ``update(grads, state, params, value=loss)``. As in Optax, ``scaling`` (s)
    multiplies the gradient before the step size is computed, so each step is

        p -= s * min((value - f_min) / (s**2 * ||g||**2 + eps), max_learning_rate) * g

    which is the paper's SPS_max with c = 1 when s = 1. Arguments: see ``scale_by_polyak``;
    ``scaling`` is a number >= 0 or a schedule of the step count.

    References:
        Loizou et al., AISTATS 2021, arXiv:2002.10542.
        Checked against optax.polyak_sgd in tests/optimizers/test_polyak.py.
    """
    _checks.non_negative("polyak_sgd", max_learning_rate=max_learning_rate, eps=eps)
    _checks.finite("polyak_sgd", f_min=f_min)
    _checks.non_negative("polyak_sgd", allow_schedule=True, scaling=scaling)
    _checks.one_of("polyak_sgd", "variant", variant, ("sps", "sps+"))
    return chain(
        sgd(learning_rate=scaling),
        scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps, variant=variant),
    )
