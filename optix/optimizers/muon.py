"""Muon: momentum orthogonalized by Newton-Schulz, as Optax defines it."""

from __future__ import annotations

import functools
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
from optix.optimizers.adam import adamw
from optix.optimizers.muon_axes import (
    DimNumsOrFn,
    leaf_dimension_numbers,
    muon_dims,
    muon_labels,
    scale_by_shape,
)
from optix.optimizers.newton_schulz import (
    JORDAN_NS_COEFFS,
    NS_COEFFS_PRESETS,
    PRECONDITIONINGS,
    NsCoeffs,
    Preconditioning,
    check_ns_coeffs,
    check_ns_steps,
    orthogonalize_via_newton_schulz,
)
from optix.transforms.partition import partition
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import bias_correction_factor, compute_dtype, ema_weights, map_leaves
from optix.tree.math import zeros_like


class MuonState(NamedTuple):
    """State of ``scale_by_muon``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g with decay beta (dtype mu_dtype)
    ns_coeffs: jax.Array  # (3,) or (n, 3): the Newton-Schulz coefficients in use


class _Dims:
    """One leaf's dimension numbers, held as an opaque leaf."""

    def __init__(self, dims):
        self.dims = dims


def _check(fn: str, ns_coeffs, ns_steps, beta, eps, mu_dtype, preconditioning, bias_correction):
    check_ns_steps(fn, ns_steps)
    check_ns_coeffs(fn, ns_coeffs, ns_steps)
    _checks.momentum(fn, closed_right=not bias_correction, beta=beta)
    _checks.non_negative(fn, eps=eps)
    _checks.floating_dtype(fn, mu_dtype=mu_dtype)
    _checks.one_of(fn, "preconditioning", preconditioning, PRECONDITIONINGS)


def scale_by_muon(
    ns_coeffs: NsCoeffs = JORDAN_NS_COEFFS,
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Preconditioning = "frobenius",
    weight_dimension_numbers: DimNumsOrFn | None = None,
    bias_correction: bool = True,
    ns_dtype: jax.typing.DTypeLike | None = None,
    eps_clamp: bool = False,
) -> GradientTransformation:
    """Replace the momentum of each matrix by its orthogonalization (Muon).

    For each leaf, with g the incoming update, t = count + 1 and c(t) = 1 - beta**t:

        mu = beta * mu + (1 - beta) * g
        m = mu / c(t)                                         if not nesterov
        m = beta * mu / c(t + 1) + (1 - beta) * g / c(t)      if nesterov
        o = NS(m)                  (orthogonalize_via_newton_schulz, ns_steps steps)
        u = sum(conj(m) * o) * o   if adaptive, else u = o

    NS views the leaf as matrices by its ``MuonDimensionNumbers`` and iterates each
    matrix x (made wide, divided by its norm + eps) as x = c0 x + (c1 a + c2 a a) x,
    a = x x^H. ``bias_correction=False`` drops the c(.) divisions, which gives Jordan's
    and torch.optim.Muon's momentum: m = mu, or (1 - beta) * g + beta * mu with Nesterov.

    Args:
        ns_coeffs: (c0, c1, c2), or one triple per step (then at most ``ns_steps`` rows,
            and the rows set the number of steps). Default: Jordan's quintic.
        ns_steps: Newton-Schulz steps, an int >= 0.
        beta: Momentum decay, in (-1, 1) ((-1, 1] without bias correction).
        eps: Added to the norm before dividing (its floor with ``eps_clamp``), >= 0.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nesterov: Orthogonalize the Nesterov look-ahead momentum.
        adaptive: Scale by the dual norm <m, o> (Bernstein & Newhouse); the sum runs
            over the whole leaf, batch axes included, as in Optax.
        preconditioning: "frobenius", "spectral", "aol" or "schatten" (see
            ``orthogonalize_via_newton_schulz``). Optax's "schatten" forms x x^T
            without the conjugate; here complex matrices get x x^H.
        weight_dimension_numbers: One ``MuonDimensionNumbers`` for all leaves, a tree
            of them (or a prefix), or a function of the updates returning one. ``None``:
            every leaf is a matrix with reduction axis 0.
        bias_correction: Divide the momentum by 1 - beta**t as Optax does (not Jordan).
        ns_dtype: Dtype of the iteration (Jordan and torch use ``jnp.bfloat16``); None
            iterates in the compute dtype (at least float32).
        eps_clamp: Divide by max(norm, eps), torch.optim.Muon's form.

    Returns:
        A GradientTransformation whose state is ``MuonState``.

    References:
        Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024,
        https://kellerjordan.github.io/posts/muon/. Bernstein & Newhouse, "Old
        Optimizer, New Norm: An Anthology", arXiv:2409.20325. Liu et al., "Muon is
        Scalable for LLM Training", arXiv:2502.16982. Boissin et al., "Turbo-Muon",
        arXiv:2512.04632 (AOL). Grishina et al., arXiv:2506.10935 (Schatten-4).
        Ahn et al., "Dion", arXiv:2504.05295 (per-step coefficients).
        Checked against optax.contrib.scale_by_muon in tests/optimizers/test_muon.py.
    """
    _check("scale_by_muon", ns_coeffs, ns_steps, beta, eps, mu_dtype, preconditioning,
           bias_correction)  # fmt: skip
    _checks.floating_dtype("scale_by_muon", ns_dtype=ns_dtype)

    def leaf(g, mu, dims, coeffs, c, c_next):
        if dims is None:
            raise ValueError(
                f"scale_by_muon: a leaf of shape {g.shape} has no dimension numbers (None); "
                "route it to another transformation with optix.partition"
            )
        dt = compute_dtype(g, mu)
        beta_, one_minus_beta = ema_weights(beta, dt)
        g_ = g.astype(dt)
        mu_new = beta_ * mu.astype(dt) + one_minus_beta * g_
        if nesterov and bias_correction:
            m = beta_ * mu_new / c_next.astype(dt) + one_minus_beta * g_ / c.astype(dt)
        elif nesterov:
            m = beta_ * mu_new + one_minus_beta * g_
        else:
            m = mu_new / c.astype(dt) if bias_correction else mu_new
        o = orthogonalize_via_newton_schulz(
            m, coeffs, ns_steps, preconditioning, eps, dims, ns_dtype=ns_dtype, eps_clamp=eps_clamp
        )
        if adaptive:
            o = jnp.sum(jnp.conj(m) * o) * o
        return o.astype(g.dtype), mu_new.astype(mu.dtype)

    def init(params):
        return MuonState(
            count=zero_count(),
            mu=zeros_like(params, dtype=mu_dtype),
            ns_coeffs=jnp.asarray(ns_coeffs),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        c, c_next = bias_correction_factor(beta, count), bias_correction_factor(beta, count + 1)
        treedef = jax.tree.structure(updates)
        dims = leaf_dimension_numbers(weight_dimension_numbers, updates)
        slots = treedef.unflatten([_Dims(d) for d in dims])
        new_updates, mu = map_leaves(
            lambda g, m, slot: leaf(g, m, slot.dims, state.ns_coeffs, c, c_next),
            updates,
            state.mu,
            slots,
            n_out=2,
        )
        return new_updates, MuonState(count=count, mu=mu, ns_coeffs=state.ns_coeffs)

    return GradientTransformation(init, update)


def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: NsCoeffs | str = JORDAN_NS_COEFFS,
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Preconditioning = "frobenius",
    adam_b1: float = 0.9,
    adam_b2: float = 0.999,
    adam_eps_root: float = 0.0,
    adam_weight_decay: ScalarOrSchedule = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: DimNumsOrFn | None = None,
    consistent_rms: jax.typing.ArrayLike | None = None,
) -> GradientTransformation:
    """Muon as Optax defines it: Muon for the matrices, AdamW for every other leaf.

    ``partition`` of two groups. "muon": ``chain(scale_by_muon, scale_by_shape,
    add_decayed_weights(weight_decay, weight_decay_mask), scale_by_learning_rate)``, so
    ``p -= learning_rate * (s * u + weight_decay * p)`` with u from ``scale_by_muon``
    (bias-corrected momentum) and s = sqrt(max(1, fan_out / fan_in)) (or the
    ``consistent_rms`` factor). "adam": ``adamw(adam_learning_rate, adam_b1, adam_b2,
    eps, adam_eps_root, mu_dtype, adam_weight_decay, nesterov=nesterov)``.

    This differs from Jordan's Muon (``muon_jordan``): Optax divides the momentum by
    1 - beta**t, scales by fan_out / fan_in in its (reduction, output) axes where
    Jordan scales by rows / cols of the array as stored, and iterates in the params'
    precision where Jordan iterates in bfloat16.

    Args:
        learning_rate: Step size of the Muon group, a number or a schedule.
        ns_coeffs: As in ``scale_by_muon``, or the name of a preset: "standard"
            (Jordan's) or "dion" (one quintic per step, 5 steps).
        ns_steps: Newton-Schulz steps, see ``scale_by_muon``.
        beta: Momentum decay, see ``scale_by_muon``.
        eps: Added to the norm before dividing, see ``scale_by_muon``.
        mu_dtype: Dtype of ``mu``, see ``scale_by_muon``.
        nesterov: Nesterov look-ahead momentum, see ``scale_by_muon``.
        adaptive: Scale by the dual norm, see ``scale_by_muon``.
        preconditioning: The Newton-Schulz preconditioning, see ``scale_by_muon``.
        weight_decay: Decoupled decay of the Muon group, >= 0 (times the learning rate).
        weight_decay_mask: Where that decay applies: a tree of bools or a function.
        adam_b1: AdamW's first-moment decay.
        adam_b2: AdamW's second-moment decay.
        adam_eps_root: AdamW's eps inside the root.
        adam_weight_decay: AdamW's decoupled decay, >= 0.
        adam_learning_rate: AdamW's step size; None uses ``learning_rate``.
        muon_weight_dimension_numbers: Which leaves are matrices and how (see
            ``MuonDimensionNumbers``): a tree (or prefix) of dimension numbers, with
            None for the AdamW leaves, or a function of the params returning one.
            ``None``: every 2-D leaf is a Muon matrix.
        consistent_rms: If given, ``scale_by_shape`` scales by
            sqrt(max(fan_in, fan_out)) * consistent_rms (0.2 matches AdamW's RMS).

    References:
        See ``scale_by_muon``.
        Checked against optax.contrib.muon in tests/optimizers/test_muon.py.
    """
    if isinstance(ns_coeffs, str):
        _checks.one_of("muon", "ns_coeffs", ns_coeffs, tuple(NS_COEFFS_PRESETS))
        ns_coeffs = NS_COEFFS_PRESETS[ns_coeffs]
    _check("muon", ns_coeffs, ns_steps, beta, eps, mu_dtype, preconditioning, True)
    _checks.finite("muon", allow_schedule=True, learning_rate=learning_rate)
    _checks.finite(
        "muon", allow_schedule=True, allow_none=True, adam_learning_rate=adam_learning_rate
    )
    _checks.non_negative("muon", allow_schedule=True, weight_decay=weight_decay,
                         adam_weight_decay=adam_weight_decay)  # fmt: skip
    _checks.momentum("muon", closed_right=False, adam_b1=adam_b1)
    _checks.in_unit_interval("muon", adam_b2=adam_b2)
    _checks.non_negative("muon", adam_eps_root=adam_eps_root)
    _checks.non_negative("muon", allow_none=True, consistent_rms=consistent_rms)
    adam_learning_rate = learning_rate if adam_learning_rate is None else adam_learning_rate
    spec = muon_weight_dimension_numbers
    dims = functools.partial(muon_dims, spec)
    labels = functools.partial(muon_labels, spec)

    return partition(
        {
            "muon": chain(
                scale_by_muon(
                    ns_coeffs,
                    ns_steps,
                    beta,
                    eps,
                    mu_dtype,
                    nesterov=nesterov,
                    adaptive=adaptive,
                    preconditioning=preconditioning,
                    weight_dimension_numbers=dims,
                ),
                scale_by_shape(dims, consistent_rms),
                add_decayed_weights(weight_decay, weight_decay_mask),
                scale_by_learning_rate(learning_rate),
            ),
            "adam": adamw(
                adam_learning_rate,
                adam_b1,
                adam_b2,
                eps,
                adam_eps_root,
                mu_dtype,
                adam_weight_decay,
                nesterov=nesterov,
            ),
        },
        labels,
        allow_unused=True,
    )
