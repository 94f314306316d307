"""A diagonal Gaussian parameterized by its mean and log standard deviation (Optax's
``optax.multi_normal``), the search distribution of evolution strategies."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp


def _float_dtype(*arrays: jax.Array) -> jnp.dtype:
    with jax.numpy_dtype_promotion("standard"):
        dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    return jnp.dtype(dtype)


class MultiNormalDiagFromLogScale:
    """Independent normals, one per entry of ``loc``, with standard deviations
    ``exp(log_scale)``; ``loc`` and ``log_scale`` broadcast to the parameter shape."""

    def __init__(self, loc: jax.typing.ArrayLike, log_scale: jax.typing.ArrayLike):
        self._mean = jnp.asarray(loc)
        self._log_scale = jnp.asarray(log_scale)
        self._scale = jnp.exp(self._log_scale)
        try:
            self._param_shape = jax.lax.broadcast_shapes(self._mean.shape, self._scale.shape)
        except ValueError as error:
            raise ValueError(
                f"multi_normal: loc and log_scale must broadcast together, got "
                f"loc.shape={self._mean.shape} and log_scale.shape={self._scale.shape} "
                f"({error})"
            ) from error

    def sample(self, shape: Sequence[int], key: jax.Array) -> jax.Array:
        """Draws of shape ``(*shape, *param_shape)``: loc + exp(log_scale) * N(0, 1).

        The standard normal draws are in the default float dtype (float64 under x64),
        so the same key gives the same samples as Optax's.
        """
        noise = jax.random.normal(key, tuple(shape) + self._param_shape)
        dtype = _float_dtype(noise, self._mean, self._scale)
        scale, mean = (
            jnp.broadcast_to(a.astype(dtype), noise.shape) for a in (self._scale, self._mean)
        )
        return noise.astype(dtype) * scale + mean

    def log_prob(self, x: jax.typing.ArrayLike) -> jax.Array:
        """The log density of ``x``, summed over the parameter axes (the trailing ones):

            sum(-(x - loc)**2 / (2 * scale**2) - log(scale) - log(2 pi) / 2)

        with scale = exp(log_scale). Leading axes of ``x`` are a batch.
        """
        x = jnp.asarray(x)
        dtype = _float_dtype(x, self._mean, self._scale)
        shape = jax.lax.broadcast_shapes(x.shape, self._param_shape)
        x, mean, scale = (
            jnp.broadcast_to(a.astype(dtype), shape) for a in (x, self._mean, self._scale)
        )
        z = (x - mean) / scale
        log_pdf = -0.5 * z**2 - jnp.log(scale) - 0.5 * math.log(2 * math.pi)
        return jnp.sum(log_pdf, axis=tuple(range(-len(self._param_shape), 0)))

    @property
    def log_scale(self) -> jax.Array:
        """The log standard deviation, as given."""
        return self._log_scale

    @property
    def params(self) -> Sequence[jax.Array]:
        """``[loc, log_scale]``, as given: the parameters an evolution strategy updates."""
        return [self._mean, self._log_scale]


def multi_normal(
    loc: jax.typing.ArrayLike, log_scale: jax.typing.ArrayLike
) -> MultiNormalDiagFromLogScale:
    """A Gaussian with diagonal covariance diag(exp(log_scale)**2) and mean ``loc``.

    Each entry is an independent normal with mean loc and standard deviation
    exp(log_scale); ``log_prob`` sums the log densities over the parameter axes and
    ``sample(shape, key)`` draws arrays of shape ``(*shape, *param_shape)``, where
    param_shape is the broadcast shape of ``loc`` and ``log_scale``.

    Args:
        loc: The mean.
        log_scale: The natural log of the standard deviation; broadcasts with ``loc``.

    Returns:
        A ``MultiNormalDiagFromLogScale`` with ``sample``, ``log_prob``, ``log_scale``
        and ``params`` (``[loc, log_scale]``).

    Raises:
        ValueError: if the shapes of ``loc`` and ``log_scale`` do not broadcast.

    Checked against scipy.stats.multivariate_normal and optax.multi_normal in
    tests/transforms/test_linear_algebra.py.
    """
    return MultiNormalDiagFromLogScale(loc, log_scale)
