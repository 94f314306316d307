"""AdaDelta: a unit-free step from running averages of squared gradients and steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, MaskOrFn, ScalarOrSchedule, chain
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
    real_part,
    scaled_abs_sq,
)
from optix.tree.math import zeros_like


class ScaleByAdaDeltaState(NamedTuple):
    """State of ``scale_by_adadelta``."""

    e_g: Any  # param-shaped: EMA of g**2 (dtype nu_dtype)
    e_x: Any  # param-shaped: EMA of u**2, the squared steps (dtype nu_dtype)


def scale_by_adadelta(
    rho: float = 0.9, eps: float = 1e-6, *, nu_dtype: jax.typing.DTypeLike | None = None
) -> GradientTransformation:
    """Rescale updates by AdaDelta's ratio of RMS step to RMS gradient.

    For each leaf, with g the incoming update:

        e_g = rho * e_g + (1 - rho) * |g|**2
        u = sqrt(e_x + eps) / sqrt(e_g + eps) * g
        e_x = rho * e_x + (1 - rho) * |u|**2

    ``e_x`` uses the step before any learning rate, as in torch.optim.Adadelta and
    Optax. The paper's update is ``x = x - u`` (``e_g`` is its E[g^2], ``e_x`` its
    E[dx^2]).

    Args:
        rho: Decay of both moving averages, in [0, 1].
        eps: Added inside both square roots, >= 0 (also sets the size of the first steps).
        nu_dtype: Dtype of both averages of squares, ``e_g`` and ``e_x``; ``None`` keeps
            the params' dtype. They are updated in at least float32 and stored back in it.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdaDeltaState``.

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012,
        Algorithm 1.
        Checked against torch.optim.Adadelta and optax.scale_by_adadelta in
        tests/optimizers/test_adadelta.py.
    """
    _checks.in_unit_interval("scale_by_adadelta", closed_right=True, rho=rho)
    _checks.non_negative("scale_by_adadelta", eps=eps)
    _checks.floating_dtype("scale_by_adadelta", nu_dtype=nu_dtype)

    def leaf(g, e_g, e_x):
        dt = compute_dtype(g, e_g, e_x)
        rdt = real_dtype(dt)
        rho_, one_minus_rho = ema_weights(rho, rdt)
        g_ = g.astype(dt)
        e_g_new = rho_ * real_part(e_g).astype(rdt) + scaled_abs_sq(one_minus_rho, g_)
        e_x_ = real_part(e_x).astype(rdt)
        u = (jnp.sqrt(e_x_ + eps) / jnp.sqrt(e_g_new + eps)).astype(dt) * g_
        e_x_new = rho_ * e_x_ + scaled_abs_sq(one_minus_rho, u)
        return u.astype(g.dtype), e_g_new.astype(e_g.dtype), e_x_new.astype(e_x.dtype)

    def init(params):
        return ScaleByAdaDeltaState(
            e_g=zeros_like(params, dtype=nu_dtype), e_x=zeros_like(params, dtype=nu_dtype)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        updates, e_g, e_x = map_leaves(leaf, updates, state.e_g, state.e_x, n_out=3)
        return updates, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)

    return GradientTransformation(init, update)


def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = None,
    *,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """AdaDelta: ``chain(add_decayed_weights, scale_by_adadelta, scale_by_learning_rate)``.

    Update rule and ``nu_dtype``: see ``scale_by_adadelta``; ``weight_decay`` is coupled (added to g
    before the averages). ``learning_rate=None`` means 1.0, the paper's step and
    torch.optim.Adadelta's default, so the default descends. Optax keeps the same
    signature but treats ``None`` as no scaling at all, which skips the sign flip and
    makes ``optax.adadelta()`` ascend the loss; with a learning rate given the two agree.

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012.
        Checked against optax.adadelta and torch.optim.Adadelta in
        tests/optimizers/test_adadelta.py.
    """
    _checks.in_unit_interval("adadelta", closed_right=True, rho=rho)
    _checks.non_negative("adadelta", eps=eps)
    _checks.non_negative("adadelta", allow_schedule=True, weight_decay=weight_decay)
    _checks.floating_dtype("adadelta", nu_dtype=nu_dtype)
    if learning_rate is None:
        learning_rate = 1.0
    _checks.finite("adadelta", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )
