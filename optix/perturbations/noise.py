"""Noise distributions for perturbed functions: a sampler and an unnormalized log-density."""

from __future__ import annotations

import jax
import jax.numpy as jnp


class _Distribution:
    """A parameter-free distribution: two instances of the same class are equal (and
    equal to Optax's instance of the class of the same name)."""

    def __eq__(self, other: object) -> bool:
        return type(other).__name__ == type(self).__name__ and hasattr(other, "log_prob")

    def __hash__(self) -> int:
        return hash(type(self).__name__)


class Normal(_Distribution):
    """The standard normal distribution N(0, 1), entry by entry.

    ``log_prob(z) = -z**2 / 2``, without the constant ``-log(2 pi) / 2``: only its
    derivative enters the score-function estimate of ``make_perturbed_fun``.
    """

    def sample(
        self,
        key: jax.typing.ArrayLike,
        sample_shape: tuple[int, ...] = (),
        dtype: jax.typing.DTypeLike = float,
    ) -> jax.Array:
        """Independent standard normal draws of shape ``sample_shape``.

        Args:
            key: A PRNG key.
            sample_shape: The shape of the sample.
            dtype: A floating dtype (``float`` is JAX's default float type).

        Returns:
            An array of shape ``sample_shape`` and dtype ``dtype``.
        """
        return jax.random.normal(key, sample_shape, dtype)

    def log_prob(self, inputs: jax.Array) -> jax.Array:
        """The log-density of each entry, up to an additive constant: ``-inputs**2 / 2``."""
        return -0.5 * inputs**2


class Gumbel(_Distribution):
    """The standard Gumbel distribution (location 0, scale 1), entry by entry.

    ``log_prob(z) = -z - exp(-z)``, the exact log-density. Adding Gumbel noise to the
    scores of an argmax makes the perturbed argmax a sample of ``softmax(x / sigma)``
    (the Gumbel-max trick).
    """

    def sample(
        self,
        key: jax.typing.ArrayLike,
        sample_shape: tuple[int, ...] = (),
        dtype: jax.typing.DTypeLike = float,
    ) -> jax.Array:
        """Independent standard Gumbel draws of shape ``sample_shape``.

        Args:
            key: A PRNG key.
            sample_shape: The shape of the sample.
            dtype: A floating dtype (``float`` is JAX's default float type).

        Returns:
            An array of shape ``sample_shape`` and dtype ``dtype``.
        """
        return jax.random.gumbel(key, sample_shape, dtype)

    def log_prob(self, inputs: jax.Array) -> jax.Array:
        """The log-density of each entry: ``-inputs - exp(-inputs)``."""
        return -inputs - jnp.exp(-inputs)
