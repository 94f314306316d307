"""MoMo and MoMo-Adam: momentum (or Adam) with a Polyak-type step size from a model of
the loss, which ``update`` receives as ``value``."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, safe_increment, zero_count
from optix.optimizers.polyak import NO_VALUE
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.casting import dtype as tree_dtype
from optix.tree.leafwise import bias_correction_factor, compute_dtype, ema_weights, real_dtype
from optix.tree.math import vdot, zeros_like
from optix.tree.structure import check_same_structure

WeightDecayForm = Literal["optax", "proximal", "decoupled"]
# Optax's threshold for a vanishing momentum: double precision's machine epsilon.
_TINY = float(np.finfo(np.float64).eps)


class MomoState(NamedTuple):
    """State of ``momo`` (Optax's ``optax.contrib.MomoState``)."""

    exp_avg: Any  # param-shaped: EMA of g (d in the paper)
    barf: jax.Array  # scalar: EMA of the loss values
    gamma: jax.Array  # scalar: EMA of <g, p>
    lb: jax.Array  # scalar: the loss's lower bound in use
    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far


class MomoAdamState(NamedTuple):
    """State of ``momo_adam`` (Optax's ``optax.contrib.MomoAdamState``)."""

    exp_avg: Any  # param-shaped: EMA of g, decay b1
    exp_avg_sq: Any  # param-shaped: EMA of g**2, decay b2
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array  # type: ignore[assignment]


def _check(fn, learning_rate, lower_bound, weight_decay, form, forms) -> None:
    _checks.non_negative(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.finite(fn, lower_bound=lower_bound)
    _checks.non_negative(fn, weight_decay=weight_decay)
    _checks.one_of(fn, "weight_decay_form", form, forms)


def _ema(decay, old, new, dt):
    if isinstance(decay, float | int):
        w, one_minus_w = ema_weights(decay, dt)
    else:
        w = jnp.asarray(decay, dt)
        one_minus_w = 1 - w
    return w * old.astype(dt) + one_minus_w * new


def _momo_update(fn, learning_rate, lower_bound, weight_decay, adapt, form, moments):
    """``update`` of MoMo for ``moments(updates, state, params, value, dt)``, which returns
    (decay of the loss and <g, p> averages, rho, exp_avg, d / D, new moment slots)."""

    def update(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        if value is None:
            raise _checks.MissingExtraArgumentError(NO_VALUE.format(fn=fn))
        check_same_structure(fn, updates=updates, params=params, state=state.exp_avg)
        leaves = jax.tree.leaves(updates) + jax.tree.leaves(params)
        dt = real_dtype(compute_dtype(*leaves, state.barf))
        g = jax.tree.map(lambda x: x.astype(dt), updates)
        p = jax.tree.map(lambda x: x.astype(dt), params)
        decay, rho, exp_avg, weighted, slots = moments(g, state, p, dt)
        barf = _ema(decay, state.barf, jnp.asarray(value, dt), dt)
        gamma = _ema(decay, state.gamma, vdot(g, p), dt)
        exp_avg_norm = vdot(exp_avg, weighted)
        iprod = vdot(exp_avg, p)
        count = state.count
        alpha = jnp.asarray(learning_rate(count) if callable(learning_rate) else learning_rate, dt)
        c = 1 + alpha * jnp.asarray(weight_decay, dt)
        lb, floor = state.lb.astype(dt), jnp.asarray(lower_bound, dt)
        if adapt:
            cap = c * (barf - gamma) + iprod
            lb = jnp.where(cap < c * rho * lb, jnp.maximum(cap / (2 * rho * c), floor), lb)
        t1 = jnp.maximum(c * (barf - rho * lb - gamma) + iprod, 0)
        vanishing = exp_avg_norm <= _TINY
        t1 = jnp.where(vanishing, 0, t1 / jnp.where(vanishing, 1, exp_avg_norm))
        tau = jnp.minimum(alpha / rho, t1)
        if adapt:
            lb = jnp.maximum((barf + iprod - gamma - tau * exp_avg_norm / 2) / rho, floor)
        else:
            lb = state.lb
        shrink = {"optax": (c - 1) / c, "proximal": (c - 1) / c, "decoupled": c - 1}[form]
        tau_w = tau / c if form == "proximal" else tau
        new_updates = jax.tree.map(
            lambda w, x, orig: (-shrink * x - tau_w * w).astype(orig.dtype), weighted, p, updates
        )
        scalars = [x.astype(state.barf.dtype) for x in (barf, gamma, lb)]
        return new_updates, type(state)(*slots, *scalars, safe_increment(count))

    return update


def _scalars(params: Any, lower_bound: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """barf, gamma and lb at init, in the lowest params dtype (Optax's layout)."""
    dt = tree_dtype(params, "lowest")
    return jnp.zeros([], dt), jnp.zeros([], dt), jnp.asarray(lower_bound, dt)


def momo(
    learning_rate: ScalarOrSchedule = 1.0,
    beta: float = 0.9,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
    *,
    bias_correction: bool = False,
    weight_decay_form: Literal["optax", "proximal"] = "optax",
) -> GradientTransformation:
    """MoMo: SGD with momentum and the step size ``min(learning_rate, t1)`` of a model of
    the loss; call ``update(grads, state, params, value=loss)``.

    With g the incoming updates, p the params, alpha = learning_rate(count),
    c = 1 + alpha * weight_decay and <., .> and norms over all leaves together:

        b = 0 at the first step, else beta     (b = beta, if bias_correction)
        rho = 1                                (rho = 1 - beta**(count + 1), if bias_correction)
        barf = b * barf + (1 - b) * value
        exp_avg = b * exp_avg + (1 - b) * g
        gamma = b * gamma + (1 - b) * <g, p>
        if adapt_lower_bound:
            cap = c * (barf - gamma) + <exp_avg, p>
            lb = max(cap / (2 * rho * c), lower_bound)       if cap < c * rho * lb
        t1 = max(c * (barf - rho * lb - gamma) + <exp_avg, p>, 0) / norm(exp_avg)**2
        tau = min(alpha / rho, t1)                           (t1 = 0 if norm(exp_avg) is ~0)
        if adapt_lower_bound:
            lb = max((barf + <exp_avg, p> - gamma - tau * norm(exp_avg)**2 / 2) / rho,
                     lower_bound)
        u = -(c - 1) / c * p - tau * exp_avg                 if weight_decay_form == "optax"
        u = (p - tau * exp_avg) / c - p                      if weight_decay_form == "proximal"

    The forms agree without weight decay. "proximal" is the paper's and the official
    Momo's update; "optax" is Optax's, which does not divide the step by c.
    ``bias_correction`` is the official Momo's option (Optax has none).

    Args:
        learning_rate: Largest step size (alpha), >= 0, or a schedule; 1 recommended.
        beta: Momentum, in [0, 1].
        lower_bound: A lower bound of the loss, finite; 0 for most tasks.
        weight_decay: Weight decay (lambda), >= 0.
        adapt_lower_bound: Estimate the lower bound on the fly (the official use_fstar).
        bias_correction: Average from zero with bias correction, rather than from the
            first values.
        weight_decay_form: "optax" or "proximal" (the paper's), see above.

    Returns:
        A GradientTransformation whose state is ``MomoState``; ``update`` needs params
        and the keyword argument ``value``.

    References:
        Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum Models for Adaptive
        Learning Rates", ICML 2024, arXiv:2305.07583, Algorithm 1.
        Checked against optax.contrib.momo and momo.Momo (the official momo-opt
        package) in tests/optimizers/test_momo.py.
    """
    fn = "momo"
    _check(fn, learning_rate, lower_bound, weight_decay, weight_decay_form, ("optax", "proximal"))
    _checks.in_interval(fn, "[0, 1]", beta=beta)

    def moments(g, state, p, dt):
        t = safe_increment(state.count)
        decay: float | jax.Array
        if bias_correction:
            decay, rho = beta, bias_correction_factor(beta, t).astype(dt)
        else:
            decay, rho = jnp.where(state.count == 0, 0.0, beta), jnp.ones([], dt)
        exp_avg = jax.tree.map(lambda m, x: _ema(decay, m, x, dt), state.exp_avg, g)
        slots = [jax.tree.map(lambda m, old: m.astype(old.dtype), exp_avg, state.exp_avg)]
        return decay, rho, exp_avg, exp_avg, slots

    def init(params):
        _checks.real_params("momo", params, "its model of the loss uses real inner products")
        return MomoState(zeros_like(params), *_scalars(params, lower_bound), zero_count())

    update = _momo_update(
        fn, learning_rate, lower_bound, weight_decay, adapt_lower_bound, weight_decay_form, moments
    )
    return GradientTransformation(init, update)


def momo_adam(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
    *,
    weight_decay_form: WeightDecayForm = "optax",
) -> GradientTransformation:
    """MoMo-Adam: Adam's direction with MoMo's step size; call
    ``update(grads, state, params, value=loss)``.

    With t = count + 1, the rule of ``momo`` with bias_correction (beta = b1,
    rho = 1 - b1**t), the direction d / D in place of exp_avg and norm(exp_avg)**2
    replaced by <exp_avg, exp_avg / D>, where

        exp_avg_sq = b2 * exp_avg_sq + (1 - b2) * g**2
        D = sqrt(exp_avg_sq / (1 - b2**t)) + eps

    and with the forms of weight decay

        u = -(c - 1) / c * p - tau * exp_avg / D         if weight_decay_form == "optax"
        u = (p - tau * exp_avg / D) / c - p              if weight_decay_form == "proximal"
        u = -(c - 1) * p - tau * exp_avg / D             if weight_decay_form == "decoupled"

    "proximal" is the official MomoAdam's default (divide=True), "decoupled" its
    divide=False (AdamW's p *= 1 - alpha * weight_decay), "optax" Optax's.

    Args:
        learning_rate: Largest step size (alpha), >= 0, or a schedule.
        b1: Decay of exp_avg, barf and gamma, in [0, 1).
        b2: Decay of exp_avg_sq, in [0, 1).
        eps: Added to D, >= 0.
        lower_bound: As in ``momo``.
        weight_decay: As in ``momo``.
        adapt_lower_bound: As in ``momo``.
        weight_decay_form: "optax", "proximal" or "decoupled", see above.

    Returns:
        A GradientTransformation whose state is ``MomoAdamState``; ``update`` needs
        params and the keyword argument ``value``.

    References:
        Schaipp et al., arXiv:2305.07583, Algorithm 3 (MoMo-Adam).
        Checked against optax.contrib.momo_adam and momo.MomoAdam (the official
        momo-opt package) in tests/optimizers/test_momo.py.
    """
    fn = "momo_adam"
    forms = ("optax", "proximal", "decoupled")
    _check(fn, learning_rate, lower_bound, weight_decay, weight_decay_form, forms)
    _checks.in_interval(fn, "[0, 1)", b1=b1, b2=b2)
    _checks.non_negative(fn, eps=eps)

    def moments(g, state, p, dt):
        t = safe_increment(state.count)
        rho = bias_correction_factor(b1, t).astype(dt)
        bc2 = bias_correction_factor(b2, t).astype(dt)
        exp_avg = jax.tree.map(lambda m, x: _ema(b1, m, x, dt), state.exp_avg, g)
        exp_avg_sq = jax.tree.map(lambda v, x: _ema(b2, v, x * x, dt), state.exp_avg_sq, g)
        weighted = jax.tree.map(
            lambda m, v: m / (jnp.sqrt(v / bc2) + jnp.asarray(eps, dt)), exp_avg, exp_avg_sq
        )
        cast = lambda new, old: jax.tree.map(lambda x, o: x.astype(o.dtype), new, old)
        slots = [cast(exp_avg, state.exp_avg), cast(exp_avg_sq, state.exp_avg_sq)]
        return b1, rho, exp_avg, weighted, slots

    def init(params):
        _checks.real_params("momo_adam", params, "its model of the loss uses real inner products")
        moments_ = zeros_like(params), zeros_like(params)
        return MomoAdamState(*moments_, *_scalars(params, lower_bound), zero_count())

    update = _momo_update(
        fn, learning_rate, lower_bound, weight_decay, adapt_lower_bound, weight_decay_form, moments
    )
    return GradientTransformation(init, update)
