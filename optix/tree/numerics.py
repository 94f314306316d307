"""Norms with a floor and gradient scaling: functions whose derivatives need care.

``max(norm(x), min_norm)`` written directly has a NaN gradient at ``x = 0`` (the
norm's derivative ``x / norm(x)`` is 0/0 there, and ``jnp.where`` differentiates both
branches); these versions take the norm of ones wherever the floor wins, so every
derivative is finite and is 0 where the floor is the value.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

from optix.tree.leafwise import abs_sq


def safe_norm(
    x: jax.typing.ArrayLike,
    min_norm: jax.typing.ArrayLike,
    ord: int | float | str | None = None,
    axis: tuple[int, ...] | int | None = None,
    keepdims: bool = False,
) -> jax.Array:
    """``max(jnp.linalg.norm(x, ord, axis, keepdims), min_norm)`` with finite gradients.

    Where ``norm <= min_norm`` the value is ``min_norm`` and the gradient with respect to
    ``x`` is 0 (``x = 0`` included, where the plain expression gives NaN); elsewhere both
    are the norm's.

    Args:
        x: An array.
        min_norm: The floor of the result (0 gives the norm with a zero gradient at 0).
        ord: Order of the norm, as ``jnp.linalg.norm``: None (2-norm of a vector,
            Frobenius of a matrix), a non-zero int, ``inf``, ``-inf``, ``"fro"``, ``"nuc"``.
        axis: None, an axis (vector norms) or two axes (matrix norms), as
            ``jnp.linalg.norm``.
        keepdims: Keep the reduced axes with size one.

    Returns:
        The floored norm, of the norm's dtype and shape.

    References:
        Checked against optax.safe_norm in tests/tree/test_numerics.py.
    """
    x = jnp.asarray(x)
    norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
    min_norm = jnp.asarray(min_norm, norm.dtype)
    small = norm <= min_norm
    # Ones where the floor wins keep the second norm, and so its derivative, finite.
    masked = jnp.linalg.norm(jnp.where(small, jnp.ones_like(x), x), ord, axis, keepdims)
    if not keepdims:
        small = jnp.squeeze(small, axis=axis)
    return jnp.where(small, min_norm, masked)


def safe_root_mean_squares(x: jax.typing.ArrayLike, min_rms: jax.typing.ArrayLike) -> jax.Array:
    """``max(sqrt(mean(|x|**2)), min_rms)`` over all of ``x``, with finite gradients.

    Where ``rms <= min_rms`` the value is ``min_rms`` and the gradient is 0 (``x = 0``
    included); elsewhere both are the root mean square's. Complex ``x`` uses ``|x|**2``.

    Args:
        x: An array.
        min_rms: The floor of the result.

    Returns:
        A scalar of ``x``'s real dtype.

    References:
        Checked against optax.safe_root_mean_squares in tests/tree/test_numerics.py.
    """
    x = jnp.asarray(x)
    rms = jnp.sqrt(jnp.mean(abs_sq(x)))
    min_rms = jnp.asarray(min_rms, rms.dtype)
    small = rms <= min_rms
    masked = jnp.sqrt(jnp.mean(abs_sq(jnp.where(small, jnp.ones_like(x), x))))
    return jnp.where(small, min_rms, masked)


def scale_gradient(inputs: Any, scale: jax.typing.ArrayLike) -> Any:
    """``inputs`` unchanged, with derivatives multiplied by ``scale``.

    The value is the identity; a cotangent (reverse mode) or tangent (forward mode)
    passing through is multiplied by ``scale``. ``scale = 0`` stops gradients and
    ``scale = 1`` returns ``inputs`` as they are. ``scale`` itself receives no
    derivative. Useful to slow one part of a model (a shared embedding) or to reverse a
    gradient (``scale = -1``, adversarial training).

    Args:
        inputs: A pytree of arrays.
        scale: The factor of the derivatives, a number or a scalar array.

    Returns:
        ``inputs``, of the same structure.

    References:
        Checked against optax.scale_gradient in tests/tree/test_numerics.py.
    """
    if isinstance(scale, numbers.Real) and scale == 1:
        return inputs
    if isinstance(scale, numbers.Real) and scale == 0:
        return jax.lax.stop_gradient(inputs)
    return _scaled_derivatives(inputs, scale)


@jax.custom_jvp
def _scaled_derivatives(inputs: Any, scale: Any) -> Any:
    del scale
    return inputs


@_scaled_derivatives.defjvp
def _scaled_derivatives_jvp(primals, tangents):
    inputs, scale = primals
    input_tangents, _ = tangents

    def scaled(t):
        if t.dtype == jax.dtypes.float0:
            return t  # integer inputs carry no derivative
        return t * jnp.asarray(scale, t.dtype)

    return inputs, jax.tree.map(scaled, input_tangents)
