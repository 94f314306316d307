"""Constraints on the step: keep parameters non-negative, replace NaN updates by zeros."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix.core import EmptyState, GradientTransformation
from optix.transforms.clipping import stateless_with_params
from optix.tree.leafwise import compute_dtype
from optix.tree.shards import leaf_total

NonNegativeParamsState = EmptyState
"""State of ``keep_params_nonnegative``: Optax's name for ``EmptyState``."""


def keep_params_nonnegative() -> GradientTransformation:
    """Shorten the updates that would take a parameter below zero so it lands on zero.

    For each leaf, with g the incoming update and p the parameter:

        u = -p    where p + g < 0
        u = g     elsewhere

    Put it last in a chain, after the learning rate, so ``p + u`` is the new parameter.
    A negative parameter whose step would leave it negative is moved to zero.

    Returns:
        A GradientTransformation whose state is ``NonNegativeParamsState`` (empty);
        ``update`` needs params.

    References:
        Checked against optax.keep_params_nonnegative in tests/transforms/test_constraints.py.
    """

    def leaf(g, p):
        dt = compute_dtype(g, p)
        g_, p_ = g.astype(dt), p.astype(dt)
        return (jnp.where(p_ + g_ < 0, -p_, g_).astype(g.dtype),)

    return stateless_with_params("keep_params_nonnegative", leaf)


class ZeroNansState(NamedTuple):
    """State of ``zero_nans``."""

    found_nan: Any  # param-structured: bool scalar per leaf, True if the last update had a NaN


def zero_nans() -> GradientTransformation:
    """Replace NaN entries of the updates by zeros, and record which leaves had any.

    For each leaf, with g the incoming update:

        u = 0     where g is NaN
        u = g     elsewhere (infinities included)
        found_nan = any(isnan(g))

    The flags only report: they do not change later steps. To skip a whole step
    instead, wrap the optimizer in ``apply_if_finite``.

    Returns:
        A GradientTransformation whose state is ``ZeroNansState``.

    References:
        Checked against optax.zero_nans in tests/transforms/test_constraints.py.
    """

    def init(params):
        return ZeroNansState(found_nan=jax.tree.map(lambda _: jnp.zeros([], jnp.bool_), params))

    def update(updates, state, params=None, **extra_args):
        del state, params, extra_args
        # Under shard_map a leaf's flag covers the blocks of every device (a max over them).
        found = jax.tree.map(
            lambda g: leaf_total(jnp.any(jnp.isnan(g)).astype(jnp.int32), op="max") > 0, updates
        )
        updates = jax.tree.map(lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates)
        return updates, ZeroNansState(found_nan=found)

    return GradientTransformation(init, update)
