"""Linear algebra used by optimizers (Optax's top-level helpers of these names).

``power_iteration`` and ``matrix_inverse_pth_root`` live here; ``nnls`` (in
``optix.transforms.nnls``) and ``multi_normal`` (in ``optix.transforms.gaussian``) are
re-exported, so the four come from one place.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
from jax import lax

from optix import _checks, tree
from optix.transforms.gaussian import MultiNormalDiagFromLogScale, multi_normal
from optix.transforms.nnls import nnls

__all__ = [
    "MultiNormalDiagFromLogScale",
    "matrix_inverse_pth_root",
    "multi_normal",
    "nnls",
    "power_iteration",
]


def _normalized(x: Any) -> Any:
    return tree.scale(1.0 / tree.norm(x), x)


def power_iteration(
    matrix: jax.typing.ArrayLike | Callable[[Any], Any],
    *,
    v0: Any = None,
    num_iters: jax.typing.ArrayLike = 100,
    error_tolerance: jax.typing.ArrayLike = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    key: jax.Array | None = None,
) -> tuple[jax.Array, Any]:
    """The dominant eigenvalue of a matrix (largest in magnitude) and its eigenvector.

    From v = v0 / ||v0|| and z = A v, each iteration does

        v = z / ||z||
        z = A v
        eig = <v, z>

    and it stops after ``num_iters`` iterations or once ||z - eig * v|| / |eig| <
    ``error_tolerance``. The eigenvector returned is z / ||z|| of the last iteration.
    It converges when A is diagonalizable with a single eigenvalue of largest
    magnitude, at the rate |lambda_2 / lambda_1| per iteration.

    Args:
        matrix: A square (n, n) array, or a function computing the product A v of a
            linear operator with a pytree v (a Hessian-vector product, say).
        v0: The starting vector: shape (n,) for an array, a pytree like the function's
            input for a function (required then). By default, for an array, uniform in
            [-1, 1] drawn with ``key``.
        num_iters: Largest number of iterations, >= 0.
        error_tolerance: Relative residual at which to stop, >= 0.
        precision: ``lax.Precision`` of the products with an array ``matrix``.
        key: PRNG key for the default ``v0``; ``jax.random.PRNGKey(0)`` when None.

    Returns:
        ``(eigenvalue, eigenvector)``: a scalar and a unit-norm vector (or pytree).

    References:
        Golub & Van Loan, "Matrix Computations", 4th ed., section 7.3.1 (the power
        method).

    Checked against numpy.linalg.eig and optax.power_iteration in
    tests/transforms/test_linear_algebra.py.
    """
    _checks.non_negative("power_iteration", num_iters=num_iters, error_tolerance=error_tolerance)
    if callable(matrix):
        if v0 is None:
            raise ValueError(
                "power_iteration: v0 must be given when matrix is a function, got v0=None "
                "(the shape of the function's input is not known)"
            )
        product = matrix
    else:
        matrix = jnp.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(
                f"power_iteration: matrix must be square, got matrix.shape={matrix.shape}"
            )
        if not jnp.issubdtype(matrix.dtype, jnp.inexact):
            matrix = matrix.astype(jax.dtypes.canonicalize_dtype(jnp.float64))
        product = functools.partial(jnp.matmul, matrix, precision=precision)
        if v0 is None:
            key = jax.random.PRNGKey(0) if key is None else key
            v0 = jax.random.uniform(key, matrix.shape[-1:], matrix.dtype, -1.0, 1.0)

    def running(state):
        v, z, eig, k = state
        residual = tree.norm(tree.sub(z, tree.scale(eig, v)))
        return (k < num_iters) & ~(jnp.abs(residual / eig) < error_tolerance)

    def iteration(state):
        _, z, _, k = state
        v = _normalized(z)
        z = product(v)
        return v, z, tree.vdot(v, z), k + 1

    v = _normalized(v0)
    z = product(v)
    start = (v, z, jnp.zeros_like(tree.vdot(v, z)), 0)
    _, z, eig, _ = lax.while_loop(running, iteration, start)
    return eig, _normalized(z)


def _concrete_power(p: Any) -> int | None:
    """p as a Python int when it is a concrete number, else None (a traced p)."""
    if isinstance(p, jax.core.Tracer):
        return None
    value = float(p) if isinstance(p, numbers.Real) or jnp.ndim(p) == 0 else float("nan")
    if not (value >= 1 and value.is_integer()):
        raise ValueError(f"matrix_inverse_pth_root: p must be a positive integer, got p={p!r}")
    return int(value)


def _matrix_power(m: jax.Array, p: Any, precision: lax.Precision) -> jax.Array:
    """m**p by repeated squaring: unrolled for a concrete p, a loop over its bits otherwise."""

    def times(a, b):
        return jnp.matmul(a, b, precision=precision)

    static = _concrete_power(p)
    if static is not None:
        square = m
        while not static & 1:  # the lowest set bit starts the product
            square, static = times(square, square), static >> 1
        result, static = square, static >> 1
        while static:
            square = times(square, square)
            if static & 1:
                result = times(result, square)
            static >>= 1
        return result

    def bit(state):
        result, square, e = state
        result = jnp.where(e % 2 == 1, times(result, square), result)
        return result, times(square, square), e // 2

    start = (jnp.eye(m.shape[0], dtype=m.dtype), m, jnp.asarray(p).astype(jnp.int32))
    return lax.while_loop(lambda s: s[2] > 0, bit, start)[0]


def matrix_inverse_pth_root(
    matrix: jax.typing.ArrayLike,
    p: jax.typing.ArrayLike,
    num_iters: jax.typing.ArrayLike = 100,
    ridge_epsilon: jax.typing.ArrayLike = 1e-6,
    error_tolerance: jax.typing.ArrayLike = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
) -> tuple[jax.Array, jax.Array]:
    """``(A + r I)**(-1/p)`` of a symmetric positive semi-definite matrix A, by coupled Newton.

    With r = ridge_epsilon * max(lambda_max(A), 1e-16) (lambda_max from
    ``power_iteration``), D = A + r I, I the identity and a = -1/p, start from

        z = (1 + p) / (2 * ||D||_F),   M = z * D,   H = z**(1/p) * I

    and iterate

        T = (1 - a) * I + a * M
        M = T**p @ M
        H = H @ T

    so that H -> D**(-1/p) as M -> I. It stops after ``num_iters`` iterations, once
    max|M - I| <= ``error_tolerance``, or when an iteration raises max|M - I| above 1.2
    times its last value; then the H before that iteration is returned. A 1 x 1 matrix
    gives (A + r)**a directly.

    Any positive integer p is supported (T**p by repeated squaring); Optax's version is
    exact only for p in {1, 2, 4, 8}. Computed in the matrix's dtype (float32 at least).

    Args:
        matrix: A symmetric positive semi-definite (n, n) matrix.
        p: The root, a positive integer (a Python or traced integer).
        num_iters: Largest number of Newton iterations, >= 0.
        ridge_epsilon: Relative ridge r / lambda_max added to the diagonal, >= 0.
        error_tolerance: max|M - I| at which to stop, >= 0.
        precision: ``lax.Precision`` of the matrix products.

    Returns:
        ``(root, error)``: the (n, n) inverse p-th root in ``matrix``'s dtype (float32
        for an integer matrix), and the
        final max|M - I| (0 for a 1 x 1 matrix).

    References:
        Higham, "Functions of Matrices: Theory and Computation", SIAM 2008, section 7.3,
        equation (7.18).

    Checked against scipy.linalg.fractional_matrix_power and optax.matrix_inverse_pth_root
    in tests/transforms/test_linear_algebra.py.
    """
    _concrete_power(p)
    _checks.non_negative(
        "matrix_inverse_pth_root",
        num_iters=num_iters,
        ridge_epsilon=ridge_epsilon,
        error_tolerance=error_tolerance,
    )
    matrix = jnp.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"matrix_inverse_pth_root: matrix must be square, got matrix.shape={matrix.shape}"
        )
    dtype = jnp.float64 if matrix.dtype == jnp.float64 else jnp.float32
    out_dtype = matrix.dtype if jnp.issubdtype(matrix.dtype, jnp.floating) else dtype
    a = matrix.astype(dtype)
    n = a.shape[0]
    p_value = jnp.asarray(p).astype(dtype)
    alpha = -1.0 / p_value
    identity = jnp.eye(n, dtype=dtype)
    max_ev, _ = power_iteration(a, num_iters=100, error_tolerance=1e-6, precision=precision)
    ridge = jnp.asarray(ridge_epsilon).astype(dtype) * jnp.maximum(max_ev, 1e-16)

    if n == 1:
        return ((a + ridge) ** alpha).astype(out_dtype), jnp.zeros((), dtype)

    def running(state):
        k, _, _, _, error, improving = state
        return (k < num_iters) & (error > error_tolerance) & improving

    def newton(state):
        k, m, h, _, error, _ = state
        t = (1 - alpha) * identity + alpha * m
        m_next = jnp.matmul(_matrix_power(t, p, precision), m, precision=precision)
        h_next = jnp.matmul(h, t, precision=precision)
        error_next = jnp.max(jnp.abs(m_next - identity))
        # The error may rise for an iteration before it falls; more than 1.2x is divergence.
        return k + 1, m_next, h_next, h, error_next, error_next < 1.2 * error

    damped = a + ridge * identity
    z = (1 + p_value) / (2 * jnp.linalg.norm(damped))
    m = z * damped
    h = z ** (1 / p_value) * identity
    start = (0, m, h, h, jnp.max(jnp.abs(m - identity)), jnp.array(True))
    _, m, h, h_before, _, improving = lax.while_loop(running, newton, start)
    root = jnp.where(improving, h, h_before)
    return root.astype(out_dtype), jnp.max(jnp.abs(m - identity))
