"""The next trial step of the zoom phase: cubic, then quadratic interpolation, then bisection.

Each candidate must fall well inside the bracket (the safeguards of Nocedal and Wright,
section 3.5, with SciPy's margins: 20% of the bracket for the cubic, 10% for the
quadratic); a candidate that is NaN (no real critical point, or a degenerate bracket)
fails the test and the next one is tried.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

CUBIC_MARGIN = 0.2
QUADRATIC_MARGIN = 0.1


def cubic_minimizer(a, fa, fpa, b, fb, c, fc):
    """The critical point of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa at a.

    With p(x) = A (x - a)**3 + B (x - a)**2 + fpa (x - a) + fa, db = b - a, dc = c - a:

        [A, B] = [[dc**2, -db**2], [-dc**3, db**3]] @ [fb - fa - fpa db, fc - fa - fpa dc]
                 / ((db dc)**2 (db - dc))
        x = a + (-B + sqrt(B**2 - 3 A fpa)) / (3 A)

    NaN or infinite when the radical is negative or two points coincide.
    """
    db = b - a
    dc = c - a
    denom = (db * dc) ** 2 * (db - dc)
    # Nocedal & Wright's matrix form (3.59); one dot keeps the rounding of Optax's.
    matrix = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    residuals = jnp.array([fb - fa - fpa * db, fc - fa - fpa * dc])
    cubic, square = jnp.dot(matrix, residuals, precision=jax.lax.Precision.HIGHEST) / denom
    radical = square * square - 3.0 * cubic * fpa
    return a + (-square + jnp.sqrt(radical)) / (3.0 * cubic)


def quadratic_minimizer(a, fa, fpa, b, fb):
    """The critical point of the quadratic through (a, fa), (b, fb) with slope fpa at a.

    With db = b - a and curvature B = (fb - fa - fpa db) / db**2: x = a - fpa / (2 B).
    """
    db = b - a
    curvature = (fb - fa - fpa * db) / (db**2)
    return a - fpa / (2.0 * curvature)


def next_trial(low, value_low, slope_low, high, value_high, cubic_ref, value_cubic_ref):
    """The next step size to try inside the bracket between ``low`` and ``high``.

    ``low`` is the end with the lower value (it may be the larger step size);
    ``cubic_ref`` is the previous end dropped from the bracket, the cubic's third point.
    """
    delta = jnp.abs(high - low)
    left = jnp.minimum(high, low)
    right = jnp.maximum(high, low)

    def inside(x, margin):
        return (x > left + margin * delta) & (x < right - margin * delta)

    cubic = cubic_minimizer(low, value_low, slope_low, high, value_high, cubic_ref, value_cubic_ref)
    quadratic = quadratic_minimizer(low, value_low, slope_low, high, value_high)
    bisection = (low + high) / 2.0
    use_cubic = inside(cubic, CUBIC_MARGIN)
    use_quadratic = ~use_cubic & inside(quadratic, QUADRATIC_MARGIN)
    return jnp.where(use_cubic, cubic, jnp.where(use_quadratic, quadratic, bisection))
