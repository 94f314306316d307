"""RAdam: Adam with its adaptive step rectified until the second moment is reliable."""

from __future__ import annotations

from typing import Literal

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
from optix.optimizers.adam import ScaleByAdamState, check_moment_args, moments
from optix.optimizers.rectification import rectification
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    bias_correction_factor,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
)
from optix.tree.math import zeros_like

EpsPlacement = Literal["corrected", "raw"]
Degenerate = Literal["sgd", "skip"]


def check_radam_args(
    fn: str, threshold: float, eps_placement: EpsPlacement, degenerate: Degenerate
) -> None:
    """Range checks of the options RAdam adds to Adam's."""
    _checks.one_of(fn, "eps_placement", eps_placement, ("corrected", "raw"))
    _checks.one_of(fn, "degenerate", degenerate, ("sgd", "skip"))
    # r_t is the square root of a quantity that is negative for 2 < rho_t < 4.
    _checks.in_interval(fn, "[4, inf)", threshold=threshold)


def scale_by_radam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
    eps_placement: EpsPlacement = "corrected",
    strict_threshold: bool = False,
    degenerate: Degenerate = "sgd",
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by Rectified Adam.

    Adam's adaptive step is multiplied by a rectifier r_t that evens out the variance of
    the early second-moment estimates; while rho_t is below the threshold (that variance
    is intractable) the update is momentum SGD, or nothing.

    For each leaf, with g the incoming update, t = count + 1 and c(b, t) = 1 - b**t:

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        mu_hat = mu / c(b1, t)
        mu_hat = b1 * mu / c(b1, t + 1) + (1 - b1) * g / c(b1, t)    if nesterov
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2**t / c(b2, t)
        r_t = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
        d = sqrt(nu / c(b2, t) + eps_root) + eps                if eps_placement == "corrected"
        d = (sqrt(nu + eps_root) + eps) / sqrt(c(b2, t))        if eps_placement == "raw"
        u = r_t * mu_hat / d     if rho_t >= threshold   (rho_t > threshold if strict_threshold)
        u = mu_hat               otherwise, if degenerate == "sgd"
        u = 0                    otherwise, if degenerate == "skip"

    rho_t and r_t are computed in the default float dtype from a cancellation-free form
    of rho_t (``optix.optimizers.rectification``), so float32 runs stay within 1e-6 of
    float64 ones. rho_1 = 1 and rho_t grows by about 1 per step: with b2 = 0.999 steps
    1 to 5 are not rectified.

    The three published forms (the threshold is 5 in each):

        Optax's radam:               the defaults.
        torch.optim.RAdam:           eps_placement="raw", strict_threshold=True.
        official RAdam (Liu et al.): eps_placement="raw", degenerate="skip" (its default
                                     degenerated_to_sgd=False), or degenerate="sgd"
                                     (degenerated_to_sgd=True, then equal to torch's).

    The paper's Algorithm 2 rectifies when rho_t > 4; the codes use 5. eps on the raw
    root equals eps / sqrt(c(b2, t)) on the corrected one, so the two placements differ
    noticeably only where eps is not small against sqrt(nu) (early steps, tiny g).

    Args:
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Decay of the EMA of g**2, in [0, 1).
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added inside the square root, >= 0.
        threshold: Smallest rho_t that is rectified, >= 4 (r_t is undefined below 4).
        nesterov: Use the Nesterov look-ahead first moment (Optax's option).
        eps_placement: "corrected" adds eps to the bias-corrected root (Optax); "raw" to
            the root of the raw nu, with the correction folded into the step (torch,
            official RAdam).
        strict_threshold: Rectify only when rho_t > threshold (torch) instead of >=.
        degenerate: Update on the steps that are not rectified: "sgd" (mu_hat) or
            "skip" (zero).
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu``; ``None`` keeps the params' dtype. The moments are
            updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdamState``.

    References:
        Liu, Jiang, He, Chen, Liu, Gao & Han, "On the Variance of the Adaptive Learning
        Rate and Beyond", ICLR 2020, arXiv:1908.03265, Algorithm 2.
        Checked against optax.radam, torch.optim.RAdam and run_official_radam (the official
        LiyuanLucasLiu/RAdam step in NumPy) in tests/optimizers/test_radam.py.
    """
    check_moment_args("scale_by_radam", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    check_radam_args("scale_by_radam", threshold, eps_placement, degenerate)

    def leaf(g, mu, nu, c1, c1_next, c2, rectified, r):
        dt = compute_dtype(g, mu, nu)
        rdt = real_dtype(dt)
        g_, mu_new, nu_new = moments(g, mu, nu, b1, b2, dt)
        if nesterov:
            b1_, one_minus_b1 = ema_weights(b1, dt)
            mu_hat = b1_ * mu_new / c1_next.astype(dt) + one_minus_b1 * g_ / c1.astype(dt)
        else:
            mu_hat = mu_new / c1.astype(dt)
        if eps_placement == "corrected":
            denominator = jnp.sqrt(nu_new / c2.astype(rdt) + eps_root) + eps
            adaptive = r.astype(dt) * mu_hat / denominator.astype(dt)
        else:
            step = (r * jnp.sqrt(c2)).astype(dt)
            adaptive = step * mu_hat / (jnp.sqrt(nu_new + eps_root) + eps).astype(dt)
        fallback = mu_hat if degenerate == "sgd" else jnp.zeros_like(mu_hat)
        u = jnp.where(rectified, adaptive, fallback)
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
        rectified, r = rectification(b2, threshold, count, strict=strict_threshold)
        updates, mu, nu = map_leaves(
            lambda g, m, v: leaf(g, m, v, c1, c1_next, c2, rectified, r),
            updates,
            state.mu,
            state.nu,
            n_out=3,
        )
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def _on_moving_steps(
    weight_decay: ScalarOrSchedule, b2: float, threshold: float, strict: bool
) -> ScalarOrSchedule:
    """``weight_decay`` as a schedule that is zero on the steps RAdam skips."""

    def schedule(count):
        rate = weight_decay(count) if callable(weight_decay) else weight_decay
        rectified, _ = rectification(b2, threshold, count + 1, strict=strict)
        return jnp.where(rectified, rate, 0.0)

    return schedule


def radam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
    eps_placement: EpsPlacement = "corrected",
    strict_threshold: bool = False,
    degenerate: Degenerate = "sgd",
    weight_decay: ScalarOrSchedule | None = None,
    mask: MaskOrFn = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """RAdam: ``chain(scale_by_radam(...), scale_by_learning_rate(learning_rate))``.

    Update rule and options (``mu_dtype`` and ``nu_dtype`` too): see ``scale_by_radam``.
    With ``weight_decay`` (>= 0, or a schedule) the chain is ``scale_by_radam,
    add_decayed_weights(weight_decay, mask), scale_by_learning_rate``: decoupled decay
    ``p -= lr * (u + weight_decay * p)`` with the pre-update p, applied only on the steps
    that move the parameters, so with ``degenerate="skip"`` it is skipped while RAdam is
    (as the official code does).
    Optax's radam has no decay: its state has no slot for it, nor does this one's when
    ``weight_decay`` is None. The official RAdam(lr, betas, eps, weight_decay,
    degenerated_to_sgd=False) is ``radam(lr, *betas, eps, eps_placement="raw",
    degenerate="skip", weight_decay=weight_decay)``.
    """
    check_moment_args("radam", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    check_radam_args("radam", threshold, eps_placement, degenerate)
    _checks.finite("radam", allow_schedule=True, learning_rate=learning_rate)
    preconditioner = scale_by_radam(
        b1,
        b2,
        eps,
        eps_root,
        threshold,
        nesterov=nesterov,
        eps_placement=eps_placement,
        strict_threshold=strict_threshold,
        degenerate=degenerate,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )
    if weight_decay is None:
        return chain(preconditioner, scale_by_learning_rate(learning_rate))
    _checks.non_negative("radam", allow_schedule=True, weight_decay=weight_decay)
    if degenerate == "skip":
        weight_decay = _on_moving_steps(weight_decay, b2, threshold, strict_threshold)
    return chain(
        preconditioner,
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
