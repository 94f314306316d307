"""Shampoo: Kronecker-factored AdaGrad, with Distributed Shampoo's blocking and grafting."""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

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
from optix.optimizers import kronecker as kr
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import bias_correction_factor, compute_dtype, ema_weights, map_leaves

Grafting = Literal["none", "sgd", "adagrad", "rmsprop", "adam"]


class ShampooState(NamedTuple):
    """State of ``scale_by_shampoo``.

    ``factors`` and ``inverse_roots`` hold, at each param leaf, a list over the leaf's
    blocks of a list over the block's dimensions of (d, d) matrices (dtype
    ``matrix_dtype``); a 0-d block has an empty list.
    """

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g with decay b1 (the filtered gradient)
    nu: Any  # param-shaped: the grafting method's accumulator of g**2 (unused for sgd/none)
    factors: Any  # per leaf, per block, per dimension: EMA (or sum) of contract(G, G)
    inverse_roots: Any  # per leaf, per block, per dimension: factor**(-exponent)


def _check(fn: str, a: dict[str, Any]) -> None:
    """Validate ``scale_by_shampoo``'s arguments, given as a dict of their names."""
    freq, start = a["precondition_frequency"], a["start_preconditioning_step"]
    _checks.in_unit_interval(fn, b1=a["b1"])
    _checks.in_interval(fn, "[0, 1]", b2=a["b2"])
    _checks.in_unit_interval(fn, allow_none=True, b3=a["b3"], grafting_b2=a["grafting_b2"])
    _checks.positive(fn, eps=a["eps"], grafting_eps=a["grafting_eps"])
    _checks.positive(fn, allow_none=True, inverse_exponent_override=a["inverse_exponent_override"])
    for name in ("max_preconditioner_dim", "target_order"):
        if not (isinstance(a[name], float) and math.isinf(a[name]) and a[name] > 0):
            _checks.integer_at_least(fn, name, a[name], 1)
    _checks.integer_at_least(fn, "precondition_frequency", freq, 1)
    if start is not None:
        _checks.integer_at_least(fn, "start_preconditioning_step", start, freq)
    _checks.one_of(fn, "grafting", a["grafting"], ("none", "sgd", "adagrad", "rmsprop", "adam"))
    _checks.floating_dtype(fn, matrix_dtype=a["matrix_dtype"])


def scale_by_shampoo(
    b1: float = 0.9,
    b2: float = 1.0,
    eps: float = 1e-12,
    max_preconditioner_dim: int | float = 1024,
    precondition_frequency: int = 1,
    start_preconditioning_step: int | None = None,
    *,
    b3: float | None = None,
    inverse_exponent_override: float | None = None,
    grafting: Grafting = "none",
    grafting_b2: float | None = None,
    grafting_eps: float = 1e-10,
    use_bias_correction: bool = True,
    target_order: int | float = 1,
    matrix_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Precondition updates with Shampoo's Kronecker factors, per block.

    Each leaf is reshaped by ``kronecker.shampoo_merged_shape`` and cut into blocks of at
    most ``max_preconditioner_dim`` per dimension. With t = count + 1, for each block G
    of order k, with factors F_i (one per dimension i) and w = 1 if b2 == 1 else 1 - b2:

        F_i = b2 * F_i + w * contract(G, G, all dims but i)    (no decay when b2 == 1)
        bc2 = 1 - b2**t   (1 when b2 == 1 or not use_bias_correction)
        if t == start or (t % precondition_frequency == 0 and t > start):
            P_i = inverse_root(F_i / bc2, e, eps)      e = 1 / (2 * k) unless overridden
        gbar = b3 * mu + (1 - b3) * g ;  mu = b1 * mu + (1 - b1) * g   (gbar = mu if b3 == b1)
        gbar = gbar / (1 - b3 * b1**(t - 1))                         (if use_bias_correction)
        s = G_bar x_1 P_1 x_2 ... x_k P_k                           (P_i start at identity)
        grafting "adagrad": nu += g**2;  "rmsprop": nu = gb2 * nu + (1 - gb2) * g**2;
            "adam": as rmsprop, with nu / (1 - gb2**t);   a = gbar / (sqrt(nu) + grafting_eps)
            "sgd": a = gbar
        u = a                                   if t < start and grafting != "none"
        u = s * ||a_block|| / (||s_block|| + 1e-16)       otherwise with grafting
        u = s                                   without grafting

    with ``inverse_root(A, e, eps)``: ``l, q = eigh(A + eps I)``; if min(l) < eps then
    ``l = l - min(l) + eps``; ``q diag(l**-e) q^T``. With b1 == 0 the filtered gradient
    is g itself. The paper's Shampoo is ``b1=0, b2=1, target_order=inf`` (no merging).

    Args:
        b1: Decay of the filtered gradient, in [0, 1) (``betas[0]``); 0 turns it off.
        b2: Decay of the factor matrices, in [0, 1] (``betas[1]``); 1 sums (AdaGrad).
        eps: Added to the factors' diagonal before the inverse root, > 0 (``epsilon``).
        max_preconditioner_dim: Block size per dimension (and the merging bound), an int
            >= 1 or ``math.inf`` (no blocking).
        precondition_frequency: Steps between inverse-root computations, >= 1.
        start_preconditioning_step: First step that computes inverse roots, >=
            ``precondition_frequency``; ``None`` means ``precondition_frequency``.
        b3: Weight of the old filtered gradient in this step's one, in [0, 1) or
            ``None`` for b1 (the official ``beta3``; b3 = b1**2 gives a Nesterov form).
        inverse_exponent_override: e for every dimension, > 0; ``None`` is 1 / (2 k).
        grafting: Layer-wise (here: block-wise) step size taken from "sgd", "adagrad",
            "rmsprop" or "adam"; "none" uses Shampoo's own step.
        grafting_b2: Decay of the grafting accumulator: ``None`` is 0.99 (rmsprop),
            0.999 (adam); in [0, 1).
        grafting_eps: The grafting method's epsilon, > 0.
        use_bias_correction: Divide by 1 - b2**t and 1 - b3 * b1**(t - 1).
        target_order: Merge dimensions until this many are left (1: full-matrix AdaGrad
            on small leaves), an int >= 1 or ``math.inf`` (keep the shape).
        matrix_dtype: Dtype of the factors, inverse roots and eigendecompositions;
            ``None`` is the params' dtype, at least float32. float64 needs x64 enabled.

    Returns:
        A GradientTransformation whose state is ``ShampooState``.

    References:
        Gupta, Koren, Singer, "Shampoo: Preconditioned Stochastic Tensor Optimization",
        ICML 2018, arXiv:1802.09568. Shi et al., "A Distributed Data-Parallel PyTorch
        Implementation of the Distributed Shampoo Optimizer for Training Neural Networks
        At-Scale", arXiv:2309.06497 (facebookresearch/optimizers, DistributedShampoo on
        one device, default eigendecomposition root).
        Checked against shampoo_reference (NumPy transliteration of DistributedShampoo) and
        pytorch_optimizer.Shampoo in tests/optimizers/test_shampoo.py.
    """
    _check("scale_by_shampoo", locals())
    start = (
        precondition_frequency if start_preconditioning_step is None else start_preconditioning_step
    )
    b3_ = b1 if b3 is None else b3
    gb2 = {"adagrad": 1.0, "rmsprop": 0.99, "adam": 0.999}.get(grafting, 1.0)
    gb2 = gb2 if grafting_b2 is None or grafting in ("adagrad", "sgd", "none") else grafting_b2

    def layout(shape):
        merged = kr.shampoo_merged_shape(shape, max_preconditioner_dim, target_order)
        return merged, kr.block_shapes(merged, max_preconditioner_dim)

    def mdtype(p):
        return jnp.dtype(matrix_dtype) if matrix_dtype is not None else compute_dtype(p)

    def exponent(order):
        return inverse_exponent_override or 1.0 / (2 * order)

    def init(params):
        _checks.real_params("scale_by_shampoo", params, "the factors are real matrices")

        def eyes(p):
            return [[jnp.eye(d, dtype=mdtype(p)) for d in shape] for shape in layout(p.shape)[1]]

        def zeros(p):
            return jax.tree.map(jnp.zeros_like, eyes(p))

        return ShampooState(
            count=zero_count(),
            mu=jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype), params),
            nu=jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype), params),
            factors=jax.tree.map(zeros, params),
            inverse_roots=jax.tree.map(eyes, params),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        t = safe_increment(state.count)
        compute_roots = (t == start) | ((t % precondition_frequency == 0) & (t > start))
        use_graft_method = (t < start) & (grafting != "none")
        bc2 = bias_correction_factor(b2, t) if use_bias_correction and b2 < 1 else 1.0
        gbc2 = bias_correction_factor(gb2, t) if grafting == "adam" else 1.0
        tf = jnp.asarray(t, jnp.result_type(float))
        bc1 = 1.0 - b3_ * jnp.asarray(b1, tf.dtype) ** (tf - 1) if use_bias_correction else 1.0

        def leaf(g, mu, nu, factors, roots):
            dt = compute_dtype(g, mu, nu)
            merged, shapes = layout(g.shape)
            factors, roots = kr.as_nested(factors, shapes), kr.as_nested(roots, shapes)
            mt = factors[0][0].dtype if factors and factors[0] else dt
            g_ = g.astype(dt)
            blocks = kr.split_blocks(g_.astype(mt).reshape(merged), max_preconditioner_dim)
            new_factors = []
            for block, fs in zip(blocks, factors, strict=True):
                w = jnp.asarray(1.0 if b2 == 1 else 1 - b2, mt)
                decay = (lambda f: f) if b2 == 1 else (lambda f: jnp.asarray(b2, mt) * f)
                new_factors.append(
                    tuple(decay(f) + w * kr.outer_product(block, i) for i, f in enumerate(fs))
                )

            def roots_of(fs_all):
                return tuple(
                    tuple(
                        kr.inverse_root(f / jnp.asarray(bc2, mt), exponent(len(fs)), eps)
                        for f in fs
                    )
                    for fs in fs_all
                )

            new_roots = jax.lax.cond(compute_roots, roots_of, lambda _: roots, tuple(new_factors))

            if b1 != 0:
                b1_, one_minus_b1 = ema_weights(b1, dt)
                mu_old = mu.astype(dt)
                mu_new = b1_ * mu_old + one_minus_b1 * g_
                if b3_ != b1:
                    b3w, one_minus_b3 = ema_weights(b3_, dt)
                    gbar = b3w * mu_old + one_minus_b3 * g_
                else:
                    gbar = mu_new
                gbar = gbar / jnp.asarray(bc1, dt)
            else:
                mu_new, gbar = mu.astype(dt), g_

            if grafting in ("adagrad", "rmsprop", "adam"):
                decay_g, weight_g = ema_weights(gb2, dt) if gb2 < 1 else (1.0, 1.0)
                nu_new = decay_g * nu.astype(dt) + weight_g * g_ * g_
                graft = gbar / (jnp.sqrt(nu_new / jnp.asarray(gbc2, dt)) + grafting_eps)
            else:
                nu_new, graft = nu.astype(dt), gbar

            gbar_blocks = kr.split_blocks(gbar.reshape(merged), max_preconditioner_dim)
            graft_blocks = kr.split_blocks(graft.reshape(merged), max_preconditioner_dim)
            out = []
            for gb, ab, ps in zip(gbar_blocks, graft_blocks, new_roots, strict=True):
                s = kr.mode_products(gb.astype(mt), ps).astype(dt)
                if grafting != "none":
                    scale = jnp.linalg.norm(ab) / (jnp.linalg.norm(s) + 1e-16)
                    s = jnp.where(use_graft_method, ab, s * scale)
                out.append(s)
            u = kr.join_blocks(out, merged, max_preconditioner_dim).reshape(g.shape)
            return (
                u.astype(g.dtype),
                mu_new.astype(mu.dtype),
                nu_new.astype(nu.dtype),
                [list(f) for f in new_factors],
                [list(r) for r in new_roots],
            )

        u, mu, nu, factors, roots = map_leaves(
            leaf, updates, state.mu, state.nu, state.factors, state.inverse_roots, n_out=5
        )
        return u, ShampooState(count=t, mu=mu, nu=nu, factors=factors, inverse_roots=roots)

    return GradientTransformation(init, update)


def shampoo(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: float = 0.9,
    b2: float = 1.0,
    eps: float = 1e-12,
    weight_decay: ScalarOrSchedule = 0.0,
    max_preconditioner_dim: int | float = 1024,
    precondition_frequency: int = 1,
    start_preconditioning_step: int | None = None,
    *,
    weight_decay_type: Literal["decoupled", "l2"] = "decoupled",
    mask: MaskOrFn = None,
    b3: float | None = None,
    inverse_exponent_override: float | None = None,
    grafting: Grafting = "none",
    grafting_b2: float | None = None,
    grafting_eps: float = 1e-10,
    use_bias_correction: bool = True,
    target_order: int | float = 1,
    matrix_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Distributed Shampoo on one device: ``scale_by_shampoo``, weight decay, learning rate.

    ``weight_decay_type="decoupled"`` (the official default) is
    ``chain(scale_by_shampoo, add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``: ``p -= lr * (u + weight_decay * p)``.
    ``"l2"`` adds ``weight_decay * p`` to the gradient before everything (factors,
    grafting and filtered gradient see it). Update rule and the other arguments: see
    ``scale_by_shampoo``.
    """
    _checks.finite("shampoo", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("shampoo", allow_schedule=True, weight_decay=weight_decay)
    _checks.one_of("shampoo", "weight_decay_type", weight_decay_type, ("decoupled", "l2"))
    alias_only = ("learning_rate", "weight_decay", "weight_decay_type", "mask", "alias_only")
    core = scale_by_shampoo(**{k: v for k, v in locals().items() if k not in alias_only})
    if weight_decay_type == "l2":
        return chain(
            add_decayed_weights(weight_decay, mask), core, scale_by_learning_rate(learning_rate)
        )
    return chain(
        core, add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate)
    )
