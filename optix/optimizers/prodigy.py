"""Prodigy: Adam whose step size is D-Adaptation's distance estimate, found faster by
weighting recent steps more."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, safe_increment, zero_count
from optix.optimizers.dadaptation_common import (
    check_d,
    flags,
    real_dot,
    scalar_dtype,
    sum_in,
    unlimited,
)
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import (
    bias_correction_factor,
    compute_dtype,
    map_leaves,
    real_dtype,
    real_part,
    scaled_abs_sq,
)
from optix.tree.math import zeros_like
from optix.tree.structure import check_same_structure


class ProdigyState(NamedTuple):
    """State of ``prodigy`` (Optax's fields, in Optax's order)."""

    exp_avg: Any  # param-shaped: EMA of d * g
    exp_avg_sq: Any  # param-shaped: EMA of |d * g|**2
    grad_sum: Any  # param-shaped (flat, every slice_p-th entry, if slice_p > 1): s
    params0: Any  # the params at init (sliced like grad_sum)
    estim_lr: jax.Array  # scalar d, the distance estimate (params' lowest dtype)
    numerator_weighted: jax.Array  # scalar: the decayed numerator of d_hat
    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates so far


class ProdigyGrowthState(NamedTuple):
    """State of ``prodigy`` with a finite ``growth_rate``: ``ProdigyState``'s fields and
    the largest estimate so far, which d grows towards."""

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array  # type: ignore[assignment]
    estim_lr_max: jax.Array  # scalar d_max: the largest d_hat so far, at least estim_lr0


def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[Any, Any] = (0.9, 0.999),
    beta3: Any = None,
    eps: Any = 1e-8,
    estim_lr0: Any = 1e-6,
    estim_lr_coef: Any = 1.0,
    weight_decay: Any = 0.0,
    safeguard_warmup: bool = False,
    *,
    use_bias_correction: bool = True,
    decouple: bool = True,
    growth_rate: Any = None,
    slice_p: int | None = None,
) -> GradientTransformation:
    """Prodigy: learning-rate-free Adam, with D-Adaptation's distance estimate d.

    With d = estim_lr, d0 = estim_lr0, lr the learning rate at count, t = count + 1 and
    bc = sqrt(1 - b2**t) / (1 - b1**t) (bc = 1 without ``use_bias_correction``), each
    step, for all leaves together:

        dlr = d * lr * bc
        g = g + weight_decay * p                      (decouple=False only)
        numerator_weighted = beta3 * numerator_weighted + (d / d0) * dlr * <g, params0 - p>
        exp_avg = b1 * exp_avg + (1 - b1) * d * g
        exp_avg_sq = b2 * exp_avg_sq + (1 - b2) * d**2 * |g|**2
        grad_sum = beta3 * grad_sum + (d / d0) * w * g    (w = d if safeguard_warmup, else dlr)
        d_hat = estim_lr_coef * numerator_weighted / sum(|grad_sum|)
        d = max(d, d_hat)                             (growth_rate None or inf)
        u = -dlr * exp_avg / (sqrt(exp_avg_sq) + d * eps) - weight_decay * dlr * p
                                                      (the last term if decouple=True only)

    the denominator using the new d. With a finite growth_rate, d_max = max(d_max, d_hat)
    and d = min(d_max, d * growth_rate), except that d jumps to max(d, d_hat) while it
    still equals d0 (the official rule). d is kept at a learning rate <= 0. A step at
    which sum(|grad_sum|) is 0 (no gradient yet, or a zero learning rate so far) changes
    neither d nor the numerator and leaves the params where they are, as the official
    code does (which also leaves its step count; Optax's version returns NaN there).
    With b1 = 0 the official code steps along d * g with the new d rather than along
    exp_avg = d * g with the old one; here, as in Optax, exp_avg is used.
    ``update`` needs params.

    Optax's version is the official one with ``use_bias_correction=True`` and
    ``decouple=True``, the defaults here; the official defaults are
    ``use_bias_correction=False`` (with ``decouple=True``). Names of the official
    ``prodigyopt.Prodigy``: lr = learning_rate, d0 = estim_lr0, d_coef = estim_lr_coef.

    Args:
        learning_rate: Multiplier of the adapted step (1.0 unless training diverges),
            a finite number or a schedule; the authors suggest cosine annealing or a
            linear decay from 1.0, with warmup.
        betas: (b1, b2), the decays of Adam's moments, each in [0, 1).
        beta3: Decay of the numerator and of grad_sum, in [0, 1]; None means sqrt(b2).
        eps: Added to the root of exp_avg_sq, scaled by d, >= 0.
        estim_lr0: Initial estimate d0 of d, > 0 (an under-estimate: d only grows).
        estim_lr_coef: Factor of every estimate d_hat, > 0 (the preferred knob: 0.5 or
            2.0 also work).
        weight_decay: Weight decay factor, >= 0, or a schedule of the count (see
            ``decouple``).
        safeguard_warmup: Leave the learning rate out of grad_sum's increments, which
            keeps d from growing too fast while a warmup holds lr small.
        use_bias_correction: Adam's bias correction bc in the step (Optax always uses
            it; off by default in the official code).
        decouple: AdamW-style decay ``-weight_decay * dlr * p`` (True, as Optax's), or
            an L2 term added to the gradient before everything else (False).
        growth_rate: Largest factor by which d may grow in one step, >= 1; None (the
            default) or inf for unlimited growth (the official default is inf). A
            finite one adds ``estim_lr_max`` to the state (``ProdigyGrowthState``).
        slice_p: Keep grad_sum and params0 for every slice_p-th entry of each
            (flattened) leaf only, an int >= 1 (None, the default, is 1: every entry);
            > 1 saves memory and approximates d. Under ``inject_hyperparams`` name it
            in ``static_args``.

    Returns:
        A GradientTransformation whose state is ``ProdigyState`` (Optax's), or
        ``ProdigyGrowthState`` for a finite growth_rate.

    References:
        Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
        Learner", ICML 2024, arXiv:2306.06101.
        Checked against prodigyopt.Prodigy (1.1.2) and optax.contrib.prodigy in
        tests/optimizers/test_prodigy.py.
    """
    fn = "prodigy"
    b1, b2 = betas
    check_d(fn, learning_rate, {"estim_lr0": estim_lr0}, growth_rate, weight_decay=weight_decay)
    _checks.in_unit_interval(fn, b1=b1, b2=b2)
    _checks.in_unit_interval(fn, closed_right=True, allow_none=True, beta3=beta3)
    _checks.non_negative(fn, eps=eps)
    _checks.positive(fn, estim_lr_coef=estim_lr_coef)
    if slice_p is not None:
        _checks.integer_at_least(fn, "slice_p", slice_p, 1)
    step_p = 1 if slice_p is None else slice_p
    flags(fn, safeguard_warmup=safeguard_warmup, use_bias_correction=use_bias_correction)
    flags(fn, decouple=decouple)
    if beta3 is None:
        beta3 = math.sqrt(b2) if isinstance(b2, int | float) else jnp.sqrt(b2)
    free = unlimited(growth_rate)

    def sliced(x):
        return x if step_p == 1 else jnp.reshape(x, -1)[::step_p]

    def init(params):
        sdt = scalar_dtype(params)
        d0 = jnp.asarray(estim_lr0, sdt)
        params0 = jax.tree.map(sliced, params)
        fields = (
            zeros_like(params),
            zeros_like(params),
            zeros_like(params0),
            params0,
            d0,
            jnp.zeros((), sdt),
            zero_count(),
        )
        return ProdigyState(*fields) if free else ProdigyGrowthState(*fields, d0)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        check_same_structure(fn, updates=updates, params=params)
        cdt = compute_dtype(state.estim_lr)
        d = state.estim_lr.astype(cdt)
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        wd = weight_decay(state.count) if callable(weight_decay) else weight_decay
        lr = jnp.asarray(lr, cdt)
        dlr = d * lr
        if use_bias_correction:
            t = safe_increment(state.count)
            b2_part = jnp.sqrt(bias_correction_factor(b2, t).astype(cdt))
            dlr = dlr * (b2_part / bias_correction_factor(b1, t).astype(cdt))
        ratio = d / jnp.asarray(estim_lr0, cdt)
        weight = ratio * (d if safeguard_warmup else dlr)

        def moments(g, p, ea, eas, s, p0):
            dt = compute_dtype(g, p, ea, eas, s)
            c = lambda x: jnp.asarray(x, dt)
            g_, p_ = g.astype(dt), p.astype(dt)
            if not decouple:
                g_ = g_ + c(wd) * p_
            gs = sliced(g_)
            dot = real_dot(gs, p0.astype(dt) - sliced(p_))
            d_ = c(d)
            ea_new = c(b1) * ea.astype(dt) + (d_ * c(1 - b1)) * g_
            scale = jnp.asarray(d * d, real_dtype(dt)) * jnp.asarray(1 - b2, real_dtype(dt))
            eas_ = real_part(eas.astype(dt))
            eas_new = jnp.asarray(b2, real_dtype(dt)) * eas_ + scaled_abs_sq(scale, g_)
            s_new = c(beta3) * s.astype(dt) + c(weight) * gs
            l1 = jnp.sum(jnp.abs(s_new))
            return (
                ea_new.astype(ea.dtype),
                eas_new.astype(eas.dtype),
                s_new.astype(s.dtype),
                dot,
                l1,
            )

        exp_avg, exp_avg_sq, grad_sum, dots, l1s = map_leaves(
            moments, updates, params, state.exp_avg, state.exp_avg_sq, state.grad_sum,
            state.params0, n_out=5,
        )  # fmt: skip
        b3 = jnp.asarray(beta3, cdt)
        numerator = b3 * state.numerator_weighted.astype(cdt) + ratio * dlr * sum_in(dots, cdt)
        denominator = sum_in(l1s, cdt)
        skip = denominator == 0
        keep_d = skip | (lr <= 0)
        d_hat = jnp.asarray(estim_lr_coef, cdt) * numerator / jnp.where(skip, 1, denominator)
        if free:
            new_d = jnp.where(keep_d, d, jnp.maximum(d, d_hat))
        else:
            d_max = state.estim_lr_max.astype(cdt)
            at_d0 = state.estim_lr == jnp.asarray(estim_lr0, state.estim_lr.dtype)
            jumped = jnp.where(at_d0, jnp.maximum(d, d_hat), d)
            d_max = jnp.where(keep_d, d_max, jnp.maximum(d_max, d_hat))
            new_d = jnp.minimum(d_max, jumped * jnp.asarray(growth_rate, cdt))
            new_d = jnp.where(keep_d, d, new_d)
        numerator = jnp.where(skip, state.numerator_weighted.astype(cdt), numerator)

        def step(g, p, ea, eas):
            dt = compute_dtype(g, p, ea, eas)
            c = lambda x: jnp.asarray(x, dt)
            d_eps = jnp.asarray(new_d * jnp.asarray(eps, cdt), real_dtype(dt))
            denom = jnp.sqrt(real_part(eas.astype(dt))) + d_eps
            u = -c(dlr) * (ea.astype(dt) / denom.astype(dt))
            if decouple:
                u = u - c(jnp.asarray(wd, cdt) * dlr) * p.astype(dt)
            return (jnp.where(skip, jnp.zeros_like(u), u).astype(g.dtype),)

        (updates,) = map_leaves(step, updates, params, exp_avg, exp_avg_sq, n_out=1)
        sdt = state.estim_lr.dtype
        fields = (
            exp_avg,
            exp_avg_sq,
            grad_sum,
            state.params0,
            new_d.astype(sdt),
            numerator.astype(sdt),
            safe_increment(state.count),
        )
        if free:
            return updates, ProdigyState(*fields)
        return updates, ProdigyGrowthState(*fields, d_max.astype(sdt))

    return GradientTransformation(init, update)
