"""Sophia: clipped, diagonally preconditioned momentum with a Hessian estimate every k steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    MaskOrFn,
    ScalarOrSchedule,
    chain,
    safe_increment,
    with_extra_args_support,
    zero_count,
)
from optix.second_order.hutchinson import hutchinson_estimator_diag_hessian
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import bias_correction_factor, compute_dtype, ema_weights, map_leaves
from optix.tree.math import zeros_like

# Optax's default estimator: Hutchinson's, seeded with 0 (None means the same).
HUTCHINSON = hutchinson_estimator_diag_hessian()


class SophiaState(NamedTuple):
    """State of ``scale_by_sophia`` and ``scale_by_sophia_g``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of the Hessian-diagonal estimates
    hessian_fn_state: Any  # state of hessian_diagonal_fn


def _ema(new, old, decay):
    def leaf(h, n):
        dt = compute_dtype(h, n)
        b, one_minus_b = ema_weights(decay, dt)
        return ((b * n.astype(dt) + one_minus_b * h.astype(dt)).astype(n.dtype),)

    return map_leaves(leaf, new, old, n_out=1)[0]


def _first_moment(g, mu, b1):
    def leaf(g_, m):
        dt = compute_dtype(g_, m)
        b, one_minus_b = ema_weights(b1, dt)
        return ((b * m.astype(dt) + one_minus_b * g_.astype(dt)),)

    return map_leaves(leaf, g, mu, n_out=1)[0]


def _check(fn, b1, b2, update_interval, mu_dtype):
    _checks.in_unit_interval(fn, b1=b1, b2=b2)
    _checks.integer_at_least(fn, "update_interval", update_interval, 1)
    _checks.floating_dtype(fn, mu_dtype=mu_dtype)


def hessian_ema(hessian_fn, when, grads, state, params, extra_args, b2):
    """(hessian_fn_state, nu) after ``nu = b2 * nu + (1 - b2) * h`` where ``when``,
    h = ``hessian_fn``'s estimate at ``params``; unchanged otherwise."""

    def refresh(fn_state, nu):
        h, fn_state = hessian_fn.update(grads, fn_state, params, **extra_args)
        return fn_state, _ema(h, nu, b2)

    return jax.lax.cond(when, refresh, lambda s, n: (s, n), state.hessian_fn_state, state.nu)


def scale_by_sophia(
    b1: float = 0.965,
    b2: float = 0.99,
    eps: float = 1e-8,
    gamma: float = 0.01,
    clip_threshold: float | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: GradientTransformation | None = HUTCHINSON,
    mu_dtype: jax.typing.DTypeLike | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> GradientTransformation:
    """Sophia as Optax (after Levanter) writes it, with any Hessian-diagonal estimator.

    For each leaf, with g the incoming update and t = count + 1:

        mu = b1 * mu + (1 - b1) * g
        u = (mu / (1 - b1**t)) / max(gamma * nu, eps)
        u = clip(u, -clip_threshold, clip_threshold)        (unless clip_threshold is None)
        if count % update_interval == 0:
            nu = b2 * nu + (1 - b2) * h,   h = hessian_diagonal_fn(g, params, **extra_args)

    u uses nu from before this step. The default estimator is Hutchinson's
    (``hutchinson_estimator_diag_hessian``: Sophia-H), which needs ``update(..., params,
    obj_fn=loss)``. ``scale_by_sophia_g`` is the official SophiaG rule.

    Args:
        b1: Decay of the gradient EMA, in [0, 1).
        b2: Decay of the Hessian EMA per estimate, in [0, 1).
        eps: Floor of gamma * nu, >= 0.
        gamma: Scale of the Hessian estimate, >= 0.
        clip_threshold: Bound of |u| (> 0), or None for no clipping.
        update_interval: Steps between Hessian estimates, an int >= 1.
        hessian_diagonal_fn: The estimator transformation (default Hutchinson, key 0).
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        verbose: Print the share of unclipped entries every
            ``print_win_rate_every_n_steps`` steps (needs it > 0).
        print_win_rate_every_n_steps: See ``verbose``.

    Returns:
        A GradientTransformation whose state is ``SophiaState``.

    References:
        Liu et al., "Sophia: A Scalable Stochastic Second-order Optimizer for Language
        Model Pre-training", ICLR 2024, arXiv:2305.14342.
        Checked against optax.contrib.scale_by_sophia in tests/optimizers/test_sophia.py.
    """
    fn = "scale_by_sophia"
    _check(fn, b1, b2, update_interval, mu_dtype)
    _checks.non_negative(fn, eps=eps, gamma=gamma)
    _checks.positive(fn, allow_none=True, clip_threshold=clip_threshold)
    every = print_win_rate_every_n_steps
    _checks.integer_at_least(fn, "print_win_rate_every_n_steps", every, 1 if verbose else 0)
    hessian_fn = with_extra_args_support(
        hutchinson_estimator_diag_hessian() if hessian_diagonal_fn is None else hessian_diagonal_fn
    )

    def init(params):
        _checks.real_params("scale_by_sophia", params, "its Hessian estimate is of real variables")
        return SophiaState(
            zero_count(), zeros_like(params, mu_dtype), zeros_like(params), hessian_fn.init(params)
        )

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("scale_by_sophia: update needs params (the Hessian is taken there)")
        t = safe_increment(state.count)
        mu = _first_moment(updates, state.mu, b1)
        c1 = bias_correction_factor(b1, t)

        def leaf(m, n, g):
            dt = m.dtype
            u = (m / c1.astype(dt)) / jnp.maximum(jnp.asarray(gamma, dt) * n.astype(dt), eps)
            if clip_threshold is not None:
                u = jnp.clip(u, -clip_threshold, clip_threshold)
            return (u.astype(g.dtype),)

        u = map_leaves(leaf, mu, state.nu, updates, n_out=1)[0]
        if verbose and clip_threshold is not None:  # nothing to report without clipping
            total = sum(x.size for x in jax.tree.leaves(u))
            kept = sum(jnp.sum(jnp.abs(x) < clip_threshold) for x in jax.tree.leaves(u))
            jax.lax.cond(
                t % print_win_rate_every_n_steps == 0,
                lambda: jax.debug.print("Sophia optimizer win rate: {}", kept / total),
                lambda: None,
            )
        when = state.count % update_interval == 0
        fn_state, nu = hessian_ema(hessian_fn, when, updates, state, params, extra_args, b2)
        mu = jax.tree.map(lambda m, old: m.astype(old.dtype), mu, state.mu)
        return u, SophiaState(t, mu, nu, fn_state)

    return GradientTransformation(init, update)


def sophia(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.965,
    b2: float = 0.99,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    weight_decay_mask: MaskOrFn = None,
    gamma: float = 0.01,
    clip_threshold: float | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: GradientTransformation | None = HUTCHINSON,
    mu_dtype: jax.typing.DTypeLike | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> GradientTransformation:
    """Optax's Sophia: ``scale_by_sophia``, decoupled weight decay, learning rate.

    ``chain(scale_by_sophia(...), add_decayed_weights(weight_decay, weight_decay_mask),
    scale_by_learning_rate(learning_rate))``. With the default estimator, call
    ``update(grads, state, params, obj_fn=loss)``. ``sophia_g`` is the official SophiaG.
    Update rule and arguments: see ``scale_by_sophia``.
    """
    _checks.finite("sophia", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("sophia", allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_sophia(
            b1,
            b2,
            eps,
            gamma,
            clip_threshold,
            update_interval,
            hessian_diagonal_fn,
            mu_dtype,
            verbose,
            print_win_rate_every_n_steps,
        ),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
