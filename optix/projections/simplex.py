"""Projections onto the simplex and onto the l1 ball and sphere, by sorting."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from optix.projections import _vector


@jax.custom_jvp
def _simplex(v: jax.Array, s: jax.Array) -> jax.Array:
    """The projection of the vector ``v`` onto {w : w >= 0, sum(w) = s}, for s >= 0.

    With u = v sorted in decreasing order and c its cumulative sums, the entries kept
    are the rho largest, rho the last k (1-based) with k * u[k] - c[k] + s > 0; then

        tau = (c[rho] - s) / rho
        w = max(v - tau, 0)

    The multiplied-out test keeps -inf entries out (it is NaN for them), and rho = 1
    at least, so s = 0 gives w = 0.
    """
    u = jnp.flip(jnp.sort(v))
    c = jnp.cumsum(u)
    k = jnp.arange(1, v.size + 1)
    kept = k.astype(v.dtype) * u - c + s > 0
    rho = jnp.max(jnp.where(kept, k, 1))
    tau = (c[rho - 1] - s) / rho.astype(v.dtype)
    return jnp.maximum(v - tau, jnp.zeros((), v.dtype))


@_simplex.defjvp
def _simplex_jvp(primals, tangents):
    """On the support S = {w > 0}, w = v - tau with tau = (sum(v[S]) - s) / |S|, so

    dw = [S] * (dv - (sum(dv[S]) - ds) / |S|)

    and dw = 0 off the support: the derivative of the formula, without the sort.
    """
    v, s = primals
    dv, ds = tangents
    w = _simplex(v, s)
    support = (w > 0).astype(w.dtype)
    size = jnp.maximum(jnp.sum(support), jnp.ones((), w.dtype))
    dtau = (jnp.sum(support * dv) - ds) / size
    return w, support * (dv - dtau)


def projection_simplex(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Project a tree onto the simplex {p : p >= 0, sum(p) = scale}.

    All entries of all leaves together form the vector x. With u = x sorted in
    decreasing order, c[k] = u[1] + ... + u[k], and rho the largest k (1-based) with
    u[k] > (c[k] - scale) / k:

        tau = (c[rho] - scale) / rho
        p = max(x - tau, 0)

    An O(n log n) sort, exact in one pass; under ``jit`` and ``vmap`` it compiles to
    a sort and a few scans. Derivatives (forward and reverse, in x and in scale) are
    those of the formula on the support {p > 0}, without differentiating the sort.

    Args:
        tree: The tree to project; ``-inf`` entries are allowed and map to 0.
        scale: Value the entries of the result sum to, a scalar, finite and >= 0
            (default 1, the probability simplex).

    Returns:
        The projected tree, with ``tree``'s structure and leaf dtypes; computed in the
        widest leaf dtype, at least float32.

    References:
        Held, Wolfe & Crowder, "Validation of subgradient optimization", Math.
        Programming 1974. Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient
        projections onto the l1-ball for learning in high dimensions", ICML 2008,
        Figure 1. Condat, "Fast projection onto the simplex and the l1 ball", Math.
        Programming 2016, Algorithm 1.
        Checked against optax.projections.projection_simplex in
        tests/projections/test_parity.py, and its properties in
        tests/projections/test_properties.py.
    """
    _vector.check_radius("projection_simplex", scale)
    return _on_vector(_simplex, tree, scale)


def _l1_sphere(v: jax.Array, s: jax.Array) -> jax.Array:
    # +1 on zeros: every orthant's face is then reached, so the result is on the sphere.
    signs = jnp.where(v < 0, -jnp.ones((), v.dtype), jnp.ones((), v.dtype))
    return signs * _simplex(signs * v, s)


def projection_l1_sphere(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Project a tree onto the l1 sphere {p : sum(|p|) = scale}.

    All entries of all leaves together form the vector x. With sigma = -1 where
    x < 0 and +1 elsewhere (zeros included):

        p = sigma * projection_simplex(sigma * x, scale)

    The nearest point of the sphere lies on the face of the cross-polytope in x's
    orthant. Optax uses ``sign(x)``, which is 0 at zeros: for x inside the ball with
    zero entries its result has l1 norm below ``scale`` (and is 0 for x = 0); here
    the result is always on the sphere. Both agree on inputs without zeros.

    Args:
        tree: The tree to project.
        scale: Radius of the sphere, a scalar, finite and >= 0 (default 1).

    Returns:
        The projected tree, with ``tree``'s structure and leaf dtypes.

    References:
        Duchi et al., ICML 2008, Section 4 (the l1 projection through the simplex).
        Checked against optax.projections.projection_l1_sphere in
        tests/projections/test_parity.py.
    """
    _vector.check_radius("projection_l1_sphere", scale)
    return _on_vector(_l1_sphere, tree, scale)


def projection_l1_ball(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    """Project a tree onto the l1 ball {p : sum(|p|) <= scale}.

    All entries of all leaves together form the vector x:

        p = x                                  if sum(|x|) <= scale
        p = projection_l1_sphere(x, scale)     otherwise

    Inside the ball the tree comes back unchanged (bit for bit), with identity
    derivatives; outside it the simplex projection of |x| runs (a ``lax.cond``, so only
    one branch runs when the test is not batched).

    Args:
        tree: The tree to project.
        scale: Radius of the ball, a scalar, finite and >= 0 (default 1).

    Returns:
        The projected tree, with ``tree``'s structure and leaf dtypes.

    References:
        Duchi et al., ICML 2008, Section 4. Condat, Math. Programming 2016.
        Checked against optax.projections.projection_l1_ball in
        tests/projections/test_parity.py.
    """
    _vector.check_radius("projection_l1_ball", scale)
    return _on_vector(_l1_ball, tree, scale)


def _l1_ball(v: jax.Array, s: jax.Array) -> jax.Array:
    inside = jnp.sum(jnp.abs(v)) <= s
    return jax.lax.cond(inside, lambda v: v, lambda v: _l1_sphere(v, s), v)


# Compiled once per tree structure, shapes and dtypes: called eagerly, the sort, scans
# and lax.cond would otherwise dispatch (and the cond retrace) one operation at a time.
@functools.partial(jax.jit, static_argnums=0)
def _on_vector(project, tree: Any, scale: Any) -> Any:
    """``project(v, scale)`` on all entries of ``tree`` as one vector v."""
    (x,) = _vector.leaves(tree)
    if not x.size():
        return tree
    return x.unravel(project(x.ravel(), jnp.asarray(scale, x.dtype)))
