"""AdaBelief: Adam with the second moment of the prediction error g - mu.

Optax's ``adabelief`` and the official code's options (rectification, AMSGrad, three
kinds of weight decay) in one transform and one alias, switched by keyword arguments.
"""

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
    zero_count,
)
from optix.optimizers.adam import check_moment_args
from optix.optimizers.rectification import rectification
from optix.transforms.scaling import scale, scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    bias_correction_factor,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
    scaled_abs_sq,
)
from optix.tree.math import zeros_like

# The official code rectifies from rho_t >= 5 on.
_THRESHOLD = 5.0


class ScaleByBeliefState(NamedTuple):
    """State of ``scale_by_belief``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of (g - mu)**2, plus eps_root every step (dtype nu_dtype)


class ScaleByBeliefAmsgradState(NamedTuple):
    """State of ``scale_by_belief(amsgrad=True)``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of (g - mu)**2, plus eps_root every step (dtype nu_dtype)
    nu_max: Any  # param-shaped: running maximum of nu (dtype nu_dtype)


def scale_by_belief(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-16,
    eps_root: jax.typing.ArrayLike = 1e-16,
    *,
    nesterov: bool = False,
    rectify: bool = False,
    degenerated_to_sgd: bool = True,
    amsgrad: bool = False,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by AdaBelief: Adam's step, scaled by the belief in the gradient.

    For each leaf, with g the incoming update, t = count + 1 and c(b, t) = 1 - b**t:

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * |g - mu|**2 + eps_root    (with the new mu)
        nu_max = max(nu_max, nu), v = nu_max   if amsgrad    else   v = nu
        mu_hat = mu / c(b1, t)
        mu_hat = b1 * mu / c(b1, t + 1) + (1 - b1) * g / c(b1, t)    if nesterov
        u = mu_hat / (sqrt(v / c(b2, t)) + eps)

    eps_root is added to the stored nu at every step, as the official code adds its
    eps. With ``rectify`` (the official code's RAdam-style update, with RAdam's rho_t
    and r_t of ``optix.optimizers.rectification``):

        u = r_t * sqrt(c(b2, t)) * mu_hat / (sqrt(nu) + eps)   if rho_t >= 5
        u = mu_hat                                             else, if degenerated_to_sgd
        u = 0                                                  else

    The rectified branch puts eps on the raw sqrt(nu) and uses nu, not nu_max, even with
    ``amsgrad``: both as the official code does. Without ``rectify`` and ``amsgrad``
    this is Optax's ``scale_by_belief``; the official AdaBelief(eps=e) is eps = eps_root
    = e. The paper writes s for nu and adds eps to s in its Algorithm 2.

    Args:
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Decay of the EMA of (g - mu)**2, in [0, 1).
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added to nu at every step, >= 0 (keeps meta-gradients finite).
        nesterov: Use the Nesterov look-ahead first moment (Optax's option).
        rectify: Rectify the step as RAdam does (the official code's default).
        degenerated_to_sgd: With ``rectify``, update by mu_hat (True) or not at all
            (False) while rho_t < 5.
        amsgrad: Divide by the running maximum of nu (state ``ScaleByBeliefAmsgradState``).
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu`` (the paper's s) and ``nu_max``; ``None`` keeps the
            params' dtype. The moments are updated in at least float32 and stored back
            in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByBeliefState``, or
        ``ScaleByBeliefAmsgradState`` with ``amsgrad``.

    References:
        Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan, "AdaBelief
        Optimizer: Adapting Stepsizes by the Belief in Observed Gradients", NeurIPS
        2020, arXiv:2010.07468, Algorithm 2; official code adabelief-pytorch 0.2.1.
        Checked against optax.scale_by_belief and a NumPy transliteration of the official
        AdaBelief (run_official_adabelief) in tests/optimizers/test_adabelief.py.
    """
    check_moment_args(
        "scale_by_belief", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )

    def leaf(g, mu, nu, nu_max, c1, c1_next, c2, rectified, r):
        dt = compute_dtype(g, mu, nu) if nu_max is None else compute_dtype(g, mu, nu, nu_max)
        rdt = real_dtype(dt)
        b1_, one_minus_b1 = ema_weights(b1, dt)
        b2_, one_minus_b2 = ema_weights(b2, rdt)
        g_ = g.astype(dt)
        mu_new = b1_ * mu.astype(dt) + one_minus_b1 * g_
        error = g_ - mu_new
        nu_new = b2_ * real_part(nu).astype(rdt) + scaled_abs_sq(one_minus_b2, error) + eps_root
        v = nu_new
        if nu_max is not None:
            v = nu_max_new = jnp.maximum(real_part(nu_max).astype(rdt), nu_new)
        c1, c2 = c1.astype(dt), c2.astype(rdt)
        if nesterov:
            mu_hat = b1_ * mu_new / c1_next.astype(dt) + one_minus_b1 * g_ / c1
        else:
            mu_hat = mu_new / c1
        u = mu_hat / (jnp.sqrt(v / c2) + eps).astype(dt)
        if rectify:
            step = (r.astype(rdt) * jnp.sqrt(c2)).astype(dt)
            rectified_u = step * mu_hat / (jnp.sqrt(nu_new) + eps).astype(dt)
            fallback = mu_hat if degenerated_to_sgd else jnp.zeros_like(mu_hat)
            u = jnp.where(rectified, rectified_u, fallback)
        out = (u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype))
        return out if nu_max is None else (*out, nu_max_new.astype(nu_max.dtype))

    def init(params):
        mu, nu = zeros_like(params, dtype=mu_dtype), zeros_like(params, dtype=nu_dtype)
        if amsgrad:
            nu_max = zeros_like(params, dtype=nu_dtype)
            return ScaleByBeliefAmsgradState(zero_count(), mu, nu, nu_max)
        return ScaleByBeliefState(count=zero_count(), mu=mu, nu=nu)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        c1 = bias_correction_factor(b1, count)
        c1_next = bias_correction_factor(b1, count + 1)
        c2 = bias_correction_factor(b2, count)
        rectified, r = rectification(b2, _THRESHOLD, count) if rectify else (None, None)

        def per_leaf(g, m, v, vm=None):
            return leaf(g, m, v, vm, c1, c1_next, c2, rectified, r)

        if amsgrad:
            updates, mu, nu, nu_max = map_leaves(
                per_leaf, updates, state.mu, state.nu, state.nu_max, n_out=4
            )
            return updates, ScaleByBeliefAmsgradState(count, mu, nu, nu_max)
        updates, mu, nu = map_leaves(per_leaf, updates, state.mu, state.nu, n_out=3)
        return updates, ScaleByBeliefState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-16,
    eps_root: jax.typing.ArrayLike = 1e-16,
    *,
    nesterov: bool = False,
    weight_decay: ScalarOrSchedule | None = None,
    weight_decay_mask: MaskOrFn = None,
    rectify: bool = False,
    degenerated_to_sgd: bool = True,
    amsgrad: bool = False,
    weight_decouple: bool = True,
    fixed_decay: bool = False,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """AdaBelief: ``chain(scale_by_belief(...), scale_by_learning_rate(learning_rate))``.

    Update rule and the options ``nesterov``, ``rectify``, ``degenerated_to_sgd``,
    ``amsgrad``, ``mu_dtype`` and ``nu_dtype``: see ``scale_by_belief``. With
    ``weight_decay`` (>= 0 or a schedule, applied where ``weight_decay_mask`` says) each
    step, with the pre-update p, is

        p -= lr * (u + weight_decay * p)      weight_decouple (default; Optax's form)
        p -= lr * u + weight_decay * p        weight_decouple and fixed_decay
        g += weight_decay * p, before the moments   not weight_decouple (L2)

    The official AdaBelief(lr, betas, eps, weight_decay, amsgrad, weight_decouple,
    fixed_decay, rectify, degenerated_to_sgd) is ``adabelief(lr, *betas, eps, eps,
    weight_decay=weight_decay, ...)`` with the same keywords; note its default
    ``rectify=True``.
    """
    fn = "adabelief"
    check_moment_args(fn, b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    preconditioner = scale_by_belief(
        b1,
        b2,
        eps,
        eps_root,
        nesterov=nesterov,
        rectify=rectify,
        degenerated_to_sgd=degenerated_to_sgd,
        amsgrad=amsgrad,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )
    if weight_decay is None:
        return chain(preconditioner, scale_by_learning_rate(learning_rate))
    _checks.non_negative(fn, allow_schedule=True, weight_decay=weight_decay)
    decay = add_decayed_weights(weight_decay, weight_decay_mask)
    if not weight_decouple:
        return chain(decay, preconditioner, scale_by_learning_rate(learning_rate))
    if fixed_decay:
        return chain(
            preconditioner,
            scale_by_learning_rate(learning_rate, flip_sign=False),
            decay,
            scale(-1.0),
        )
    return chain(preconditioner, decay, scale_by_learning_rate(learning_rate))
