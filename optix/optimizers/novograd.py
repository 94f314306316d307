"""NovoGrad: momentum on updates normalised by a per-layer second moment."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, safe_increment, zero_count
from optix.transforms.scaling import scale_by_learning_rate
from optix.tree.leafwise import (
    abs_sq,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
)
from optix.tree.math import zeros_like
from optix.tree.shards import leaf_total


class ScaleByNovogradState(NamedTuple):
    """State of ``scale_by_novograd``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: momentum of the normalised updates (dtype mu_dtype)
    nu: Any  # one scalar per leaf: EMA of the leaf's squared norm ||g||**2 (dtype nu_dtype)


def scale_by_novograd(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.25,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by NovoGrad: layer-wise normalised gradients with momentum.

    For each leaf (a "layer"), with g the incoming update and p the parameter:

        nu = ||g||**2                                   on the first update
        nu = b2 * nu + (1 - b2) * ||g||**2              afterwards
        mu = b1 * mu + g / (sqrt(nu + eps_root) + eps) + weight_decay * p
        u = mu

    mu starts at zero, so the first update is the normalised gradient plus the decay.
    Unlike Adam's, the first moment adds the new term without a (1 - b1) factor (the
    paper's form) and nothing is bias-corrected. The weight decay is coupled to the
    normalised gradient, inside the momentum. ``nu`` holds one number per leaf.

    Args:
        b1: Momentum coefficient, in (-1, 1].
        b2: Decay of the EMA of the squared norm, in [0, 1] (1 keeps the first norm).
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added inside the square root, >= 0.
        weight_decay: Decay rate >= 0, or a schedule of the step count.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of the per-leaf ``nu``; ``None`` keeps the params' dtype. The
            moments are updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByNovogradState``; ``update``
        needs params when ``weight_decay`` is not a literal 0.

    References:
        Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments
        for Training of Deep Networks", arXiv:1905.11286, 2019, Algorithm 1.
        Checked against optax.scale_by_novograd and pytorch_optimizer.NovoGrad in
        tests/optimizers/test_novograd.py.
    """
    _checks.momentum("scale_by_novograd", b1=b1)
    _checks.in_unit_interval("scale_by_novograd", closed_right=True, b2=b2)
    _checks.non_negative("scale_by_novograd", eps=eps, eps_root=eps_root)
    _checks.non_negative("scale_by_novograd", allow_schedule=True, weight_decay=weight_decay)
    _checks.floating_dtype("scale_by_novograd", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    no_decay = isinstance(weight_decay, int | float) and weight_decay == 0

    def leaf(g, p, mu, nu, first, rate):
        dt = compute_dtype(g, mu, nu) if p is None else compute_dtype(g, p, mu, nu)
        rdt = real_dtype(dt)
        b1_ = jnp.asarray(b1, dt)
        b2_, one_minus_b2 = ema_weights(b2, rdt)
        g_ = g.astype(dt)
        norm2 = leaf_total(jnp.sum(abs_sq(g_)))  # the whole leaf's, also under shard_map
        nu_new = jnp.where(first, norm2, b2_ * real_part(nu).astype(rdt) + one_minus_b2 * norm2)
        normalised = g_ / (jnp.sqrt(nu_new + eps_root) + eps).astype(dt)
        if p is not None:
            normalised = normalised + rate.astype(dt) * p.astype(dt)
        mu_new = b1_ * mu.astype(dt) + normalised
        return mu_new.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def init(params):
        nu = jax.tree.map(
            lambda p: jnp.zeros([], p.dtype if nu_dtype is None else nu_dtype), params
        )
        return ScaleByNovogradState(
            count=zero_count(), mu=zeros_like(params, dtype=mu_dtype), nu=nu
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if no_decay:
            params = jax.tree.map(lambda _: None, updates)
        elif params is None:
            raise ValueError(
                "scale_by_novograd with weight_decay needs the current params: call "
                "update(updates, state, params), e.g. tx.update(grads, opt_state, params)."
            )
        first = state.count == 0
        rate = weight_decay(state.count) if callable(weight_decay) else weight_decay
        rate = jnp.asarray(rate, jnp.result_type(float))
        updates, mu, nu = map_leaves(
            lambda g, p, m, v: leaf(g, p, m, v, first, rate),
            updates,
            params,
            state.mu,
            state.nu,
            n_out=3,
        )
        count = safe_increment(state.count)
        return updates, ScaleByNovogradState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def novograd(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.25,
    eps: jax.typing.ArrayLike = 1e-6,
    eps_root: jax.typing.ArrayLike = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """NovoGrad: ``chain(scale_by_novograd(...), scale_by_learning_rate(learning_rate))``.

    Update rule, ``mu_dtype`` and ``nu_dtype``: see ``scale_by_novograd``. As in Optax,
    the alias's ``eps`` default (1e-6) differs from the transform's (1e-8).
    """
    _checks.momentum("novograd", b1=b1)
    _checks.in_unit_interval("novograd", closed_right=True, b2=b2)
    _checks.finite("novograd", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("novograd", eps=eps, eps_root=eps_root)
    _checks.non_negative("novograd", allow_schedule=True, weight_decay=weight_decay)
    _checks.floating_dtype("novograd", mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    return chain(
        scale_by_novograd(b1, b2, eps, eps_root, weight_decay, mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
