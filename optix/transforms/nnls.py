"""Non-negative least squares by fast projected gradient (Optax's ``optax.nnls``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from optix import _checks


def _spectral_bound(q: jax.Array) -> jax.Array:
    """min(||Q||_F, ||Q||_1), an upper bound on the spectral radius of Q."""
    if q.size == 0:
        return jnp.zeros((), q.dtype)
    return jnp.minimum(jnp.linalg.matrix_norm(q, ord="fro"), jnp.linalg.matrix_norm(q, ord=1))


def nnls(
    A: jax.Array,
    b: jax.Array,
    iters: int,
    unroll: int | bool = 1,
    L: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Solve min ||A x - b||_2 over x >= 0 (non-negative least squares) by projected gradient.

    With Q = A^T A, q = A^T b and L >= the largest eigenvalue of Q (by default
    min(||Q||_F, ||Q||_1); 1 if that is 0), from x = y = 0 and c = 0 each iteration does

        x_next = max(y - (Q y - q) / L, 0)
        c_next = (1 + sqrt(1 + 4 c**2)) / 2
        y = x_next + ((c - 1) / c_next) * (x_next - x)
        x, c = x_next, c_next

    the projected gradient step from the extrapolated point y, with Nesterov's momentum.
    The objective falls as O(1 / iters**2). A matrix b solves one problem per column.

    Args:
        A: The (M, N) matrix.
        b: The (M,) vector or the (M, K) matrix of right-hand sides.
        iters: Number of iterations (static).
        unroll: ``unroll`` of the ``lax.scan`` over the iterations.
        L: An upper bound on the largest eigenvalue of A^T A; computed when None.

    Returns:
        x: shape (N,) or (N, K), >= 0, in the dtype of ``A`` and ``b``.

    References:
        Polyak, "Projected gradient method for non-negative least square", Contemporary
        Mathematics 636, 2015.

    Checked against scipy.optimize.nnls and optax.nnls in
    tests/transforms/test_linear_algebra.py.
    """
    # A, b, Q and L keep Optax's names (A and L are keyword arguments there too).
    A, b = jnp.asarray(A), jnp.asarray(b)
    if A.ndim != 2:
        raise ValueError(f"nnls: A must be a matrix, got A.shape={A.shape}")
    if b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(
            f"nnls: b must have shape ({A.shape[0]},) or ({A.shape[0]}, K) to match "
            f"A.shape={A.shape}, got b.shape={b.shape}"
        )
    _checks.integer_at_least("nnls", "iters", iters, 0)
    with jax.numpy_dtype_promotion("standard"):
        dtype = jnp.result_type(A, b)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    A, b = A.astype(dtype), b.astype(dtype)
    highest = lax.Precision.HIGHEST
    Q = jnp.matmul(A.mT, A, precision=highest)
    q = jnp.matmul(A.mT, b, precision=highest)
    bound = _spectral_bound(Q) if L is None else jnp.asarray(L).astype(dtype)
    bound = jnp.where(bound == 0, jnp.ones((), dtype), bound)
    c_dtype = jnp.float64 if dtype == jnp.float64 else jnp.float32

    def iteration(carry, _):
        x, y, c = carry
        x_next = jnp.maximum(y - (jnp.matmul(Q, y, precision=highest) - q) / bound, 0)
        c_next = (1 + jnp.sqrt(1 + 4 * c**2)) / 2
        momentum = ((c - 1) / c_next).astype(dtype)
        return (x_next, x_next + momentum * (x_next - x), c_next), None

    x = jnp.zeros(A.shape[-1:] + b.shape[1:], dtype)
    (x, _, _), _ = lax.scan(iteration, (x, x, jnp.zeros((), c_dtype)), length=iters, unroll=unroll)
    return x
