"""The loop of the zoom line search: bracketing (Nocedal & Wright's Algorithm 3.5), then
zooming into the bracket (Algorithm 3.6), one ``value_fn`` evaluation per iteration.

The search is a ``lax.while_loop`` over ``ZoomSearchState``; it stops when a step
satisfies both conditions (``done``) or the search gives up (``failed``: the budget ran
out, or the bracket is below ``interval_threshold`` once a step of sufficient decrease
is known). ``outcome`` then picks the step returned and the status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix.core import safe_increment, zero_count
from optix.transforms import linesearch_protocol as protocol
from optix.transforms.zoom_interpolation import next_trial


class ZoomHyperparams(NamedTuple):
    """The search's constants, as arrays of the scalar dtype (``None``: option off)."""

    max_steps: Any
    max_stepsize: Any
    tol: Any
    increase_factor: Any
    slope_rtol: Any
    approx_slope: Any  # 2 * slope_rtol - 1, formed in Python's double before the cast
    curv_rtol: Any
    approx_dec_rtol: Any
    interval_threshold: Any


class ZoomSearchState(NamedTuple):
    """State of the loop within one update (not kept between updates)."""

    count: jax.Array  # type: ignore[assignment]  # int32: value_fn evaluations so far
    stepsize: jax.Array  # last step size tried, with its value, gradient and slope
    value: jax.Array
    grad: Any
    slope: jax.Array
    decrease_error: jax.Array  # > 0: sufficient decrease violated at the last step tried
    curvature_error: jax.Array  # > 0: small curvature violated at the last step tried
    interval_found: jax.Array  # bool: bracketing over, zooming
    done: jax.Array  # bool: stop, the last step tried is returned
    failed: jax.Array  # bool: stop, see ``outcome`` for the step returned
    interval_too_small: jax.Array  # bool: failed because the bracket shrank
    # The bracket: ``low`` has the lower value (it may be the larger step size).
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array  # the end dropped last: the cubic's third point
    value_cubic_ref: jax.Array
    # The best step of sufficient decrease so far (0: none yet).
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Any


def decrease_error(hp, stepsize, value, slope, value_init, slope_init):
    """How much the sufficient-decrease condition is violated (0: it holds; inf: non-finite).

    Armijo: value <= value_init + slope_rtol * stepsize * slope_init. With approx_dec_rtol,
    the step also passes Hager and Zhang's approximate condition
    slope <= (2 slope_rtol - 1) slope_init when value <= value_init + approx_dec_rtol |value_init|.
    """
    error = value - value_init - hp.slope_rtol * stepsize * slope_init
    if hp.approx_dec_rtol is not None:
        approx = slope - hp.approx_slope * slope_init
        above = value - value_init - hp.approx_dec_rtol * jnp.abs(value_init)
        error = jnp.minimum(jnp.maximum(approx, above), error)
    error = jnp.maximum(error, 0.0)
    finite = jnp.isfinite(value) & jnp.isfinite(slope) & ~jnp.isnan(error)
    return jnp.where(finite, error, jnp.inf)


def curvature_error(hp, slope, slope_init):
    """How much |slope| <= curv_rtol |slope_init| is violated (0: it holds; inf: NaN)."""
    error = jnp.maximum(jnp.abs(slope) - hp.curv_rtol * jnp.abs(slope_init), 0.0)
    return jnp.where(jnp.isnan(error), jnp.inf, error)


def _where(cond, new, old):
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), new, old)


def initial_state(value, grad, slope) -> ZoomSearchState:
    """The loop's start: step 0, with the objective's value, gradient and slope there."""
    zero = jnp.zeros_like(value)
    inf = jnp.full_like(value, jnp.inf)
    false = jnp.asarray(False)
    return ZoomSearchState(
        count=zero_count(),
        stepsize=zero,
        value=value,
        grad=grad,
        slope=slope,
        decrease_error=inf,
        curvature_error=inf,
        interval_found=false,
        done=false,
        failed=false,
        interval_too_small=false,
        low=zero,
        value_low=value,
        slope_low=slope,
        high=zero,
        value_high=value,
        slope_high=slope,
        cubic_ref=zero,
        value_cubic_ref=value,
        safe_stepsize=zero,
        safe_value=value,
        safe_grad=grad,
    )


def _bracket_step(s, hp, evaluate, guess, value_init, slope_init):
    """Try a larger step until one brackets a step satisfying both conditions."""
    new = jnp.where(s.count == 0, guess, hp.increase_factor * s.stepsize)
    reached = jnp.asarray(False)
    if hp.max_stepsize is not None:
        reached = new >= hp.max_stepsize
        new = jnp.minimum(new, hp.max_stepsize)
    value, grad, slope = evaluate(new)
    dec = decrease_error(hp, new, value, slope, value_init, slope_init)
    curv = curvature_error(hp, slope, slope_init)
    good = jnp.maximum(dec, curv) <= hp.tol
    safe = _where(dec <= hp.tol, (new, value, grad), (s.safe_stepsize, s.safe_value, s.safe_grad))
    # Too far (no decrease, or higher than the previous step): the bracket is [previous, new].
    # Past the minimum along the line (slope >= 0): the bracket is [new, previous].
    set_high = (dec > 0.0) | ((value >= s.value) & (s.count > 0))
    set_low = (slope >= 0.0) & ~set_high
    previous = (s.stepsize, s.value, s.slope)
    low, value_low, slope_low = _where(set_low, (new, value, slope), previous)
    high, value_high, slope_high = _where(set_low, previous, (new, value, slope))
    found = set_high | set_low | good
    # At max_stepsize with no bracket, a larger step would be needed: stop there.
    done = good | (reached & ~found)
    return ZoomSearchState(
        count=safe_increment(s.count),
        stepsize=new,
        value=value,
        grad=grad,
        slope=slope,
        decrease_error=dec,
        curvature_error=curv,
        interval_found=found,
        done=done,
        failed=(s.count + 1 >= hp.max_steps) & ~done,
        interval_too_small=jnp.asarray(False),
        low=low,
        value_low=value_low,
        slope_low=slope_low,
        high=high,
        value_high=value_high,
        slope_high=slope_high,
        cubic_ref=low,
        value_cubic_ref=value_low,
        safe_stepsize=safe[0],
        safe_value=safe[1],
        safe_grad=safe[2],
    )


def _zoom_step(s, hp, evaluate, guess, value_init, slope_init):
    """Try a step inside the bracket and shrink the bracket around it."""
    del guess
    too_small = jnp.abs(s.high - s.low) <= hp.interval_threshold
    middle = next_trial(
        s.low, s.value_low, s.slope_low, s.high, s.value_high, s.cubic_ref, s.value_cubic_ref
    )
    value, grad, slope = evaluate(middle)
    dec = decrease_error(hp, middle, value, slope, value_init, slope_init)
    curv = curvature_error(hp, slope, slope_init)
    done = jnp.maximum(dec, curv) <= hp.tol
    better = (dec <= hp.tol) & (value < s.safe_value)
    safe = _where(better, (middle, value, grad), (s.safe_stepsize, s.safe_value, s.safe_grad))
    high_to_middle = (dec > 0.0) | (value >= s.value_low)
    high_to_low = (slope * (s.high - s.low) >= 0.0) & ~high_to_middle
    old_high, old_low = (s.high, s.value_high, s.slope_high), (s.low, s.value_low, s.slope_low)
    trial = (middle, value, slope)
    high = _where(high_to_middle, trial, _where(high_to_low, old_low, old_high))
    low = _where(high_to_middle, old_low, trial)
    cubic_ref = _where(high_to_middle | high_to_low, old_high[:2], old_low[:2])
    # A tiny bracket ends the search only once a step of sufficient decrease is known:
    # very steep objectives need many halvings before their first one.
    small_stop = too_small & (safe[0] > 0.0)
    failed = ((s.count + 1 >= hp.max_steps) | small_stop) & ~done
    return s._replace(
        count=safe_increment(s.count),
        stepsize=middle,
        value=value,
        grad=grad,
        slope=slope,
        decrease_error=dec,
        curvature_error=curv,
        done=done,
        failed=failed,
        interval_too_small=small_stop & ~done,
        low=low[0],
        value_low=low[1],
        slope_low=low[2],
        high=high[0],
        value_high=high[1],
        slope_high=high[2],
        cubic_ref=cubic_ref[0],
        value_cubic_ref=cubic_ref[1],
        safe_stepsize=safe[0],
        safe_value=safe[1],
        safe_grad=safe[2],
    )


def run_search(
    evaluate: Callable[[jax.Array], tuple[jax.Array, Any, jax.Array]],
    hp: ZoomHyperparams,
    guess: jax.Array,
    value_init: jax.Array,
    grad_init: Any,
    slope_init: jax.Array,
) -> ZoomSearchState:
    """Run the search from step 0; ``evaluate(stepsize) -> (value, grad, slope)``."""
    args = (hp, evaluate, guess, value_init, slope_init)

    def body(s):
        return jax.lax.cond(
            s.interval_found,
            lambda s: _zoom_step(s, *args),
            lambda s: _bracket_step(s, *args),
            s,
        )

    return jax.lax.while_loop(
        lambda s: ~(s.done | s.failed), body, initial_state(value_init, grad_init, slope_init)
    )


def outcome(s: ZoomSearchState, hp: ZoomHyperparams, slope_init: jax.Array):
    """``(stepsize, value, grad, status)`` of the step a finished search returns.

    On failure the best step of sufficient decrease is returned if there is one; else,
    if the last step tried gave a non-finite value, no step (0); else the last step tried.
    """
    took_safe = s.failed & ((s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error))
    stepsize, value, grad = _where(
        took_safe, (s.safe_stepsize, s.safe_value, s.safe_grad), (s.stepsize, s.value, s.grad)
    )
    good = jnp.maximum(s.decrease_error, s.curvature_error) <= hp.tol
    if_safe = jnp.where(
        s.interval_too_small, protocol.INTERVAL_TOO_SMALL, protocol.CURVATURE_NOT_SATISFIED
    )
    if_none = jnp.where(
        ~(slope_init < 0.0),
        protocol.NOT_A_DESCENT_DIRECTION,
        jnp.where(
            jnp.isinf(s.decrease_error), protocol.NON_FINITE_VALUES, protocol.NO_STEPSIZE_FOUND
        ),
    )
    if_failed = jnp.where(s.safe_stepsize > 0.0, if_safe, if_none)
    if_done = jnp.where(good, protocol.SUCCEEDED, protocol.CURVATURE_NOT_SATISFIED)
    status = jnp.where(s.failed, if_failed, if_done).astype(jnp.int32)
    return stepsize, value, grad, status
