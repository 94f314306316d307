"""Orthogonalization by Newton-Schulz iteration, for Muon.

The iteration runs on a whole stack of matrices at once (the batch axes of a leaf's
``MuonDimensionNumbers``), as one compiled loop whose memory does not grow with the
number of steps.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from optix.optimizers.muon_axes import MuonDimensionNumbers, to_matrices
from optix.tree.leafwise import compute_dtype

Preconditioning = Literal["frobenius", "spectral", "aol", "schatten"]
PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")

NsCoeffs = tuple[float, float, float] | tuple[tuple[float, float, float], ...]

# Jordan's quintic: the largest slope at zero that keeps the singular values in ~[0.7, 1.2].
JORDAN_NS_COEFFS = (3.4445, -4.7750, 2.0315)
# One quintic per step, from Ahn et al. (Dion), arXiv:2504.05295.
DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
NS_COEFFS_PRESETS: dict[str, NsCoeffs] = {"standard": JORDAN_NS_COEFFS, "dion": DION_NS_COEFFS}


def check_ns_coeffs(fn: str, ns_coeffs: Any, ns_steps: Any) -> None:
    """Coefficients are 3 numbers, or one row of 3 per step with at most ``ns_steps`` rows."""
    if any(isinstance(c, jax.core.Tracer) for c in jax.tree.leaves(ns_coeffs)):
        return  # traced under inject_hyperparams: checked when it was built
    try:
        shape = np.shape(np.asarray(ns_coeffs, dtype=np.float64))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{fn}: ns_coeffs must be 3 numbers or a sequence of triples, got "
            f"ns_coeffs={ns_coeffs!r}"
        ) from error
    if len(shape) not in (1, 2) or shape[-1] != 3:
        raise ValueError(f"{fn}: ns_coeffs must have shape (3,) or (n, 3), got shape {shape}")
    if len(shape) == 2 and isinstance(ns_steps, numbers.Integral) and shape[0] > ns_steps:
        raise ValueError(
            f"{fn}: ns_coeffs has {shape[0]} rows (one per step) but ns_steps={ns_steps}; "
            f"pass ns_steps >= {shape[0]} (the rows set the number of steps)"
        )


def check_ns_steps(fn: str, ns_steps: Any) -> None:
    """An int >= 0, or an integer array (a traced one under ``inject_hyperparams``)."""
    is_int = isinstance(ns_steps, numbers.Integral) and not isinstance(ns_steps, bool | np.bool_)
    is_int_array = isinstance(ns_steps, jax.Array | np.ndarray) and jnp.issubdtype(
        ns_steps.dtype, jnp.integer
    )
    if not (is_int or is_int_array):
        raise TypeError(f"{fn}: ns_steps must be an int, got ns_steps={ns_steps!r}")
    if is_int and ns_steps < 0:
        raise ValueError(f"{fn}: ns_steps must be >= 0, got ns_steps={ns_steps!r}")


def _norm(m: jax.Array, ord: Any) -> jax.Array:
    """Matrix norm of each matrix of the stack, computed in at least float32."""
    wide = compute_dtype(m)
    return jnp.linalg.norm(m.astype(wide), ord=ord, axis=(-2, -1), keepdims=True).astype(m.dtype)


def _gram(x: jax.Array) -> jax.Array:
    return x @ jnp.conj(jnp.swapaxes(x, -1, -2))


def _quintic(x: jax.Array, a: jax.Array, c: jax.Array) -> jax.Array:
    """``c0 x + (c1 a + c2 a a) x`` with ``a = x x^H``: one Newton-Schulz step."""
    b = c[1] * a + (c[2] * a) @ a
    return c[0] * x + b @ x


def _aol_step(x: jax.Array, c: jax.Array, eps: Any) -> jax.Array:
    """First step with AOL row scaling: ``s_i = 1 / sqrt(sum_j |a_ij|)``, x = s x."""
    a = _gram(x)
    s = jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.abs(a), axis=-1), eps).astype(x.dtype))[..., None]
    return _quintic(x * s, a * s * jnp.swapaxes(s, -1, -2), c)


def _schatten_step(x: jax.Array, c: jax.Array, eps: Any) -> jax.Array:
    """First step scaled by the Schatten-4 norm: x = x / ||x x^H||_F ** 0.5."""
    a = _gram(x)
    s = jax.lax.rsqrt(jnp.maximum(_norm(a, "fro").real, eps).astype(x.dtype))
    return _quintic(x * s, a * s * s, c)


def _plain_step(x: jax.Array, c: jax.Array, eps: Any) -> jax.Array:
    del eps
    return _quintic(x, _gram(x), c)


_FIRST_STEPS = {"aol": _aol_step, "schatten": _schatten_step}


def newton_schulz(
    m: jax.Array,
    coeffs: jax.Array,
    ns_steps: Any,
    preconditioning: Preconditioning,
    eps: Any,
    eps_clamp: bool = False,
) -> jax.Array:
    """The iteration on a ``(..., rows, cols)`` stack with rows <= cols, in ``m``'s dtype.

    'frobenius' and 'spectral' divide each matrix by its norm (plus eps, or floored at
    eps with ``eps_clamp``) and then iterate; 'aol' and 'schatten' scale inside the
    first step instead. 1-D ``coeffs`` are used at each of ``ns_steps`` steps
    (``lax.fori_loop``); 2-D coefficients give one row per step (``lax.scan``).
    """
    if preconditioning in ("frobenius", "spectral"):
        norm = _norm(m, "fro" if preconditioning == "frobenius" else 2)
        m = m / (jnp.maximum(norm.real, eps) if eps_clamp else norm + eps).astype(m.dtype)
    first = _FIRST_STEPS.get(preconditioning, _plain_step)

    def step(i, x, c):
        if first is _plain_step:
            return _plain_step(x, c, eps)
        return jax.lax.cond(i == 0, first, _plain_step, x, c, eps)

    if coeffs.ndim == 1:
        return jax.lax.fori_loop(0, ns_steps, lambda i, x: step(i, x, coeffs), m)

    def scan_body(carry, c):
        i, x = carry
        return (i + 1, step(i, x, c)), None

    (_, m), _ = jax.lax.scan(scan_body, (jnp.zeros((), jnp.int32), m), coeffs)
    return m


def orthogonalize_via_newton_schulz(
    x: jax.Array,
    ns_coeffs: jax.Array,
    ns_steps: jax.typing.ArrayLike = 5,
    preconditioning: Preconditioning = "frobenius",
    eps: jax.typing.ArrayLike = 1e-8,
    dimension_numbers: MuonDimensionNumbers | None = None,
    *,
    ns_dtype: jax.typing.DTypeLike | None = None,
    eps_clamp: bool = False,
) -> jax.Array:
    """Approximately ``U V^H`` for each matrix ``U S V^H`` of ``x``, by Newton-Schulz.

    Each matrix is transposed to be wide (rows <= cols), preconditioned, iterated with
    ``x = c0 x + (c1 a + c2 a a) x``, ``a = x x^H``, and transposed back. With Jordan's
    coefficients the singular values land near 1 (roughly in [0.7, 1.2]), not at 1.

    Args:
        x: A matrix, or a leaf of any rank with ``dimension_numbers``.
        ns_coeffs: Shape (3,): the same coefficients at each step; shape (n, 3): one
            row per step (``ns_steps`` is then n).
        ns_steps: Number of steps with 1-D coefficients, an int >= 0.
        preconditioning: "frobenius" (divide by the Frobenius norm), "spectral" (by
            the largest singular value), "aol" (per-row scaling in the first step) or
            "schatten" (the Schatten-4 norm in the first step).
        eps: Added to the norm (floor of the norm with ``eps_clamp``), >= 0.
        dimension_numbers: Which axes form the matrices; required unless x is 2-D.
        ns_dtype: Dtype of the iteration (``jnp.bfloat16`` as in Jordan's code); None
            iterates in ``x``'s dtype. The result has ``x``'s dtype.
        eps_clamp: Divide by ``max(norm, eps)`` (torch.optim.Muon) instead of
            ``norm + eps`` (Optax, Jordan).

    Returns:
        An array of ``x``'s shape and dtype.
    """
    if dimension_numbers is None:
        if x.ndim != 2:
            raise ValueError(
                f"orthogonalize_via_newton_schulz: x of shape {x.shape} is not a matrix; "
                "pass dimension_numbers to say which axes form the matrices"
            )
        dimension_numbers = MuonDimensionNumbers()
    coeffs = jnp.asarray(ns_coeffs)
    if coeffs.ndim not in (1, 2) or coeffs.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got shape {coeffs.shape}")
    stack, restore = to_matrices(x, dimension_numbers)
    tall = stack.shape[-2] > stack.shape[-1]
    if tall:
        stack = jnp.swapaxes(stack, -1, -2)
    dtype = stack.dtype if ns_dtype is None else jnp.dtype(ns_dtype)
    if jnp.iscomplexobj(stack) and not jnp.issubdtype(dtype, jnp.complexfloating):
        dtype = jnp.result_type(dtype, jnp.complex64)
    stack = newton_schulz(
        stack.astype(dtype), coeffs.astype(dtype), ns_steps, preconditioning, eps, eps_clamp
    )
    if tall:
        stack = jnp.swapaxes(stack, -1, -2)
    return restore(stack).astype(x.dtype)
