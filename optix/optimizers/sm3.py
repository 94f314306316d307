"""SM3: an Adagrad-style accumulator kept as one vector per dimension of each leaf."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain
from optix.transforms.scaling import scale_by_learning_rate
from optix.tree.leafwise import (
    abs_sq,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
)
from optix.tree.math import zeros_like
from optix.tree.shards import leaf_total


class ScaleBySM3State(NamedTuple):
    """State of ``scale_by_sm3``."""

    mu: Any  # per leaf: a list with one accumulator vector per dim, see scale_by_sm3 (nu_dtype)
    nu: Any  # param-shaped: EMA of the preconditioned updates (dtype mu_dtype)


def _accumulator_shapes(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """One vector per dim; a scalar leaf keeps one scalar accumulator."""
    return [(n,) for n in shape] if shape else [()]


def _broadcast_to_leaf(vector: jax.Array, axis: int, ndim: int) -> jax.Array:
    """View a dim's accumulator vector with size-1 dims everywhere else."""
    return jnp.reshape(vector, [1] * axis + [-1] + [1] * (ndim - axis - 1))


def scale_by_sm3(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 1.0,
    eps: jax.typing.ArrayLike = 1e-8,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by SM3-II's cover-based second moment, then average them.

    Each leaf of rank k keeps k accumulator vectors mu[0..k-1] (mu[i] has the length of
    dim i), covering the leaf by its slices along each dim. For each leaf, with g the
    incoming update and w = 1 if b2 == 1 else 1 - b2:

        acc = w * |g|**2 + b2 * min(mu[0], ..., mu[k-1])    (mu[i] broadcast along dim i)
        mu[i] = max of acc over every dim except i
        p = g / sqrt(acc + eps) where acc > 0, else 0
        nu = b1 * nu + (1 - b1) * p
        u = nu

    Vectors (k = 1) keep one accumulator per entry, so for them this is Adagrad (b2 = 1)
    or RMSProp (b2 < 1). With b2 = 1 and b1 = 0 it is the paper's SM3-II; b1 > 0
    averages the preconditioned updates (momentum). A scalar leaf keeps one scalar
    accumulator (Optax's ``scale_by_sm3`` fails on scalar leaves).

    Args:
        b1: Decay of the EMA of the preconditioned updates, in (-1, 1).
        b2: Decay of the accumulator, in [0, 1]; 1 accumulates sums as in the paper.
        eps: Added to the accumulator inside the square root, >= 0.
        mu_dtype: Dtype of the first-order slot, the EMA of the preconditioned updates
            (the state's ``nu`` field: Optax's names are the other way round); ``None``
            keeps the params' dtype.
        nu_dtype: Dtype of the second-order slot, the accumulator vectors (the state's
            ``mu`` field); ``None`` keeps the params' dtype. Both are updated in at least
            float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleBySM3State``.

    References:
        Anil, Gupta, Koren & Singer, "Memory-Efficient Adaptive Optimization",
        NeurIPS 2019, arXiv:1901.11150, Algorithm SM3-II.
        Checked against optax.scale_by_sm3 in tests/optimizers/test_sm3.py.
    """
    _checks.momentum("scale_by_sm3", closed_right=False, b1=b1)
    _checks.in_unit_interval("scale_by_sm3", closed_right=True, b2=b2)
    _checks.non_negative("scale_by_sm3", eps=eps)
    _checks.floating_dtype("scale_by_sm3", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    # Optax's rule: b2 == 1 sums the squares, any other b2 averages them.
    b2_is_one = b2 == 1.0 if isinstance(b2, int | float) else jnp.asarray(b2) == 1

    def init(params):
        def accumulators(p):
            dtype = p.dtype if nu_dtype is None else nu_dtype
            return [jnp.zeros(s, dtype) for s in _accumulator_shapes(p.shape)]

        mu = jax.tree.map(accumulators, params)
        return ScaleBySM3State(mu=mu, nu=zeros_like(params, dtype=mu_dtype))

    def leaf(g, mu, nu):
        # mu is a list of accumulators, or the int-keyed State that nnx.Optimizer makes
        # of a list after its first update.
        mu = jax.tree.leaves(mu)
        dt = compute_dtype(g, nu, *mu)
        rdt = real_dtype(dt)
        g_ = g.astype(dt)
        b1_, one_minus_b1 = ema_weights(b1, dt)
        b2_, one_minus_b2 = ema_weights(b2, rdt)
        weight = jnp.where(b2_is_one, jnp.ones([], rdt), one_minus_b2)
        mu_ = [real_part(m).astype(rdt) for m in mu]
        if g.ndim == 0:
            cover = [mu_[0]]
        else:
            cover = [_broadcast_to_leaf(m, i, g.ndim) for i, m in enumerate(mu_)]
        acc = weight * abs_sq(g_) + b2_ * functools.reduce(jnp.minimum, cover)
        if g.ndim == 0:
            mu_new = [acc]
        else:
            # Under shard_map the maximum spans the blocks of a split leaf; each
            # accumulator (laid out as its old value) keeps its own split dims.
            mu_new = [
                leaf_total(jnp.max(acc, axis=tuple(j for j in range(g.ndim) if j != i)), m, "max")
                for i, m in enumerate(mu)
            ]
        positive = acc > 0
        scale = jax.lax.rsqrt(acc + eps).astype(dt)
        preconditioned = jnp.where(positive, g_ * scale, jnp.zeros([], dt))
        nu_new = b1_ * nu.astype(dt) + one_minus_b1 * preconditioned
        mu_new = [m.astype(old.dtype) for m, old in zip(mu_new, mu, strict=True)]
        return nu_new.astype(g.dtype), mu_new, nu_new.astype(nu.dtype)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, mu, nu = map_leaves(leaf, updates, state.mu, state.nu, n_out=3)
        return updates, ScaleBySM3State(mu=mu, nu=nu)

    return GradientTransformation(init, update)


def sm3(
    learning_rate: ScalarOrSchedule,
    momentum: jax.typing.ArrayLike = 0.9,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """SM3: ``chain(scale_by_sm3(b1=momentum), scale_by_learning_rate(learning_rate))``.

    Update rule, ``mu_dtype`` and ``nu_dtype``: see ``scale_by_sm3`` (b2 = 1, eps = 1e-8).
    Optax's ``sm3`` takes a constant learning rate only; here it may also be a schedule.
    """
    _checks.finite("sm3", allow_schedule=True, learning_rate=learning_rate)
    _checks.momentum("sm3", closed_right=False, momentum=momentum)
    _checks.floating_dtype("sm3", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return chain(
        scale_by_sm3(momentum, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
