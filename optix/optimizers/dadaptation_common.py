"""What the D-Adaptation family (Prodigy, D-Adapt Adam, SGD and AdaGrad) shares: the dtype
of its global scalars, real inner products of leaves, and its checks."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from optix import _checks
from optix.tree.casting import dtype as tree_dtype
from optix.tree.leafwise import compute_dtype, real_dtype


def scalar_dtype(params: Any) -> jnp.dtype:
    """Dtype of the global scalars (d, the numerator): Optax's choice, the lowest dtype
    of the params (real part of a complex one)."""
    return real_dtype(tree_dtype(params, "lowest"))


def real_dot(x: jax.Array, y: jax.Array) -> jax.Array:
    """``Re <x, y>``, summed over the whole leaf: the real inner product of complex
    leaves seen as pairs of reals (phase-invariant), the usual dot product of real ones."""
    if jnp.iscomplexobj(x) or jnp.iscomplexobj(y):
        return jnp.sum(jnp.real(jnp.conj(x) * y))
    return jnp.sum(x * y)


def unlimited(growth_rate: Any) -> bool:
    """True when ``growth_rate`` is None (the default) or a concrete infinity: d is then
    free to jump to any new estimate.

    The default is None rather than the official codes' inf so that
    ``inject_hyperparams`` leaves it out of its hyperparameters (an inf would become an
    array, and the state would no longer be Optax's).
    """
    if growth_rate is None:
        return True
    return isinstance(growth_rate, int | float) and math.isinf(growth_rate) and growth_rate > 0


def grown(d: jax.Array, d_hat: jax.Array, growth_rate: Any) -> jax.Array:
    """D-Adaptation's update of d: ``max(d, min(d_hat, d * growth_rate))``."""
    if unlimited(growth_rate):
        return jnp.maximum(d, d_hat)
    return jnp.maximum(d, jnp.minimum(d_hat, d * jnp.asarray(growth_rate, d.dtype)))


def check_d(fn: str, learning_rate: Any, d0: dict[str, Any], growth_rate: Any, **decays) -> None:
    """The checks every member shares.

    learning_rate multiplies the adapted step (a finite number or a schedule), d0 is the
    initial distance estimate (> 0: it divides), growth_rate caps the growth of d per step
    (>= 1; None or inf for none), weight decays are >= 0.
    """
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.positive(fn, **d0)
    _checks.at_least(fn, 1.0, allow_none=True, growth_rate=growth_rate)
    _checks.non_negative(fn, allow_schedule=True, **decays)


def flags(fn: str, **values: Any) -> None:
    """Switches that choose a code path must be Python bools (they are not traced)."""
    for name, value in values.items():
        if not isinstance(value, bool):
            raise TypeError(f"{fn}: {name} must be a bool, got {name}={value!r}")


def sum_in(values: Any, dtype: Any) -> jax.Array:
    """The sum of a tree of per-leaf scalars, in ``dtype`` (0 for an empty tree)."""
    total = jnp.zeros((), dtype)
    for value in jax.tree.leaves(values):
        total = total + jnp.asarray(value).astype(dtype)
    return total


def check_dual(fn: str, learning_rate, momentum, weight_decay, d0, growth_rate) -> None:
    """The checks of the dual-averaging members (SGD, AdaGrad); momentum in [0, 1)."""
    check_d(fn, learning_rate, {"d0": d0}, growth_rate, weight_decay=weight_decay)
    _checks.in_unit_interval(fn, momentum=momentum)


def dual_dtype(params: Any) -> jnp.dtype:
    """Dtype of the dual-averaging members' scalars: the params' lowest, at least float32."""
    return compute_dtype(jax.ShapeDtypeStruct((), scalar_dtype(params)))


def averaged_step(p: jax.Array, z: jax.Array, momentum: Any, dt: Any) -> jax.Array:
    """``(1 - ck) * p + ck * z - p`` with ck = 1 - momentum: the step from p to the running
    average of the dual-averaging points z (to z itself without momentum)."""
    if isinstance(momentum, int | float) and momentum == 0:
        return z - p
    ck = jnp.asarray(1 - momentum, dt)
    return (jnp.asarray(momentum, dt) * p + ck * z) - p
