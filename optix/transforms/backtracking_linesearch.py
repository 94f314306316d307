"""Backtracking line search: shrink the step size until the objective decreases enough (Armijo)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, safe_increment, zero_count
from optix.transforms import linesearch_protocol as protocol
from optix.tree.casting import cast_like
from optix.tree.math import zeros_like
from optix.tree.structure import check_same_structure


class BacktrackingLinesearchInfo(NamedTuple):
    """What the last backtracking search did (Optax's class and fields)."""

    num_linesearch_steps: jax.Array  # int32: value_fn evaluations in the last update
    decrease_error: jax.Array  # sufficient-decrease violation at the last step tried (0: holds)


class BacktrackingLinesearchInfoWithStatus(NamedTuple):
    """``BacktrackingLinesearchInfo`` and the search's ``status``: the ``info`` of
    ``scale_by_backtracking_linesearch(..., keep_status=True)``."""

    num_linesearch_steps: jax.Array  # int32: value_fn evaluations in the last update
    decrease_error: jax.Array  # sufficient-decrease violation at the last step tried (0: holds)
    status: jax.Array  # int32: linesearch_protocol.SUCCEEDED (0) or what went wrong


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of ``scale_by_backtracking_linesearch`` (Optax's class and fields)."""

    learning_rate: jax.Array  # the step size that scaled the last updates
    value: jax.Array  # value_fn at the params the last step moved to (inf before any)
    grad: Any  # param-shaped gradient there with store_grad, else None
    info: BacktrackingLinesearchInfo | BacktrackingLinesearchInfoWithStatus


class _Search(NamedTuple):
    learning_rate: jax.Array
    value: jax.Array
    grad: Any
    decrease_error: jax.Array
    count: jax.Array  # type: ignore[assignment]


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: jax.typing.ArrayLike = 1e-4,
    decrease_factor: jax.typing.ArrayLike = 0.8,
    increase_factor: jax.typing.ArrayLike = 1.5,
    max_learning_rate: jax.typing.ArrayLike = 1.0,
    atol: jax.typing.ArrayLike = 0.0,
    rtol: jax.typing.ArrayLike = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
    *,
    keep_status: bool = False,
) -> GradientTransformation:
    """Scale the updates by the first step size tried that decreases the objective enough.

    With f = value_fn, w the params, u the updates and ``slope = <grad, u>``, the step sizes
    tried are eta_0 = min(increase_factor * previous eta, max_learning_rate), then
    eta_k = decrease_factor * eta_(k-1), until one satisfies the Armijo condition

        f(w + eta u) <= (1 + rtol) * f(w) + slope_rtol * eta * slope + atol

    or ``max_backtracking_steps`` shrinks have been tried; the result is eta * u. One
    ``value_fn`` evaluation per step size; with ``store_grad`` the gradient at the
    accepted step is computed too (by a VJP), so ``value_and_grad_from_state`` can reuse
    it. u must be a descent direction (slope < 0) for a step to exist.

    If no step size passes, the last one tried is used; if its value (or gradient) is
    NaN or inf, no step is made (eta = 0) and the state keeps f(w) and the given grad.
    The search's status says which (see ``optix.transforms.linesearch_protocol``):
    ``verbose`` prints it with what to change, ``keep_status`` stores it as
    ``info.status``.

    Differences from Optax (same numbers otherwise): extra arguments ``value_fn`` does
    not accept are ignored (Optax raises); a value of -inf fails the condition; after a
    step size of 0 the next search starts at ``max_learning_rate`` (Optax's stays at 0
    forever) and the state holds f(w), not NaN; the stored scalars are >= float32 for
    bf16/f16 params.

    Args:
        max_backtracking_steps: Most shrinks per update, an int >= 0 (evaluations: at
            most one more).
        slope_rtol: Sufficient-decrease constant, in [0, 1).
        decrease_factor: Shrink factor of the step size, in (0, 1).
        increase_factor: Growth of the first guess over the previous step size, >= 1
            (``inf``: always start at ``max_learning_rate``).
        max_learning_rate: Largest step size tried, > 0.
        atol: Absolute slack of the condition, >= 0.
        rtol: Relative slack on f(w), >= 0.
        store_grad: Store the gradient at the accepted step (else ``grad`` is None).
        verbose: Print a diagnosis when no step size passes.
        keep_status: Store the status in the state: ``info`` is then
            ``BacktrackingLinesearchInfoWithStatus`` (Optax's
            ``BacktrackingLinesearchInfo`` otherwise).

    Returns:
        A GradientTransformation whose state is ``ScaleByBacktrackingLinesearchState``;
        its ``update`` needs ``params``, ``value``, ``grad`` and ``value_fn``.

    References:
        Armijo, "Minimization of functions having Lipschitz continuous first partial
        derivatives", Pacific J. Math. 1966. Vaswani et al., "Painless Stochastic
        Gradient", NeurIPS 2019, arXiv:1905.09997. Nocedal & Wright, "Numerical
        Optimization", Springer 2006, Algorithm 3.1.
        Checked against optax.scale_by_backtracking_linesearch in
        tests/transforms/test_backtracking_linesearch.py.
    """
    fn = "scale_by_backtracking_linesearch"
    protocol.check_budget(fn, "max_backtracking_steps", max_backtracking_steps, 0)
    _checks.in_unit_interval(fn, slope_rtol=slope_rtol)
    protocol.check_range(fn, "decrease_factor", decrease_factor, "in (0, 1)", lambda x: 0 < x < 1)
    protocol.check_range(fn, "increase_factor", increase_factor, ">= 1", lambda x: x >= 1)
    _checks.positive(fn, max_learning_rate=max_learning_rate)
    _checks.non_negative(fn, atol=atol, rtol=rtol)

    def make_info(*fields):
        if keep_status:
            return BacktrackingLinesearchInfoWithStatus(*fields)
        return BacktrackingLinesearchInfo(*fields[:-1])

    def init(params):
        dt = protocol.scalar_dtype(params)
        inf = jnp.asarray(jnp.inf, dt)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.ones([], dt),
            value=inf,
            grad=zeros_like(params) if store_grad else None,
            info=make_info(zero_count(), inf, zero_count()),
        )

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        value_fn = protocol.check_objective(fn, params, value, grad, value_fn)
        stored = {"state.grad": state.grad} if store_grad else {}
        check_same_structure(fn, updates=updates, params=params, **stored)
        kwargs = protocol.value_fn_kwargs(value_fn, extra_args)
        dt = protocol.scalar_dtype(params)
        value = jnp.asarray(value, dt)
        grad = cast_like(grad, zeros_like(params))
        slope = protocol.slope_along(grad, updates, dt, conjugated=True)
        c1, tolerance = jnp.asarray(slope_rtol, dt), jnp.asarray(atol, dt)
        threshold = jnp.asarray(1.0 + rtol, dt) * value
        last = jnp.asarray(max_backtracking_steps, jnp.int32)

        def body(s):
            lr = jnp.where(
                s.count > 0, jnp.asarray(decrease_factor, dt) * s.learning_rate, s.learning_rate
            )
            point = protocol.point_on_line(params, lr, updates)
            if store_grad:
                raw, vjp = jax.vjp(lambda p: value_fn(p, **kwargs), point)
            else:
                raw = value_fn(point, **kwargs)
            new_value = jnp.asarray(raw, dt)
            error = jnp.maximum(new_value - threshold - lr * c1 * slope, 0.0)
            error = jnp.where(jnp.isfinite(new_value) & ~jnp.isnan(error), error, jnp.inf)
            new_grad = s.grad
            if store_grad:
                # The gradient (one VJP) only at the step the search stops at.
                new_grad = jax.lax.cond(
                    (error <= tolerance) | (s.count == last),
                    lambda: cast_like(vjp(jnp.ones_like(raw))[0], grad),
                    lambda: s.grad,
                )
            return _Search(lr, new_value, new_grad, error, safe_increment(s.count))

        previous = state.learning_rate.astype(dt)
        max_lr = jnp.asarray(max_learning_rate, dt)
        guess = jnp.minimum(jnp.asarray(increase_factor, dt) * previous, max_lr)
        guess = jnp.where(previous > 0.0, guess, max_lr)
        start = _Search(
            guess, value, grad if store_grad else None, jnp.asarray(jnp.inf, dt), zero_count()
        )
        s = jax.lax.while_loop(
            lambda s: ~(s.decrease_error <= tolerance) & (s.count <= last), body, start
        )
        # A non-finite last value: no step; the state describes the params unchanged.
        stuck = jnp.isinf(s.decrease_error)
        learning_rate = jnp.where(stuck, jnp.zeros_like(s.learning_rate), s.learning_rate)
        new_value = jnp.where(stuck, value, s.value)
        new_grad = jax.tree.map(lambda g, g0: jnp.where(stuck, g0, g), s.grad, start.grad)
        status = jnp.where(
            s.decrease_error <= tolerance,
            protocol.SUCCEEDED,
            jnp.where(
                ~(slope < 0.0),
                protocol.NOT_A_DESCENT_DIRECTION,
                jnp.where(stuck, protocol.NON_FINITE_VALUES, protocol.NO_STEPSIZE_FOUND),
            ),
        ).astype(jnp.int32)
        if verbose:
            protocol.report(
                fn,
                status,
                learning_rate=s.learning_rate,
                value=value,
                slope=slope,
                decrease_error=s.decrease_error,
                num_steps=s.count,
            )
        info = make_info(s.count, s.decrease_error, status)
        new_state = ScaleByBacktrackingLinesearchState(learning_rate, new_value, new_grad, info)
        return protocol.scale_updates(learning_rate, updates), new_state

    return GradientTransformation(init, update)
