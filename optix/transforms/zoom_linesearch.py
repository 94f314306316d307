"""Zoom line search: a step size with sufficient decrease and small curvature (strong Wolfe)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, zero_count
from optix.transforms import linesearch_protocol as protocol
from optix.transforms.zoom_search import ZoomHyperparams, outcome, run_search
from optix.tree.casting import cast_like
from optix.tree.math import zeros_like
from optix.tree.structure import check_same_structure


class ZoomLinesearchInfo(NamedTuple):
    """What the last zoom line search did (Optax's class and fields)."""

    num_linesearch_steps: jax.Array  # int32: value_fn evaluations in the last update
    decrease_error: jax.Array  # sufficient-decrease violation at the last step tried (0: holds)
    curvature_error: jax.Array  # curvature violation at the last step tried (0: holds)


class ZoomLinesearchInfoWithStatus(NamedTuple):
    """``ZoomLinesearchInfo`` and the search's ``status``: the ``info`` of
    ``scale_by_zoom_linesearch(..., keep_status=True)``."""

    num_linesearch_steps: jax.Array  # int32: value_fn evaluations in the last update
    decrease_error: jax.Array  # sufficient-decrease violation at the last step tried (0: holds)
    curvature_error: jax.Array  # curvature violation at the last step tried (0: holds)
    status: jax.Array  # int32: linesearch_protocol.SUCCEEDED (0) or what went wrong


class ScaleByZoomLinesearchState(NamedTuple):
    """State of ``scale_by_zoom_linesearch`` (Optax's class and fields)."""

    learning_rate: jax.Array  # the step size that scaled the last updates
    value: jax.Array  # value_fn at the params the last step moved to (inf before any)
    grad: Any  # param-shaped: its gradient there (read by value_and_grad_from_state)
    info: ZoomLinesearchInfo | ZoomLinesearchInfoWithStatus


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: jax.typing.ArrayLike | None = None,
    tol: jax.typing.ArrayLike = 0.0,
    increase_factor: jax.typing.ArrayLike = 2.0,
    slope_rtol: jax.typing.ArrayLike = 1e-4,
    curv_rtol: jax.typing.ArrayLike = 0.9,
    approx_dec_rtol: jax.typing.ArrayLike | None = 1e-6,
    stepsize_precision: jax.typing.ArrayLike = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
    *,
    keep_status: bool = False,
) -> GradientTransformation:
    """Scale the updates by a step size satisfying the strong Wolfe conditions.

    The updates u must be a descent direction at the params w (``slope = <grad, u> < 0``;
    put ``scale(-1.0)`` or a quasi-Newton direction before this). The search looks for
    eta with, for f = value_fn (``tol`` relaxing both):

        f(w + eta u) <= f(w) + slope_rtol * eta * slope               (sufficient decrease)
        |<grad f(w + eta u), u>| <= curv_rtol * |slope|                (small curvature)

    and returns eta * u. Near a minimum, where f cannot resolve the decrease, the first
    condition may be met instead by Hager and Zhang's approximate form
    ``<grad f(w + eta u), u> <= (2 slope_rtol - 1) slope``, accepted when
    ``f(w + eta u) <= f(w) + approx_dec_rtol * |f(w)|`` (``approx_dec_rtol=None``: off).
    Bracketing tries eta = guess, increase_factor * guess, ... (capped at
    ``max_learning_rate``) until a bracket holds a good step; zooming then tries the
    safeguarded minimizer of a cubic (else a quadratic, else the midpoint) fitted to the
    bracket's ends, one ``value_fn`` and gradient evaluation per try.

    The search stops after ``max_linesearch_steps`` evaluations, or once the bracket is
    shorter than ``stepsize_precision`` and a step of sufficient decrease is known. It
    then returns the best step of sufficient decrease; with none, the last step tried
    (no step, eta = 0, when that one gave NaN or inf). The search's status says which
    (see ``optix.transforms.linesearch_protocol``): ``verbose`` prints it with what to
    change, ``keep_status`` stores it as ``info.status``.

    Differences from Optax (same numbers otherwise): extra arguments ``value_fn`` does
    not accept are ignored (Optax raises); a value of -inf or a non-finite gradient
    fails the decrease condition (Optax may accept -inf); with ``"keep"``, a previous
    failed search's step size 0 restarts from 1 (Optax's stays at 0 forever); the
    stored scalars are >= float32 for bf16/f16 params.

    Args:
        max_linesearch_steps: Most ``value_fn`` evaluations per update, an int >= 1.
        max_learning_rate: Largest step size tried, > 0; None for no bound.
        tol: Slack on both conditions, >= 0.
        increase_factor: Growth of the step size while bracketing, > 1.
        slope_rtol: Sufficient-decrease constant (Nocedal & Wright's c1), in [0, 1).
        curv_rtol: Curvature constant (c2), > slope_rtol; ``jnp.inf`` drops the condition.
        approx_dec_rtol: Relative band on f(w) where the approximate decrease condition
            is accepted, >= 0; None uses only the Armijo condition.
        stepsize_precision: Bracket length below which the search returns its best step
            of sufficient decrease, >= 0.
        initial_guess_strategy: First step size tried: "one" (1.0, for Newton and
            quasi-Newton directions) or "keep" (the previous step size, for gradients).
        verbose: Print a diagnosis when the search does not succeed.
        keep_status: Store the status in the state: ``info`` is then
            ``ZoomLinesearchInfoWithStatus`` (Optax's ``ZoomLinesearchInfo`` otherwise).

    Returns:
        A GradientTransformation whose state is ``ScaleByZoomLinesearchState``; its
        ``update`` needs ``params``, ``value``, ``grad`` and ``value_fn``.

    References:
        Nocedal & Wright, "Numerical Optimization", Springer 2006, Algorithms 3.5 and
        3.6. Hager & Zhang, "Algorithm 851: CG_DESCENT", ACM TOMS 2006, eq. (23).
        Checked against optax.scale_by_zoom_linesearch in
        tests/transforms/test_zoom_linesearch.py.
    """
    fn = "scale_by_zoom_linesearch"
    protocol.check_budget(fn, "max_linesearch_steps", max_linesearch_steps, 1)
    if max_learning_rate is not None:
        _checks.positive(fn, max_learning_rate=max_learning_rate)
    _checks.non_negative(fn, tol=tol, stepsize_precision=stepsize_precision)
    if approx_dec_rtol is not None:
        _checks.non_negative(fn, approx_dec_rtol=approx_dec_rtol)
    protocol.check_range(fn, "increase_factor", increase_factor, "> 1", lambda x: x > 1)
    _checks.in_unit_interval(fn, slope_rtol=slope_rtol)
    low = slope_rtol if isinstance(slope_rtol, int | float) else 0.0
    protocol.check_range(fn, "curv_rtol", curv_rtol, f"> slope_rtol={low}", lambda x: x > low)
    _checks.one_of(fn, "initial_guess_strategy", initial_guess_strategy, ("one", "keep"))

    def make_info(*fields):
        if keep_status:
            return ZoomLinesearchInfoWithStatus(*fields)
        return ZoomLinesearchInfo(*fields[:-1])

    def hyperparams(dt) -> ZoomHyperparams:
        def c(x):
            return None if x is None else jnp.asarray(x, dt)

        return ZoomHyperparams(
            jnp.asarray(max_linesearch_steps, jnp.int32),
            c(max_learning_rate),
            c(tol),
            c(increase_factor),
            c(slope_rtol),
            c(2 * slope_rtol - 1.0),
            c(curv_rtol),
            c(approx_dec_rtol),
            c(stepsize_precision),
        )

    def init(params):
        dt = protocol.scalar_dtype(params)
        inf = jnp.asarray(jnp.inf, dt)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones([], dt),
            value=inf,
            grad=zeros_like(params),
            info=make_info(zero_count(), inf, inf, zero_count()),
        )

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra_args):
        value_fn = protocol.check_objective(fn, params, value, grad, value_fn)
        check_same_structure(fn, updates=updates, params=params, **{"state.grad": state.grad})
        kwargs = protocol.value_fn_kwargs(value_fn, extra_args)
        dt = protocol.scalar_dtype(params)
        hp = hyperparams(dt)

        def evaluate(stepsize):
            point = protocol.point_on_line(params, stepsize, updates)
            new_value, new_grad = jax.value_and_grad(value_fn)(point, **kwargs)
            new_grad = cast_like(new_grad, state.grad)
            return jnp.asarray(new_value, dt), new_grad, protocol.slope_along(new_grad, updates, dt)

        value = jnp.asarray(value, dt)
        grad = cast_like(grad, state.grad)
        slope = protocol.slope_along(grad, updates, dt, conjugated=True)
        previous = state.learning_rate.astype(dt)
        if initial_guess_strategy == "one":
            guess = jnp.ones([], dt)
        else:
            guess = jnp.where(previous > 0.0, previous, jnp.ones([], dt))
        search = run_search(evaluate, hp, guess, value, grad, slope)
        learning_rate, new_value, new_grad, status = outcome(search, hp, slope)
        if verbose:
            protocol.report(
                fn,
                status,
                learning_rate=learning_rate,
                value=value,
                slope=slope,
                decrease_error=search.decrease_error,
                curvature_error=search.curvature_error,
                num_steps=search.count,
            )
        info = make_info(search.count, search.decrease_error, search.curvature_error, status)
        new_state = ScaleByZoomLinesearchState(learning_rate, new_value, new_grad, info)
        return protocol.scale_updates(learning_rate, updates), new_state

    return GradientTransformation(init, update)
