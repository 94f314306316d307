"""Padam: partially adaptive momentum, between AMSGrad (partial = 1/2) and SGD (partial = 0)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, safe_increment, zero_count
from optix.optimizers.adam import check_moment_args, moments
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    bias_correction_factor,
    compute_dtype,
    map_leaves,
    real_dtype,
    real_part,
)
from optix.tree.math import zeros_like


class ScaleByPadamState(NamedTuple):
    """State of ``scale_by_padam``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of g**2 (dtype nu_dtype)
    nu_max: Any  # param-shaped running maximum of nu with amsgrad (dtype nu_dtype), else None


def _check_partial(fn: str, partial: Any) -> None:
    _checks.in_interval(fn, "[0, 0.5]", partial=partial)


def scale_by_padam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    partial: float = 0.25,
    *,
    amsgrad: bool = True,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by Padam: momentum over a partial power of the second moment.

    For each leaf, with g the incoming update and t = count + 1:

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        nu_max = max(nu_max, nu),   v = nu_max          if amsgrad (else v = nu)
        u = sqrt(1 - b2**t) / (1 - b1**t) * mu / (sqrt(v) + eps)**(2 * partial)

    This is the official code's rule. The paper's Algorithm 1 divides mu by ``v**partial``
    with no bias corrections; the code raises (sqrt(v) + eps) to 2 * partial and keeps
    the full ``sqrt(1 - b2**t)`` correction (not its 2 * partial power), so for
    partial < 1/2 its early steps are smaller than a consistent correction would give.
    partial = 1/2 is AMSGrad (Adam with ``amsgrad=False``) with eps added to the raw
    root; partial = 0 is momentum SGD with the same step-size factor.

    Args:
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Decay of the EMA of g**2, in [0, 1).
        eps: Added to sqrt(v) before the power, >= 0.
        partial: The partially adaptive exponent p, in [0, 1/2].
        amsgrad: Use the running maximum of nu (the official default).
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu`` and ``nu_max``; ``None`` keeps the params' dtype. The
            moments are updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByPadamState``.

    References:
        Chen, Zhou, Tang, Yang, Cao & Gu, "Closing the Generalization Gap of Adaptive
        Gradient Methods in Training Deep Neural Networks", IJCAI 2020, arXiv:1806.06763,
        Algorithm 1.
        Checked against run_official_padam (the official uclaml/Padam step in NumPy) and
        torch.optim.Adam (partial = 1/2, eps = 0) in tests/optimizers/test_padam.py.
    """
    check_moment_args("scale_by_padam", b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _check_partial("scale_by_padam", partial)

    def leaf(step_size, g, mu, nu, nu_max=None):
        dt = compute_dtype(g, mu, nu)
        rdt = real_dtype(dt)
        _, mu_new, nu_new = moments(g, mu, nu, b1, b2, dt)
        v = nu_new if nu_max is None else jnp.maximum(real_part(nu_max).astype(rdt), nu_new)
        exponent = jnp.asarray(2 * partial, rdt)
        u = step_size.astype(dt) * mu_new / jnp.power(jnp.sqrt(v) + eps, exponent).astype(dt)
        new = (u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype))
        return (*new, v.astype(nu_max.dtype)) if nu_max is not None else new

    def init(params):
        return ScaleByPadamState(
            count=zero_count(),
            mu=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params, dtype=nu_dtype),
            nu_max=zeros_like(params, dtype=nu_dtype) if amsgrad else None,
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        step_size = jnp.sqrt(bias_correction_factor(b2, count)) / bias_correction_factor(b1, count)
        leaf_at_t = lambda *leaves: leaf(step_size, *leaves)
        if amsgrad:
            updates, mu, nu, nu_max = map_leaves(
                leaf_at_t, updates, state.mu, state.nu, state.nu_max, n_out=4
            )
        else:
            updates, mu, nu = map_leaves(leaf_at_t, updates, state.mu, state.nu, n_out=3)
            nu_max = None
        return updates, ScaleByPadamState(count=count, mu=mu, nu=nu, nu_max=nu_max)

    return GradientTransformation(init, update)


def padam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    partial: float = 0.25,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    amsgrad: bool = True,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Padam as the official code defines it, with coupled (L2) weight decay.

    ``chain(add_decayed_weights(weight_decay), scale_by_padam(...),
    scale_by_learning_rate(learning_rate))``: g = g + weight_decay * p before the
    moments. The official default learning rate is 0.1. Update rule and arguments: see
    ``scale_by_padam``.
    """
    check_moment_args("padam", b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _check_partial("padam", partial)
    _checks.finite("padam", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("padam", allow_schedule=True, weight_decay=weight_decay)
    return chain(
        add_decayed_weights(weight_decay),
        scale_by_padam(b1, b2, eps, partial, amsgrad=amsgrad, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
