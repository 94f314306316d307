"""ADOPT: Adam that normalises each gradient by the second moment of the steps before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    MaskOrFn,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.optimizers.adam import ScaleByAdamState, check_moment_args
from optix.schedules._common import Schedule
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    check_complex_slot,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
    scaled_abs_sq,
)
from optix.tree.math import zeros_like


def _fourth_root(count: jax.Array) -> jax.Array:
    return jnp.asarray(count, jnp.result_type(float)) ** 0.25


def _clip(x: jax.Array, bound: jax.Array) -> jax.Array:
    """``x`` clipped to [-bound, bound]; for complex ``x`` its modulus is clipped to
    ``bound`` (the phase kept, so that the update turns with a global phase)."""
    if jnp.iscomplexobj(x):
        modulus = jnp.abs(x)
        shrink = jnp.where(modulus > bound, bound / jnp.where(modulus > 0, modulus, 1), 1)
        return x * shrink.astype(x.dtype)
    return jnp.clip(x, -bound, bound)


def scale_by_adopt(
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _fourth_root,
) -> GradientTransformation:
    """Rescale updates by ADOPT: momentum of gradients normalised by the previous ``nu``.

    For each leaf, with g the incoming update and k = count (0 on the first step):

        first step (k == 0):  nu = |g|**2, mu and u unchanged (u = mu, zero after init)
        later steps:
            r = g / max(sqrt(nu), eps)            nu from before this step
            r = clip(r, -clip_value_fn(k), clip_value_fn(k))     if use_clipping
            mu = b1 * mu + (1 - b1) * r
            u = mu
            u = b1 * mu + (1 - b1) * r            if nesterov (with the new mu)
            nu = b2 * nu + (1 - b2) * |g|**2

    Normalising by the second moment that does not contain g yet, and applying the
    momentum after the normalisation, is what lets ADOPT converge for any b2. No bias
    correction is applied; the first step only fills ``nu``. For complex updates the
    clipping bounds the modulus of r.

    The official ``ADOPT(lr, betas=(b1, b2), eps, clip_lambda)`` is this transform with
    ``use_clipping = clip_lambda is not None`` and ``clip_value_fn = clip_lambda``: both
    evaluate the bound at the step count before the increment (1 on the first update).

    Args:
        b1: Decay of the momentum of normalised gradients, in (-1, 1).
        b2: Decay of the EMA of |g|**2, in [0, 1].
        eps: Lower bound of ``sqrt(nu)`` in the normalisation, >= 0.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nesterov: Return the Nesterov look-ahead ``b1 * mu + (1 - b1) * r``.
        use_clipping: Clip the normalised gradient to ``[-clip_value_fn(k), clip_value_fn(k)]``.
        clip_value_fn: The bound as a function of the int32 count k (default
            ``k**0.25``), or a number >= 0 for a constant bound.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdamState`` (Optax's).

    References:
        Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any beta2 with the
        Optimal Rate", NeurIPS 2024, arXiv:2411.02853, Algorithm 2.
        Checked against optax.contrib.scale_by_adopt, the official ADOPT
        (iShohei220/adopt, tests/references/adopt.py) and pytorch_optimizer.ADOPT in
        tests/optimizers/test_adopt.py.
    """
    fn = "scale_by_adopt"
    check_moment_args(fn, b1, b2, eps, b2_interval="[0, 1]", mu_dtype=mu_dtype)
    _checks.non_negative(fn, allow_schedule=True, clip_value_fn=clip_value_fn)

    def leaf(g, mu, nu, first, bound):
        check_complex_slot(g, mu, "mu_dtype")
        dt = compute_dtype(g, mu, nu)
        rdt = real_dtype(dt)
        g_ = g.astype(dt)
        nu_old = real_part(nu).astype(rdt)
        b2_, one_minus_b2 = ema_weights(b2, rdt)
        nu_later = b2_ * nu_old + scaled_abs_sq(one_minus_b2, g_)
        nu_new = jnp.where(first, scaled_abs_sq(jnp.ones((), rdt), g_), nu_later)
        r = g_ / jnp.maximum(jnp.sqrt(nu_old), jnp.asarray(eps, rdt)).astype(dt)
        if use_clipping:
            r = _clip(r, bound.astype(rdt))
        b1_, one_minus_b1 = ema_weights(b1, dt)
        mu_old = mu.astype(dt)
        mu_new = b1_ * mu_old + one_minus_b1 * r
        u = b1_ * mu_new + one_minus_b1 * r if nesterov else mu_new
        mu_new = jnp.where(first, mu_old, mu_new)
        u = jnp.where(first, mu_old, u)
        return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def init(params):
        return ScaleByAdamState(
            count=zero_count(), mu=zeros_like(params, dtype=mu_dtype), nu=zeros_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        first = state.count == 0
        bound = None
        if use_clipping and callable(clip_value_fn):
            bound = jnp.asarray(clip_value_fn(state.count))
        elif use_clipping:  # a number (what inject_hyperparams makes of the function)
            bound = jnp.asarray(clip_value_fn)
        updates, mu, nu = map_leaves(
            lambda g, m, v: leaf(g, m, v, first, bound), updates, state.mu, state.nu, n_out=3
        )
        return updates, ScaleByAdamState(count=safe_increment(state.count), mu=mu, nu=nu)

    return GradientTransformation(init, update)


def _after_first_step(weight_decay: ScalarOrSchedule) -> Schedule:
    """The decay rate as a schedule that is 0 on the first step (count 0)."""

    def schedule(count):
        rate = weight_decay(count) if callable(weight_decay) else weight_decay
        return jnp.where(count > 0, rate, jnp.zeros_like(jnp.asarray(rate)))

    return schedule


def adopt(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _fourth_root,
    weight_decay: ScalarOrSchedule | None = None,
    decouple: bool = False,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """ADOPT: ``chain(scale_by_adopt(...), scale_by_learning_rate(learning_rate))``.

    With ``weight_decay=None`` (the default) this is Optax's ``adopt``, with Optax's
    chain and state. A number or a schedule adds the official code's weight decay,
    applied where ``mask`` says:

        g += weight_decay * p, before scale_by_adopt        (decouple=False, L2)
        p -= lr * (u + weight_decay * p), from the 2nd step  (decouple=True)

    The coupled form also enters the first step's ``nu``; the decoupled one, like the
    update itself, leaves the params alone on the first step. The official
    ``ADOPT(params, lr, betas, eps, clip_lambda, weight_decay, decouple)`` is
    ``adopt(lr, b1, b2, eps, use_clipping=clip_lambda is not None,
    clip_value_fn=clip_lambda, weight_decay=weight_decay, decouple=decouple)``.
    Update rule and the other arguments: see ``scale_by_adopt``; ``weight_decay`` is
    >= 0 or a schedule.
    """
    fn = "adopt"
    check_moment_args(fn, b1, b2, eps, b2_interval="[0, 1]", mu_dtype=mu_dtype)
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative(fn, allow_schedule=True, allow_none=True, weight_decay=weight_decay)
    preconditioner = scale_by_adopt(
        b1,
        b2,
        eps,
        mu_dtype,
        nesterov=nesterov,
        use_clipping=use_clipping,
        clip_value_fn=clip_value_fn,
    )
    if weight_decay is None:
        return chain(preconditioner, scale_by_learning_rate(learning_rate))
    if not decouple:
        decay = add_decayed_weights(weight_decay, mask)
        return chain(decay, preconditioner, scale_by_learning_rate(learning_rate))
    decay = add_decayed_weights(_after_first_step(weight_decay), mask)
    return chain(preconditioner, decay, scale_by_learning_rate(learning_rate))
