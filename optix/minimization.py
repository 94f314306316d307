"""Run a transformation to a tolerance on a deterministic objective, in one compiled loop."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterator
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, Params, apply_updates, with_extra_args_support
from optix.transforms.linesearch_protocol import check_budget
from optix.tree.casting import cast_like
from optix.tree.leafwise import compute_dtype
from optix.tree.math import norm as tree_norm
from optix.tree.state import get_all_with_path


class MinimizeStatus(enum.IntEnum):
    """Why ``minimize`` stopped: the values of ``MinimizeStats.status``."""

    GRAD_TOL = 0  # converged: the gradient norm is <= tol
    VALUE_TOL = 1  # converged: the relative decrease of the value is <= ftol
    MAX_ITER = 2  # max_iter updates were made
    MAX_FUN_EVALS = 3  # max_fun_evals evaluations of fun were made
    NON_FINITE = 4  # the value or gradient at the next iterate was NaN or inf
    NO_PROGRESS = 5  # the update left every parameter unchanged (e.g. a failed line search)


_RUNNING = -1


class MinimizeStats(NamedTuple):
    """What ``minimize`` did; ``MinimizeStatus(int(stats.status)).name`` says why it stopped."""

    num_iterations: jax.Array  # int32: updates computed
    num_fun_evals: jax.Array  # int32: evaluations of fun (with its gradient or alone)
    value: jax.Array  # fun at the returned params
    grad_norm: jax.Array  # norm (the `norm` argument) of the gradient at the returned params
    converged: jax.Array  # bool: status is GRAD_TOL or VALUE_TOL
    status: jax.Array  # int32: a MinimizeStatus


class _Carry(NamedTuple):
    params: Any
    state: Any
    value: jax.Array
    grad: Any
    grad_norm: jax.Array
    num_iterations: jax.Array
    num_fun_evals: jax.Array
    status: jax.Array


def minimize(
    fun: Callable[..., jax.Array],
    init_params: Params,
    tx: GradientTransformation,
    *,
    args: tuple = (),
    max_iter: int = 1000,
    tol: float = 1e-6,
    norm: Literal["l2", "inf"] = "l2",
    ftol: float | None = None,
    max_fun_evals: int | None = None,
) -> tuple[Params, MinimizeStats]:
    """Minimize ``fun(params, *args)`` with ``tx`` inside one ``jax.lax.while_loop``.

    Each iteration, with value, grad = fun and its gradient at params:

        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)
        params = params + updates
        value, grad = the (value, grad) pair tx stored in its state, if finite
                      (a line search's ``value``/``grad`` fields), else fun at params

    where f(p) = fun(p, *args). Transformations that need none of value, grad, value_fn
    ignore them, so L-BFGS, Newton, gradient descent and Adam all run here. The loop
    stops, in this order of checks, when the value or gradient is not finite
    (NON_FINITE: the last finite iterate is returned), when norm(grad) <= tol
    (GRAD_TOL), when (previous value - value) <= ftol * max(|previous value|, |value|, 1)
    (VALUE_TOL, only with ``ftol``; meant for monotone methods), when the update changed
    no parameter (NO_PROGRESS), after ``max_iter`` updates (MAX_ITER) or
    ``max_fun_evals`` evaluations (MAX_FUN_EVALS).

    Function evaluations count the initial one, the driver's own evaluations, and the
    evaluations transformations report in their state: every ``num_linesearch_steps``
    field (evaluations of the last update), and the growth of every ``func_evals`` field
    (a running total, as in ``optix.torch.lbfgs``) less the one evaluation the update was
    given. A pair reused from the state costs nothing.

    The solve is compiled once per (fun, tx, norm, whether ftol and max_fun_evals are
    given): pass the same ``fun`` and ``tx`` objects to reuse it; params, args and the
    numeric options are traced, so new data of the same shapes, or new tolerances, do
    not recompile. It also runs inside ``jax.jit`` and ``jax.vmap``.

    Args:
        fun: Scalar objective ``fun(params, *args)``, differentiable with JAX.
        init_params: Starting point (any pytree of arrays).
        tx: Any transformation; its update receives ``value``, ``grad``, ``value_fn``.
        args: Extra positional arguments of ``fun`` (data batches, constants).
        max_iter: Most updates to make, >= 0.
        tol: Stop when the gradient norm is <= tol, >= 0.
        norm: Gradient norm for ``tol`` and the stats: "l2" or "inf" (largest |entry|,
            SciPy's L-BFGS-B ``gtol`` convention).
        ftol: Relative decrease of the value under which to stop (SciPy's L-BFGS-B
            ``ftol`` convention), >= 0; ``None`` disables the test.
        max_fun_evals: Most evaluations of ``fun``, >= 1; ``None`` for no limit.

    Returns:
        ``(params, stats)``: the last iterate and a ``MinimizeStats``.

    References:
        Nocedal & Wright, "Numerical Optimization", 2nd ed., Springer 2006, chapter 3
        (line-search methods and their stopping tests).
        Checked against scipy.optimize.minimize in tests/test_minimization.py.
    """
    fn = "minimize"
    check_budget(fn, "max_iter", max_iter, 0)
    _checks.non_negative(fn, tol=tol)
    _checks.one_of(fn, "norm", norm, ("l2", "inf"))
    if ftol is not None:
        _checks.non_negative(fn, ftol=ftol)
    if max_fun_evals is not None:
        check_budget(fn, "max_fun_evals", max_fun_evals, 1)
    limits = (
        jnp.asarray(tol, jnp.result_type(float)),
        jnp.asarray(0.0 if ftol is None else ftol, jnp.result_type(float)),
        jnp.asarray(max_iter, jnp.int32),
        jnp.asarray(0 if max_fun_evals is None else max_fun_evals, jnp.int32),
    )
    return _solve(
        init_params,
        tuple(args),
        limits,
        fun=fun,
        tx=tx,
        norm=norm,
        use_ftol=ftol is not None,
        use_max_fun_evals=max_fun_evals is not None,
    )


@functools.partial(jax.jit, static_argnames=("fun", "tx", "norm", "use_ftol", "use_max_fun_evals"))
def _solve(params, args, limits, *, fun, tx, norm, use_ftol, use_max_fun_evals):
    tol, ftol, max_iter, max_fun_evals = limits
    tx = with_extra_args_support(tx)

    def value_fn(p):
        return fun(p, *args)

    value_and_grad = jax.value_and_grad(value_fn)

    def grad_norm(grad):
        wide = jax.tree.map(lambda g: g.astype(compute_dtype(g)), grad)
        return tree_norm(wide, ord="inf" if norm == "inf" else None)

    def finite(value, grad):
        leaves = [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grad)]
        return jnp.logical_and(jnp.isfinite(value), jnp.all(jnp.asarray([True, *leaves])))

    def status_of(ok, gnorm, decrease_small, moved, num_iterations, num_fun_evals):
        checks = [
            (~ok, MinimizeStatus.NON_FINITE),
            (gnorm <= tol.astype(gnorm.dtype), MinimizeStatus.GRAD_TOL),
            (decrease_small, MinimizeStatus.VALUE_TOL),
            (~moved, MinimizeStatus.NO_PROGRESS),
            (num_iterations >= max_iter, MinimizeStatus.MAX_ITER),
        ]
        if use_max_fun_evals:
            checks.append((num_fun_evals >= max_fun_evals, MinimizeStatus.MAX_FUN_EVALS))
        status = jnp.asarray(_RUNNING, jnp.int32)
        for condition, code in reversed(checks):
            status = jnp.where(condition, jnp.asarray(code, jnp.int32), status)
        return status

    def body(carry):
        objective = {"value": carry.value, "grad": carry.grad, "value_fn": value_fn}
        updates, state = tx.update(carry.grad, carry.state, carry.params, **objective)
        params = apply_updates(carry.params, updates)
        value, grad, own_evals = _next_value_and_grad(state, params, carry, value_and_grad)
        num_fun_evals = (
            carry.num_fun_evals + own_evals + _reported_evals(carry.state, state)
        ).astype(jnp.int32)
        num_iterations = carry.num_iterations + 1
        ok = finite(value, grad)
        gnorm = grad_norm(grad)
        decrease_small = jnp.asarray(False)
        if use_ftol:
            dt = compute_dtype(value)
            old, new = carry.value.astype(dt), value.astype(dt)
            scale = jnp.maximum(jnp.maximum(jnp.abs(old), jnp.abs(new)), jnp.ones([], dt))
            decrease_small = old - new <= ftol.astype(dt) * scale
        moved = _any_changed(params, carry.params)
        status = status_of(ok, gnorm, decrease_small, moved, num_iterations, num_fun_evals)
        new = _Carry(params, state, value, grad, gnorm, num_iterations, num_fun_evals, status)
        # A non-finite step is discarded: the carry keeps the last finite iterate.
        kept: tuple[Any, Any, Any, Any, Any]
        kept = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new[:5], carry[:5])
        return _Carry(*kept, num_iterations, num_fun_evals, status)

    value, grad = value_and_grad(params)
    gnorm = grad_norm(grad)
    zero = jnp.zeros([], jnp.int32)
    ok = finite(value, grad)
    status = status_of(ok, gnorm, jnp.asarray(False), jnp.asarray(True), zero, zero + 1)
    carry = _Carry(params, tx.init(params), value, grad, gnorm, zero, zero + 1, status)
    carry = jax.lax.while_loop(lambda c: c.status == _RUNNING, body, carry)
    converged = carry.status <= MinimizeStatus.VALUE_TOL  # GRAD_TOL or VALUE_TOL
    counts = (carry.num_iterations, carry.num_fun_evals, carry.value, carry.grad_norm)
    return carry.params, MinimizeStats(*counts, converged, carry.status)


def _next_value_and_grad(state, params, carry, value_and_grad):
    """fun and its gradient at ``params``, from ``state`` when a line search stored them."""
    pair = _stored_pair(state)
    if pair is None:
        value, grad = value_and_grad(params)
        return value, grad, 1
    stored_value, stored_grad = pair
    stored_value = jnp.asarray(stored_value).astype(carry.value.dtype)
    stored_grad = cast_like(stored_grad, carry.grad)

    def evaluate():
        value, grad = value_and_grad(params)
        return value, grad, jnp.ones([], jnp.int32)

    return jax.lax.cond(
        jnp.isfinite(stored_value),
        lambda: (stored_value, stored_grad, jnp.zeros([], jnp.int32)),
        evaluate,
    )


def _stored_pair(state: Any) -> tuple[Any, Any] | None:
    """``(value, grad)`` of the last NamedTuple in ``state`` (in chain order) holding both.

    A line search stores fun and its gradient at the point it accepted there; with the
    line search last in the chain, that point is the next iterate.
    """
    pairs = [(node.value, node.grad) for node in _namedtuples(state)]
    pairs = [(v, g) for v, g in pairs if g is not None and v is not None]
    return pairs[-1] if pairs else None


def _namedtuples(node: Any) -> Iterator[Any]:
    """NamedTuples with ``value`` and ``grad`` fields inside ``node``, depth first, in order."""
    fields = getattr(node, "_fields", None)
    if isinstance(node, tuple) and fields is not None:
        if "value" in fields and "grad" in fields:
            yield node
        children = [getattr(node, f) for f in fields]
    elif isinstance(node, tuple | list):
        children = list(node)
    elif isinstance(node, dict):
        children = list(node.values())
    else:
        return
    for child in children:
        yield from _namedtuples(child)


def _any_changed(new: Any, old: Any) -> jax.Array:
    changed = [
        jnp.any(a != b) for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old), strict=True)
    ]
    return jnp.any(jnp.asarray([False, *changed]))


def _reported_evals(old_state: Any, new_state: Any) -> jax.Array:
    """Evaluations of fun the transformations report having made in one update.

    Each ``num_linesearch_steps`` field counts the evaluations of the last update; a
    ``func_evals`` field is a running total that, as torch.optim.LBFGS's, also counts
    the evaluation the update was given (the driver's, counted already).
    """
    total = jnp.zeros([], jnp.int32)
    for _, steps in get_all_with_path(new_state, "num_linesearch_steps"):
        total = total + jnp.asarray(steps).astype(jnp.int32)
    old = get_all_with_path(old_state, "func_evals")
    new = get_all_with_path(new_state, "func_evals")
    for (_, before), (_, after) in zip(old, new, strict=True):
        total = total + (jnp.asarray(after) - jnp.asarray(before) - 1).astype(jnp.int32)
    return total
