"""MADGRAD: momentumized, adaptive, dual-averaged gradient descent."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.transforms.weight_decay import NO_PARAMS, add_decayed_weights
from optix.tree.leafwise import compute_dtype, map_leaves, real_dtype, real_part, scaled_abs_sq
from optix.tree.math import zeros_like


class MadgradState(NamedTuple):
    """State of ``scale_by_madgrad`` (Optax's field names)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: k, number of updates so far
    grad_sum_sq: Any  # param-shaped: sum of lamb * |g|**2
    s: Any  # param-shaped: sum of lamb * g
    x0: Any  # the params given to init: the dual-averaging anchor


def _rms(grad_sum_sq: jax.Array, eps: Any) -> jax.Array:
    """``cbrt(grad_sum_sq) + eps``, infinite where it is 0 (so that ``s / rms`` is 0)."""
    rms = jnp.cbrt(grad_sum_sq) + jnp.asarray(eps, grad_sum_sq.dtype)
    return jnp.where(rms == 0, jnp.inf, rms)


def scale_by_madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    eps: float = 1e-6,
    *,
    decoupled_weight_decay: float | jax.Array = 0.0,
) -> GradientTransformation:
    """Rescale updates to MADGRAD's step (the learning rate is inside: the result is the step).

    For each leaf, with g the incoming update, p the params, k = count, lr the learning
    rate at k and ck = 1 - momentum:

        lamb = (lr + eps) * sqrt(k + 1)          (lamb = 0 if lr == 0)
        grad_sum_sq = grad_sum_sq + lamb * |g|**2
        s = s + lamb * g
        rms = cbrt(grad_sum_sq) + eps
        u = ck * (x0 - s / rms - p)                          if momentum > 0
        u = s_old / rms_old - s / rms                        if momentum == 0
        u = u - (lr + eps) * decoupled_weight_decay * p      (0 by default)

    The iterate is ``p + u = momentum * p + ck * z`` with the dual-averaged point
    ``z = x0 - s / rms``. With momentum 0 the official code anchors z at the current
    params (``x0 = p + s_old / rms_old``) rather than at the stored ``x0``, so that a
    change of the params between steps (decoupled decay) carries over; so does this
    transform (the stored ``x0`` is then unused). With eps 0, ``rms = 0`` counts as
    infinite, as in the official code. A learning rate of 0 does not move the params,
    as in the official code (Optax's adds eps to it regardless).

    Args:
        learning_rate: A number or a schedule of the count, >= 0 in the paper.
        momentum: In [0, 1); 0 makes ``p`` the dual-averaged point itself.
        eps: Added to the cube root and to the learning rate, >= 0.
        decoupled_weight_decay: The official ``decouple_decay`` rate, >= 0: each step
            also subtracts ``(lr + eps) * decoupled_weight_decay * p`` (an optix
            extension; ``madgrad(..., decouple_decay=True)`` sets it).

    Returns:
        A GradientTransformation whose state is ``MadgradState``; ``update`` needs params.

    References:
        Defazio & Jelassi, "Adaptivity without Compromise: A Momentumized, Adaptive,
        Dual Averaged Gradient Method for Stochastic Optimization", JMLR 2022,
        arXiv:2101.11075, Algorithm 1.
        Checked against madgrad.MADGRAD (facebookresearch/madgrad) and
        optax.contrib.scale_by_madgrad in tests/optimizers/test_madgrad.py.
    """
    fn = "scale_by_madgrad"
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.in_unit_interval(fn, momentum=momentum)
    _checks.non_negative(fn, eps=eps, decoupled_weight_decay=decoupled_weight_decay)
    anchored_at_params = isinstance(momentum, int | float) and momentum == 0

    def leaf(g, p, gss, s, x0, lr_eps, lamb):
        dt = compute_dtype(g, gss, s, p)
        rdt = real_dtype(dt)
        g_, p_ = g.astype(dt), p.astype(dt)
        gss_old, s_old = real_part(gss).astype(rdt), s.astype(dt)
        gss_new = gss_old + scaled_abs_sq(lamb.astype(rdt), g_)
        s_new = s_old + lamb.astype(dt) * g_
        rms = _rms(gss_new, eps).astype(dt)
        if anchored_at_params:
            u = s_old / _rms(gss_old, eps).astype(dt) - s_new / rms
        else:
            ck = jnp.asarray(1 - momentum, dt)
            u = ck * (x0.astype(dt) - s_new / rms - p_)
        if not (isinstance(decoupled_weight_decay, int | float) and decoupled_weight_decay == 0):
            u = u - (lr_eps * decoupled_weight_decay).astype(dt) * p_
        return u.astype(g.dtype), gss_new.astype(gss.dtype), s_new.astype(s.dtype)

    def init(params):
        x0 = jax.tree.map(lambda p: p, params)
        return MadgradState(
            count=zero_count(), grad_sum_sq=zeros_like(params), s=zeros_like(params), x0=x0
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        float_dtype = jnp.result_type(float)
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        lr = jnp.asarray(lr, float_dtype)
        lr_eps = jnp.where(lr != 0, lr + eps, jnp.zeros_like(lr))
        lamb = lr_eps * jnp.sqrt(state.count.astype(float_dtype) + 1)
        updates, gss, s = map_leaves(
            lambda g, p, a, b, x: leaf(g, p, a, b, x, lr_eps, lamb),
            updates,
            params,
            state.grad_sum_sq,
            state.s,
            state.x0,
            n_out=3,
        )
        new_state = MadgradState(
            count=safe_increment(state.count), grad_sum_sq=gss, s=s, x0=state.x0
        )
        return updates, new_state

    return GradientTransformation(init, update)


def madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    weight_decay: ScalarOrSchedule = 0.0,
    eps: float = 1e-6,
    *,
    decouple_decay: bool = False,
) -> GradientTransformation:
    """MADGRAD: ``chain(add_decayed_weights(weight_decay), scale_by_madgrad(...))``.

    The weight decay is the official default, an L2 penalty added to the gradient
    (``g += weight_decay * p``) before the sums. ``decouple_decay=True`` is the
    official AdamW-style option instead: ``p -= (lr + eps) * weight_decay * p`` each
    step (the chain keeps Optax's layout: the first member then adds nothing). The
    official ``MADGRAD(params, lr, momentum, weight_decay, eps, decouple_decay)`` is
    ``madgrad(lr, momentum, weight_decay, eps, decouple_decay=decouple_decay)``.
    Update rule and arguments: see ``scale_by_madgrad``; ``weight_decay`` is >= 0 (or
    a schedule, for the L2 form).
    """
    fn = "madgrad"
    _checks.in_unit_interval(fn, momentum=momentum)
    _checks.non_negative(fn, allow_schedule=not decouple_decay, weight_decay=weight_decay)
    _checks.non_negative(fn, eps=eps)
    if decouple_decay:
        # The check above refuses a schedule here.
        rate = cast("float | jax.Array", weight_decay)
        return chain(
            add_decayed_weights(0.0),
            scale_by_madgrad(learning_rate, momentum, eps, decoupled_weight_decay=rate),
        )
    return chain(add_decayed_weights(weight_decay), scale_by_madgrad(learning_rate, momentum, eps))
