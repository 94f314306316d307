"""Projections onto a line, a hyperplane and a halfspace, given by a tree ``a``."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from optix.projections import _vector
from optix.tree.structure import check_same_structure


def projection_vector(x: Any, a: Any) -> Any:
    """Project a tree onto the line spanned by the tree ``a``.

    With <., .> the inner product over all entries of all leaves:

        p = (<x, a> / <a, a>) * a

    For a = 0 the line is {0} and p = 0.

    Args:
        x: The tree to project.
        a: A tree with ``x``'s structure spanning the line.

    Returns:
        The projected tree, with ``x``'s structure and ``x``'s leaf dtypes.

    References:
        Checked against optax.projections.projection_vector in
        tests/projections/test_parity.py.
    """
    check_same_structure("projection_vector", x=x, a=a)
    return _affine(x, a, 0.0, "vector")


def projection_hyperplane(x: Any, a: Any, b: jax.typing.ArrayLike) -> Any:
    """Project a tree onto the hyperplane {p : <a, p> = b}.

    With <., .> the inner product over all entries of all leaves:

        p = x + ((b - <a, x>) / <a, a>) * a

    For a = 0 the set is everything (b = 0) or empty, and p = x.

    Args:
        x: The tree to project.
        a: A tree with ``x``'s structure, the hyperplane's normal.
        b: The hyperplane's offset, a scalar.

    Returns:
        The projected tree, with ``x``'s structure and ``x``'s leaf dtypes.

    References:
        Checked against optax.projections.projection_hyperplane in
        tests/projections/test_parity.py.
    """
    _check("projection_hyperplane", x, a, b)
    return _affine(x, a, b, "hyperplane")


def projection_halfspace(x: Any, a: Any, b: jax.typing.ArrayLike) -> Any:
    """Project a tree onto the halfspace {p : <a, p> <= b}.

    With <., .> the inner product over all entries of all leaves:

        p = x + min((b - <a, x>) / <a, a>, 0) * a

    Points inside come back unchanged. For a = 0 the set is everything (b >= 0) or
    empty, and p = x.

    Args:
        x: The tree to project.
        a: A tree with ``x``'s structure, the halfspace's outer normal.
        b: The halfspace's offset, a scalar.

    Returns:
        The projected tree, with ``x``'s structure and ``x``'s leaf dtypes.

    References:
        Checked against optax.projections.projection_halfspace in
        tests/projections/test_parity.py.
    """
    _check("projection_halfspace", x, a, b)
    return _affine(x, a, b, "halfspace")


def _check(fn: str, x: Any, a: Any, b: Any) -> None:
    check_same_structure(fn, x=x, a=a)
    if jnp.ndim(b) != 0:
        raise ValueError(f"{fn}: b must be a scalar, got b={b!r}")


@functools.partial(jax.jit, static_argnums=3)
def _affine(x: Any, a: Any, b: Any, kind: str) -> Any:
    """``base + c * a``, with c the coefficient of ``kind``'s formula (0 when a = 0).

    Computed in the widest dtype of x's and a's leaves, at least float32; the base is
    0 for the line and x otherwise.
    """
    xl, al = _vector.leaves(x, a)
    xs, as_ = xl.wide(), al.wide()
    dt = xl.dtype
    xa, aa = _vector.dot(xs, as_, dt), _vector.dot(as_, as_, dt)
    nonzero = aa > 0
    aa = jnp.where(nonzero, aa, jnp.ones((), dt))  # keeps c's derivatives finite at a = 0
    if kind == "vector":
        c = xa / aa
        xs = [jnp.zeros_like(u) for u in xs]
    else:
        c = (jnp.asarray(b, dt) - xa) / aa
        if kind == "halfspace":
            c = jnp.minimum(c, jnp.zeros((), dt))
    c = jnp.where(nonzero, c, jnp.zeros((), dt))
    return xl.restore([u + c * v for u, v in zip(xs, as_, strict=True)])
