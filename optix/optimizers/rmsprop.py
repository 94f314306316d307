"""RMSProp: scale by the root of a moving average of squared updates, plain or centered."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    chain,
    identity,
    safe_increment,
    zero_count,
)
from optix.transforms.momentum import trace
from optix.transforms.scaling import scale_by_learning_rate
from optix.tree.leafwise import (
    abs_sq,
    bias_correction_factor,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
    scaled_abs_sq,
)
from optix.tree.math import full_like, zeros_like


class ScaleByRmsWithCountState(NamedTuple):
    """State of ``scale_by_rms`` with bias correction."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    nu: Any  # param-shaped: EMA of g**2, starting at initial_scale (dtype nu_dtype)


class ScaleByRStdDevWithCountState(NamedTuple):
    """State of ``scale_by_stddev`` with bias correction."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of g**2, starting at initial_scale (dtype nu_dtype)


class ScaleByRmsState(NamedTuple):
    """State of ``scale_by_rms`` without bias correction."""

    nu: Any  # param-shaped: EMA of g**2, starting at initial_scale (dtype nu_dtype)


class ScaleByRStdDevState(NamedTuple):
    """State of ``scale_by_stddev`` without bias correction."""

    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of g**2, starting at initial_scale (dtype nu_dtype)


def _check(fn: str, decay: Any, eps: Any, initial_scale: Any, bias_correction: bool) -> None:
    # With bias correction, decay = 1 would divide by 1 - 1**t = 0.
    _checks.in_unit_interval(fn, closed_right=not bias_correction, decay=decay)
    _checks.non_negative(fn, eps=eps, initial_scale=initial_scale)


def _rms_leaf(g, mu, nu, c, decay, eps, eps_in_sqrt, bias_correction):
    """One leaf of RMSProp; centered when ``mu`` is given. Returns (u, mu, nu)."""
    leaves = (g, nu) if mu is None else (g, mu, nu)
    dt = compute_dtype(*leaves)
    rdt = real_dtype(dt)
    decay_, one_minus_decay = ema_weights(decay, rdt)
    g_ = g.astype(dt)
    c = c.astype(rdt) if bias_correction else jnp.ones([], rdt)
    nu_new = decay_ * real_part(nu).astype(rdt) + scaled_abs_sq(one_minus_decay, g_)
    var = nu_new / c
    mu_out = None
    if mu is not None:
        mu_new = decay_.astype(dt) * mu.astype(dt) + one_minus_decay.astype(dt) * g_
        mean = mu_new / c.astype(dt)
        var = var - (abs_sq(mean) if jnp.iscomplexobj(mean) else mean**2)
        mu_out = mu_new.astype(mu.dtype)
    d = jnp.sqrt(var + eps) if eps_in_sqrt else jnp.sqrt(var) + eps
    u = (g_ / d.astype(dt)).astype(g.dtype)
    return u, mu_out, nu_new.astype(nu.dtype)


def _state(count, mu, nu):
    """Optax's class for the options: a count only with bias correction, a mean if centered."""
    if mu is not None:
        return (
            ScaleByRStdDevState(mu, nu)
            if count is None
            else ScaleByRStdDevWithCountState(count, mu, nu)
        )
    return ScaleByRmsState(nu) if count is None else ScaleByRmsWithCountState(count, nu)


def _scale_by_rms(
    decay, eps, initial_scale, eps_in_sqrt, bias_correction, *, centered, mu_dtype, nu_dtype
):
    def init(params):
        nu = full_like(params, initial_scale, dtype=nu_dtype)
        mu = zeros_like(params, dtype=mu_dtype) if centered else None
        return _state(zero_count() if bias_correction else None, mu, nu)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count) if bias_correction else None
        c = jnp.ones([]) if count is None else bias_correction_factor(decay, count)
        options = (decay, eps, eps_in_sqrt, bias_correction)
        if centered:
            updates, mu, nu = map_leaves(
                lambda g, m, v: _rms_leaf(g, m, v, c, *options),
                updates,
                state.mu,
                state.nu,
                n_out=3,
            )
            return updates, _state(count, mu, nu)

        def plain(g, v):
            u, _, v_new = _rms_leaf(g, None, v, c, *options)
            return u, v_new

        updates, nu = map_leaves(plain, updates, state.nu, n_out=2)
        return updates, _state(count, None, nu)

    return GradientTransformation(init, update)


def scale_by_rms(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by the root of a moving average of their squares (RMSProp).

    For each leaf, with g the incoming update, t = count + 1 and c = 1 - decay**t
    (c = 1 without ``bias_correction``):

        nu = decay * nu + (1 - decay) * |g|**2
        u = g / sqrt(nu / c + eps)     if eps_in_sqrt
        u = g / (sqrt(nu / c) + eps)   otherwise

    ``nu`` starts at ``initial_scale``. ``eps_in_sqrt=False`` with ``decay=alpha`` is
    torch.optim.RMSprop's denominator. The state is Optax's: ``ScaleByRmsState(nu)``, or
    ``ScaleByRmsWithCountState(count, nu)`` with ``bias_correction``.

    Args:
        decay: Decay of the average, in [0, 1] ([0, 1) with ``bias_correction``).
        eps: Added to the denominator, >= 0.
        initial_scale: Starting value of ``nu``, >= 0.
        eps_in_sqrt: Add ``eps`` under the square root (Optax) or after it (torch).
        bias_correction: Divide ``nu`` by ``1 - decay**t``.
        nu_dtype: Dtype of ``nu``; ``None`` keeps the params' dtype. It is updated in at
            least float32 and stored back in it.

    Returns:
        A GradientTransformation whose state is ``ScaleByRmsState``
        (``ScaleByRmsWithCountState`` with ``bias_correction``).

    References:
        Hinton, "Neural Networks for Machine Learning", lecture 6e, 2012.
        Checked against optax.scale_by_rms and torch.optim.RMSprop in
        tests/optimizers/test_rmsprop.py.
    """
    _check("scale_by_rms", decay, eps, initial_scale, bias_correction)
    _checks.floating_dtype("scale_by_rms", nu_dtype=nu_dtype)
    options = (decay, eps, initial_scale, eps_in_sqrt, bias_correction)
    return _scale_by_rms(*options, centered=False, mu_dtype=None, nu_dtype=nu_dtype)


def scale_by_stddev(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by the root of a centered moving variance (centered RMSProp).

    For each leaf, with g the incoming update, t = count + 1 and c = 1 - decay**t
    (c = 1 without ``bias_correction``):

        mu = decay * mu + (1 - decay) * g
        nu = decay * nu + (1 - decay) * |g|**2
        var = nu / c - |mu / c|**2
        u = g / sqrt(var + eps)     if eps_in_sqrt
        u = g / (sqrt(var) + eps)   otherwise

    ``mu`` starts at 0 and ``nu`` at ``initial_scale``. ``eps_in_sqrt=False`` with
    ``decay=alpha`` is torch.optim.RMSprop(centered=True)'s denominator. The state is
    Optax's: ``ScaleByRStdDevState(mu, nu)``, or ``ScaleByRStdDevWithCountState(count, mu,
    nu)`` with ``bias_correction``.

    Args:
        decay: Decay of the averages, in [0, 1] ([0, 1) with ``bias_correction``).
        eps: Added to the denominator, >= 0.
        initial_scale: Starting value of ``nu``, >= 0.
        eps_in_sqrt: Add ``eps`` under the square root (Optax) or after it (torch).
        bias_correction: Divide ``mu`` and ``nu`` by ``1 - decay**t``.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu``; ``None`` keeps the params' dtype. The averages are
            updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByRStdDevState``
        (``ScaleByRStdDevWithCountState`` with ``bias_correction``).

    References:
        Graves, "Generating Sequences With Recurrent Neural Networks",
        arXiv:1308.0850, 2013 (the centered form).
        Checked against optax.scale_by_stddev and torch.optim.RMSprop(centered=True) in
        tests/optimizers/test_rmsprop.py.
    """
    _check("scale_by_stddev", decay, eps, initial_scale, bias_correction)
    _checks.floating_dtype("scale_by_stddev", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    options = (decay, eps, initial_scale, eps_in_sqrt, bias_correction)
    return _scale_by_rms(*options, centered=True, mu_dtype=mu_dtype, nu_dtype=nu_dtype)


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """RMSProp as Optax builds it: preconditioner, learning rate, then momentum.

    ``chain(scale_by_stddev if centered else scale_by_rms, scale_by_learning_rate,
    trace(momentum, nesterov))`` (``identity()`` instead of ``trace`` when momentum is
    None). The buffer accumulates lr-scaled steps, so a learning rate that changes
    reaches the velocity gradually. torch.optim.RMSprop accumulates ``g / d`` and
    multiplies the buffer by the current lr: the two agree while lr is constant
    (with ``eps_in_sqrt=False, decay=alpha``); ``optix.torch.rmsprop`` is torch's order.
    ``mu_dtype`` sets the dtype of the first-order slots (the centered ``mu`` and the
    momentum ``trace``), ``nu_dtype`` that of ``nu``; ``None`` keeps the params' dtype.
    """
    _check("rmsprop", decay, eps, initial_scale, bias_correction)
    _checks.floating_dtype("rmsprop", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.finite("rmsprop", allow_schedule=True, learning_rate=learning_rate)
    if momentum is not None:
        _checks.in_interval("rmsprop", "(-1, inf)", momentum=momentum)
    options = (decay, eps, initial_scale, eps_in_sqrt, bias_correction)
    if centered:
        scaler = scale_by_stddev(*options, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    else:
        scaler = scale_by_rms(*options, nu_dtype=nu_dtype)
    return chain(
        scaler,
        scale_by_learning_rate(learning_rate),
        identity() if momentum is None else trace(momentum, nesterov, mu_dtype),
    )
