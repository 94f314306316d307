"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.optimizers import kronecker as kr
from optix.tree.leafwise import bias_correction_factor, compute_dtype, ema_weights, map_leaves


class SoapState(NamedTuple):
    """State of ``scale_by_soap``.

    ``factors`` and ``eigenbases`` hold, at each param leaf, a list over the leaf's
    (merged) dimensions of a (d, d) matrix (dtype ``matrix_dtype``), or ``None`` for a
    dimension that is not preconditioned. ``mu`` is kept in the eigenbasis.
    """

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of the projected g with decay b1, in the eigenbasis
    nu: Any  # param-shaped: EMA of the projected g**2 with decay b2, in the eigenbasis
    factors: Any  # per leaf, per dimension: EMA of contract(G, G) with decay shampoo_beta
    eigenbases: Any  # per leaf, per dimension: eigenvectors of the factor (columns)


def _check(fn, b1, b2, shampoo_beta, eps, freq, max_dim, matrix_dtype) -> None:
    _checks.in_unit_interval(fn, b1=b1, b2=b2)
    _checks.in_unit_interval(fn, allow_none=True, shampoo_beta=shampoo_beta)
    _checks.non_negative(fn, eps=eps)
    _checks.integer_at_least(fn, "precondition_frequency", freq, 1)
    _checks.integer_at_least(fn, "max_precond_dim", max_dim, 1)
    _checks.floating_dtype(fn, matrix_dtype=matrix_dtype)


def scale_by_soap(
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    merge_dims: bool = False,
    precondition_1d: bool = False,
    normalize_grads: bool = False,
    correct_bias: bool = True,
    *,
    matrix_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by Adam run in the eigenbasis of Shampoo's factors.

    Leaves of ndim >= 2 are reshaped by ``kronecker.soap_merged_shape`` if
    ``merge_dims``; each dimension of size <= ``max_precond_dim`` has a factor F_i and
    an eigenbasis Q_i (1-d leaves only with ``precondition_1d``), the others are left
    as they are. ``project(x) = x x_1 Q_1 ... x_k Q_k`` (Q_i^T applied along dim i),
    ``project_back`` applies Q_i. On the first update (count == 0) only

        F_i = (1 - sb) * contract(G, G, all dims but i);  Q_i = eigh(F_i) (descending)

    and the update is zero. Afterwards, with t = count (1, 2, ...):

        gp = project(g)
        mu = b1 * mu + (1 - b1) * gp ;  nu = b2 * nu + (1 - b2) * gp**2
        u = project_back(mu / (sqrt(nu) + eps))
        u = u / (1e-30 + sqrt(mean(u**2)))                          (if normalize_grads)
        u = u * sqrt(1 - b2**t) / (1 - b1**t)
        F_i = sb * F_i + (1 - sb) * contract(G, G, all dims but i)
        if t % precondition_frequency == 0, for each i: sort Q_i's columns by decreasing
            diag(Q_i^T F_i Q_i) (permuting nu's dim i alike), Q_i = qr(F_i @ Q_i).Q,
            and mu is carried over into the new basis (project_back, then project)

    with sb = ``shampoo_beta`` (b2 if None). The factor of ``correct_bias`` is dropped
    without it. Eigenvector signs do not change the updates.

    Args:
        b1: Adam's first-moment decay, in [0, 1).
        b2: Adam's second-moment decay, in [0, 1).
        shampoo_beta: Decay of the factors, in [0, 1), or None for b2.
        eps: Added to sqrt(nu), >= 0.
        precondition_frequency: Steps between eigenbasis refreshes, >= 1.
        max_precond_dim: Largest preconditioned dimension (and merging bound), >= 1.
        merge_dims: Merge neighbouring dimensions of leaves with ndim >= 2.
        precondition_1d: Precondition 1-d leaves too.
        normalize_grads: Divide each leaf's update by its RMS.
        correct_bias: Adam's bias corrections.
        matrix_dtype: Dtype of the factors, eigenbases, eigh and QR; ``None`` is the
            params' dtype, at least float32 (the official code does eigh and QR in
            float32). float64 needs x64 enabled.

    Returns:
        A GradientTransformation whose state is ``SoapState``.

    References:
        Vyas et al., "SOAP: Improving and Stabilizing Shampoo using Adam",
        ICLR 2025, arXiv:2409.11321 (nikhilvyas/SOAP, soap.py).
        Checked against soap_reference (NumPy transliteration of soap.py) and
        pytorch_optimizer.SOAP in tests/optimizers/test_soap.py.
    """
    fn = "scale_by_soap"
    _check(fn, b1, b2, shampoo_beta, eps, precondition_frequency, max_precond_dim, matrix_dtype)
    sb = b2 if shampoo_beta is None else shampoo_beta

    def layout(shape):
        """(working shape, which of its dims are preconditioned)."""
        if len(shape) == 1:
            return shape, (precondition_1d and shape[0] <= max_precond_dim,)
        work = kr.soap_merged_shape(shape, max_precond_dim) if merge_dims else tuple(shape)
        return work, tuple(d <= max_precond_dim for d in work)

    def init(params):
        _checks.real_params("scale_by_soap", params, "the factors are real matrices")

        def matrices(p):
            dt = jnp.dtype(matrix_dtype) if matrix_dtype is not None else compute_dtype(p)
            work, on = layout(p.shape)
            return [jnp.zeros((d, d), dt) if o else None for d, o in zip(work, on, strict=True)]

        return SoapState(
            count=zero_count(),
            mu=jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype), params),
            nu=jax.tree.map(lambda p: jnp.zeros(p.shape, p.dtype), params),
            factors=jax.tree.map(matrices, params),
            eigenbases=jax.tree.map(matrices, params),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = state.count
        first = count == 0
        kind = jnp.where(first, 1, jnp.where(count % precondition_frequency == 0, 2, 0))
        bc1 = bias_correction_factor(b1, jnp.maximum(count, 1))
        bc2 = bias_correction_factor(b2, jnp.maximum(count, 1))

        def leaf(g, mu, nu, factors, qs):
            dt = compute_dtype(g, mu, nu)
            work, _ = layout(g.shape)
            factors, qs = kr.as_tuple(factors, len(work)), kr.as_tuple(qs, len(work))

            def project(x, bases, back=False):
                return kr.mode_products(x.reshape(work), bases, transpose=back).reshape(g.shape)

            g_ = g.astype(dt)
            gp = project(g_, qs)
            b1_, one_minus_b1 = ema_weights(b1, dt)
            b2_, one_minus_b2 = ema_weights(b2, dt)
            mu_new = b1_ * mu.astype(dt) + one_minus_b1 * gp
            nu_new = b2_ * nu.astype(dt) + one_minus_b2 * gp * gp
            u = project(mu_new / (jnp.sqrt(nu_new) + eps), qs, back=True)
            if normalize_grads:
                u = u / (1e-30 + jnp.sqrt(jnp.mean(u * u)))
            if correct_bias:
                u = u * (jnp.sqrt(bc2) / bc1).astype(dt)
            mu_new = jnp.where(first, mu.astype(dt), mu_new)
            nu_new = jnp.where(first, nu.astype(dt), nu_new)
            u = jnp.where(first, jnp.zeros_like(u), u)

            gw = g_.reshape(work)
            sb_, one_minus_sb = ema_weights(sb, dt)
            factors = tuple(
                None
                if f is None
                else sb_.astype(f.dtype) * f
                + one_minus_sb.astype(f.dtype) * kr.outer_product(gw.astype(f.dtype), i)
                for i, f in enumerate(factors)
            )

            def keep(mu_, nu_):
                return qs, mu_, nu_

            def eigh(mu_, nu_):
                return tuple(None if f is None else kr.eigenbasis(f) for f in factors), mu_, nu_

            def refresh(mu_, nu_):
                carried = project(mu_, qs, back=True)
                nu_w, new_qs = nu_.reshape(work), list[Any]()
                for i, (f, q) in enumerate(zip(factors, qs, strict=True)):
                    if f is None:
                        new_qs.append(None)
                        continue
                    new_q, order = kr.power_iteration_basis(f, q)
                    nu_w = jnp.take(nu_w, order, axis=i)
                    new_qs.append(new_q)
                return tuple(new_qs), project(carried, new_qs), nu_w.reshape(g.shape)

            qs_new, mu_new, nu_new = jax.lax.switch(kind, [keep, eigh, refresh], mu_new, nu_new)
            return (
                u.astype(g.dtype),
                mu_new.astype(mu.dtype),
                nu_new.astype(nu.dtype),
                list(factors),
                list(qs_new),
            )

        u, mu, nu, factors, qs = map_leaves(
            leaf, updates, state.mu, state.nu, state.factors, state.eigenbases, n_out=5
        )
        new_state = SoapState(
            count=safe_increment(count), mu=mu, nu=nu, factors=factors, eigenbases=qs
        )
        return u, new_state

    return GradientTransformation(init, update)


class SoapDecayState(NamedTuple):
    """State of the step-and-decay stage of ``soap``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far


def soap_step(learning_rate: ScalarOrSchedule, weight_decay: float) -> GradientTransformation:
    """SOAP's last stage: ``p_new = (p - lr * u) * (1 - lr * weight_decay)``.

    The update is ``-lr * u - lr * weight_decay * (p - lr * u)``: the decay acts on the
    params after the step, as in the official code. No decay on the first update
    (count == 0), where SOAP only sets up its eigenbases.
    """

    def init(params):
        del params
        return SoapDecayState(count=zero_count())

    def update(updates, state, params=None, **extra_args):
        del extra_args
        lr: Any = learning_rate(state.count) if callable(learning_rate) else learning_rate
        first = state.count == 0

        def leaf(u, p):
            if u is None:
                return None
            step = -lr * u
            if weight_decay == 0:
                return step
            if p is None:
                raise ValueError(
                    "soap needs the current params for its weight decay: call "
                    "update(updates, state, params)"
                )
            decay = lr * weight_decay * (p.astype(step.dtype) + step)
            return jnp.where(first, step, step - decay).astype(u.dtype)

        params = jax.tree.map(lambda _: None, updates) if params is None else params
        new = jax.tree.map(leaf, updates, params, is_leaf=lambda x: x is None)
        return new, SoapDecayState(count=safe_increment(state.count))

    return GradientTransformation(init, update)


def soap(
    learning_rate: ScalarOrSchedule = 3e-3,
    b1: float = 0.95,
    b2: float = 0.95,
    shampoo_beta: float | None = None,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    merge_dims: bool = False,
    precondition_1d: bool = False,
    normalize_grads: bool = False,
    correct_bias: bool = True,
    *,
    matrix_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """SOAP as the official code: ``scale_by_soap``, then ``soap_step``.

    Each step is ``p = (p - lr * u) * (1 - lr * weight_decay)`` (the decay applied to
    the stepped params, official order). The first update only sets up the eigenbases and leaves the
    params unchanged. Update rule and arguments: see ``scale_by_soap``.
    """
    _checks.finite("soap", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("soap", weight_decay=weight_decay)
    args = (b1, b2, shampoo_beta, eps, precondition_frequency, max_precond_dim, merge_dims)
    flags = (precondition_1d, normalize_grads, correct_bias)
    core = scale_by_soap(*args, *flags, matrix_dtype=matrix_dtype)
    return chain(core, soap_step(learning_rate, weight_decay))
