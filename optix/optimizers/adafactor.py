"""Adafactor: a second moment stored as row and column averages for large matrices."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.core import (
    GradientTransformation,
    MaskOrFn,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.transforms.block_rms import clip_by_block_rms, scale_by_param_block_rms
from optix.transforms.momentum import ema
from optix.transforms.scaling import scale, scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import abs_sq, compute_dtype, map_leaves, real_dtype, real_part
from optix.tree.shards import leaf_mean, split_axes


class FactoredState(NamedTuple):
    """State of ``scale_by_factored_rms``.

    Each leaf uses either ``v_row`` and ``v_col`` (factored) or ``v`` (not factored);
    the unused fields hold a zero array of shape (1,), so every field has the
    params' tree structure.
    """

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    v_row: Any  # factored leaves: EMA of g**2 averaged over the largest dim
    v_col: Any  # factored leaves: EMA of g**2 averaged over the second largest dim
    v: Any  # other leaves: param-shaped EMA of g**2


def _decay_rate_pow(i: jax.typing.ArrayLike, exponent: jax.typing.ArrayLike = 0.8) -> jax.Array:
    """Adafactor's second-moment decay ``1 - t**(-exponent)`` at step ``t = i + 1``."""
    t = jnp.asarray(i + 1, jnp.result_type(float))
    return 1.0 - t ** (-jnp.asarray(exponent, t.dtype))


def factored_dims(
    shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """``(second largest dim, largest dim)`` of a leaf to factor over, or None.

    A leaf is factored when it has at least two dims and its second largest dim has
    at least ``min_dim_size_to_factor`` entries; ties go to the earlier dim.
    """
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape, kind="stable")
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


def _drop(shape: tuple[int, ...], dim: int) -> tuple[int, ...]:
    return shape[:dim] + shape[dim + 1 :]


def _dims_from_state(g2, v_row, v_col, v) -> tuple[int, int] | None:
    """``(r, c)`` of a leaf as its state was built, or None for an unfactored leaf.

    Read from the state's shapes rather than recomputed from g's: inside ``shard_map``
    g is one device's block, whose shape can factor differently from the whole leaf.
    Under ``reduce_over`` each mesh axis that splits g must also be readable from the
    state: one that splits dim c splits v_col but not v_row (which lacks dim c), one
    that splits dim r the reverse, one that splits another dim both; an axis that
    splits neither factor would make both means sum over it, wrong for one of them.
    """
    shape = g2.shape
    if v.shape == shape:
        return None
    default = factored_dims(shape, True, 0)
    pairs = itertools.permutations(range(len(shape)), 2)
    for r, c in itertools.chain([default] if default else [], pairs):
        if _drop(shape, c) == v_row.shape and _drop(shape, r) == v_col.shape:
            break
    else:
        raise ValueError(
            f"scale_by_factored_rms: the factored state {v_row.shape}, {v_col.shape} does "
            f"not fit an update of shape {shape}; it must come from this transform's init."
        )
    unclear = set(split_axes(g2, v_row)) & set(split_axes(g2, v_col))
    if unclear:
        raise ValueError(
            f"scale_by_factored_rms: the update of shape {shape} is split over the mesh "
            f"axes {sorted(unclear, key=str)} but its factored state is not; shard v_row and v_col "
            "like the params (optix.sharding.state_specs) so the split dims can be read."
        )
    return r, c


def check_offset(fn: str, name: str, offset: Any, decay_rate_fn: Any) -> None:
    """A step offset is any number; <= 0 under the default decay schedule."""
    _checks.number(fn, **{name: offset})
    if decay_rate_fn is _decay_rate_pow:
        _checks.in_interval(fn, "(-inf, 0]", **{name: offset})


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: jax.typing.ArrayLike = 0.8,
    step_offset: jax.typing.ArrayLike = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: jax.typing.ArrayLike = 1e-30,
    decay_rate_fn: Callable[[Any, Any], Any] = _decay_rate_pow,
) -> GradientTransformation:
    """Rescale updates by a factored estimate of the root mean square of the gradient.

    For each leaf, with g the incoming update, d = decay_rate_fn(count - step_offset,
    decay_rate) (by default ``1 - t**(-decay_rate)``, t = count - step_offset + 1) and
    ``g2 = |g|**2 + epsilon``. A leaf whose two largest dims (r = second largest, c = largest)
    both have at least ``min_dim_size_to_factor`` entries is factored:

        v_row = d * v_row + (1 - d) * mean(g2, axis=c)
        v_col = d * v_col + (1 - d) * mean(g2, axis=r)
        u = g / sqrt(v_row / mean(v_row, axis=r)) / sqrt(v_col)    (broadcast back)

    Every other leaf (vectors, scalars, small matrices) keeps a full second moment:

        v = d * v + (1 - d) * g2
        u = g / sqrt(v)

    The outer product of the row and column averages divided by their total is the
    rank-1 estimate of v of the paper (Algorithm 4, without its clipping and step size,
    which ``adafactor`` chains after this). ``update`` does not need params. Inside
    ``optix.sharding.reduce_over`` (``shard_map``) the means span every device, with
    the split dims read from how v_row and v_col are split.

    Args:
        factored: Factor the second moment of large enough leaves.
        decay_rate: Parameter of ``decay_rate_fn`` (the default's exponent), >= 0.
        step_offset: Steps subtracted from ``count`` before ``decay_rate_fn``; a negative
            one starts the schedule as if -step_offset steps had passed. With the default
            ``decay_rate_fn`` it must be <= 0 (a positive one makes t <= 0: NaN, in Optax
            too).
        min_dim_size_to_factor: Factor only leaves whose two largest dims are at least
            this large, an int >= 0.
        epsilon: Added to |g|**2, >= 0.
        decay_rate_fn: ``(step, decay_rate) -> decay`` of the second moment, decay in
            [0, 1]; ``step`` is 0 on the first update. Computed in the default float dtype.

    Returns:
        A GradientTransformation whose state is ``FactoredState``.

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
        Cost", ICML 2018, arXiv:1804.04235, Algorithms 4 and 5. Zhai et al., "Scaling
        Vision Transformers", CVPR 2022, arXiv:2106.04560 (capped decay schedules).
        Checked against optax.scale_by_factored_rms in tests/optimizers/test_adafactor.py.
    """
    fn = "scale_by_factored_rms"
    _checks.non_negative(fn, decay_rate=decay_rate, epsilon=epsilon)
    check_offset(fn, "step_offset", step_offset, decay_rate_fn)
    _checks.integer_at_least(fn, "min_dim_size_to_factor", min_dim_size_to_factor, 0)
    if not callable(decay_rate_fn):
        raise TypeError(
            f"{fn}: decay_rate_fn must be callable, got decay_rate_fn={decay_rate_fn!r}"
        )

    def init_leaf(p):
        dims = factored_dims(p.shape, factored, min_dim_size_to_factor)
        unused = jnp.zeros((1,), p.dtype)
        if dims is None:
            return unused, unused, jnp.zeros(p.shape, p.dtype)
        r, c = dims
        row_shape = tuple(n for i, n in enumerate(p.shape) if i != c)
        col_shape = tuple(n for i, n in enumerate(p.shape) if i != r)
        return jnp.zeros(row_shape, p.dtype), jnp.zeros(col_shape, p.dtype), unused

    def leaf(g, v_row, v_col, v, decay, one_minus_decay):
        dt = compute_dtype(g, v_row, v_col, v)
        rdt = real_dtype(dt)
        d, one_minus_d = decay.astype(rdt), one_minus_decay.astype(rdt)
        g_ = g.astype(dt)
        g2 = abs_sq(g_) + jnp.asarray(epsilon, rdt)
        dims = _dims_from_state(g2, v_row, v_col, v)
        if dims is None:
            v_new = d * real_part(v).astype(rdt) + one_minus_d * g2
            u = g_ * jax.lax.rsqrt(v_new).astype(dt)
            return u.astype(g.dtype), v_row, v_col, v_new.astype(v.dtype)
        r, c = dims
        v_row_, v_col_ = real_part(v_row).astype(rdt), real_part(v_col).astype(rdt)
        row_new = d * v_row_ + one_minus_d * leaf_mean(g2, axis=c, like=v_row)
        col_new = d * v_col_ + one_minus_d * leaf_mean(g2, axis=r, like=v_col)
        r_in_row = r - 1 if r > c else r
        row_mean = leaf_mean(row_new, axis=r_in_row, like=col_new, keepdims=True)
        row_factor = jax.lax.rsqrt(row_new / row_mean)
        col_factor = jax.lax.rsqrt(col_new)
        factor = jnp.expand_dims(row_factor, c) * jnp.expand_dims(col_factor, r)
        u = g_ * factor.astype(dt)
        return u.astype(g.dtype), row_new.astype(v_row.dtype), col_new.astype(v_col.dtype), v

    def init(params):
        v_row, v_col, v = map_leaves(init_leaf, params, n_out=3)
        return FactoredState(count=zero_count(), v_row=v_row, v_col=v_col, v=v)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        step = state.count - jnp.asarray(step_offset, state.count.dtype)
        decay = jnp.asarray(decay_rate_fn(step, decay_rate), jnp.result_type(float))
        one_minus_decay = 1.0 - decay
        updates, v_row, v_col, v = map_leaves(
            lambda g, vr, vc, vv: leaf(g, vr, vc, vv, decay, one_minus_decay),
            updates,
            state.v_row,
            state.v_col,
            state.v,
            n_out=4,
        )
        count = safe_increment(state.count)
        return updates, FactoredState(count=count, v_row=v_row, v_col=v_col, v=v)

    return GradientTransformation(init, update)


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: jax.typing.ArrayLike = 0.8,
    decay_offset: jax.typing.ArrayLike = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: jax.typing.ArrayLike | None = 1.0,
    momentum: jax.typing.ArrayLike | None = None,
    dtype_momentum: jax.typing.DTypeLike = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: jax.typing.ArrayLike = 1e-30,
    factored: bool = True,
    weight_decay_mask: MaskOrFn = None,
) -> GradientTransformation:
    """Adafactor, chained as Optax does; each optional step is left out when disabled.

    ``chain(scale_by_factored_rms, clip_by_block_rms(clipping_threshold),
    scale_by_learning_rate(learning_rate, flip_sign=False), scale_by_param_block_rms(),
    ema(momentum, debias=False, accumulator_dtype=dtype_momentum),
    add_decayed_weights(weight_decay_rate, weight_decay_mask), scale(-1))``.
    The weight decay is added after the learning rate, so it is not scaled by it:
    each step is ``p -= lr * rms(p) * clipped(u) + weight_decay_rate * p`` (without
    momentum). Update rule of the first step: see ``scale_by_factored_rms``.

    Args:
        learning_rate: Number or schedule (a negative one ascends); ``None`` applies no
            learning rate.
        min_dim_size_to_factor: See ``scale_by_factored_rms``.
        decay_rate: Exponent of the second-moment decay schedule, >= 0.
        decay_offset: ``step_offset`` of ``scale_by_factored_rms``, <= 0.
        multiply_by_parameter_scale: Scale steps by the rms of each parameter leaf.
        clipping_threshold: Largest rms of a leaf's update, >= 0; ``None`` turns it off.
        momentum: EMA decay of the updates in (-1, 1]; ``None`` keeps no momentum.
        dtype_momentum: Dtype of the momentum buffer; ``None`` keeps the params' dtype.
        weight_decay_rate: Decay rate >= 0 or schedule; ``None`` applies none.
        eps: ``epsilon`` of ``scale_by_factored_rms``, >= 0.
        factored: Factor the second moment of large enough leaves.
        weight_decay_mask: Where to apply the decay (tree of bools or function of params).

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
        Cost", ICML 2018, arXiv:1804.04235.
        Checked against optax.adafactor in tests/optimizers/test_adafactor.py.
    """
    fn = "adafactor"
    _checks.non_negative(fn, decay_rate=decay_rate, eps=eps)
    check_offset(fn, "decay_offset", decay_offset, _decay_rate_pow)
    _checks.integer_at_least(fn, "min_dim_size_to_factor", min_dim_size_to_factor, 0)
    if learning_rate is not None:
        _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    if clipping_threshold is not None:
        _checks.at_least(fn, 0, clipping_threshold=clipping_threshold)
    if momentum is not None:
        _checks.momentum(fn, momentum=momentum)
    if weight_decay_rate is not None:
        _checks.non_negative(fn, allow_schedule=True, weight_decay_rate=weight_decay_rate)
    steps = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)]
    if clipping_threshold is not None:
        steps.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        steps.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        steps.append(scale_by_param_block_rms())
    if momentum is not None:
        steps.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        steps.append(add_decayed_weights(weight_decay_rate, weight_decay_mask))
    steps.append(scale(-1.0))
    return chain(*steps)
