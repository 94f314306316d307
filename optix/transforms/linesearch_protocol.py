"""What line searches share: the extra-args protocol, the objective along a line, status codes.

A line search is called as ``update(updates, state, params, value=f(params),
grad=grad f(params), value_fn=f, **extra_args)``. Of the extra arguments, those that
``value_fn`` accepts by signature are passed on to it; the others are ignored (Optax
raises on them). Every search ends with an int32 ``status`` in its ``info``:

    SUCCEEDED                0  the returned step satisfies the search's conditions
    CURVATURE_NOT_SATISFIED  1  sufficient decrease holds, the curvature condition does not
    INTERVAL_TOO_SMALL       2  the zoom bracket shrank below ``stepsize_precision``; the
                                returned step has sufficient decrease, not small curvature
    NO_STEPSIZE_FOUND        3  the budget ran out with no step of sufficient decrease; the
                                last step tried is returned (it may increase the objective)
    NOT_A_DESCENT_DIRECTION  4  no step of sufficient decrease, and the slope <grad, updates>
                                at step 0 is not negative (the step returned is as for 3 or 5)
    NON_FINITE_VALUES        5  no step of sufficient decrease, and the last step tried gave a
                                NaN or infinite value (or gradient): no step is made
"""

from __future__ import annotations

import inspect
import numbers
import string
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optix import _checks
from optix.tree.casting import cast_like
from optix.tree.leafwise import compute_dtype
from optix.tree.math import vdot
from optix.tree.state import get

SUCCEEDED = 0
CURVATURE_NOT_SATISFIED = 1
INTERVAL_TOO_SMALL = 2
NO_STEPSIZE_FOUND = 3
NOT_A_DESCENT_DIRECTION = 4
NON_FINITE_VALUES = 5

STATUS_NAMES = (
    "SUCCEEDED",
    "CURVATURE_NOT_SATISFIED",
    "INTERVAL_TOO_SMALL",
    "NO_STEPSIZE_FOUND",
    "NOT_A_DESCENT_DIRECTION",
    "NON_FINITE_VALUES",
)

# The verbose messages: what happened, with the numbers, and what to change.
_ADVICE = {
    CURVATURE_NOT_SATISFIED: (
        "the step size {learning_rate} decreases the objective enough but the slope there "
        "is still steep (curvature error {curvature_error}). Raise max_learning_rate or "
        "the step budget, or pass curv_rtol=jnp.inf to drop the curvature condition."
    ),
    INTERVAL_TOO_SMALL: (
        "the bracket around a step with small curvature shrank below stepsize_precision; "
        "returning the step size {learning_rate}, which decreases the objective enough "
        "(curvature error {curvature_error}). Lower stepsize_precision, or enable float64 "
        "with jax.config.update('jax_enable_x64', True) if the step sizes are tiny."
    ),
    NO_STEPSIZE_FOUND: (
        "no step size decreased the objective enough in {num_steps} evaluations (value "
        "{value}, slope {slope}, last step size {learning_rate}, decrease error "
        "{decrease_error}); the step taken may increase the objective. Raise the step "
        "budget, and check that grad is the gradient of value_fn at params."
    ),
    NOT_A_DESCENT_DIRECTION: (
        "the updates are not a descent direction: the slope <grad, updates> = {slope} "
        "should be negative; the step size {learning_rate} taken may increase the "
        "objective. The transforms before the line search must output a descent "
        "direction, e.g. the negative gradient (put scale(-1.0) before the line search)."
    ),
    NON_FINITE_VALUES: (
        "value_fn gave a NaN or infinite value or gradient at the last step size tried "
        "({learning_rate}) and no step decreased the objective enough: no step is made. "
        "Check the objective's domain, or lower max_learning_rate or the initial step."
    ),
}


def value_fn_kwargs(value_fn: Callable[..., Any], extra_args: dict[str, Any]) -> dict[str, Any]:
    """The extra arguments ``value_fn`` accepts by keyword (all of them if it takes ``**kwargs``).

    Its first parameter receives the params and is never filled from ``extra_args``.
    """
    try:
        parameters = list(inspect.signature(value_fn).parameters.values())
    except (TypeError, ValueError):
        return {}
    by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    names = {p.name for p in parameters[1:] if p.kind in by_keyword}
    first = parameters[0].name if parameters else None
    return {k: v for k, v in extra_args.items() if k != first and (takes_any or k in names)}


def check_objective(
    fn: str, params: Any, value: Any, grad: Any, value_fn: Any
) -> Callable[..., Any]:
    """Raise a message naming the call line search updates expect if something is missing.

    Returns ``value_fn``, checked to be callable.
    """
    missing = [
        name
        for name, x in (
            ("params", params),
            ("value", value),
            ("grad", grad),
            ("value_fn", value_fn),
        )
        if x is None
    ]
    if missing:
        raise _checks.MissingExtraArgumentError(
            f"{fn} needs {', '.join(missing)}: call update(updates, state, params, "
            "value=f(params), grad=jax.grad(f)(params), value_fn=f), where value, grad = "
            "jax.value_and_grad(f)(params)."
        )
    if not callable(value_fn):
        raise TypeError(f"{fn}: value_fn must be a callable params -> scalar, got {value_fn!r}")
    return value_fn


def check_budget(fn: str, name: str, value: Any, low: int) -> None:
    """An iteration budget: an int >= ``low``; arrays (traced or not) pass unchecked."""
    if not isinstance(value, jax.Array):
        _checks.integer_at_least(fn, name, value, low)


def check_range(fn: str, name: str, value: Any, valid: str, ok: Callable[[float], bool]) -> None:
    """A concrete real ``value`` must pass ``ok``; arrays and tracers pass unchecked."""
    _checks.check_type(fn, name, value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not ok(float(value)):
        raise ValueError(f"{fn}: {name} must be {valid}, got {name}={value!r}")


def scalar_dtype(params: Any) -> jnp.dtype:
    """The real dtype of the search's scalars (step sizes, values, slopes): >= float32."""
    return jnp.finfo(compute_dtype(*jax.tree.leaves(params))).dtype


def _is_none(x: Any) -> bool:
    return x is None


def point_on_line(params: Any, stepsize: jax.Array, updates: Any) -> Any:
    """``params + stepsize * updates``, each leaf computed in >= float32, stored as the param."""

    def leaf(p, u):
        if p is None:
            return None
        dt = compute_dtype(p, u)
        return (p.astype(dt) + stepsize.astype(dt) * u.astype(dt)).astype(p.dtype)

    return jax.tree.map(leaf, params, updates, is_leaf=_is_none)


def slope_along(grad: Any, updates: Any, dt: jnp.dtype, *, conjugated: bool = False) -> jax.Array:
    """The derivative of ``eta -> f(params + eta * updates)``.

    ``grad`` is ``jax.grad(f)`` as JAX returns it, ``df/dx - i df/dy`` for complex
    params, and the slope is ``real(sum(grad * updates))``. With ``conjugated`` it is the
    gradient as optimizers receive it (``df/dx + i df/dy``, JAX's conjugated) and the slope
    is ``real(sum(conj(grad) * updates))``. Both equal ``sum(grad * updates)`` for real
    params.
    """

    def leaf(g, u):
        g = g.astype(compute_dtype(g, u))
        return g if conjugated else jnp.conj(g)  # vdot conjugates its first argument

    grad_ = jax.tree.map(leaf, grad, updates)
    updates_ = jax.tree.map(lambda g, u: u.astype(compute_dtype(g, u)), grad, updates)
    return jnp.real(vdot(grad_, updates_)).astype(dt)


def scale_updates(learning_rate: jax.Array, updates: Any) -> Any:
    """``learning_rate * updates`` in each update's dtype, computed in >= float32."""

    def leaf(u):
        dt = compute_dtype(u)
        return (learning_rate.astype(dt) * u.astype(dt)).astype(u.dtype)

    return jax.tree.map(leaf, updates)


def report(fn: str, status: jax.Array, **quantities: jax.Array) -> None:
    """Print what went wrong and what to change, when ``status`` is not SUCCEEDED.

    ``quantities`` are the quantities the messages quote; a status whose message quotes a
    quantity not given is one the caller never reports.
    """
    for code, advice in _ADVICE.items():
        used = {name for _, name, _, _ in string.Formatter().parse(advice) if name}
        if not used <= quantities.keys():
            continue  # a status this search never reports
        jax.lax.cond(
            status == code,
            lambda nums, msg=f"{fn}: {advice}": jax.debug.print(msg, **nums),
            lambda nums: None,
            {name: x for name, x in quantities.items() if name in used},
        )


def value_and_grad_from_state(
    value_fn: Callable[..., jax.typing.ArrayLike],
) -> Callable[..., tuple[jax.Array, Any]]:
    """A ``jax.value_and_grad(value_fn)`` that reuses the value and gradient a line search stored.

    The returned function is called as ``fn(params, *args, state=opt_state, **kwargs)``.
    It reads the one ``value`` and the one ``grad`` field of ``opt_state`` (as
    ``optix.tree.get`` finds them); when that value is finite they are returned as they
    are (they were computed at the params the line search moved to), otherwise (the
    ``inf`` of a fresh state, or NaN) they are computed by ``jax.value_and_grad(value_fn)``
    at ``params``, with the ``kwargs`` that ``value_fn`` accepts, and cast to the stored
    dtypes. The choice is a ``lax.cond``, so it works under ``jit``.

    Args:
        value_fn: The objective, ``value_fn(params, *args, **kwargs) -> scalar``.

    Returns:
        ``fn(params, *args, state, **kwargs) -> (value, grad)``.

    Raises:
        ValueError: (when called) if the state has no ``value`` or ``grad`` field, or
            ``grad`` is None (``scale_by_backtracking_linesearch`` without ``store_grad``).

    References:
        Checked against optax.value_and_grad_from_state in
        tests/transforms/test_linesearch_protocol.py.
    """

    def value_and_grad(params: Any, *args: Any, state: Any, **kwargs: Any):
        value, grad = get(state, "value"), get(state, "grad")
        if value is None or grad is None:
            raise ValueError(
                "value_and_grad_from_state: the state holds no value or no grad. Use it with a "
                "line search that stores both: scale_by_zoom_linesearch, or "
                "scale_by_backtracking_linesearch(..., store_grad=True)."
            )
        kwargs = value_fn_kwargs(value_fn, kwargs)

        def recompute(params, args, kwargs):
            new_value, new_grad = jax.value_and_grad(value_fn)(params, *args, **kwargs)
            return jnp.asarray(new_value, value.dtype), cast_like(new_grad, grad)

        return jax.lax.cond(
            jnp.isfinite(value),
            lambda *_: (value, grad),
            recompute,
            params,
            args,
            kwargs,
        )

    return value_and_grad
