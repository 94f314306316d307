"""D-Adapt SGD: dual averaging whose step size is an estimate of the distance to the
solution. The Adam form (Optax's ``dadapt_adamw``): ``dadaptation.py``; AdaGrad's:
``dadaptation_adagrad.py``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

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
    real_dot,
    sum_in,
)
from optix.transforms.scaling import scale
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import abs_sq, compute_dtype, map_leaves
from optix.tree.math import zeros_like
from optix.tree.structure import check_same_structure


class ScaleByDAdaptSGDState(NamedTuple):
    """State of ``scale_by_dadapt_sgd``."""

    grad_sum: Any  # param-shaped: s, the sum of dlr * g
    params0: Any  # the params at init
    estim_lr: jax.Array  # scalar d, the distance estimate
    numerator_weighted: jax.Array  # scalar: sum of dlr * <g, s>
    grad0_norm: jax.Array  # scalar: norm of the first gradient (0 until one arrives)
    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates so far


def scale_by_dadapt_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    momentum: Any = 0.0,
    weight_decay: Any = 0.0,
    d0: Any = 1e-6,
    growth_rate: Any = None,
) -> GradientTransformation:
    """D-Adapt SGD as a direction: the result is subtracted from the params (``dadapt_sgd``
    negates it).

    With d = estim_lr, lr the learning rate at count and ck = 1 - momentum, each step,
    for all leaves together:

        g = g + weight_decay * p
        grad0_norm = norm(g without the decay term)      (at the first step only)
        dlr = d * lr / grad0_norm
        numerator_weighted = numerator_weighted + dlr * <g, grad_sum>
        grad_sum = grad_sum + dlr * g
        d_hat = 2 * numerator_weighted / norm(grad_sum)
        d = max(d, min(d_hat, d * growth_rate))          (d = max(d, d_hat) if None)
        z = params0 - grad_sum
        u = p - ((1 - ck) * p + ck * z)                  (the new params are p - u)

    the numerator reading grad_sum from before the step; d is kept at a learning rate
    <= 0, as in the official code. A step at which grad_sum is 0 (no gradient yet, or a
    zero learning rate so far) gives u = 0 and keeps d, the numerator and grad0_norm,
    which is then taken at the next step (the official code divides by a zero norm).

    Args:
        learning_rate: Multiplier of the adapted step (1.0 unless training diverges),
            a finite number or a schedule.
        momentum: In [0, 1): the params are the running average (weight 1 - momentum on
            the new point) of the dual-averaging points z.
        weight_decay: L2 factor added to the gradient, >= 0, or a schedule of the count.
        d0: Initial estimate of d, > 0 (an under-estimate: d only grows).
        growth_rate: Largest factor by which d may grow in one step, >= 1; None (the
            default) or inf for unlimited growth (the official default is inf).

    Returns:
        A GradientTransformation whose state is ``ScaleByDAdaptSGDState``; ``update``
        needs params.

    References:
        Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023,
        arXiv:2301.07733 (Algorithm 1; the momentum is the official code's).
        Checked against dadaptation.DAdaptSGD (3.2) in tests/optimizers/test_dadaptation.py.
    """
    fn = "scale_by_dadapt_sgd"
    check_dual(fn, learning_rate, momentum, weight_decay, d0, growth_rate)

    def init(params):
        sdt = dual_dtype(params)
        scalars = jnp.asarray(d0, sdt), jnp.zeros((), sdt), jnp.zeros((), sdt)
        return ScaleByDAdaptSGDState(zeros_like(params), params, *scalars, zero_count())

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        check_same_structure(fn, updates=updates, params=params)
        sdt = state.estim_lr.dtype
        d = state.estim_lr
        grad0_sq = sum_in(jax.tree.map(lambda g: jnp.sum(abs_sq(g)), updates), sdt)
        grad0_norm = jnp.where(state.grad0_norm > 0, state.grad0_norm, jnp.sqrt(grad0_sq))
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        wd = weight_decay(state.count) if callable(weight_decay) else weight_decay
        lr = jnp.asarray(lr, sdt)
        dlr = d * lr / jnp.where(grad0_norm > 0, grad0_norm, jnp.inf)

        def dual(g, p, s):
            dt = compute_dtype(g, p, s)
            g_ = g.astype(dt) + jnp.asarray(wd, dt) * p.astype(dt)
            dot = real_dot(g_, s.astype(dt))
            s_new = s.astype(dt) + jnp.asarray(dlr, dt) * g_
            return s_new.astype(s.dtype), dot, jnp.sum(abs_sq(s_new))

        grad_sum, dots, squares = map_leaves(dual, updates, params, state.grad_sum, n_out=3)
        numerator = state.numerator_weighted + dlr * sum_in(dots, sdt)
        sum_sq = sum_in(squares, sdt)
        skip = sum_sq == 0
        d_hat = 2 * numerator / jnp.sqrt(jnp.where(skip, 1, sum_sq))
        new_d = grown(d, d_hat, growth_rate)
        new_d = jnp.where(lr > 0, new_d, d)

        def step(g, p, s, p0):
            dt = compute_dtype(g, p, s, p0)
            p_ = p.astype(dt)
            u = -averaged_step(p_, p0.astype(dt) - s.astype(dt), momentum, dt)
            return (jnp.where(skip, jnp.zeros_like(u), u).astype(g.dtype),)

        (updates,) = map_leaves(step, updates, params, grad_sum, state.params0, n_out=1)
        keep = lambda old, new: jnp.where(skip, old, new)
        new_state = ScaleByDAdaptSGDState(
            grad_sum,
            state.params0,
            keep(d, new_d),
            keep(state.numerator_weighted, numerator),
            keep(state.grad0_norm, grad0_norm),
            safe_increment(state.count),
        )
        return updates, new_state

    return GradientTransformation(init, update)


def dadapt_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    momentum: Any = 0.0,
    weight_decay: Any = 0.0,
    d0: Any = 1e-6,
    growth_rate: Any = None,
) -> GradientTransformation:
    """D-Adapt SGD: ``chain(scale_by_dadapt_sgd(...), scale(-1.0))``.

    Arguments and defaults are those of the official ``dadaptation.DAdaptSGD`` (lr =
    learning_rate); update rule and arguments: see ``scale_by_dadapt_sgd``. Its
    ``log_every`` prints d; here d is ``state[0].estim_lr``, to log as one likes.
    """
    check_dual("dadapt_sgd", learning_rate, momentum, weight_decay, d0, growth_rate)
    return chain(
        scale_by_dadapt_sgd(learning_rate, momentum, weight_decay, d0, growth_rate), scale(-1.0)
    )
