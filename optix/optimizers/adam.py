"""The Adam family: Adam, AdamW, NAdam (Dozat's form) and NAdamW."""

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
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    bias_correction_factor,
    check_complex_slot,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
    scaled_abs_sq,
)
from optix.tree.math import zeros_like


class ScaleByAdamState(NamedTuple):
    """State of ``scale_by_adam`` (and ``scale_by_adamax``)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of g**2 (dtype nu_dtype)


def check_moment_args(
    fn: str,
    b1: Any,
    b2: Any,
    eps: Any,
    eps_root: Any = 0.0,
    *,
    b2_interval: str = "[0, 1)",
    **state_dtypes: Any,
) -> None:
    """The shared checks of Adam-style hyperparameters and state dtypes (``mu_dtype=``...).

    b1 may be negative (negative momentum) down to -1; b2 is a second-moment decay: a
    negative one lets the average go negative, and 1 leaves nothing after bias correction
    (``b2_interval="[0, 1]"`` where nothing divides by ``1 - b2**t``).
    """
    _checks.momentum(fn, closed_right=False, b1=b1)
    _checks.in_interval(fn, b2_interval, b2=b2)
    _checks.non_negative(fn, eps=eps, eps_root=eps_root)
    _checks.floating_dtype(fn, **state_dtypes)


def moments(g, mu, nu, b1, b2, dt):
    """New first and second moments of one leaf, in dtype ``dt``.

    For complex g the second moment is real: ``nu = b2 * nu + (1 - b2) * |g|**2``, in
    ``dt``'s real dtype (a complex ``nu`` slot holds it with a zero imaginary part).
    """
    check_complex_slot(g, mu, "mu_dtype")
    rdt = real_dtype(dt)
    b1, one_minus_b1 = ema_weights(b1, dt)
    b2, one_minus_b2 = ema_weights(b2, rdt)
    g = g.astype(dt)
    mu = b1 * mu.astype(dt) + one_minus_b1 * g
    nu = b2 * real_part(nu).astype(rdt) + scaled_abs_sq(one_minus_b2, g)
    return g, mu, nu


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = False,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by Adam's bias-corrected moment estimates.

    For each leaf, with g the incoming update, t = count + 1 and c(b, t) = 1 - b**t:

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        mu_hat = mu / c(b1, t)
        mu_hat = b1 * mu / c(b1, t + 1) + (1 - b1) * g / c(b1, t)    if nesterov
        u = mu_hat / (sqrt(nu / c(b2, t) + eps_root) + eps)

    The Nesterov form is Dozat's NAdam without its momentum schedule (Optax's
    ``nadam``); ``scale_by_nadam`` has torch.optim.NAdam's schedule.

    Args:
        b1: Decay of the EMA of g, in (-1, 1) (negative momentum is allowed).
        b2: Decay of the EMA of |g|**2, in [0, 1).
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added inside the square root, >= 0 (keeps meta-gradients finite).
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nesterov: Use the Nesterov look-ahead first moment.
        nu_dtype: Dtype of ``nu``; ``None`` keeps the params' dtype. Either moment may
            be narrower or wider than the params: each step reads both into at least
            float32, updates them there and stores each back in its own dtype.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdamState``.

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
        arXiv:1412.6980, Algorithm 1. Dozat, "Incorporating Nesterov Momentum into
        Adam", ICLR 2016 workshop.
        Checked against torch.optim.Adam and optax.scale_by_adam in
        tests/optimizers/test_adam.py.
    """
    check_moment_args("scale_by_adam", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)

    def leaf(g, mu, nu, c1, c1_next, c2):
        dt = compute_dtype(g, mu, nu)
        rdt = real_dtype(dt)
        g_, mu_new, nu_new = moments(g, mu, nu, b1, b2, dt)
        if nesterov:
            b1_, one_minus_b1 = ema_weights(b1, dt)
            mu_hat = b1_ * mu_new / c1_next.astype(dt) + one_minus_b1 * g_ / c1.astype(dt)
        else:
            mu_hat = mu_new / c1.astype(dt)
        u = mu_hat / (jnp.sqrt(nu_new / c2.astype(rdt) + eps_root) + eps).astype(dt)
        return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def init(params):
        return ScaleByAdamState(
            count=zero_count(),
            mu=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params, dtype=nu_dtype),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        c1 = bias_correction_factor(b1, count)
        c1_next = bias_correction_factor(b1, count + 1)
        c2 = bias_correction_factor(b2, count)
        updates, mu, nu = map_leaves(
            lambda g, m, v: leaf(g, m, v, c1, c1_next, c2), updates, state.mu, state.nu, n_out=3
        )
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def adam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = False,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Adam: ``chain(scale_by_adam(...), scale_by_learning_rate(learning_rate))``.

    Update rule and arguments: see ``scale_by_adam``; ``learning_rate`` is a
    number >= 0 or a schedule of the step count.
    """
    check_moment_args("adam", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.finite("adam", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    nesterov: bool = False,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """AdamW: Adam with decoupled weight decay.

    ``chain(scale_by_adam, add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate)``, so each step is ``p -= lr * (u + weight_decay * p)``
    with u from ``scale_by_adam`` and the pre-update p: torch.optim.AdamW's
    arithmetic (whose default ``weight_decay`` is 1e-2, not 1e-4).

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
        arXiv:1711.05101.
        Checked against torch.optim.AdamW and optax.adamw in tests/optimizers/test_adam.py.
    """
    check_moment_args("adamw", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.finite("adamw", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("adamw", allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = True,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """NAdam as Optax defines it: ``adam(..., nesterov=True)``.

    This is Dozat's NAdam without the momentum schedule; for torch.optim.NAdam's
    numbers use ``optix.torch.nadam`` (built on ``scale_by_nadam``).
    """
    check_moment_args("nadam", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.finite("nadam", allow_schedule=True, learning_rate=learning_rate)
    return adam(
        learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype
    )


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn = None,
    *,
    nesterov: bool = True,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """NAdamW as Optax defines it: ``adamw(..., nesterov=True)``."""
    check_moment_args("nadamw", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.finite("nadamw", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("nadamw", allow_schedule=True, weight_decay=weight_decay)
    return adamw(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        weight_decay,
        mask,
        nesterov=nesterov,
        nu_dtype=nu_dtype,
    )
