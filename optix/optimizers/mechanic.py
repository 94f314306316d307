"""Mechanic: learns a global scale of a base optimizer's updates (a learning rate tuner)."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.core import GradientTransformation, safe_increment, with_extra_args_support, zero_count
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.casting import dtype as tree_dtype
from optix.tree.leafwise import compute_dtype, real_dtype
from optix.tree.math import norm, vdot
from optix.tree.structure import check_same_structure

# The official code starts the running maximum of |h| here, with s = 0.
_OFFICIAL_M0 = 1e-6


class MechanicState(NamedTuple):
    """State of ``mechanize`` (Optax's ``optax.contrib.MechanicState``)."""

    base_optimizer_state: Any
    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    r: jax.Array  # (num_betas,): the bettors' rewards
    m: jax.Array  # (num_betas,): running maxima of |h|
    v: jax.Array  # (num_betas,): discounted sums of h**2
    s: jax.Array  # (num_betas,): the scales; the update is scaled by sum(s)
    x0: Any  # the params at the first update


def mechanize(
    base_optimizer: GradientTransformation,
    weight_decay: jax.typing.ArrayLike = 1e-2,
    eps: jax.typing.ArrayLike = 1e-8,
    s_init: jax.typing.ArrayLike = 1e-6,
    num_betas: int = 6,
    *,
    variant: Literal["optax", "official"] = "optax",
) -> GradientTransformation:
    """Wrap ``base_optimizer`` so that the scale of its updates is learned (Mechanic).

    The params move to ``x0 + sum(s) * Delta``, where Delta sums the base optimizer's
    updates. With g the incoming gradients, b the base optimizer's update, x the params,
    betas[i] = 1 - 0.1**(i + 1) (i < num_betas), S = sum(s) and norms and <., .> over
    all leaves together:

        delta = (x - x0) / (S + eps)                  (Delta so far)
        q = x                                         (variant "optax")
        q = x + b                                     (variant "official")
        h = -<g + weight_decay * S * norm(g) / (norm(q) + eps) * q, delta>
        m = max(betas * m, |h| + eps)                 ("official": max(betas * m, |h|))
        v = betas**2 * v + h**2
        r = betas * r + clip(h, -m_old, m_old) * s    ("official": max(betas * r + h * s, 0))
        s = (s_init / num_betas * m + max(r, 0)) / (sqrt(v) + eps)
        x_new = x0 + sum(s) * (delta + b)
        u = x_new - x = (x - x0) * (sum(s) / (S + eps) - 1) + sum(s) * b

    x0 is the params at the first update. "optax" (the default) is Optax's code: s
    starts at s_init, m at 0. "official" is the authors' mechanic-pytorch: s starts at
    0, m at 1e-6, no clipping of h, and the decay term uses the params after the base
    step; its default s_init is 1e-8.

    Args:
        base_optimizer: The optimizer whose updates are scaled, such as ``adam(1.0)``;
            it gets the extra arguments of ``update``.
        weight_decay: Mechanic's own decay (lambda in the paper), >= 0.
        eps: Added to denominators, >= 0.
        s_init: Initial wealth scale, > 0.
        num_betas: Number of bettors, >= 1.
        variant: "optax" or "official", see above.

    Returns:
        A GradientTransformation whose state is ``MechanicState``; ``update`` needs
        params.

    References:
        Cutkosky, Defazio & Mehta, "Mechanic: A Learning Rate Tuner", NeurIPS 2023,
        arXiv:2306.00144, Algorithm 1.
        Checked against optax.contrib.mechanize and mechanic_pytorch.mechanize (the
        official package) in tests/optimizers/test_mechanic.py.
    """
    fn = "mechanize"
    _checks.non_negative(fn, weight_decay=weight_decay, eps=eps)
    _checks.positive(fn, s_init=s_init)
    _checks.integer_at_least(fn, "num_betas", num_betas, 1)
    _checks.one_of(fn, "variant", variant, ("optax", "official"))
    official = variant == "official"
    base_optimizer = with_extra_args_support(base_optimizer)
    betas = np.asarray([1 - 0.1**i for i in range(1, num_betas + 1)])

    def init(params):
        _checks.real_params("mechanize", params, "its scale is learned from real inner products")
        dt = tree_dtype(params, "lowest")
        zeros = jnp.zeros(num_betas, dt)
        m = jnp.full(num_betas, _OFFICIAL_M0, dt) if official else zeros
        s = zeros if official else jnp.full(num_betas, s_init, dt)
        base_state = base_optimizer.init(params)
        return MechanicState(base_state, zero_count(), zeros, m, zeros, s, params)

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(NO_PARAMS.format(fn=fn))
        check_same_structure(fn, updates=updates, params=params, state=state.x0)
        base_updates, base_state = base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        first = state.count == 0
        x0 = jax.tree.map(lambda p, p0: jnp.where(first, p, p0), params, state.x0)
        dt = real_dtype(compute_dtype(*jax.tree.leaves(params), state.s))
        wide = lambda tree: jax.tree.map(lambda x: x.astype(dt), tree)
        g, x, b, x0_ = wide(updates), wide(params), wide(base_updates), wide(x0)
        s_old, m_old, v_old, r_old = (y.astype(dt) for y in (state.s, state.m, state.v, state.r))
        s_sum, eps_ = jnp.sum(s_old), jnp.asarray(eps, dt)
        delta = jax.tree.map(lambda xi, x0i: (xi - x0i) / (s_sum + eps_), x, x0_)
        q = jax.tree.map(jnp.add, x, b) if official else x
        decay = jnp.asarray(weight_decay, dt) * s_sum * norm(g) / (norm(q) + eps_)
        h = -vdot(jax.tree.map(lambda gi, qi: gi + decay * qi, g, q), delta)
        betas_ = jnp.asarray(betas, dt)
        v = betas_**2 * v_old + h**2
        if official:
            m = jnp.maximum(betas_ * m_old, jnp.abs(h))
            r = jnp.maximum(betas_ * r_old + h * s_old, 0)
        else:
            m = jnp.maximum(betas_ * m_old, jnp.abs(h) + eps_)
            r = betas_ * r_old + jnp.clip(h, -m_old, m_old) * s_old
        wealth = jnp.asarray(s_init / num_betas, dt) * m + jnp.maximum(r, 0)
        s = wealth / (jnp.sqrt(v) + eps_)
        # x0 + scale * (delta + b) - x, without the cancellation of x0 + ... - x.
        scale = jnp.sum(s)
        ratio = scale / (s_sum + eps_) - 1
        new_updates = jax.tree.map(
            lambda xi, x0i, bi, orig: ((xi - x0i) * ratio + scale * bi).astype(orig.dtype),
            x,
            x0_,
            b,
            updates,
        )
        r, m, v, s = (y.astype(state.s.dtype) for y in (r, m, v, s))
        count = safe_increment(state.count)
        return new_updates, MechanicState(base_state, count, r, m, v, s, x0)

    return GradientTransformation(init, update)
