"""Adan: adaptive Nesterov momentum, as the official sail-sg/Adan code computes it."""

from __future__ import annotations

from collections.abc import Callable
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
from optix.transforms.clipping import wide_global_norm
from optix.transforms.proximal import proximal_chain
from optix.transforms.scaling import scale_by_learning_rate
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


class ScaleByAdanState(NamedTuple):
    """State of ``scale_by_adan``, with Optax's field names (``t`` is the step count)."""

    m: Any  # param-shaped: EMA of g (dtype mu_dtype)
    v: Any  # param-shaped: EMA of the gradient differences g - g_prev (dtype mu_dtype)
    n: Any  # param-shaped: EMA of (g + b2 * (g - g_prev))**2 (dtype nu_dtype)
    g: Any  # param-shaped: the previous (clipped) gradient g_prev (the params' dtype)
    t: jax.Array  # int32 scalar: updates since the start or the last restart


def _restarted(state: ScaleByAdanState) -> ScaleByAdanState:
    return state._replace(
        m=zeros_like(state.m), v=zeros_like(state.v), n=zeros_like(state.n), t=zero_count()
    )


def restart_adan(opt_state: Any) -> Any:
    """Restart every Adan inside ``opt_state``: the official ``Adan.restart_opt()``.

    Zeroes ``m``, ``v`` and ``n`` and the step count ``t`` of each ``ScaleByAdanState``,
    so the next update is a first step again (bias corrections restart, and the
    gradient difference is zero). Works on the state of ``adan`` or of any chain
    holding ``scale_by_adan``, inside or outside ``jit``.
    """
    is_adan = lambda x: isinstance(x, ScaleByAdanState)
    if not any(map(is_adan, jax.tree.leaves(opt_state, is_leaf=is_adan))):
        raise ValueError(
            "restart_adan: the state holds no ScaleByAdanState; pass the state of adan "
            "or of a chain that contains scale_by_adan."
        )
    return jax.tree.map(lambda x: _restarted(x) if is_adan(x) else x, opt_state, is_leaf=is_adan)


def _clip_factor(updates, max_grad_norm, eps) -> jax.Array:
    """The official clipping factor ``min(max_grad_norm / (norm + eps), 1)`` (1 if 0)."""
    g_norm = wide_global_norm(updates)
    limit = jnp.asarray(max_grad_norm, g_norm.dtype)
    factor = jnp.minimum(limit / (g_norm + jnp.asarray(eps, g_norm.dtype)), 1)
    return jnp.where(limit > 0, factor, jnp.ones_like(factor))


def check_adan_args(
    fn: str, b1: Any, b2: Any, b3: Any, eps: Any, eps_root: Any, **state_dtypes: Any
) -> None:
    """The shared checks of Adan's hyperparameters and state dtypes."""
    _checks.in_unit_interval(fn, b1=b1, b2=b2, b3=b3)
    _checks.non_negative(fn, eps=eps, eps_root=eps_root)
    _checks.floating_dtype(fn, **state_dtypes)


def scale_by_adan(
    b1: float = 0.98,
    b2: float = 0.92,
    b3: float = 0.99,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    *,
    max_grad_norm: float = 0.0,
    restart_cond: Callable[[ScaleByAdanState], Any] | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by Adan's three moments, as the official code does.

    For each leaf, with g the incoming update, t = count + 1 (count = state.t),
    c(b, t) = 1 - b**t and, when ``max_grad_norm > 0``, the global clipping factor
    clip = min(max_grad_norm / (||all g|| + eps), 1) (else clip = 1):

        g = clip * g
        diff = 0 if t == 1 else g - g_prev
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * diff
        n = b3 * n + (1 - b3) * |g + b2 * diff|**2
        u = (m / c(b1, t) + b2 * v / c(b2, t)) / (sqrt(n / c(b3, t) + eps_root) + eps)
        g_prev = g

    The betas follow the official code: the paper's beta_i are ``1 - b_i`` here, so
    the paper's (1 - beta2) is ``b2``. Optax's ``scale_by_adan`` substitutes the
    code's b2 into the paper's formula and uses ``1 - b2`` (0.08) where the official
    code and the paper use ``b2`` (0.92), in ``n`` and in ``u``; the two agree on the
    first step only. optix follows the official code (Optax's numbers are obtained
    only with b2 = 0.5, where both coefficients coincide).

    With ``restart_cond``, ``restart_cond(state)`` (a boolean scalar) is evaluated at
    the start of every update; when true the state is reset first, as the official
    ``restart_opt()`` (see ``restart_adan``): e.g. ``lambda s: s.t == 1000`` restarts
    every 1000 steps (the paper describes a restart variant; the code leaves the
    condition to the user).

    Args:
        b1: Decay of the EMA of g, in [0, 1) (paper: 1 - beta1).
        b2: Decay of the EMA of the gradient differences, in [0, 1) (paper: 1 - beta2).
        b3: Decay of the EMA of the squared term, in [0, 1) (paper: 1 - beta3).
        eps: Added to the denominator outside the square root, and to the global norm
            when clipping, >= 0.
        eps_root: Added inside the square root, >= 0 (the official code has none).
        max_grad_norm: Clip the global norm of the gradients to this first, >= 0;
            0 disables clipping (the official default).
        restart_cond: A function of the state returning whether to restart, or None.
        mu_dtype: Dtype of the first-order moments ``m`` and ``v``; ``None`` keeps the
            params' dtype.
        nu_dtype: Dtype of the second moment ``n``; ``None`` keeps the params' dtype.
            The moments are updated in at least float32 and stored back in their
            dtypes. ``g_prev`` keeps the params' dtype: rounded to bf16 it would swamp
            the small differences g - g_prev.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdanState``.

    References:
        Xie, Zhou, Li, Lin & Yan, "Adan: Adaptive Nesterov Momentum Algorithm for
        Faster Optimizing Deep Models", IEEE TPAMI 2024, arXiv:2208.06677, Algorithm 1;
        official code sail-sg/Adan ``adan.py``.
        Checked against pytorch_optimizer.Adan and a transliteration of the official
        code in tests/optimizers/test_adan.py.
    """
    check_adan_args(
        "scale_by_adan", b1, b2, b3, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype
    )
    _checks.non_negative("scale_by_adan", max_grad_norm=max_grad_norm)
    if restart_cond is not None and not callable(restart_cond):
        raise TypeError(
            "scale_by_adan: restart_cond must be a function of the state or None, "
            f"got restart_cond={restart_cond!r}"
        )
    clips = not (isinstance(max_grad_norm, int | float) and max_grad_norm == 0)

    def leaf(g, m, v, n, g_prev, first, clip, c1, c2, c3):
        dt = compute_dtype(g, m, v, n, g_prev)
        rdt = real_dtype(dt)
        (b1_, one_minus_b1), (b2_, one_minus_b2) = ema_weights(b1, dt), ema_weights(b2, dt)
        b3_, one_minus_b3 = ema_weights(b3, rdt)
        g_ = g.astype(dt) * clip.astype(dt)
        diff = jnp.where(first, jnp.zeros([], dt), g_ - g_prev.astype(dt))
        m_new = b1_ * m.astype(dt) + one_minus_b1 * g_
        v_new = b2_ * v.astype(dt) + one_minus_b2 * diff
        w = g_ + b2_ * diff
        n_new = b3_ * real_part(n).astype(rdt) + scaled_abs_sq(one_minus_b3, w)
        direction = m_new / c1.astype(dt) + b2_ * v_new / c2.astype(dt)
        u = direction / (jnp.sqrt(n_new / c3.astype(rdt) + eps_root) + eps).astype(dt)
        return (
            u.astype(g.dtype),
            m_new.astype(m.dtype),
            v_new.astype(v.dtype),
            n_new.astype(n.dtype),
            g_.astype(g_prev.dtype),
        )

    def init(params):
        return ScaleByAdanState(
            m=zeros_like(params, dtype=mu_dtype),
            v=zeros_like(params, dtype=mu_dtype),
            n=zeros_like(params, dtype=nu_dtype),
            g=zeros_like(params),
            t=zero_count(),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        if restart_cond is not None:
            restart = jnp.asarray(restart_cond(state), bool)
            state = jax.tree.map(lambda a, b: jnp.where(restart, a, b), _restarted(state), state)
        first = state.t == 0
        t = safe_increment(state.t)
        c1, c2, c3 = (bias_correction_factor(b, t) for b in (b1, b2, b3))
        clip = _clip_factor(updates, max_grad_norm, eps) if clips else jnp.ones([])
        updates, m, v, n, g = map_leaves(
            lambda g, m, v, n, g_prev: leaf(g, m, v, n, g_prev, first, clip, c1, c2, c3),
            updates,
            state.m,
            state.v,
            state.n,
            state.g,
            n_out=5,
        )
        return updates, ScaleByAdanState(m=m, v=v, n=n, g=g, t=t)

    return GradientTransformation(init, update)


def adan(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.98,
    b2: float = 0.92,
    b3: float = 0.99,
    eps: float = 1e-8,
    eps_root: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    max_grad_norm: float = 0.0,
    no_prox: bool = False,
    restart_cond: Callable[[ScaleByAdanState], Any] | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Adan with the official code's weight decay, clipping and restart.

    ``chain(scale_by_adan, add_decayed_weights, scale_by_learning_rate)``, Optax's
    chain and state, with the decay taken as the official proximal step by default
    (``proximal_chain``). With u from ``scale_by_adan`` and the pre-update p, each
    step is

        p = (p - lr * u) / (1 + lr * weight_decay)     (default: proximal, official)
        p = p - lr * (u + weight_decay * p)            if no_prox (official no_prox=True)

    Optax's ``adan`` has only the ``no_prox`` form, no clipping, no restart, and the
    ``1 - b2`` coefficient explained in ``scale_by_adan``; its signature and its
    defaults are kept, so ``eps_root`` is 1e-8 here: pass ``eps_root=0.0`` for the
    official code's numbers (official ``Adan(lr, betas=(b1, b2, b3), eps,
    weight_decay, max_grad_norm, no_prox)``).

    Args:
        learning_rate: Step size, >= 0, or a schedule of the step count.
        b1: Decay of the EMA of g, in [0, 1); as in ``scale_by_adan``.
        b2: Decay of the EMA of the gradient differences, in [0, 1); as in ``scale_by_adan``.
        b3: Decay of the EMA of the squared term, in [0, 1); as in ``scale_by_adan``.
        eps: Added to the denominator outside the square root, >= 0.
        eps_root: Added inside the square root, >= 0.
        max_grad_norm: Clip the global norm of the gradients to this first; 0 disables it.
        restart_cond: A function of the state returning whether to restart, or None.
        mu_dtype: Dtype of the first-order moments; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of the second moment; ``None`` keeps the params' dtype.
        weight_decay: Decay rate, >= 0, or a schedule of the step count.
        mask: Where to apply the decay: a tree of bools or a function of the params.
        no_prox: Decoupled (AdamW-style) decay instead of the proximal one.

    References:
        Xie et al., "Adan", arXiv:2208.06677, Algorithm 1 (proximal decay).
        Checked against pytorch_optimizer.Adan and optax.adan in
        tests/optimizers/test_adan.py.
    """
    check_adan_args("adan", b1, b2, b3, eps, eps_root, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    # The decoupled decay divides by 1 + learning_rate * weight_decay: a step size >= 0.
    _checks.non_negative("adan", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("adan", allow_schedule=True, weight_decay=weight_decay)
    _checks.non_negative("adan", max_grad_norm=max_grad_norm)
    preconditioner = scale_by_adan(
        b1,
        b2,
        b3,
        eps,
        eps_root,
        max_grad_norm=max_grad_norm,
        restart_cond=restart_cond,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )
    if no_prox:
        return chain(
            preconditioner,
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        )
    return proximal_chain(preconditioner, learning_rate, weight_decay, mask)
