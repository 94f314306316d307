"""D-Adapt AdaGrad: AdaGrad-scaled dual averaging whose step size is an estimate of the
distance to the solution (see ``dadaptation_sgd.py`` for the SGD form)."""

from __future__ import annotations

from typing import Any, NamedTuple

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
from optix.optimizers.dadaptation_common import (
    averaged_step,
    check_dual,
    dual_dtype,
    grown,
    sum_in,
)
from optix.transforms.scaling import scale
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import abs_sq, compute_dtype, map_leaves, real_dtype, real_part
from optix.tree.math import full_like, zeros_like
from optix.tree.structure import check_same_structure


class ScaleByDAdaptAdaGradState(NamedTuple):
    """State of ``scale_by_dadapt_adagrad``."""

    sum_of_squares: Any  # param-shaped: 1e-6 + sum of |g|**2 (the official start value)
    grad_sum: Any  # param-shaped: s, the sum of dlr * g
    params0: Any  # the params at init
    estim_lr: jax.Array  # scalar d, the distance estimate
    grad_sq_weighted: Any  # scalar: sum of dlr**2 * sum(|g|**2 / denom)
    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates so far


def scale_by_dadapt_adagrad(
    learning_rate: ScalarOrSchedule = 1.0,
    momentum: Any = 0.0,
    weight_decay: Any = 0.0,
    eps: Any = 1e-6,
    d0: Any = 1e-6,
    growth_rate: Any = None,
) -> GradientTransformation:
    """D-Adapt AdaGrad as a direction: the result is subtracted from the params
    (``dadapt_adagrad`` negates it).

    With d = estim_lr, lr the learning rate at count and ck = 1 - momentum, each step,
    for all leaves together:

        dlr = d * lr
        g = g + weight_decay * p
        sum_of_squares = sum_of_squares + |g|**2         (starts at 1e-6)
        denom = sqrt(sum_of_squares) + eps
        grad_sum = grad_sum + dlr * g
        grad_sq_weighted = grad_sq_weighted + dlr**2 * sum(|g|**2 / denom)
        d_hat = (sum(|grad_sum|**2 / denom) - grad_sq_weighted) / sum(|grad_sum|)
        d = max(d, min(d_hat, d * growth_rate))          (d = max(d, d_hat) if None)
        z = params0 - grad_sum / denom
        u = p - ((1 - ck) * p + ck * z)                  (the new params are p - u)

    d is kept at a learning rate <= 0. A step at which grad_sum is 0 (no gradient yet,
    or a zero learning rate so far) changes neither d nor grad_sq_weighted and gives
    u = 0. Both as in the official code.
    The official code's sparse-gradient path (sqrt(sum_of_squares + eps)) is not
    reproduced: gradients are dense here.

    Args:
        learning_rate: Multiplier of the adapted step (1.0 unless training diverges),
            a finite number or a schedule.
        momentum: In [0, 1): the params are the running average (weight 1 - momentum on
            the new point) of the dual-averaging points z.
        weight_decay: L2 factor added to the gradient, >= 0, or a schedule of the count.
        eps: Added to the root of sum_of_squares, >= 0.
        d0: Initial estimate of d, > 0 (an under-estimate: d only grows).
        growth_rate: Largest factor by which d may grow in one step, >= 1; None (the
            default) or inf for unlimited growth (the official default is inf).

    Returns:
        A GradientTransformation whose state is ``ScaleByDAdaptAdaGradState``;
        ``update`` needs params.

    References:
        Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023,
        arXiv:2301.07733 (Algorithm 2; the momentum is the official code's).
        Checked against dadaptation.DAdaptAdaGrad (3.2) in
        tests/optimizers/test_dadaptation.py.
    """
    fn = "scale_by_dadapt_adagrad"
    check_dual(fn, learning_rate, momentum, weight_decay, d0, growth_rate)
    _checks.non_negative(fn, eps=eps)

    def init(params):
        sdt = dual_dtype(params)
        return ScaleByDAdaptAdaGradState(
            full_like(params, 1e-6),
            zeros_like(params),
            params,
            jnp.asarray(d0, sdt),
            jnp.zeros((), sdt),
            zero_count(),
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        check_same_structure(fn, updates=updates, params=params)
        sdt = state.estim_lr.dtype
        d = state.estim_lr
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        wd = weight_decay(state.count) if callable(weight_decay) else weight_decay
        lr = jnp.asarray(lr, sdt)
        dlr = d * lr

        def dual(g, p, alpha, s, p0):
            dt = compute_dtype(g, p, alpha, s)
            c = lambda x: jnp.asarray(x, dt)
            g_ = g.astype(dt) + c(wd) * p.astype(dt)
            alpha_new = real_part(alpha.astype(dt)) + abs_sq(g_)
            denom = jnp.sqrt(alpha_new) + jnp.asarray(eps, real_dtype(dt))
            s_new = s.astype(dt) + c(dlr) * g_
            grad_sq = jnp.sum(abs_sq(g_) / denom)
            s_sq = jnp.sum(abs_sq(s_new) / denom)
            l1 = jnp.sum(jnp.abs(s_new))
            u = -averaged_step(p.astype(dt), p0.astype(dt) - s_new / denom.astype(dt), momentum, dt)
            return (
                u.astype(g.dtype),
                alpha_new.astype(alpha.dtype),
                s_new.astype(s.dtype),
                grad_sq,
                s_sq,
                l1,
            )

        updates, alpha, grad_sum, grad_sq, s_sq, l1s = map_leaves(
            dual, updates, params, state.sum_of_squares, state.grad_sum, state.params0, n_out=6
        )
        l1 = sum_in(l1s, sdt)
        skip = l1 == 0
        grad_sq_weighted = state.grad_sq_weighted + dlr * dlr * sum_in(grad_sq, sdt)
        d_hat = (sum_in(s_sq, sdt) - grad_sq_weighted) / jnp.where(skip, 1, l1)
        new_d = grown(d, d_hat, growth_rate)
        updates = jax.tree.map(lambda u: jnp.where(skip, jnp.zeros_like(u), u), updates)
        new_state = ScaleByDAdaptAdaGradState(
            alpha,
            grad_sum,
            state.params0,
            jnp.where(skip | (lr <= 0), d, new_d),
            jnp.where(skip, state.grad_sq_weighted, grad_sq_weighted),
            safe_increment(state.count),
        )
        return updates, new_state

    return GradientTransformation(init, update)


def dadapt_adagrad(
    learning_rate: ScalarOrSchedule = 1.0,
    momentum: Any = 0.0,
    weight_decay: Any = 0.0,
    eps: Any = 1e-6,
    d0: Any = 1e-6,
    growth_rate: Any = None,
) -> GradientTransformation:
    """D-Adapt AdaGrad: ``chain(scale_by_dadapt_adagrad(...), scale(-1.0))``.

    Arguments and defaults are those of the official ``dadaptation.DAdaptAdaGrad`` (lr =
    learning_rate; its ``log_every`` is left out: d is ``state[0].estim_lr``); update
    rule and arguments: see ``scale_by_dadapt_adagrad``. The authors recommend the Adam
    or SGD forms in most cases: d grows more slowly here.
    """
    check_dual("dadapt_adagrad", learning_rate, momentum, weight_decay, d0, growth_rate)
    _checks.non_negative("dadapt_adagrad", eps=eps)
    return chain(
        scale_by_dadapt_adagrad(learning_rate, momentum, weight_decay, eps, d0, growth_rate),
        scale(-1.0),
    )
