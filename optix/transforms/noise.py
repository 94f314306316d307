"""Gaussian gradient noise with an annealed variance."""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optix import _checks
from optix.core import GradientTransformation, safe_increment, zero_count
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.random import random_like


class AddNoiseState(NamedTuple):
    """State of ``add_noise``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    rng_key: jax.Array  # typed PRNG key scalar (jax.random.key), as in Optax


def _is_typed_key(key) -> bool:
    return isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def _typed_key(fn: str, key) -> jax.Array:
    """A typed PRNG key from an int seed, a typed key or a raw uint32 key (``PRNGKey``)."""
    if _is_typed_key(key):
        return key
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array | np.ndarray) and jnp.issubdtype(key.dtype, jnp.integer):
        if key.ndim == 0:
            return jax.random.key(key)
        if key.dtype == np.uint32 and key.ndim == 1:
            return jax.random.wrap_key_data(jnp.asarray(key))
    raise TypeError(
        f"{fn}: key must be an int seed or a PRNG key (jax.random.key(seed)), got key={key!r}"
    )


def add_noise(
    eta: float, gamma: float, key: jax.Array | int | None = None, *, seed: int | None = None
) -> GradientTransformation:
    """Add Gaussian noise whose variance decays as ``eta / t**gamma``.

    For each leaf, with g the incoming update and t = count + 1:

        rng_key, sample_key = split(rng_key)
        u = g + sqrt(eta / t**gamma) * normal(sample_key, shape of g)

    One sample key per step is split into one key per leaf (in tree order), and the
    noise is drawn in each update's dtype: with the same key the noise is bit for bit
    Optax's. The paper writes the variance as eta / (1 + t)**gamma with t counted
    from 0.

    Args:
        eta: Variance of the noise at the first step, >= 0.
        gamma: Decay exponent of the variance, >= 0.
        key: An int seed or a PRNG key; ``None`` uses seed 0, as Optax does.
        seed: Deprecated spelling of an int ``key`` (Optax's former argument).

    Returns:
        A GradientTransformation whose state is ``AddNoiseState``, with the typed key
        Optax keeps (``optix.serialization`` writes it as its key data and wraps it
        again on restore; ``optix.tree.unwrap_random_key_data`` gives the raw data).

    References:
        Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep
        Networks", arXiv:1511.06807, 2015.
        Checked against optax.add_noise in tests/transforms/test_noise.py.
    """
    fn = "add_noise"
    _checks.non_negative(fn, eta=eta, gamma=gamma)
    if seed is not None:
        if key is not None:
            raise ValueError(f"{fn}: pass key or seed, not both, got key={key!r}, seed={seed!r}")
        warnings.warn(f"{fn}: seed is deprecated, pass key instead", DeprecationWarning, 2)
        key = seed
    key = 0 if key is None else key
    _typed_key(fn, key)

    def leaf(g, noise, std):
        dt = compute_dtype(g)
        return ((g.astype(dt) + std.astype(dt) * noise.astype(dt)).astype(g.dtype),)

    def init(params):
        del params
        return AddNoiseState(count=zero_count(), rng_key=_typed_key(fn, key))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        dtype = jnp.result_type(float)
        t = count.astype(dtype)
        std = jnp.sqrt(jnp.asarray(eta, dtype) / t ** jnp.asarray(gamma, dtype))
        rng_key, sample_key = jax.random.split(state.rng_key)
        noise = random_like(sample_key, updates, jax.random.normal)
        (updates,) = map_leaves(lambda g, n: leaf(g, n, std), updates, noise, n_out=1)
        return updates, AddNoiseState(count=count, rng_key=rng_key)

    return GradientTransformation(init, update)
