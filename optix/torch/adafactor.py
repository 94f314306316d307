"""torch.optim.Adafactor as an optix transformation, with torch's names and numbers.

torch's Adafactor (2.5 and later) factors the last two dims of every leaf with two or
more dims and clamps with ``eps[0]`` where Optax's adds its epsilon to ``g**2``, so its
second moment is ``scale_by_torch_factored_rms`` here; the update clipping and the
relative step size are Optax's Adafactor blocks (``clip_by_block_rms``,
``scale_by_param_block_rms``), whose math is torch's.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, safe_increment, zero_count
from optix.torch.optim import maximize_direction
from optix.transforms.block_rms import clip_by_block_rms, scale_by_param_block_rms
from optix.transforms.scaling import scale, scale_by_schedule
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import compute_dtype, map_leaves


class TorchAdafactorState(NamedTuple):
    """State of ``scale_by_torch_factored_rms``.

    Leaves with two or more dims use ``row_var`` and ``col_var``, the others
    ``variance``; the unused fields hold a zero array of shape (1,), so every field
    has the params' tree structure.
    """

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    row_var: Any  # leaves with ndim >= 2: EMA of mean(g**2) over the last dim, shape (..., n, 1)
    col_var: Any  # leaves with ndim >= 2: EMA of mean(g**2) over dim -2, shape (..., 1, m)
    variance: Any  # other leaves: param-shaped EMA of g**2


def _lerp(start: jax.Array, end: jax.Array, weight: jax.Array) -> jax.Array:
    """torch.lerp's two-sided form: exact at ``weight`` 0 and 1."""
    diff = end - start
    return jnp.where(weight < 0.5, start + weight * diff, end - diff * (1 - weight))


def scale_by_torch_factored_rms(
    beta2_decay: float = -0.8,
    eps1: float | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by torch.optim.Adafactor's factored second moment.

    For each leaf, with g the incoming update, t = count + 1, w = t**beta2_decay and
    e = eps1 (the machine epsilon of the leaf's dtype when None). A leaf with two or
    more dims is factored over its last two dims:

        row_var = row_var + w * (mean(g**2, axis=-1) - row_var)
        col_var = col_var + w * (mean(g**2, axis=-2) - col_var)
        v = row_var * col_var / max(mean(row_var, axis=-2), e)     (broadcast back)

    A vector or scalar keeps a full second moment:

        variance = variance + w * (g**2 - variance);  v = variance

    and then ``u = g / sqrt(max(v, e**2))``. Unlike ``scale_by_factored_rms`` (Optax's)
    every leaf of two or more dims is factored, over its last two dims, and ``e``
    clamps instead of being added to ``g**2``. Complex leaves are refused, as in torch.

    Args:
        beta2_decay: Exponent of the second-moment weight ``w = t**beta2_decay``, <= 0.
        eps1: Floor of the row average and of sqrt(v), >= 0, or None.
        nu_dtype: Dtype of the second-moment slots; ``None`` keeps the params' dtype.

    Returns:
        A GradientTransformation whose state is ``TorchAdafactorState``.

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
        Cost", ICML 2018, arXiv:1804.04235, Algorithm 4.
        Checked against torch.optim.Adafactor in tests/torch/test_adafactor.py.
    """
    fn = "scale_by_torch_factored_rms"
    _checks.in_interval(fn, "(-inf, 0]", beta2_decay=beta2_decay)
    _checks.non_negative(fn, allow_none=True, eps1=eps1)
    _checks.floating_dtype(fn, nu_dtype=nu_dtype)

    def init_leaf(p):
        dtype = p.dtype if nu_dtype is None else nu_dtype
        unused = jnp.zeros((1,), dtype)
        if p.ndim < 2:
            return unused, unused, jnp.zeros(p.shape, dtype)
        row_shape, col_shape = (*p.shape[:-1], 1), (*p.shape[:-2], 1, p.shape[-1])
        return jnp.zeros(row_shape, dtype), jnp.zeros(col_shape, dtype), unused

    def init(params):
        _checks.real_params(fn, params, "torch.optim.Adafactor refuses them")
        row_var, col_var, variance = map_leaves(init_leaf, params, n_out=3)
        return TorchAdafactorState(zero_count(), row_var, col_var, variance)

    def leaf(g, row_var, col_var, variance, weight):
        dt = compute_dtype(g, row_var, col_var, variance)
        e = jnp.asarray(jnp.finfo(g.dtype).eps if eps1 is None else eps1, dt)
        g_, w = g.astype(dt), weight.astype(dt)
        g2 = g_ * g_
        if g.ndim < 2:
            variance_new = _lerp(variance.astype(dt), g2, w)
            estimate = variance_new
            row_new, col_new = row_var, col_var
            variance_out = variance_new.astype(variance.dtype)
        else:
            row_new = _lerp(row_var.astype(dt), jnp.mean(g2, axis=-1, keepdims=True), w)
            col_new = _lerp(col_var.astype(dt), jnp.mean(g2, axis=-2, keepdims=True), w)
            row_mean = jnp.maximum(jnp.mean(row_new, axis=-2, keepdims=True), e)
            estimate = row_new * col_new / row_mean
            row_new, col_new = row_new.astype(row_var.dtype), col_new.astype(col_var.dtype)
            variance_out = variance
        u = g_ * jax.lax.rsqrt(jnp.maximum(estimate, e * e))
        return u.astype(g.dtype), row_new, col_new, variance_out

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        t = jnp.asarray(state.count, jnp.result_type(float)) + 1
        weight = t ** jnp.asarray(beta2_decay, t.dtype)
        updates, row_var, col_var, variance = map_leaves(
            lambda g, r, c, v: leaf(g, r, c, v, weight),
            updates,
            state.row_var,
            state.col_var,
            state.variance,
            n_out=4,
        )
        count = safe_increment(state.count)
        return updates, TorchAdafactorState(count, row_var, col_var, variance)

    return GradientTransformation(init, update)


def adafactor(
    lr: ScalarOrSchedule = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple[float | None, float] = (None, 1e-3),
    d: float = 1.0,
    weight_decay: float = 0.0,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """torch.optim.Adafactor: factored second moment, update clipping, relative step size.

    For each leaf, with g the gradient, p the parameter, t = count + 1 and u from
    ``scale_by_torch_factored_rms(beta2_decay, eps[0])``:

        g = -g if maximize
        rho = min(lr, 1 / sqrt(t))
        alpha = max(eps[1], rms(p)) * rho                 (rms of p before this step)
        u = u / max(1, rms(u) / d)
        p = p * (1 - lr * weight_decay) - alpha * u

    Built as ``chain(maximize, scale_by_torch_factored_rms, clip_by_block_rms(d),
    scale_by_param_block_rms(eps[1]), scale_by_schedule(rho),
    add_decayed_weights(lr * weight_decay), scale(-1))``. ``lr`` may be a schedule of
    the step count (as setting ``param_group["lr"]`` before each step); ``foreach`` is
    accepted and ignored. ``nu_dtype`` (keyword-only) sets the second moment's dtype.

    Args:
        lr: Largest relative step size, >= 0, or a schedule.
        beta2_decay: Exponent of the second-moment weight, <= 0.
        eps: ``(eps1, eps2)``: eps1 >= 0 or None (the dtype's machine epsilon) floors the
            second moment; eps2 >= 0 floors rms(p) in the step size.
        d: Clipping threshold of the update's rms, >= 1.
        weight_decay: Decoupled weight decay, >= 0, scaled by lr.

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory
        Cost", ICML 2018, arXiv:1804.04235.
        Checked against torch.optim.Adafactor in tests/torch/test_adafactor.py.
    """
    del foreach
    fn = "optix.torch.adafactor"
    _checks.non_negative(fn, allow_schedule=True, lr=lr)
    _checks.in_interval(fn, "(-inf, 0]", beta2_decay=beta2_decay)
    if not isinstance(eps, tuple | list) or len(eps) != 2:
        raise TypeError(f"{fn}: eps must be a pair (eps1 or None, eps2), got eps={eps!r}")
    eps1: dict[str, Any] = {"eps[0]": eps[0]}
    eps2: dict[str, Any] = {"eps[1]": eps[1]}
    _checks.non_negative(fn, allow_none=True, **eps1)
    _checks.non_negative(fn, **eps2)
    _checks.at_least(fn, 1, d=d)
    _checks.non_negative(fn, weight_decay=weight_decay)
    _checks.floating_dtype(fn, nu_dtype=nu_dtype)

    def lr_at(count):
        return lr(count) if callable(lr) else lr

    def relative_step(count):
        t = jnp.asarray(count, jnp.result_type(float)) + 1
        return jnp.minimum(jnp.asarray(lr_at(count), t.dtype), jax.lax.rsqrt(t))

    if callable(lr) and weight_decay != 0:
        decay: ScalarOrSchedule = lambda count: lr(count) * weight_decay
    else:
        decay = 0.0 if callable(lr) else lr * weight_decay
    return chain(
        maximize_direction(maximize),
        scale_by_torch_factored_rms(beta2_decay, eps[0], nu_dtype),
        clip_by_block_rms(d),
        scale_by_param_block_rms(eps[1]),
        scale_by_schedule(relative_step),
        add_decayed_weights(decay),
        scale(-1.0),
    )
