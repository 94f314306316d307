"""D-Adaptation for Adam(W): Adam whose step size is an estimate of the distance to the
solution, learned along the way. SGD and AdaGrad forms: ``dadaptation_sgd.py``."""

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
    grown,
    real_dot,
    scalar_dtype,
    sum_in,
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


class DAdaptAdamWState(NamedTuple):
    """State of ``dadapt_adamw`` (Optax's fields, in Optax's order)."""

    exp_avg: Any  # param-shaped: EMA of dlr * g
    exp_avg_sq: Any  # param-shaped: EMA of |g|**2
    grad_sum: Any  # param-shaped: s, the EMA of dlr * g with decay sqrt(b2)
    estim_lr: jax.Array  # scalar d, the distance estimate (params' lowest dtype)
    numerator_weighted: jax.Array  # scalar: the decayed numerator of d_hat
    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates so far


def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    estim_lr0: Any = 1e-6,
    weight_decay: Any = 0.0,
    *,
    use_bias_correction: bool = True,
    decouple: bool = True,
    growth_rate: Any = None,
) -> GradientTransformation:
    """D-Adapt AdamW: learning-rate-free Adam, with a distance estimate d as step size.

    With d = estim_lr, lr the learning rate at count, t = count + 1, sb2 = sqrt(b2) and
    bc = sqrt(1 - b2**t) / (1 - b1**t) (bc = 1 without ``use_bias_correction``), each
    step, for all leaves together:

        dlr = d * lr * bc
        g = g + weight_decay * p                          (decouple=False only)
        numerator_weighted = sb2 * numerator_weighted
                             + (1 - sb2) * dlr * <g, grad_sum / (sqrt(exp_avg_sq) + eps)>
        exp_avg = b1 * exp_avg + (1 - b1) * dlr * g
        exp_avg_sq = b2 * exp_avg_sq + (1 - b2) * |g|**2
        grad_sum = sb2 * grad_sum + (1 - sb2) * dlr * g
        d_hat = numerator_weighted / ((1 - sb2) * sum(|grad_sum|))
        d = max(d, min(d_hat, d * growth_rate))           (d = max(d, d_hat) if None)
        u = -exp_avg / (sqrt(exp_avg_sq) + eps) - weight_decay * dlr * p
                                                          (the last term if decouple=True only)

    the numerator reading grad_sum and exp_avg_sq from before the step; d is kept at a
    learning rate <= 0, as in the official code. A step at which
    sum(|grad_sum|) is 0 (no gradient yet, or a zero learning rate so far) changes
    neither d nor the numerator and leaves the params where they are, as the official
    code does (which also leaves its step count; Optax's version returns NaN there).
    ``update`` needs params.

    Optax's version is the official ``dadaptation.DAdaptAdam`` with
    ``use_bias_correction=True`` and ``decouple=True``, the defaults here; the official
    defaults are ``use_bias_correction=False, decouple=False`` (an L2 term). Names of the
    official code: lr = learning_rate, d0 = estim_lr0. Its ``log_every`` prints d; here d
    is ``state.estim_lr``, to log as one likes. Its per-group ``layer_scale`` is left out.

    Args:
        learning_rate: Multiplier of the adapted step (1.0 unless training diverges),
            a finite number or a schedule (1.0-based, e.g. a warmup and a decay).
        betas: (b1, b2), the decays of Adam's moments, each in [0, 1).
        eps: Added to the root of exp_avg_sq, >= 0.
        estim_lr0: Initial estimate of d, > 0 (an under-estimate: d only grows).
        weight_decay: Weight decay factor, >= 0, or a schedule of the count (see
            ``decouple``).
        use_bias_correction: Adam's bias correction bc in dlr (Optax always uses it;
            off by default in the official code).
        decouple: AdamW-style decay ``-weight_decay * dlr * p`` (True, as Optax's), or an
            L2 term added to the gradient before everything else (False).
        growth_rate: Largest factor by which d may grow in one step, >= 1; None (the
            default) or inf for unlimited growth (the official default is inf).

    Returns:
        A GradientTransformation whose state is ``DAdaptAdamWState``.

    References:
        Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023,
        arXiv:2301.07733.
        Checked against dadaptation.DAdaptAdam (3.2) and optax.contrib.dadapt_adamw in
        tests/optimizers/test_dadaptation.py.
    """
    fn = "dadapt_adamw"
    b1, b2 = betas
    check_d(fn, learning_rate, {"estim_lr0": estim_lr0}, growth_rate, weight_decay=weight_decay)
    _checks.in_unit_interval(fn, b1=b1, b2=b2)
    _checks.non_negative(fn, eps=eps)
    flags(fn, use_bias_correction=use_bias_correction, decouple=decouple)
    sb2 = math.sqrt(b2) if isinstance(b2, int | float) else jnp.sqrt(b2)

    def init(params):
        sdt = scalar_dtype(params)
        return DAdaptAdamWState(
            zeros_like(params),
            zeros_like(params),
            zeros_like(params),
            jnp.asarray(estim_lr0, sdt),
            jnp.zeros((), sdt),
            zero_count(),
        )

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

        def moments(g, p, ea, eas, s):
            dt = compute_dtype(g, p, ea, eas, s)
            c = lambda x: jnp.asarray(x, dt)
            g_, eas_ = g.astype(dt), real_part(eas.astype(dt))
            if not decouple:
                g_ = g_ + c(wd) * p.astype(dt)
            r = lambda x: jnp.asarray(x, real_dtype(dt))
            dot = real_dot(g_, s.astype(dt) / (jnp.sqrt(eas_) + r(eps)).astype(dt))
            ea_new = c(b1) * ea.astype(dt) + c(dlr * jnp.asarray(1 - b1, cdt)) * g_
            eas_new = r(b2) * eas_ + scaled_abs_sq(r(1 - b2), g_)
            s_new = c(sb2) * s.astype(dt) + c(dlr * jnp.asarray(1 - sb2, cdt)) * g_
            l1 = jnp.sum(jnp.abs(s_new))
            cast = (ea_new.astype(ea.dtype), eas_new.astype(eas.dtype), s_new.astype(s.dtype))
            return (*cast, dot, l1)

        exp_avg, exp_avg_sq, grad_sum, dots, l1s = map_leaves(
            moments, updates, params, state.exp_avg, state.exp_avg_sq, state.grad_sum, n_out=5
        )
        one_minus_sb2 = jnp.asarray(1 - sb2, cdt)
        numerator = jnp.asarray(sb2, cdt) * state.numerator_weighted.astype(cdt)
        numerator = numerator + one_minus_sb2 * (dlr * sum_in(dots, cdt))
        l1 = sum_in(l1s, cdt)
        skip = l1 == 0
        d_hat = numerator / (one_minus_sb2 * jnp.where(skip, 1, l1))
        new_d = grown(d, d_hat, growth_rate)
        new_d = jnp.where(skip | (lr <= 0), d, new_d)
        numerator = jnp.where(skip, state.numerator_weighted.astype(cdt), numerator)

        def step(g, p, ea, eas):
            dt = compute_dtype(g, p, ea, eas)
            c = lambda x: jnp.asarray(x, dt)
            denom = jnp.sqrt(real_part(eas.astype(dt))) + jnp.asarray(eps, real_dtype(dt))
            u = -(ea.astype(dt) / denom.astype(dt))
            if decouple:
                u = u - c(jnp.asarray(wd, cdt) * dlr) * p.astype(dt)
            return (jnp.where(skip, jnp.zeros_like(u), u).astype(g.dtype),)

        (updates,) = map_leaves(step, updates, params, exp_avg, exp_avg_sq, n_out=1)
        sdt = state.estim_lr.dtype
        new_state = DAdaptAdamWState(
            exp_avg,
            exp_avg_sq,
            grad_sum,
            new_d.astype(sdt),
            numerator.astype(sdt),
            safe_increment(state.count),
        )
        return updates, new_state

    return GradientTransformation(init, update)
