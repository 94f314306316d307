"""galore-torch's GaLoreAdamW: GaLore over the Hugging Face form of AdamW."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    EmptyState,
    GradientTransformation,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.optimizers.adam import ScaleByAdamState, check_moment_args, moments
from optix.optimizers.galore import ProjType, scale_by_galore
from optix.transforms.scaling import ScaleByScheduleState, scale_by_learning_rate
from optix.tree.leafwise import bias_correction_factor, compute_dtype, map_leaves
from optix.tree.math import zeros_like


def scale_by_galore_adam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6, correct_bias: bool = True
) -> GradientTransformation:
    """The Adam step of galore-torch's AdamW (Hugging Face's form), without learning rate.

    For each leaf, with g the incoming update and t = count + 1:

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        u = mu / (sqrt(nu) + eps) * sqrt(1 - b2**t) / (1 - b1**t)     (correct_bias)
        u = mu / (sqrt(nu) + eps)                                       (otherwise)

    eps is added before the bias correction, unlike ``scale_by_adam``. Args as in
    ``galore_adamw``; state ``ScaleByAdamState``.

    References:
        Checked against a NumPy transliteration of galore-torch's AdamW
        (tests/references/galore_reference.py) in tests/optimizers/test_galore.py.
    """
    check_moment_args("scale_by_galore_adam", b1, b2, eps)

    def init(params):
        return ScaleByAdamState(zero_count(), zeros_like(params), zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        t = safe_increment(state.count)
        factor = jnp.sqrt(bias_correction_factor(b2, t)) / bias_correction_factor(b1, t)

        def leaf(g, mu, nu):
            dt = compute_dtype(g, mu)
            _, mu_new, nu_new = moments(g, mu, nu, b1, b2, dt)
            u = mu_new / (jnp.sqrt(nu_new) + jnp.asarray(eps, dt))
            if correct_bias:
                u = u * factor.astype(dt)
            return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

        u, mu, nu = map_leaves(leaf, updates, state.mu, state.nu, n_out=3)
        return u, ScaleByAdamState(t, mu, nu)

    return GradientTransformation(init, update)


def _step_then_decay(learning_rate: ScalarOrSchedule, weight_decay: Any) -> GradientTransformation:
    """``p = p - lr * u``, then ``p = p - lr * weight_decay * p`` on the new p."""
    scheduled = callable(learning_rate)

    def init(params):
        _checks.real_params("scale_by_galore_adam", params, "the projection is a real SVD")
        del params
        return ScaleByScheduleState(zero_count()) if scheduled else EmptyState()

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("galore_adamw: update needs params (for the weight decay)")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate

        def leaf(u, p):
            dt = compute_dtype(u, p)
            lr_ = jnp.asarray(lr, dt)
            step = -lr_ * u.astype(dt)
            return (step - lr_ * jnp.asarray(weight_decay, dt) * (p.astype(dt) + step)).astype(
                u.dtype
            )

        new_state = ScaleByScheduleState(safe_increment(state.count)) if scheduled else state
        return jax.tree.map(leaf, updates, params), new_state

    return GradientTransformation(init, update)


def galore_adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    correct_bias: bool = True,
    weight_dimension_numbers: Any = None,
    *,
    proj_type: ProjType = "std",
) -> GradientTransformation:
    """galore-torch's ``GaLoreAdamW``: GaLore (its "std" side by default) over HF AdamW.

    ``chain(scale_by_galore(rank, update_proj_gap, scale, scale_by_galore_adam(b1, b2,
    eps, correct_bias), proj_type=proj_type), lr step, decay)``. Per step, with u from
    ``scale_by_galore`` (see there and ``scale_by_galore_adam``):

        p = p - learning_rate * u
        p = p - learning_rate * weight_decay * p     (on the new p, if weight_decay > 0)

    This differs from ``galore(..., weight_decay=wd)`` (Optax's form: decoupled decay of
    the old p, Optax's Adam with eps after the bias correction, the "reverse_std" side).
    Leaves that are not projected take the same AdamW step, as galore-torch's
    non-GaLore parameter groups do.

    Args:
        learning_rate: Step size (a number or a schedule).
        rank: Projection rank, an int >= 1.
        update_proj_gap: Steps between SVDs, an int >= 1.
        scale: Factor on the projected-back updates (0.25 in galore-torch's examples).
        b1: First-moment decay, in (-1, 1).
        b2: Second-moment decay, in [0, 1).
        eps: Added to sqrt(nu), >= 0.
        weight_decay: Decay applied after the step, >= 0.
        correct_bias: Bias-correct the step size (Hugging Face's ``correct_bias``).
        weight_dimension_numbers: As in ``scale_by_galore``.
        proj_type: As in ``scale_by_galore``; "std" is galore-torch's default.

    References:
        Zhao et al., arXiv:2403.03507; official code jiaweizzhao/GaLore
        (galore_torch/adamw.py, galore_torch/galore_projector.py).
        Checked against a NumPy transliteration of galore-torch
        (tests/references/galore_reference.py) in tests/optimizers/test_galore.py.
    """
    fn = "galore_adamw"
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative(fn, weight_decay=weight_decay)
    check_moment_args(fn, b1, b2, eps)
    _checks.integer_at_least(fn, "rank", rank, 1)
    _checks.integer_at_least(fn, "update_proj_gap", update_proj_gap, 1)
    _checks.finite(fn, scale=scale)
    inner = scale_by_galore_adam(b1, b2, eps, correct_bias)
    galore_step = scale_by_galore(
        rank, update_proj_gap, scale, inner, weight_dimension_numbers, proj_type=proj_type
    )
    if isinstance(weight_decay, int | float) and weight_decay == 0:
        return chain(galore_step, scale_by_learning_rate(learning_rate))
    return chain(galore_step, _step_then_decay(learning_rate, weight_decay))
