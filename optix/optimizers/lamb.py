"""LAMB: Adam directions rescaled per layer by a trust ratio."""

from __future__ import annotations

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
from optix.optimizers.adam import ScaleByAdamState, check_moment_args, moments, scale_by_adam
from optix.transforms.masking import masked
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.trust_ratio import scale_by_trust_ratio
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.math import zeros_like


def _scale_by_uncorrected_adam(b1, b2, eps, eps_root, mu_dtype, nu_dtype) -> GradientTransformation:
    """Adam's direction without bias correction: ``mu / (sqrt(nu + eps_root) + eps)``.

    The state is ``ScaleByAdamState``, so both forms of ``lamb`` have one state layout.
    """

    def leaf(g, mu, nu):
        dt = compute_dtype(g, mu, nu)
        _, mu_new, nu_new = moments(g, mu, nu, b1, b2, dt)
        u = mu_new / (jnp.sqrt(nu_new + eps_root) + eps)
        return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def init(params):
        return ScaleByAdamState(
            count=zero_count(),
            mu=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params, dtype=nu_dtype),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, mu, nu = map_leaves(leaf, updates, state.mu, state.nu, n_out=3)
        return updates, ScaleByAdamState(count=safe_increment(state.count), mu=mu, nu=nu)

    return GradientTransformation(init, update)


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    bias_correction: bool = True,
    trust_ratio_mask: MaskOrFn = None,
    max_param_norm: float | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """LAMB: the Adam direction plus decoupled weight decay, rescaled per leaf by a trust ratio.

    For each leaf, with g the incoming gradient, p the parameter, t = count + 1 and
    ||.|| the Frobenius norm of the whole leaf:

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        r = (mu / (1 - b1**t)) / (sqrt(nu / (1 - b2**t) + eps_root) + eps)
        r = mu / (sqrt(nu + eps_root) + eps)             if not bias_correction
        r = r + weight_decay * p                         where mask
        p_norm = min(||p||, max_param_norm)
        ratio = p_norm / ||r||,   1 if p_norm == 0 or ||r|| == 0     where trust_ratio_mask
        u = -learning_rate * ratio * r

    ``chain(scale_by_adam, add_decayed_weights(weight_decay, mask), scale_by_trust_ratio,
    scale_by_learning_rate)`` with the defaults: Optax's ``lamb`` and TF-Addons'
    ``LAMB`` (the paper's v5 Algorithm 2). TF-Addons also skips the trust ratio where it
    skips the decay unless told otherwise: pass ``trust_ratio_mask=mask`` for that.
    cybertronai's pytorch-lamb (the paper's v3, no bias correction, ||p|| clipped at 10)
    is ``bias_correction=False, max_param_norm=10.0``.

    Args:
        learning_rate: Step size (a negative one ascends), or a schedule of the step count.
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Decay of the EMA of g**2, in [0, 1).
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added inside the square root, >= 0.
        weight_decay: Decoupled weight decay, >= 0, or a schedule.
        mask: Where to decay: a tree of bools, a function of the params, or ``None`` (all).
        bias_correction: Divide the moments by ``1 - b**t``.
        trust_ratio_mask: Where to apply the trust ratio (as ``mask``); ``None`` for all.
        max_param_norm: Upper clip of ||p|| in the ratio, > 0; ``None`` for none.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu``; ``None`` keeps the params' dtype. The moments are
            updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is Optax's ``(ScaleByAdamState, EmptyState
        or MaskedState, ScaleByTrustRatioState or MaskedState, EmptyState)``; a schedule
        keeps its count (``WeightDecaySchedule``, ``ScaleByScheduleState``).

    References:
        You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
        Minutes", ICLR 2020, arXiv:1904.00962 (v5 Algorithm 2; v3 without correction).
        Checked against optax.lamb and NumPy transliterations of TF-Addons' LAMB and of
        cybertronai's pytorch-lamb (also pytorch_optimizer.Lamb with eps=0) in
        tests/optimizers/test_lamb.py.
    """
    check_moment_args("lamb", b1, b2, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.finite("lamb", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("lamb", allow_schedule=True, weight_decay=weight_decay)
    if max_param_norm is not None:
        _checks.positive("lamb", max_param_norm=max_param_norm)
    if bias_correction:
        moments_tx = scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nu_dtype=nu_dtype)
    else:
        moments_tx = _scale_by_uncorrected_adam(b1, b2, eps, eps_root, mu_dtype, nu_dtype)
    trust_ratio = scale_by_trust_ratio(max_param_norm=max_param_norm)
    if trust_ratio_mask is not None:
        trust_ratio = masked(trust_ratio, trust_ratio_mask)
    return chain(
        moments_tx,
        add_decayed_weights(weight_decay, mask),
        trust_ratio,
        scale_by_learning_rate(learning_rate),
    )
