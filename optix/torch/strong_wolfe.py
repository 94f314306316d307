"""torch.optim.LBFGS's strong Wolfe line search (``_strong_wolfe``) as one ``lax.while_loop``.

torch brackets an acceptable step by extrapolation, then zooms into the bracket with
safeguarded cubic interpolation. Here both phases share one loop whose every iteration
evaluates ``value_fn`` once (so it is traced once) and then does what torch does after
that evaluation. The bracket is two slots of (step, value, gradient, slope); while
extrapolating, slot 0 holds torch's ``t_prev`` point and slot 1 the newest one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

C1, C2 = 1e-4, 0.9
# torch calls _strong_wolfe without passing the optimizer's tolerance_change.
BRACKET_TOLERANCE = 1e-9


def py_max(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``max(a, b)``: ``b`` only if ``b > a`` (so a NaN ``a`` wins, unlike jnp)."""
    return jnp.where(b > a, b, a)


def py_min(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``min(a, b)``: ``b`` only if ``b < a``."""
    return jnp.where(b < a, b, a)


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None) -> jax.Array:
    """torch's ``_cubic_interpolate``: the minimizer of the cubic through two points, clamped.

    With d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2) and d2 = sqrt(d1**2 - g1 * g2):
    min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)) (mirrored when
    x1 > x2), clamped to ``bounds`` (default: the two points); the bounds' midpoint when
    d1**2 - g1 * g2 < 0. Unlike torch, a NaN minimizer (an infinite value at one end)
    also falls back to the midpoint, so the search bisects instead of trying NaN.
    """
    low, high = (py_min(x1, x2), py_max(x1, x2)) if bounds is None else bounds
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    d2 = jnp.sqrt(jnp.where(d2_square >= 0, d2_square, 0))
    min_pos = jnp.where(
        x1 <= x2,
        x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)),
        x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2)),
    )
    clamped = py_min(py_max(min_pos, low), high)
    return jnp.where((d2_square >= 0) & ~jnp.isnan(clamped), clamped, (low + high) / 2.0)


class _Search(NamedTuple):
    t: jax.Array  # the next step to evaluate
    steps: jax.Array  # (2,) bracket
    values: jax.Array  # (2,)
    grads: jax.Array  # (2, n)
    slopes: jax.Array  # (2,)
    low: jax.Array  # int32: slot of the lowest value (torch's low_pos)
    insuf_progress: jax.Array
    done: jax.Array  # the strong Wolfe conditions hold at slot `low`
    zoom: jax.Array  # bracketing is over
    active: jax.Array
    evals: jax.Array  # int32
    nonfinite: jax.Array  # int32: evaluations with a NaN or infinite value or gradient


def _put(search: _Search, slot, t, f, g, gtd) -> _Search:
    return search._replace(
        steps=search.steps.at[slot].set(t),
        values=search.values.at[slot].set(f),
        grads=search.grads.at[slot].set(g),
        slopes=search.slopes.at[slot].set(gtd),
    )


def _lower_slot(values: jax.Array) -> jax.Array:
    """torch's ``(0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)``."""
    return jnp.where(values[0] <= values[1], 0, 1).astype(jnp.int32)


def strong_wolfe(
    evaluate: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
    t: jax.Array,
    d: jax.Array,
    f: jax.Array,
    g: jax.Array,
    gtd: jax.Array,
    max_ls: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """torch's ``_strong_wolfe(obj_func, x, t, d, f, g, gtd, max_ls=max_ls)`` with c1 = 1e-4,
    c2 = 0.9 and the bracket tolerance 1e-9.

    ``evaluate(t)`` returns the value and flat gradient at ``x + t * d``. A NaN or
    infinite value or gradient counts as the value +inf: the trial fails sufficient
    decrease and the zoom bisects towards the finite end (torch would return NaN).

    Returns:
        ``(f_new, g_new, t, evals, nonfinite)``: the value, gradient and step of the
        lowest bracket point, the number of evaluations and how many were not finite.
    """
    d_norm = jnp.max(jnp.abs(d), initial=0)
    start = jnp.stack([jnp.zeros_like(t), t])
    init = _Search(
        t=t,
        steps=start,
        values=jnp.stack([f, f]),
        grads=jnp.stack([g, g]),
        slopes=jnp.stack([gtd, gtd]),
        low=jnp.zeros([], jnp.int32),
        insuf_progress=jnp.asarray(False),
        done=jnp.asarray(False),
        zoom=jnp.asarray(False),
        active=jnp.asarray(True),
        evals=jnp.zeros([], jnp.int32),
        nonfinite=jnp.zeros([], jnp.int32),
    )

    def bracket_phase(s: _Search, t, f_new, g_new, gtd_new) -> _Search:
        ls_iter = s.evals - 1
        exhausted = ls_iter >= max_ls
        too_high = (f_new > f + C1 * t * gtd) | ((ls_iter > 1) & (f_new >= s.values[0]))
        wolfe = jnp.abs(gtd_new) <= -C2 * gtd
        extrapolate = ~exhausted & ~too_high & ~wolfe & ~(gtd_new >= 0)
        t_next = cubic_interpolate(
            s.steps[0], s.values[0], s.slopes[0], t, f_new, gtd_new,
            bounds=(t + 0.01 * (t - s.steps[0]), t * 10),
        )  # fmt: skip
        s = _put(s, jnp.where(extrapolate, 0, 1), t, f_new, g_new, gtd_new)
        # Out of evaluations: torch's bracket becomes [0, t].
        s = jax.lax.cond(
            exhausted, lambda s: _put(s, 0, jnp.zeros_like(t), f, g, gtd), lambda s: s, s
        )
        done = ~exhausted & ~too_high & wolfe
        low = jnp.where(done, 1, _lower_slot(s.values)).astype(jnp.int32)
        return s._replace(t=t_next, low=low, done=done, zoom=~extrapolate)

    def zoom_phase(s: _Search, t, f_new, g_new, gtd_new) -> _Search:
        low, high = s.low, 1 - s.low
        raise_high = (f_new > f + C1 * t * gtd) | (f_new >= s.values[low])
        done = ~raise_high & (jnp.abs(gtd_new) <= -C2 * gtd)
        flip = ~raise_high & ~done & (gtd_new * (s.steps[high] - s.steps[low]) >= 0)
        s = jax.lax.cond(
            flip,
            lambda s: _put(s, high, s.steps[low], s.values[low], s.grads[low], s.slopes[low]),
            lambda s: s,
            s,
        )
        s = _put(s, jnp.where(raise_high, high, low), t, f_new, g_new, gtd_new)
        return s._replace(low=jnp.where(raise_high, _lower_slot(s.values), low), done=done)

    def next_zoom_step(s: _Search) -> _Search:
        a, b = s.steps
        t = cubic_interpolate(a, s.values[0], s.slopes[0], b, s.values[1], s.slopes[1])
        high, low = py_max(a, b), py_min(a, b)
        eps = 0.1 * (high - low)
        near_end = py_min(high - t, t - low) < eps
        move = near_end & (s.insuf_progress | (t >= high) | (t <= low))
        nearer_high = jnp.abs(t - high) < jnp.abs(t - low)
        t = jnp.where(move, jnp.where(nearer_high, high - eps, low + eps), t)
        return s._replace(t=t, insuf_progress=near_end & ~move)

    def body(s: _Search) -> _Search:
        f_new, g_new = evaluate(s.t)
        finite = jnp.isfinite(f_new) & jnp.all(jnp.isfinite(g_new))
        f_new = jnp.where(finite, f_new, jnp.inf)
        gtd_new = jnp.dot(g_new, d)
        s = s._replace(evals=s.evals + 1, nonfinite=s.nonfinite + (~finite).astype(jnp.int32))
        s = jax.lax.cond(s.zoom, zoom_phase, bracket_phase, s, s.t, f_new, g_new, gtd_new)
        too_small = jnp.abs(s.steps[1] - s.steps[0]) * d_norm < BRACKET_TOLERANCE
        keep_zooming = s.zoom & ~s.done & (s.evals - 1 < max_ls) & ~too_small
        s = jax.lax.cond(keep_zooming, next_zoom_step, lambda s: s, s)
        return s._replace(active=~s.zoom | keep_zooming)

    s = jax.lax.while_loop(lambda s: s.active, body, init)
    return s.values[s.low], s.grads[s.low], s.steps[s.low], s.evals, s.nonfinite
