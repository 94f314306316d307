"""Projections onto sets that constrain each entry alone: orthant, box, hypercube, l-inf ball."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optix import _checks
from optix.tree.leafwise import compute_dtype


def projection_non_negative(tree: Any) -> Any:
    """Project a tree onto the non-negative orthant {p : p >= 0}.

    For each entry x of each leaf:

        p = max(x, 0)

    Args:
        tree: The tree to project.

    Returns:
        The projected tree, with ``tree``'s structure and leaf dtypes.

    References:
        Checked against optax.projections.projection_non_negative in
        tests/projections/test_parity.py.
    """
    return jax.tree.map(lambda x: jax.nn.relu(jnp.asarray(x)), tree)


def _check_bounds(fn: str, lower: Any, upper: Any) -> None:
    """Concrete scalar bounds must be numbers with lower <= upper (infinities allowed)."""
    lo, hi = _checks._concrete(lower), _checks._concrete(upper)
    for name, value, x in (("lower", lower, lo), ("upper", upper, hi)):
        if x is not None and x != x:
            raise ValueError(f"{fn}: {name} must be a number, got {name}={value!r}")
    if lo is not None and hi is not None and not lo <= hi:
        raise ValueError(f"{fn}: upper must be >= lower={lower!r}, got upper={upper!r}")


def _clip(x: Any, lower: Any, upper: Any) -> jax.Array:
    x = jnp.asarray(x)
    dt = compute_dtype(x)
    lo, hi = jnp.asarray(lower, dt), jnp.asarray(upper, dt)
    return jnp.clip(x.astype(dt), lo, hi).astype(x.dtype)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    """Project a tree onto the box {p : lower <= p <= upper}.

    For each entry x of each leaf, with its bounds l and u:

        p = min(max(x, l), u)

    A bound may be a scalar, or a tree whose structure is a prefix of ``tree``'s
    (its leaves broadcast against the matching subtrees of ``tree``): unlike Optax,
    a scalar bound works with a tree of many leaves.

    Args:
        tree: The tree to project.
        lower: Lower bound: a scalar or a tree prefix of ``tree``; -inf allowed.
        upper: Upper bound, >= ``lower``: a scalar or a tree prefix of ``tree``;
            +inf allowed.

    Returns:
        The projected tree, with ``tree``'s structure and leaf dtypes.

    References:
        Checked against optax.projections.projection_box in
        tests/projections/test_parity.py.
    """
    _check_bounds("projection_box", lower, upper)
    lowers = jax.tree.broadcast(lower, tree)
    uppers = jax.tree.broadcast(upper, tree)
    return jax.tree.map(_clip, tree, lowers, uppers)


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    """Project a tree onto the hypercube {p : 0 <= p <= scale}.

    For each entry x of each leaf:

        p = min(max(x, 0), scale)

    This is ``projection_box(tree, 0, scale)``.

    Args:
        tree: The tree to project.
        scale: Side of the hypercube, finite and >= 0: a scalar or a tree prefix of
            ``tree`` (default 1, the unit hypercube).

    Returns:
        The projected tree, with ``tree``'s structure and leaf dtypes.

    References:
        Checked against optax.projections.projection_hypercube in
        tests/projections/test_parity.py.
    """
    for leaf in jax.tree.leaves(scale):  # a number, an array, or a tree of them
        _checks.non_negative("projection_hypercube", scale=leaf)
    return projection_box(tree, 0, scale)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    """Project a tree onto the l-infinity ball {p : max |p| <= scale}.

    For each entry x of each leaf:

        p = min(max(x, -scale), scale)

    Args:
        tree: The tree to project.
        scale: Radius of the ball, finite and >= 0 (a scalar, or an array that
            broadcasts against every leaf).

    Returns:
        The projected tree, with ``tree``'s structure and leaf dtypes.

    References:
        Checked against optax.projections.projection_linf_ball in
        tests/projections/test_parity.py.
    """
    _checks.non_negative("projection_linf_ball", scale=scale)
    return projection_box(tree, -jnp.asarray(scale), scale)
