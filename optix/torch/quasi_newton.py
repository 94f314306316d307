"""torch.optim.LBFGS as an optix transformation: one ``update`` is one ``step(closure)``."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, safe_increment, zero_count
from optix.torch.strong_wolfe import py_min, strong_wolfe
from optix.transforms.flatten import flatten_tree, unflatten_like
from optix.transforms.linesearch_protocol import check_objective, value_fn_kwargs
from optix.tree.leafwise import compute_dtype
from optix.tree.structure import check_same_structure

FN = "optix.torch.lbfgs"


class TorchLBFGSState(NamedTuple):
    """State of ``optix.torch.lbfgs``: torch's ``optimizer.state`` over the flat params."""

    count: jax.Array  # type: ignore[assignment]  # int32: updates so far (torch's step() calls)
    func_evals: jax.Array  # int32: value_fn evaluations so far, torch's state["func_evals"]
    n_iter: jax.Array  # int32: L-BFGS iterations so far, torch's state["n_iter"]
    d: jax.Array  # (n,) the last search direction
    t: jax.Array  # the last step length
    old_dirs: jax.Array  # (history_size, n) ring buffer of gradient differences y
    old_stps: jax.Array  # (history_size, n) ring buffer of steps s = d * t
    ro: jax.Array  # (history_size,) 1 / (y . s)
    history_count: jax.Array  # int32: pairs held, torch's len(old_dirs)
    history_next: jax.Array  # int32: the slot the next pair is written to
    H_diag: jax.Array  # scale of the initial inverse Hessian: y . s / (y . y)
    prev_flat_grad: jax.Array  # (n,)
    prev_loss: jax.Array
    nonfinite_evals: jax.Array  # int32: evaluations that gave a NaN or infinite value or gradient
    layout: Any  # params-shaped tree of empty (0, *shape) arrays: rejects a state of other params


class _Iteration(NamedTuple):
    state: TorchLBFGSState | None  # None inside the step branches, which need no state
    x: jax.Array  # the flat params
    loss: jax.Array
    flat_grad: jax.Array
    n_iter: jax.Array  # int32: iterations in this update
    current_evals: jax.Array  # int32: evaluations in this update
    stop: jax.Array


def _max_abs(v: jax.Array) -> jax.Array:
    return jnp.max(jnp.abs(v), initial=0)


def _remember(s: TorchLBFGSState, y: jax.Array, step: jax.Array, push: jax.Array):
    """Write (y, s, 1 / ys) over the oldest pair when ``push``; rows are rewritten in place."""
    i, size = s.history_next, s.ro.shape[0]
    ys = jnp.dot(y, step)

    def put(buffer, row):
        return buffer.at[i].set(jnp.where(push, row, buffer[i]))

    return s._replace(
        old_dirs=put(s.old_dirs, y),
        old_stps=put(s.old_stps, step),
        ro=put(s.ro, 1.0 / ys),
        history_next=jnp.where(push, (i + 1) % size, i),
        history_count=jnp.where(push, jnp.minimum(s.history_count + 1, size), s.history_count),
        H_diag=jnp.where(push, ys / jnp.dot(y, y), s.H_diag),
    )


def _direction(g: jax.Array, s: TorchLBFGSState) -> jax.Array:
    """The two-loop recursion from -g: newest pair to oldest, scale by H_diag, oldest to newest."""
    size = s.ro.shape[0]

    def slot(k):  # the k-th newest pair
        return (s.history_next - 1 - k) % size

    def newest_first(k, carry):
        q, al = carry
        i = slot(k)
        a = jnp.dot(s.old_stps[i], q) * s.ro[i]
        return q + (-a) * s.old_dirs[i], al.at[k].set(a)

    q, al = jax.lax.fori_loop(0, s.history_count, newest_first, (-g, jnp.zeros_like(s.ro)))

    def oldest_first(j, r):
        k = s.history_count - 1 - j
        i = slot(k)
        be = jnp.dot(s.old_dirs[i], r) * s.ro[i]
        return r + (al[k] - be) * s.old_stps[i]

    return jax.lax.fori_loop(0, s.history_count, oldest_first, q * s.H_diag)


def _check_layout(params: Any, layout: Any) -> None:
    check_same_structure(FN, params=params, state_layout=layout)
    ours = [(p.shape, p.dtype) for p in jax.tree.leaves(params)]
    theirs = [(x.shape[1:], x.dtype) for x in jax.tree.leaves(layout)]
    if ours != theirs:
        raise ValueError(
            f"{FN}: the state was made by init for params of shapes and dtypes {theirs}, "
            f"got params of {ours}. Call init on these params."
        )


def lbfgs(
    lr: ScalarOrSchedule = 1,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> GradientTransformation:
    """torch.optim.LBFGS: one ``update`` runs one ``optimizer.step(closure)`` as a jax loop.

    Call ``update(grads, state, params, value=f(params), value_fn=f)``: ``value, grads =
    jax.value_and_grad(f)(params)`` is torch's first closure call (``grad=`` is read if
    ``grads`` is None), later ones are ``jax.value_and_grad(f)`` at new points, and extra
    arguments go to ``f`` when its signature takes them. The update is the new params
    minus the params. All leaves form one vector x (in >= float32); with g its gradient,
    loss the value and n_iter counting iterations over all updates, stop at once if
    max|g| <= tolerance_grad, else repeat up to max_iter times:

        n_iter += 1
        if n_iter > 1:
            y = g - prev_flat_grad; s = d * t
            if y . s > 1e-10: push (y, s, 1 / (y . s)), dropping the oldest of
                history_size pairs; H_diag = (y . s) / (y . y)
        d = -H g by the two-loop recursion over the pairs (d = -g when n_iter == 1)
        prev_flat_grad, prev_loss = g, loss
        t = min(1, 1 / sum|g|) * lr if n_iter == 1 else lr
        gtd = g . d; stop if gtd > -tolerance_change
        "strong_wolfe": loss, g, t = torch's line search from t (at most
            max_eval - evals evaluations); x = x + t * d
        None: x = x + t * d; loss, g = f(x) unless this is iteration max_iter
        stop if this is iteration max_iter, evals >= max_eval, max|g| <= tolerance_grad,
            max|d * t| <= tolerance_change, or |loss - prev_loss| < tolerance_change

    torch's quirks are kept: the line search uses c1 = 1e-4, c2 = 0.9 and a bracket
    tolerance of 1e-9 whatever tolerance_change is; a step that stops on gtd keeps
    the new d and t, so the next step's s = d * t was never taken; with max_iter=1 the
    default max_eval = 1 leaves the line search no evaluation beyond its first, so it
    returns t when f(x + t d) < f(x) and 0 otherwise, and the params may never move.
    Where torch turns NaN or infinite values of f into NaN params, this stops: a
    non-finite value or gradient at the params makes no step; one after a fixed step
    returns to the last finite point (t = 0) and ends the update; in the line search
    it counts as failing sufficient decrease, so the search bisects towards finite
    points. ``state.nonfinite_evals`` counts those evaluations.

    Args:
        lr: Step length, >= 0, or a schedule of the update count (torch's
            ``param_group["lr"]`` set before each step).
        max_iter: Iterations per update, >= 1.
        max_eval: Evaluations of f per update, >= 1; default ``max_iter * 5 // 4``.
        tolerance_grad: Stop when max|g| <= tolerance_grad, >= 0.
        tolerance_change: Stop when the step or the change of loss is below it, >= 0.
        history_size: Pairs (y, s) kept, >= 1 (two (history_size, n) buffers, as torch).
        line_search_fn: None (fixed steps of length t) or ``"strong_wolfe"``.

    Returns:
        A GradientTransformation with state ``TorchLBFGSState`` (torch's state fields).

    References:
        Nocedal, "Updating quasi-Newton matrices with limited storage", Mathematics of
        Computation 35(151), 1980. Liu and Nocedal, "On the limited memory BFGS method
        for large scale optimization", Mathematical Programming 45, 1989.
        Checked against torch.optim.LBFGS in tests/torch/test_lbfgs.py.
    """
    _checks.non_negative(FN, allow_schedule=True, lr=lr)
    _checks.non_negative(FN, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change)
    _checks.integer_at_least(FN, "max_iter", max_iter, 1)
    max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
    _checks.integer_at_least(FN, "max_eval", max_eval, 1)
    _checks.integer_at_least(FN, "history_size", history_size, 1)
    _checks.one_of(FN, "line_search_fn", line_search_fn, (None, "strong_wolfe"))

    def init(params):
        _checks.real_params(FN, params, "the history is kept as one flat real vector")
        leaves = jax.tree.leaves(params)
        dtype = compute_dtype(*leaves)
        n = sum(math.prod(leaf.shape) for leaf in leaves)
        scalar = jnp.zeros([], dtype)
        return TorchLBFGSState(
            count=zero_count(),
            func_evals=zero_count(),
            n_iter=zero_count(),
            d=jnp.zeros([n], dtype),
            t=scalar,
            old_dirs=jnp.zeros([history_size, n], dtype),
            old_stps=jnp.zeros([history_size, n], dtype),
            ro=jnp.zeros([history_size], dtype),
            history_count=zero_count(),
            history_next=zero_count(),
            H_diag=jnp.ones([], dtype),
            prev_flat_grad=jnp.zeros([n], dtype),
            prev_loss=scalar,
            nonfinite_evals=zero_count(),
            layout=jax.tree.map(lambda p: jnp.zeros((0, *p.shape), p.dtype), params),
        )

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        grads = grad if updates is None else updates
        value_fn = check_objective(FN, params, value, grads, value_fn)
        check_same_structure(FN, updates=grads, params=params)
        _check_layout(params, state.layout)
        kwargs = value_fn_kwargs(value_fn, extra)
        dtype = state.d.dtype
        rate = jnp.asarray(lr(state.count) if callable(lr) else lr, dtype)
        x0 = flatten_tree(params).astype(dtype)
        one = jnp.ones([], jnp.int32)

        def evaluate(x):
            loss, g = jax.value_and_grad(lambda v: value_fn(unflatten_like(params, v), **kwargs))(x)
            return jnp.asarray(loss, dtype), g

        def finite(loss, g):
            return jnp.isfinite(loss) & jnp.all(jnp.isfinite(g))

        def line_search(c, d, t, gtd):
            loss, g, t, evals, bad = strong_wolfe(
                lambda t: evaluate(c.x + t * d), t, d, c.loss, c.flat_grad, gtd,
                max_eval - c.current_evals,
            )  # fmt: skip
            return c.x + t * d, loss, g, t, evals, bad

        def fixed_step(c, d, t, gtd):
            def reevaluate(x):
                loss, g = evaluate(x)
                ok = finite(loss, g)
                # Non-finite: back to the last finite point (a step of t = 0); the loop stops.
                new, old = (x, loss, g, t), (c.x, c.loss, c.flat_grad, 0 * t)
                kept = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
                return *kept, one, (~ok).astype(jnp.int32)

            last = lambda x: (x, c.loss, c.flat_grad, t, 0 * one, 0 * one)
            return jax.lax.cond(c.n_iter != max_iter, reevaluate, last, c.x + t * d)

        def no_step(c, d, t, gtd):
            return c.x, c.loss, c.flat_grad, t, 0 * one, 0 * one

        def iteration(c: _Iteration) -> _Iteration:
            s = c.state
            assert s is not None  # the loop's carry always holds it
            c = c._replace(n_iter=c.n_iter + 1)
            s = s._replace(n_iter=safe_increment(s.n_iter))
            first, g = s.n_iter == 1, c.flat_grad
            y, step = g - s.prev_flat_grad, s.d * s.t
            s = _remember(s, y, step, ~first & (jnp.dot(y, step) > 1e-10))
            d = _direction(g, s)
            t = jnp.where(
                first, py_min(jnp.ones([], dtype), 1.0 / jnp.sum(jnp.abs(g))) * rate, rate
            )
            gtd = jnp.dot(g, d)
            descent = ~(gtd > -tolerance_change)
            take_step = line_search if line_search_fn == "strong_wolfe" else fixed_step
            # The branches need no state: keep the pair buffers out of the cond.
            x, loss, g, t, evals, bad = jax.lax.cond(
                descent, take_step, no_step, c._replace(state=None), d, t, gtd
            )
            current_evals = c.current_evals + evals
            s = s._replace(
                d=d,
                t=t,
                prev_flat_grad=c.flat_grad,
                prev_loss=c.loss,
                func_evals=s.func_evals + evals,
                nonfinite_evals=s.nonfinite_evals + bad,
            )
            stop = (
                ~descent
                | ((bad > 0) & (take_step is fixed_step))
                | (c.n_iter == max_iter)
                | (current_evals >= max_eval)
                | (_max_abs(g) <= tolerance_grad)
                | (_max_abs(d * t) <= tolerance_change)
                | (jnp.abs(loss - c.loss) < tolerance_change)
            )
            return _Iteration(s, x, loss, g, c.n_iter, current_evals, stop)

        loss, g = jnp.asarray(value, dtype), flatten_tree(grads).astype(dtype)
        ok = finite(loss, g)
        state = state._replace(
            func_evals=state.func_evals + 1,
            nonfinite_evals=state.nonfinite_evals + (~ok).astype(jnp.int32),
        )
        stop = ~ok | (_max_abs(g) <= tolerance_grad)
        start = _Iteration(state, x0, loss, g, 0 * one, one, stop)
        end = jax.lax.while_loop(lambda c: ~c.stop, iteration, start)
        assert end.state is not None  # the loop's carry always holds it
        state = end.state._replace(count=safe_increment(state.count))
        return unflatten_like(grads, end.x - x0), state

    return GradientTransformation(init, update)
