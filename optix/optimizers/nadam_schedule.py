"""NAdam with Dozat's momentum schedule, as torch.optim.NAdam computes it."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, safe_increment, zero_count
from optix.optimizers.adam import check_moment_args, moments
from optix.tree.leafwise import bias_correction_factor, compute_dtype, map_leaves, real_dtype
from optix.tree.math import zeros_like


class ScaleByNadamState(NamedTuple):
    """State of ``scale_by_nadam``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of g**2 (dtype nu_dtype)
    mu_product: jax.Array  # scalar (default float dtype): product of mu_t so far


def momentum_at(b1: float, momentum_decay: float, t: jax.Array) -> jax.Array:
    """Dozat's scheduled momentum ``mu_t = b1 * (1 - 0.5 * 0.96**(t * momentum_decay))``."""
    t = jnp.asarray(t, jnp.result_type(float))
    return b1 * (1.0 - 0.5 * jnp.power(0.96, t * momentum_decay))


def scale_by_nadam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    momentum_decay: float = 4e-3,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by NAdam with the momentum schedule of torch.optim.NAdam.

    For each leaf, with g the incoming update and t = count + 1:

        mu_t = b1 * (1 - 0.5 * 0.96**(t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96**((t + 1) * momentum_decay))
        mu_product = mu_product * mu_t                       (starts at 1)
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        d = sqrt(nu / (1 - b2**t)) + eps
        u = (1 - mu_t) / (1 - mu_product) * g / d
            + mu_next / (1 - mu_product * mu_next) * mu / d

    The moving average uses the constant b1; only the mixing weights follow the
    schedule. With ``momentum_decay=inf``, mu_t = b1 for every t and this is
    ``scale_by_adam(nesterov=True)``, Optax's ``nadam``.

    Args:
        b1: Decay of the EMA of g and base momentum, in [0, 1).
        b2: Decay of the EMA of g**2, in [0, 1).
        eps: Added to the denominator outside the square root, >= 0.
        momentum_decay: Speed of the momentum schedule (psi in torch), > 0; inf allowed.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu``; ``None`` keeps the params' dtype. The moments are
            updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByNadamState``.

    References:
        Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
        Checked against torch.optim.NAdam in tests/torch/test_optim.py.
    """
    check_moment_args("scale_by_nadam", b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.positive("scale_by_nadam", momentum_decay=momentum_decay)

    def leaf(g, mu, nu, c2, weight_g, weight_mu):
        dt = compute_dtype(g, mu, nu)
        g_, mu_new, nu_new = moments(g, mu, nu, b1, b2, dt)
        d = (jnp.sqrt(nu_new / c2.astype(real_dtype(dt))) + eps).astype(dt)
        u = weight_g.astype(dt) * g_ / d + weight_mu.astype(dt) * mu_new / d
        return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def init(params):
        return ScaleByNadamState(
            count=zero_count(),
            mu=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params, dtype=nu_dtype),
            mu_product=jnp.ones([], jnp.result_type(float)),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        mu_t = momentum_at(b1, momentum_decay, count)
        mu_next = momentum_at(b1, momentum_decay, count + 1)
        mu_product = state.mu_product * mu_t
        weight_g = (1.0 - mu_t) / (1.0 - mu_product)
        weight_mu = mu_next / (1.0 - mu_product * mu_next)
        c2 = bias_correction_factor(b2, count)
        updates, mu, nu = map_leaves(
            lambda g, m, v: leaf(g, m, v, c2, weight_g, weight_mu),
            updates,
            state.mu,
            state.nu,
            n_out=3,
        )
        return updates, ScaleByNadamState(count=count, mu=mu, nu=nu, mu_product=mu_product)

    return GradientTransformation(init, update)
