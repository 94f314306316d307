"""Newton-CG: Newton's step from conjugate gradients on Hessian-vector products."""

from __future__ import annotations

from typing import Literal, NamedTuple

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
from optix.optimizers.damped_newton import descent_step, objective_of
from optix.optimizers.lbfgs import ZOOM_LINESEARCH
from optix.tree.casting import cast_like
from optix.tree.leafwise import compute_dtype
from optix.tree.math import norm, size, vdot
from optix.tree.structure import check_same_structure

# Why the conjugate-gradient loop stopped (``NewtonCGInfo.status``).
CG_CONVERGED = 0  # the residual norm fell to eta * ||g||
CG_NEGATIVE_CURVATURE = 1  # p . H p <= 3 * eps * (p . p) along a search direction p
CG_MAX_STEPS = 2  # max_cg_steps Hessian-vector products were made
CG_NON_FINITE = 3  # a Hessian-vector product was NaN or inf
_RUNNING = -1


class NewtonCGInfo(NamedTuple):
    """What the conjugate-gradient loop of the last ``scale_by_newton_cg`` update did."""

    num_hvps: jax.Array  # int32: Hessian-vector products made
    status: jax.Array  # int32: CG_CONVERGED, CG_NEGATIVE_CURVATURE, CG_MAX_STEPS, CG_NON_FINITE


class ScaleByNewtonCGState(NamedTuple):
    """State of ``scale_by_newton_cg``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    info: NewtonCGInfo


def scale_by_newton_cg(
    max_cg_steps: int | None = None,
    cg_rtol: float | None = None,
    *,
    residual_norm: Literal["l1", "l2"] = "l1",
) -> GradientTransformation:
    """Replace updates by an inexact Newton step: conjugate gradients on H u = g.

    With g the incoming update (a gradient of value_fn), H the Hessian of value_fn at
    params applied by forward-over-reverse differentiation (never formed), a . b the
    inner product over all leaves, |.| the ``residual_norm`` and eps the machine epsilon
    of the computation (at least float32):

        eta = min(0.5, sqrt(|g|))  if cg_rtol is None  else cg_rtol
        u = 0, r = g, p = r
        for i = 0 .. max_cg_steps - 1, while |r| > eta * |g|:
            curv = p . H p
            if curv <= 3 * eps * (p . p):            (non-positive curvature)
                u = (r . r / -curv) * g  if i == 0 and curv < 0
                u = g                    if i == 0 and curv >= 0
                stop
            alpha = (r . r) / curv
            u = u + alpha * p
            r_new = r - alpha * H p
            p = r_new + (r_new . r_new) / (r . r) * p
            r = r_new

    Chain ``scale(-1)`` and a line search after it: -u is a descent direction whenever g
    is not zero. The forcing term eta = min(0.5, sqrt(|g|)) gives superlinear
    convergence; a constant ``cg_rtol`` gives linear convergence at a lower cost per
    step. Stopping at the first direction of non-positive curvature (and falling back to
    scaled steepest descent when that is the first one) is SciPy's Newton-CG and the
    line-search variant of Steihaug's rule. Two differences from SciPy: its curvature
    test is absolute (curv <= 3 eps), which near a minimum (|g| around 1e-8 in float64)
    flags every direction and returns u = 0, so the solve stalls; here the test is
    relative to p . p, and a flat first direction returns g (Nocedal & Wright's rule)
    rather than 0. And running out of CG steps does not end the optimization: the last
    CG iterate is returned, and ``info.status`` says why the loop stopped. A NaN or inf
    Hessian-vector product stops the loop with the last finite u (u = g at the first
    step, as for a flat direction).

    Args:
        max_cg_steps: Most Hessian-vector products per update, an int >= 1; ``None``
            for 20 times the number of parameters (SciPy's default).
        cg_rtol: Relative residual tolerance eta, in (0, 1); ``None`` for the forcing
            term min(0.5, sqrt(|g|)).
        residual_norm: Norm of r and g in the stopping test: "l1" (SciPy's) or "l2"
            (Nocedal & Wright's).

    Returns:
        A GradientTransformation whose state is ``ScaleByNewtonCGState``; ``update``
        needs params and ``value_fn`` (extra arguments value_fn accepts are passed on).

    References:
        Nocedal & Wright, "Numerical Optimization", 2nd ed., Springer 2006, Algorithm
        7.1 (line search Newton-CG). Steihaug, "The conjugate gradient method and trust
        regions in large scale optimization", SIAM J. Numer. Anal. 20(3), 1983.
        Checked against scipy.optimize.minimize(method="Newton-CG") and a NumPy
        transliteration of its CG loop in tests/optimizers/test_newton.py.
    """
    fn = "scale_by_newton_cg"
    if max_cg_steps is not None:
        _checks.integer_at_least(fn, "max_cg_steps", max_cg_steps, 1)
    if cg_rtol is not None:
        _checks.in_unit_interval(fn, cg_rtol=cg_rtol)
        _checks.positive(fn, cg_rtol=cg_rtol)
    _checks.one_of(fn, "residual_norm", residual_norm, ("l1", "l2"))

    def init(params):
        del params
        info = NewtonCGInfo(zero_count(), zero_count())
        return ScaleByNewtonCGState(count=zero_count(), info=info)

    def update(updates, state, params=None, *, value_fn=None, **extra_args):
        objective = objective_of(fn, value_fn, params, extra_args)
        check_same_structure(fn, updates=updates, params=params)
        _checks.real_params(fn, params, "Hessian-vector products of real variables")
        widen = lambda tree: jax.tree.map(lambda x: x.astype(compute_dtype(x)), tree)
        # The Hessian is taken in >= float32 through a cast to the params' dtypes.
        x = widen(params)
        _, hvp = jax.linearize(jax.grad(lambda v: objective(cast_like(v, params))), x)
        steps = 20 * size(params) if max_cg_steps is None else max_cg_steps
        u, num_hvps, status = _conjugate_gradient(
            hvp, widen(updates), steps, cg_rtol, 1 if residual_norm == "l1" else None
        )
        info = NewtonCGInfo(num_hvps, status)
        return cast_like(u, updates), ScaleByNewtonCGState(safe_increment(state.count), info)

    return GradientTransformation(init, update)


def _conjugate_gradient(hvp, g, max_steps, cg_rtol, ord):
    leaves = jax.tree.leaves(g)
    dt = jnp.finfo(compute_dtype(*leaves)).dtype if leaves else jnp.result_type(float)

    def dot(a, b):
        return jnp.real(vdot(a, b)).astype(dt)

    def axpy(a, x, y):
        return jax.tree.map(lambda x, y: a.astype(x.dtype) * x + y, x, y)

    g_norm = norm(g, ord=ord).astype(dt)
    eta = jnp.minimum(0.5, jnp.sqrt(g_norm)) if cg_rtol is None else jnp.asarray(cg_rtol, dt)
    target = eta * g_norm
    tiny = 3 * jnp.finfo(dt).eps

    def next_status(r, steps):
        status = jnp.where(steps >= max_steps, CG_MAX_STEPS, _RUNNING)
        return jnp.where(norm(r, ord=ord).astype(dt) <= target, CG_CONVERGED, status)

    def body(carry):
        u, r, p, rr, steps, _ = carry
        hp = hvp(p)
        curv = dot(p, hp)
        steps = steps + 1
        alpha = rr / curv
        u_new = axpy(alpha, p, u)
        r_new = axpy(-alpha, hp, r)
        rr_new = dot(r_new, r_new)
        p_new = axpy(rr_new / rr, p, r_new)
        status = next_status(r_new, steps)
        bad = ~jnp.isfinite(curv)
        curved = curv <= tiny * dot(p, p)
        status = jnp.where(curved, CG_NEGATIVE_CURVATURE, status)
        status = jnp.where(bad, CG_NON_FINITE, status)
        # A first direction without (finite) positive curvature: steepest descent, scaled
        # by rr / |curv| when the curvature is negative.
        fallback = steps == 1
        scaled = jnp.where(curv < 0, rr / -curv, 1).astype(dt)
        u_stop = jax.tree.map(
            lambda ui, gi: jnp.where(fallback, scaled.astype(gi.dtype) * gi, ui), u, g
        )
        u_out = jax.tree.map(lambda a, b: jnp.where(bad | curved, a, b), u_stop, u_new)
        return u_out, r_new, p_new, rr_new, steps, status.astype(jnp.int32)

    u0 = jax.tree.map(jnp.zeros_like, g)
    carry = (u0, g, g, dot(g, g), jnp.zeros([], jnp.int32), next_status(g, 0).astype(jnp.int32))
    u, _, _, _, steps, status = jax.lax.while_loop(lambda c: c[5] == _RUNNING, body, carry)
    return u, steps, status


def newton_cg(
    learning_rate: ScalarOrSchedule | None = None,
    max_cg_steps: int | None = None,
    cg_rtol: float | None = None,
    *,
    residual_norm: Literal["l1", "l2"] = "l1",
    linesearch: GradientTransformation | None = ZOOM_LINESEARCH,
) -> GradientTransformation:
    """Newton-CG: ``chain(scale_by_newton_cg(...), scale(-1), linesearch)``.

    With a ``learning_rate`` the step is scaled by it instead of -1. The default line
    search is ``lbfgs``'s strong Wolfe zoom search starting from the full step (SciPy's
    Newton-CG also uses a strong Wolfe search with c1 = 1e-4, c2 = 0.9); ``None`` takes
    every step in full. Call ``update(grads, state, params, value=f(params), grad=grads,
    value_fn=f)``, or run it with ``optix.minimize``. Update rule and arguments: see
    ``scale_by_newton_cg``.
    """
    if learning_rate is not None:
        _checks.finite("newton_cg", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        scale_by_newton_cg(max_cg_steps, cg_rtol, residual_norm=residual_norm),
        descent_step(learning_rate),
        identity() if linesearch is None else linesearch,
    )
