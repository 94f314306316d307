"""Optimizing complex parameters as pairs of real ones.

JAX's gradient of a real loss with respect to a complex z = x + iy is
``conj(dL/dx + i dL/dy)``; conjugate it (``jax.tree.map(jnp.conj, grads)``) before the
update to get the descent direction ``dL/dx + i dL/dy`` that PyTorch's convention gives.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix.core import GradientTransformation, OptState, with_extra_args_support


class SplitRealAndImaginaryArrays(NamedTuple):
    """The real and imaginary parts of a complex array, as two real arrays."""

    real: jax.Array
    imaginary: jax.Array


class SplitRealAndImaginaryState(NamedTuple):
    """State of ``split_real_and_imaginary``: the inner transformation's state."""

    inner_state: OptState


def _split(x: Any) -> Any:
    if x is not None and jnp.iscomplexobj(x):
        return SplitRealAndImaginaryArrays(jnp.real(x), jnp.imag(x))
    return x


def _merge(x: Any) -> Any:
    if isinstance(x, SplitRealAndImaginaryArrays):
        return jax.lax.complex(x.real, x.imaginary)
    return x


def _is_pair(x: Any) -> bool:
    return isinstance(x, SplitRealAndImaginaryArrays)


def split_real_and_imaginary(inner: GradientTransformation) -> GradientTransformation:
    """Run ``inner`` on the real and imaginary parts of complex leaves as separate leaves.

    Each complex leaf z = x + iy of the params and updates becomes the pair
    ``SplitRealAndImaginaryArrays(real=x, imaginary=y)`` for ``inner``, and each pair of
    ``inner``'s updates becomes ``real + i * imaginary`` again; real leaves pass as
    they are. A complex parameter is then optimized exactly as the two real
    parameters (x, y) would be: Adam keeps separate moments for x and y, rather than
    one moment of |g|**2.

    Args:
        inner: The transformation to run on real leaves.

    Returns:
        A GradientTransformation with state ``SplitRealAndImaginaryState(inner_state)``.
        Extra keyword arguments reach ``inner``.

    References:
        Checked against optax.contrib.split_real_and_imaginary in
        tests/transforms/test_complex_valued.py.
    """
    inner = with_extra_args_support(inner)

    def split(tree: Any) -> Any:
        return jax.tree.map(_split, tree)

    def init(params):
        return SplitRealAndImaginaryState(inner.init(split(params)))

    def update(updates, state, params=None, **extra_args):
        updates, inner_state = inner.update(
            split(updates), state.inner_state, split(params), **extra_args
        )
        return jax.tree.map(_merge, updates, is_leaf=_is_pair), SplitRealAndImaginaryState(
            inner_state
        )

    return GradientTransformation(init, update)
