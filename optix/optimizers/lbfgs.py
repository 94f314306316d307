"""L-BFGS: the two-loop recursion over a ring buffer of curvature pairs, and its alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    chain,
    identity,
    safe_increment,
    zero_count,
)
from optix.transforms.scaling import scale, scale_by_learning_rate
from optix.transforms.weight_decay import NO_PARAMS
from optix.transforms.zoom_linesearch import scale_by_zoom_linesearch
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.math import norm, vdot, zeros_like


class ScaleByLBFGSState(NamedTuple):
    """State of ``scale_by_lbfgs``, laid out as Optax's so its checkpoints map field by field."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    params: Any  # param-shaped: the params of the previous update
    updates: Any  # param-shaped: the incoming updates (gradients) of the previous update
    diff_params_memory: Any  # per leaf (memory_size, *shape): s of update k in slot (k-1) % m
    diff_updates_memory: Any  # per leaf (memory_size, *shape): y, in the same slots
    weights_memory: jax.Array  # (memory_size,), default float: rho = 1 / (s . y), 0 if empty


def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> GradientTransformation:
    """Multiply updates by the L-BFGS approximation of the inverse Hessian.

    A ring buffer holds the curvature pairs (s, y) of params and update differences of
    the last ``memory_size`` = m updates; the two-loop recursion applies the inverse
    Hessian approximation they define to the update. Chain a line search after it.

    With g the incoming update (a gradient), p the params, k = count, and ``a . b`` the
    real part of the inner product over all leaves (conjugating ``a``):

        s = p - p_prev,  y = g - g_prev,  rho = 1 / (s . y)              (k > 0)
        slot (k - 1) % m = (s, y, rho)   if k > 0, s . y > 0 and rho is finite
        slot (k - 1) % m = (0, 0, 0)     otherwise: the pair is skipped
        gamma = (y_n . s_n) / (y_n . y_n)   for (s_n, y_n) the newest stored pair
        gamma = min(1, 1 / ||g||)           if no pair is stored (as at k = 0)
        gamma = 1                           if not scale_init_precond
        q = g;          for i newest..oldest: a_i = rho_i * (s_i . q);  q = q - a_i * y_i
        r = gamma * q;  for i oldest..newest: b_i = rho_i * (y_i . r);  r = r + (a_i - b_i) * s_i
        u = r

    Empty slots (rho = 0) leave q and r unchanged, so the memory holds the stored pairs
    of the last m updates. A pair with s . y <= 0 or non-finite (after a failed line
    search, or a NaN or inf gradient) is skipped, as in the reference algorithm (Nocedal
    & Wright section 7.2; torch.optim.LBFGS and L-BFGS-B skip such pairs too, but keep
    the last m stored pairs, not those of the last m updates): the direction stays a
    descent direction and the memory never holds NaN or inf. Optax empties the slot only
    for s . y = 0; it stores rho = 1 / (s . y) < 0, which can turn its direction uphill,
    and NaN, which stays in its memory for m updates. Runs without such pairs agree with
    Optax. Inner products are formed in at least float32; the memories keep the params'
    dtypes and ``weights_memory`` the default float dtype, as in Optax. Complex params
    are supported.

    Args:
        memory_size: Number m of stored curvature pairs, an int >= 1.
        scale_init_precond: Start the recursion from gamma * I (else from I).

    Returns:
        A GradientTransformation whose state is ``ScaleByLBFGSState``; ``update`` needs
        params.

    References:
        Nocedal & Wright, "Numerical Optimization", 2nd ed., Springer 2006, Algorithms
        7.4 and 7.5. Liu & Nocedal, "On the limited memory BFGS method for large scale
        optimization", Mathematical Programming 45, 1989.
        Checked against optax.scale_by_lbfgs and a NumPy two-loop recursion in
        tests/optimizers/test_lbfgs.py.
    """
    _checks.integer_at_least("scale_by_lbfgs", "memory_size", memory_size, 1)

    def init(params):
        def stacked(p):
            return jnp.zeros((memory_size, *p.shape), p.dtype)

        return ScaleByLBFGSState(
            count=zero_count(),
            params=zeros_like(params),
            updates=zeros_like(params),
            diff_params_memory=jax.tree.map(stacked, params),
            diff_updates_memory=jax.tree.map(stacked, params),
            weights_memory=jnp.zeros([memory_size], jnp.result_type(float)),
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="scale_by_lbfgs"))
        count, rho_dtype = state.count, state.weights_memory.dtype
        slot = (count - 1) % memory_size

        def difference(g, p, p_prev, g_prev, memory):
            dt = compute_dtype(g, p, p_prev, g_prev)
            s = p.astype(dt) - p_prev.astype(dt)
            y = g.astype(dt) - g_prev.astype(dt)
            return s.astype(memory.dtype), y.astype(memory.dtype)

        s, y = map_leaves(
            difference,
            updates,
            params,
            state.params,
            state.updates,
            state.diff_params_memory,
            n_out=2,
        )
        ys = _dot(y, s, rho_dtype)
        rho = 1 / ys
        keep = (count > 0) & (ys > 0) & jnp.isfinite(ys) & jnp.isfinite(rho)

        def store(memory, new):
            return memory.at[slot].set(jnp.where(keep, new, jnp.zeros_like(new)))

        s_memory = jax.tree.map(store, state.diff_params_memory, s)
        y_memory = jax.tree.map(store, state.diff_updates_memory, y)
        rho_memory = store(state.weights_memory, rho)
        if scale_init_precond:
            # With the new pair kept, gamma comes from (s, y) directly: reading the newest
            # pair back from the memory just written makes XLA copy both memories in full.
            gamma = jax.lax.cond(
                keep,
                lambda: _initial_scale(updates, s, y, True, rho_dtype),
                lambda: _initial_scale_from_memory(updates, s_memory, y_memory, rho_memory, count),
            )
        else:
            gamma = jnp.ones([], rho_dtype)
        direction = _two_loop(updates, s_memory, y_memory, rho_memory, gamma, count)
        new_state = ScaleByLBFGSState(
            count=safe_increment(count),
            params=_cast_like(params, state.params),
            updates=_cast_like(updates, state.updates),
            diff_params_memory=s_memory,
            diff_updates_memory=y_memory,
            weights_memory=rho_memory,
        )
        return direction, new_state

    return GradientTransformation(init, update)


# Built once at import, as Optax's default argument is; sharing it is safe because a
# transformation is an immutable, hashable pair of pure functions with no arrays inside.
ZOOM_LINESEARCH = scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")


def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: GradientTransformation | None = ZOOM_LINESEARCH,
) -> GradientTransformation:
    """L-BFGS: ``chain(scale_by_lbfgs, scale(-1.0), linesearch)``, Optax's composition.

    Update rule and pair rules: see ``scale_by_lbfgs``. With a ``learning_rate`` (a
    number >= 0 or a schedule) ``scale_by_learning_rate(learning_rate)`` replaces
    ``scale(-1.0)``. The default ``linesearch`` is ``scale_by_zoom_linesearch(
    max_linesearch_steps=20, initial_guess_strategy="one")`` (``ZOOM_LINESEARCH``);
    ``None`` means no line search. With a line search, ``update`` needs ``value``,
    ``grad`` and ``value_fn`` (see ``value_and_grad_from_state`` to reuse the value and
    gradient the search computed at the new params).

    References:
        Nocedal & Wright, "Numerical Optimization", Springer 2006, Algorithm 7.5.
        Checked against optax.lbfgs in tests/optimizers/test_lbfgs.py.
    """
    _checks.integer_at_least("lbfgs", "memory_size", memory_size, 1)
    _checks.finite("lbfgs", allow_schedule=True, allow_none=True, learning_rate=learning_rate)
    step = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    return chain(
        scale_by_lbfgs(memory_size, scale_init_precond),
        step,
        identity() if linesearch is None else linesearch,
    )


def _cast_like(tree, like):
    return jax.tree.map(lambda x, ref: x.astype(ref.dtype), tree, like)


def _dot(xs, vs, dtype) -> jax.Array:
    """Real part of ``xs . vs`` in ``dtype``; each leaf multiplied in at least float32."""
    total = jnp.zeros([], dtype)
    for x, v in zip(jax.tree.leaves(xs), jax.tree.leaves(vs), strict=True):
        dt = compute_dtype(x, v)
        total = total + jnp.real(vdot(x.astype(dt), v.astype(dt))).astype(dtype)
    return total


def _widen(tree):
    return jax.tree.map(lambda x: x.astype(compute_dtype(x)), tree)


def _ring_order(count: jax.Array, memory_size: int) -> jax.Array:
    """Slots from the oldest pair to the newest, the newest being (count - 1) % m."""
    return (count + jnp.arange(memory_size, dtype=count.dtype)) % memory_size


def _slot(memory, index):
    return jax.tree.map(lambda x: x[index], memory)


def _initial_scale(g, s, y, stored, dtype) -> jax.Array:
    """gamma from the newest stored pair (s, y), or min(1, 1/||g||) if none is ``stored``."""
    gamma = _dot(y, s, dtype) / norm(_widen(y), squared=True).astype(dtype)
    capped_inverse_norm = jnp.minimum(1, 1 / norm(_widen(g)).astype(dtype))
    usable = stored & (gamma > 0) & jnp.isfinite(gamma)
    return jnp.where(usable, gamma, capped_inverse_norm)


def _initial_scale_from_memory(g, s_memory, y_memory, rho_memory, count) -> jax.Array:
    """``_initial_scale`` of the newest pair in the memory (the slots are in ring order)."""
    memory_size = rho_memory.shape[0]
    order = _ring_order(count, memory_size)
    newest = order[memory_size - 1 - jnp.argmax(rho_memory[order][::-1] != 0)]
    s, y = _slot(s_memory, newest), _slot(y_memory, newest)
    return _initial_scale(g, s, y, rho_memory[newest] != 0, rho_memory.dtype)


def _two_loop(g, s_memory, y_memory, rho_memory, gamma, count):
    """The L-BFGS two-loop recursion applied to g, in at least float32, cast back to g's dtype."""

    def axpy(v, c, x):
        return jax.tree.map(lambda v, x: v + c.astype(v.dtype) * x.astype(v.dtype), v, x)

    def newest_to_oldest(q, i):
        a = rho_memory[i] * _dot(_slot(s_memory, i), q, rho_memory.dtype)
        return axpy(q, -a, _slot(y_memory, i)), a

    def oldest_to_newest(r, i_and_a):
        i, a = i_and_a
        b = rho_memory[i] * _dot(_slot(y_memory, i), r, rho_memory.dtype)
        return axpy(r, a - b, _slot(s_memory, i)), None

    order = _ring_order(count, rho_memory.shape[0])
    q = jax.tree.map(lambda x, memory: x.astype(compute_dtype(x, memory)), g, s_memory)
    q, a = jax.lax.scan(newest_to_oldest, q, order, reverse=True)
    r = jax.tree.map(lambda x: gamma.astype(x.dtype) * x, q)
    r, _ = jax.lax.scan(oldest_to_newest, r, (order, a))
    return _cast_like(r, g)
