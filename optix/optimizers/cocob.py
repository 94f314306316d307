"""COCOB-Backprop: coin betting per coordinate, with no learning rate to tune."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, MaskOrFn, ScalarOrSchedule, chain
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import NO_PARAMS, add_decayed_weights
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.math import full_like, zeros_like
from optix.tree.structure import check_same_structure


class COCOBState(NamedTuple):
    """State of ``scale_by_cocob`` (Optax's ``optax.contrib.COCOBState``); all param-shaped."""

    init_particles: Any  # the params at init (w1 in the paper)
    cumulative_gradients: Any  # sum of -g so far (theta)
    scale: Any  # largest |g| so far, eps at init (L)
    subgradients: Any  # sum of |g| so far (G)
    reward: Any  # the bettor's wealth beyond its initial one (Reward)


def scale_by_cocob(
    alpha: jax.typing.ArrayLike = 100.0, eps: jax.typing.ArrayLike = 1e-8
) -> GradientTransformation:
    """Replace the updates by COCOB-Backprop's step to its next bet.

    For each coordinate, with g the incoming update, p the parameter and p0 the
    parameter at init:

        scale = max(scale, |g|)
        subgradients = subgradients + |g|
        reward = max(reward - g * (p - p0), 0)
        cumulative_gradients = cumulative_gradients - g
        w = p0 + cumulative_gradients / (scale * max(subgradients + scale, alpha * scale))
                  * (scale + reward)
        u = w - p

    so that applying u moves p to the bet w. ``scale`` starts at eps (the paper's L
    starts at 0), which keeps a coordinate whose gradients so far are all 0 at p0.
    This is Algorithm 2 of the paper with L0 = eps.

    Args:
        alpha: Bounds the first bets (the paper's alpha), > 0; 100 in the paper.
        eps: Initial ``scale``, >= 0.

    Returns:
        A GradientTransformation whose state is ``COCOBState``; ``update`` needs params.

    References:
        Orabona & Tommasi, "Training Deep Networks without Learning Rates Through Coin
        Betting", NeurIPS 2017, arXiv:1705.07795, Algorithm 2 (COCOB-Backprop).
        Checked against optax.contrib.cocob and a NumPy transliteration of Algorithm 2
        (tests/references/cocob.py) in tests/optimizers/test_cocob.py.
    """
    fn = "scale_by_cocob"
    _checks.positive(fn, alpha=alpha)
    _checks.non_negative(fn, eps=eps)

    def leaf(g, p, p0, theta, big_l, big_g, reward):
        dt = compute_dtype(g, p, theta)
        g_, p_, p0_ = g.astype(dt), p.astype(dt), p0.astype(dt)
        big_l_ = jnp.maximum(big_l.astype(dt), jnp.abs(g_))
        big_g_ = big_g.astype(dt) + jnp.abs(g_)
        reward_ = jnp.maximum(reward.astype(dt) - g_ * (p_ - p0_), 0)
        theta_ = theta.astype(dt) - g_
        bet = theta_ / (big_l_ * jnp.maximum(big_g_ + big_l_, alpha * big_l_)) * (big_l_ + reward_)
        u = (p0_ - p_) + bet
        slots = (theta, big_l, big_g, reward)
        new = (theta_, big_l_, big_g_, reward_)
        return (u.astype(g.dtype), *(x.astype(s.dtype) for x, s in zip(new, slots, strict=True)))

    def init(params):
        _checks.real_params("scale_by_cocob", params, "coin betting needs ordered rewards")
        zeros = zeros_like(params)
        return COCOBState(params, zeros, full_like(params, eps), zeros, zeros)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        check_same_structure(fn, updates=updates, params=params)
        updates, *slots = map_leaves(
            leaf,
            updates,
            params,
            state.init_particles,
            state.cumulative_gradients,
            state.scale,
            state.subgradients,
            state.reward,
            n_out=5,
        )
        return updates, COCOBState(state.init_particles, *slots)

    return GradientTransformation(init, update)


def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: jax.typing.ArrayLike = 100.0,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
) -> GradientTransformation:
    """COCOB-Backprop: ``chain(add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate, flip_sign=False), scale_by_cocob(alpha, eps))``.

    As in Optax, ``learning_rate`` multiplies the gradient before the bet (1, the
    default, is the paper's algorithm) and ``weight_decay`` adds ``weight_decay * p`` to
    it. Update rule and arguments: see ``scale_by_cocob``.
    """
    _checks.positive("cocob", alpha=alpha)
    _checks.non_negative("cocob", eps=eps)
    _checks.finite("cocob", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("cocob", allow_schedule=True, weight_decay=weight_decay)
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )
