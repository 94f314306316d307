"""Newton's method from the dense Hessian, with damping that keeps the step a descent direction."""

from __future__ import annotations

import numbers
from collections.abc import Callable
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
from optix.optimizers.lbfgs import ZOOM_LINESEARCH
from optix.transforms.flatten import flatten_tree, unflatten_like
from optix.transforms.linesearch_protocol import value_fn_kwargs
from optix.transforms.scaling import scale, scale_by_learning_rate
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import compute_dtype
from optix.tree.structure import check_same_structure

NO_VALUE_FN = (
    "{fn} needs the objective: call update(grads, state, params, value_fn=f), where grads "
    "is the gradient of f at params (extra arguments f accepts by keyword are passed on)."
)


class NewtonInfo(NamedTuple):
    """What the last ``scale_by_newton`` update did."""

    damping: jax.Array  # tau added to the Hessian's diagonal (default float)
    num_factorizations: jax.Array  # int32: Cholesky factorizations tried
    failed: jax.Array  # bool: none succeeded; the update was passed through unchanged


class ScaleByNewtonState(NamedTuple):
    """State of ``scale_by_newton``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    info: NewtonInfo


def objective_of(fn: str, value_fn: Any, params: Any, extra_args: dict) -> Callable:
    """``value_fn`` with the extra arguments it accepts; raises if it or params is missing."""
    if params is None:
        raise ValueError(NO_PARAMS.format(fn=fn))
    if value_fn is None:
        raise _checks.MissingExtraArgumentError(NO_VALUE_FN.format(fn=fn))
    kwargs = value_fn_kwargs(value_fn, extra_args)
    return lambda p: value_fn(p, **kwargs)


def scale_by_newton(
    damping: float = 0.0,
    *,
    damping_increment: float = 1e-3,
    damping_factor: float = 2.0,
    max_factorizations: int = 50,
) -> GradientTransformation:
    """Multiply updates by the inverse of the damped Hessian of ``value_fn`` at params.

    All leaves are flattened into one vector x (in at least float32); with g the
    incoming update flattened the same way (a gradient of value_fn), H the Hessian of
    value_fn at x (``jax.hessian``) and beta = damping_increment:

        tau = damping                       if min(diag(H)) + damping > 0
        tau = beta - min(diag(H))           otherwise
        while H + tau * I has no Cholesky factor and fewer than max_factorizations tried:
            tau = max(damping_factor * tau, beta)
        u = solve(H + tau * I, g)           u = g if no factor was found

    With a positive definite H and damping = 0 this is Newton's step (chain
    ``scale(-1)`` after it). An indefinite or singular H gets the smallest tau of the
    sequence that makes H + tau * I positive definite (Levenberg's damping, found as in
    Nocedal & Wright's Algorithm 3.3), so -u is always a descent direction; a Hessian
    with NaN or inf never factors and the update passes through unchanged (steepest
    descent), with ``info.failed`` set. The cost is one Hessian (n gradient-sized
    products) and up to ``max_factorizations`` O(n**3) factorizations for n parameters:
    for small problems; ``scale_by_newton_cg`` scales further.

    Args:
        damping: tau always added to the diagonal (Levenberg-Marquardt's lambda), >= 0.
        damping_increment: beta, the smallest tau tried when H needs damping, > 0.
        damping_factor: Growth of tau after a failed factorization, > 1.
        max_factorizations: Most Cholesky factorizations per update, an int >= 1.

    Returns:
        A GradientTransformation whose state is ``ScaleByNewtonState``; ``update`` needs
        params and ``value_fn`` (extra arguments value_fn accepts are passed on).

    References:
        Nocedal & Wright, "Numerical Optimization", 2nd ed., Springer 2006, section 3.4,
        Algorithm 3.3 (Cholesky with added multiple of the identity). Levenberg, "A
        method for the solution of certain non-linear problems in least squares",
        Quarterly of Applied Mathematics 2, 1944.
        Checked against damped_newton_direction (Algorithm 3.3 in NumPy) and closed forms in
        tests/optimizers/test_newton.py.
    """
    fn = "scale_by_newton"
    _checks.non_negative(fn, damping=damping)
    _checks.positive(fn, damping_increment=damping_increment)
    _check_factor(fn, damping_factor)
    _checks.integer_at_least(fn, "max_factorizations", max_factorizations, 1)

    def init(params):
        del params
        dt = jnp.result_type(float)
        info = NewtonInfo(jnp.zeros([], dt), zero_count(), jnp.asarray(False))
        return ScaleByNewtonState(count=zero_count(), info=info)

    def update(updates, state, params=None, *, value_fn=None, **extra_args):
        objective = objective_of(fn, value_fn, params, extra_args)
        check_same_structure(fn, updates=updates, params=params)
        _checks.real_params(fn, params, "the Hessian is taken of a function of real variables")
        dt = compute_dtype(*jax.tree.leaves(params), *jax.tree.leaves(updates))
        x = flatten_tree(params).astype(dt)
        g = flatten_tree(updates).astype(dt)
        hessian = jax.hessian(lambda v: objective(unflatten_like(params, v)))(x)
        u, tau, tries, failed = _damped_solve(
            hessian.astype(dt),
            g,
            damping,
            damping_increment,
            damping_factor,
            max_factorizations,
        )
        info = NewtonInfo(tau.astype(state.info.damping.dtype), tries, failed)
        return unflatten_like(updates, u), ScaleByNewtonState(safe_increment(state.count), info)

    return GradientTransformation(init, update)


def _check_factor(fn: str, damping_factor: Any) -> None:
    if isinstance(damping_factor, numbers.Real) and not float(damping_factor) > 1:
        raise ValueError(f"{fn}: damping_factor must be > 1, got damping_factor={damping_factor!r}")


def _damped_solve(hessian, g, damping, beta, factor, max_factorizations):
    """Solve (H + tau I) u = g for the first tau of the sequence that makes it factor."""
    dt = g.dtype
    if g.shape[0] == 0:
        return g, jnp.zeros([], dt), jnp.zeros([], jnp.int32), jnp.asarray(False)
    eye = jnp.eye(g.shape[0], dtype=dt)
    damping, beta, factor = (jnp.asarray(v, dt) for v in (damping, beta, factor))
    min_diag = jnp.min(jnp.diagonal(hessian))
    needs_shift = ~(min_diag + damping > 0)
    # A NaN diagonal never factors; start from beta so tau itself stays finite.
    tau = jnp.where(needs_shift, jnp.where(jnp.isfinite(min_diag), beta - min_diag, beta), damping)

    def factorize(tau):
        lower = jnp.linalg.cholesky(hessian + tau * eye)
        return lower, jnp.all(jnp.isfinite(lower))

    def retry(carry):
        tau, _, _, tries = carry
        tau = jnp.maximum(factor * tau, beta)
        return (tau, *factorize(tau), tries + 1)

    carry = (tau, *factorize(tau), jnp.ones([], jnp.int32))
    tau, lower, ok, tries = jax.lax.while_loop(
        lambda c: ~c[2] & (c[3] < max_factorizations), retry, carry
    )
    safe_lower = jnp.where(ok, lower, eye)
    u = jax.scipy.linalg.cho_solve((safe_lower, True), g)
    return jnp.where(ok, u, g), tau, tries, ~ok


def newton(
    learning_rate: ScalarOrSchedule | None = None,
    damping: float = 0.0,
    *,
    linesearch: GradientTransformation | None = ZOOM_LINESEARCH,
) -> GradientTransformation:
    """Damped Newton: ``chain(scale_by_newton(damping), scale(-1), linesearch)``.

    With a ``learning_rate`` the step is scaled by it instead of -1. The default line
    search is ``lbfgs``'s: ``scale_by_zoom_linesearch(max_linesearch_steps=20,
    initial_guess_strategy="one")``, which tries the full Newton step first and keeps it
    when it satisfies the strong Wolfe conditions (so convergence stays quadratic near a
    minimum); ``None`` takes every (damped) Newton step in full. Call
    ``update(grads, state, params, value=f(params), grad=grads, value_fn=f)``, or run it
    with ``optix.minimize``. Update rule and arguments: see ``scale_by_newton``.
    """
    _checks.non_negative("newton", damping=damping)
    if learning_rate is not None:
        _checks.finite("newton", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        scale_by_newton(damping),
        descent_step(learning_rate),
        identity() if linesearch is None else linesearch,
    )


def descent_step(learning_rate: ScalarOrSchedule | None) -> GradientTransformation:
    """-1 times the direction, or -learning_rate times it."""
    return scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
