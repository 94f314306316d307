"""Projections onto the Euclidean ball and sphere: a rescaling of the whole tree."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optix.projections import _vector


def projection_l2_sphere(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Project a tree onto the l2 sphere {p : ||p|| = scale}.

    All entries of all leaves together form the vector x, of n entries:

        p = x * scale / ||x||             if x != 0
        p = scale / sqrt(n) everywhere    if x == 0

    Every point of the sphere is nearest to x = 0; this one keeps the result (and its
    derivatives) finite, where Optax returns NaN.

    Args:
        tree: The tree to project.
        scale: Radius of the sphere, a scalar, finite and >= 0 (default 1).

    Returns:
        The projected tree, with ``tree``'s structure and leaf dtypes; the norm is
        computed in the widest leaf dtype, at least float32.

    References:
        Checked against optax.projections.projection_l2_sphere in
        tests/projections/test_parity.py.
    """
    _vector.check_radius("projection_l2_sphere", scale)
    return _l2_sphere(tree, scale)


def _read(tree: Any, scale: Any) -> tuple:
    """The tree's ``Leaves``, its leaves widened, the radius and the squared norm."""
    (x,) = _vector.leaves(tree)
    xs = x.wide()
    return x, xs, jnp.asarray(scale, x.dtype), _vector.dot(xs, xs, x.dtype)


@jax.jit
def _l2_sphere(tree: Any, scale: Any) -> Any:
    x, xs, s, squared = _read(tree, scale)
    nonzero = squared > 0
    # The inner where keeps the unused branch's derivative finite at x = 0.
    factor = s / jnp.sqrt(jnp.where(nonzero, squared, jnp.ones((), x.dtype)))
    fill = s / jnp.sqrt(jnp.asarray(max(x.size(), 1), x.dtype))
    return x.restore([jnp.where(nonzero, v * factor, fill) for v in xs])


def projection_l2_ball(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Project a tree onto the l2 ball {p : ||p|| <= scale}.

    All entries of all leaves together form the vector x:

        p = x                       if ||x|| <= scale
        p = x * scale / ||x||       otherwise

    Inside the ball the tree comes back unchanged (bit for bit), with identity
    derivatives (also at x = 0).

    Args:
        tree: The tree to project.
        scale: Radius of the ball, a scalar, finite and >= 0 (default 1).

    Returns:
        The projected tree, with ``tree``'s structure and leaf dtypes; the norm is
        computed in the widest leaf dtype, at least float32.

    References:
        Checked against optax.projections.projection_l2_ball in
        tests/projections/test_parity.py.
    """
    _vector.check_radius("projection_l2_ball", scale)
    return _l2_ball(tree, scale)


@jax.jit
def _l2_ball(tree: Any, scale: Any) -> Any:
    x, xs, s, squared = _read(tree, scale)
    inside = squared <= s * s
    one = jnp.ones((), x.dtype)
    factor = jnp.where(inside, one, s / jnp.sqrt(jnp.where(inside, one, squared)))
    return x.restore([v * factor for v in xs])
