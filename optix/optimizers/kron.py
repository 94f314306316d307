"""PSGD Kron: momentum preconditioned by a Kronecker product of learned factors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, safe_increment, zero_count
from optix.optimizers.kron_factors import (
    MEMORY_SAVE_MODES,
    NOISE_SCALE,
    balance_factors,
    diagonal_dims,
    fit_factors,
    init_factors,
    merged_shape,
    precond_update_prob_schedule,
    precondition,
)
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import bias_correction_factor, compute_dtype, ema_weights, map_leaves
from optix.tree.math import zeros_like

BALANCE_PROBABILITY = 0.01  # the official code rebalances on about 1 update in 100


class KronState(NamedTuple):
    """State of ``scale_by_kron``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    key: jax.Array  # uint32 key data: the random numbers of the next step come from it
    update_counter: jax.Array  # int32 scalar: steps since the factors were last fitted
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    Qs: Any  # per leaf: a list of Kronecker factors (vectors or triangular matrices)


def step_randomness(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(next key, balance draw in [0, 1), noise key)`` of one step from the state's key."""
    next_key, balance_key, noise_key = jax.random.split(jax.random.wrap_key_data(key), 3)
    draw = jax.random.uniform(balance_key, (), jnp.float32)
    return jax.random.key_data(next_key), draw, noise_key


def probe_noises(noise_key: jax.Array, like: list[Any]) -> list[jax.Array]:
    """Standard normal probes shaped and typed like each entry of ``like`` (arrays or
    ``jax.ShapeDtypeStruct``), cut in order from one draw in the widest of their dtypes."""
    if not like:
        return []
    dtype = max((jnp.dtype(x.dtype) for x in like), key=lambda d: d.itemsize)
    sizes = [math.prod(x.shape) for x in like]
    flat = jax.random.normal(noise_key, (sum(sizes),), dtype)
    pieces = jnp.split(flat, list(itertools.accumulate(sizes))[:-1])
    return [v.reshape(x.shape).astype(x.dtype) for v, x in zip(pieces, like, strict=True)]


def _at_least_f32(dtype) -> jnp.dtype:
    """float64 stays float64; narrower floats become float32."""
    return jnp.dtype(jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32)


def _key_data(key: int | jax.Array) -> jax.Array:
    if isinstance(key, int):
        return jax.random.key_data(jax.random.key(key))
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return jnp.asarray(key, jnp.uint32)


def _check(fn, b1, prob, max_size, min_ndim, mode, precond_lr, init_scale, mu_dtype, p_dtype):
    _checks.in_unit_interval(fn, b1=b1)
    if prob is not None and not callable(prob):
        _checks.in_interval(fn, "(0, 1]", preconditioner_update_probability=prob)
    _checks.integer_at_least(fn, "max_size_triangular", max_size, 0)
    _checks.integer_at_least(fn, "min_ndim_triangular", min_ndim, 0)
    _checks.one_of(fn, "memory_save_mode", mode, MEMORY_SAVE_MODES)
    _checks.non_negative(fn, precond_lr=precond_lr)
    _checks.positive(fn, precond_init_scale=init_scale)
    _checks.floating_dtype(fn, mu_dtype=mu_dtype, precond_dtype=p_dtype)


def scale_by_kron(
    b1: float = 0.9,
    preconditioner_update_probability: float | Callable[[jax.Array], Any] | None = None,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    precond_lr: float = 0.1,
    precond_init_scale: float = 1.0,
    merge_dims: bool = True,
    mu_dtype: jax.typing.DTypeLike | None = None,
    precond_dtype: jax.typing.DTypeLike | None = None,
    *,
    key: int | jax.Array = 0,
) -> GradientTransformation:
    """Precondition the momentum with PSGD's Kronecker-factored preconditioner.

    For each leaf, with g the incoming update (viewed as ``merged_shape``), t = count + 1
    and Q the leaf's factors (``kron_factors``: one vector or upper-triangular matrix
    per dim, ``P = Q^T Q``):

        mu = b1 * mu + (1 - b1) * g
        m = mu / (1 - b1**t)                                      (in precond_dtype)
        if update:                                                (all leaves at once)
            if balance: Q = balance_factors(Q)
            x = m if momentum_into_precond_update else g
            x = x + sqrt(eps_f32) * mean(|x|) * v                 (v standard normal)
            Q = fit_factors(Q, x, v, precond_lr)
            m = x if momentum_into_precond_update                 (as the official code)
        u = P m
        u = u * min(1, 1.1 / (sqrt(mean(u**2)) + 1e-12))

    ``update`` follows the official schedule, deterministically: with
    ``prob = preconditioner_update_probability`` (a number, or a schedule of count; by
    default ``precond_update_prob_schedule()``), ``update_counter`` counts the steps
    and the factors are fitted when it reaches ``1 / prob`` (then it restarts at 0).
    ``balance`` is a draw below 0.01 on a step that updates. The draw and v come from
    ``key`` in the state (``step_randomness``, ``probe_noises``), so runs are reproducible.

    A leaf of three or more dims is merged into a matrix (``merge_dims``); a dim is
    diagonal as ``diagonal_dims`` says (``max_size_triangular``, ``min_ndim_triangular``,
    ``memory_save_mode``). Scalars are one-entry vectors. ``precond_dtype=None`` is
    float32, or float64 for float64 params (the official code: always float32).

    Args:
        b1: Momentum, in [0, 1).
        preconditioner_update_probability: Number in (0, 1], a schedule, or None.
        max_size_triangular: Dims larger than this get a diagonal factor, int >= 0.
        min_ndim_triangular: Leaves of fewer dims get only diagonal factors, int >= 0.
        memory_save_mode: None, "smart_one_diag", "one_diag" or "all_diag".
        momentum_into_precond_update: Fit the factors to m (True) or to g.
        precond_lr: Step size of the factors' fit, >= 0.
        precond_init_scale: Initial scale of the preconditioner, > 0.
        merge_dims: View leaves of three or more dims as matrices.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        precond_dtype: Dtype of the factors and the preconditioning.
        key: Seed (int) or JAX key of the random numbers.

    Returns:
        A GradientTransformation whose state is ``KronState``.

    References:
        Li, "Preconditioned Stochastic Gradient Descent", IEEE TNNLS 2018,
        arXiv:1512.04202; Li, "Preconditioner on Matrix Lie Group for SGD", ICLR 2019,
        arXiv:1809.10232. Official code: evanatyourservice/kron_torch (kron-torch 0.3.3).
        Checked against kron_reference.Kron in tests/optimizers/test_kron.py.
    """
    fn = "scale_by_kron"
    _check(
        fn, b1, preconditioner_update_probability, max_size_triangular, min_ndim_triangular,
        memory_save_mode, precond_lr, precond_init_scale, mu_dtype, precond_dtype,
    )  # fmt: skip
    prob = preconditioner_update_probability
    prob = precond_update_prob_schedule() if prob is None else prob
    key_data = _key_data(key)

    def layout(x):
        shape = merged_shape(tuple(x.shape), merge_dims)
        diag = diagonal_dims(shape, max_size_triangular, min_ndim_triangular, memory_save_mode)
        dtype = _at_least_f32(x.dtype) if precond_dtype is None else precond_dtype
        return shape, diag, jnp.dtype(dtype)

    def init(params):
        _checks.real_params("scale_by_kron", params, "its Kronecker factors are real")

        def factors(p):
            shape, diag, dtype = layout(p)
            return list(init_factors(shape, diag, precond_init_scale, dtype))

        Qs = jax.tree.map(factors, params)
        count = zero_count()
        return KronState(count, key_data, count, zeros_like(params, dtype=mu_dtype), Qs)

    def momentum(g, mu, t):
        dt = compute_dtype(g, mu)
        b1_, one_minus_b1 = ema_weights(b1, dt)
        mu_new = b1_ * mu.astype(dt) + one_minus_b1 * g.astype(dt)
        shape, _, pdt = layout(g)
        debiased = (mu_new / bias_correction_factor(b1, t).astype(dt)).astype(pdt)
        return mu_new.astype(mu.dtype), debiased.reshape(shape)

    def fit_all(Qs, xs, noise_key, balance):
        new_Qs, new_xs = [], []
        for factors, x, v in zip(Qs, xs, probe_noises(noise_key, xs), strict=True):
            if x.ndim > 1:
                balanced = balance_factors(factors)
                factors = tuple(
                    jnp.where(balance, b, q) for b, q in zip(balanced, factors, strict=True)
                )
            x = x + jnp.asarray(NOISE_SCALE, x.dtype) * jnp.mean(jnp.abs(x)) * v
            new_Qs.append(fit_factors(factors, x, v, precond_lr))
            new_xs.append(x)
        return new_Qs, new_xs

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        t = safe_increment(state.count)
        mu_tree, debiased_tree = map_leaves(
            lambda g, m: momentum(g, m, t), updates, state.mu, n_out=2
        )
        leaves, treedef = jax.tree.flatten(updates)
        debiased = treedef.flatten_up_to(debiased_tree)
        # Each leaf's factors in order, whatever container holds them (nnx: an int-keyed State).
        Qs = [tuple(jax.tree.leaves(f)) for f in treedef.flatten_up_to(state.Qs)]
        p = prob(state.count) if callable(prob) else prob
        counter = state.update_counter + 1
        do_update = counter.astype(jnp.float32) >= 1 / jnp.asarray(p, jnp.float32)
        key, draw, noise_key = step_randomness(state.key)
        balance = (draw < BALANCE_PROBABILITY) & do_update
        if momentum_into_precond_update:
            targets = list(debiased)
        else:
            targets = [
                g.astype(d.dtype).reshape(d.shape) for g, d in zip(leaves, debiased, strict=True)
            ]
        Qs, fitted = jax.lax.cond(
            do_update,
            lambda: fit_all(Qs, targets, noise_key, balance),
            lambda: (list(Qs), targets),
        )
        if momentum_into_precond_update:
            debiased = fitted
        out = []
        for g, factors, m in zip(leaves, Qs, debiased, strict=True):
            u = precondition(factors, m)
            rms = jnp.sqrt(jnp.mean(u * u))
            u = u * jnp.minimum(jnp.asarray(1.0, u.dtype), 1.1 / (rms + 1e-12))
            out.append(u.reshape(g.shape).astype(g.dtype))
        Qs = treedef.unflatten([list(f) for f in Qs])
        counter = jnp.where(do_update, 0, counter)
        return treedef.unflatten(out), KronState(t, key, counter, mu_tree, Qs)

    return GradientTransformation(init, update)


def kron(
    learning_rate: ScalarOrSchedule = 0.0003,
    b1: float = 0.9,
    weight_decay: ScalarOrSchedule = 0.0,
    preconditioner_update_probability: float | Callable[[jax.Array], Any] | None = None,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    precond_lr: float = 0.1,
    precond_init_scale: float = 1.0,
    merge_dims: bool = True,
    mu_dtype: jax.typing.DTypeLike | None = None,
    precond_dtype: jax.typing.DTypeLike | None = None,
    *,
    key: int | jax.Array = 0,
) -> GradientTransformation:
    """PSGD Kron: ``scale_by_kron``, weight decay on leaves of two or more dims, lr.

    ``chain(scale_by_kron(...), add_decayed_weights(weight_decay, mask=ndim >= 2),
    scale_by_learning_rate(learning_rate))``: each step is
    ``p = p - learning_rate * (u + weight_decay * p)``, the decay added after the rms
    clipping as in the official ``Kron`` (whose arguments and defaults these are, with
    ``params`` left out and ``key`` added). Start with a learning rate about 3x smaller
    than Adam's and a weight decay 3-10x larger. Update rule and arguments: see
    ``scale_by_kron``.

    References:
        Li, "Preconditioned Stochastic Gradient Descent", arXiv:1512.04202.
        Checked against kron_reference.Kron in tests/optimizers/test_kron.py.
    """
    fn = "kron"
    _check(
        fn, b1, preconditioner_update_probability, max_size_triangular, min_ndim_triangular,
        memory_save_mode, precond_lr, precond_init_scale, mu_dtype, precond_dtype,
    )  # fmt: skip
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative(fn, allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_kron(
            b1,
            preconditioner_update_probability,
            max_size_triangular,
            min_ndim_triangular,
            memory_save_mode,
            momentum_into_precond_update,
            precond_lr,
            precond_init_scale,
            merge_dims,
            mu_dtype,
            precond_dtype,
            key=key,
        ),
        add_decayed_weights(
            weight_decay, lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
        ),
        scale_by_learning_rate(learning_rate),
    )
