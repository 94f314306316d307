"""Differentially private aggregation of per-example gradients (DP-SGD)."""

from __future__ import annotations

import warnings
from typing import NamedTuple, cast

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import GradientTransformation, ScalarOrSchedule, chain, identity
from optix.transforms.momentum import trace
from optix.transforms.noise import _typed_key
from optix.transforms.per_example import _check_clip, per_example_global_norm_clip
from optix.transforms.scaling import scale_by_learning_rate


class DifferentiallyPrivateAggregateState(NamedTuple):
    """State of ``differentially_private_aggregate``: the PRNG key of the next noise draw."""

    rng_key: jax.Array


def differentially_private_aggregate(
    l2_norm_clip: jax.typing.ArrayLike,
    noise_multiplier: jax.typing.ArrayLike,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    """Clip each example's gradient, sum, add Gaussian noise, divide by the batch size.

    The updates are per-example gradients: every leaf has the batch (size B) on axis 0.
    With C = ``l2_norm_clip``, sigma = C * ``noise_multiplier``, n_i the global L2 norm
    of example i's gradient, and one fresh key per leaf (in tree order):

        m_i = min(C / n_i, 1)
        u = (sum_i m_i * g_i + sigma * normal(key, shape of u)) / B

    which is the noisy mean gradient of DP-SGD (Abadi et al., Algorithm 1). The state
    key is split into a new state key and one key per leaf each step; the noise is
    drawn in each leaf's dtype, so the same key gives the same noise as Optax's
    ``differentially_private_aggregate`` (the clipping norms, computed in at least
    float32, may differ from Optax's in the last bit).

    Must come first in a chain (it removes the batch axis); accumulation wrappers such
    as ``MultiSteps`` change what is being privatized and are not supported.

    Args:
        l2_norm_clip: The largest global L2 norm of one example's gradient, C >= 0.
        noise_multiplier: The noise standard deviation as a multiple of C, >= 0.
        key: An int seed or a PRNG key; ``None`` uses seed 0.
        seed: Deprecated spelling of an int ``key`` (Optax's former argument).

    Returns:
        A GradientTransformation with state ``DifferentiallyPrivateAggregateState``
        (holding the typed PRNG key, as Optax's does).

    References:
        Abadi et al., "Deep Learning with Differential Privacy", CCS 2016,
        arXiv:1607.00133.
        Checked against optax.contrib.differentially_private_aggregate in
        tests/transforms/test_privacy.py.
    """
    fn = "differentially_private_aggregate"
    _checks.non_negative(fn, noise_multiplier=noise_multiplier)
    _check_clip(fn, "l2_norm_clip", l2_norm_clip)
    if seed is not None:
        if key is not None:
            raise ValueError(f"{fn}: pass key or seed, not both, got key={key!r}, seed={seed!r}")
        warnings.warn(f"{fn}: seed is deprecated, pass key instead", DeprecationWarning, 2)
        key = seed
    rng_key = _typed_key(fn, 0 if key is None else key)
    noise_std = l2_norm_clip * noise_multiplier

    def init(params):
        del params
        return DifferentiallyPrivateAggregateState(rng_key=rng_key)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        leaves, treedef = jax.tree.flatten(updates)
        clipped, _ = per_example_global_norm_clip(leaves, l2_norm_clip)
        batch_size = jnp.shape(leaves[0])[0]
        new_key, *keys = jax.random.split(state.rng_key, len(leaves) + 1)

        def noisy_mean(g, k):
            noise = jax.random.normal(k, g.shape, g.dtype)
            return (g + jnp.asarray(noise_std, g.dtype) * noise) / batch_size

        noised = [noisy_mean(g, k) for g, k in zip(clipped, keys, strict=True)]
        return treedef.unflatten(noised), DifferentiallyPrivateAggregateState(rng_key=new_key)

    return GradientTransformation(init, update)


def dpsgd(
    learning_rate: ScalarOrSchedule,
    l2_norm_clip: jax.typing.ArrayLike,
    noise_multiplier: jax.typing.ArrayLike,
    seed: int,
    momentum: jax.typing.ArrayLike | None = None,
    nesterov: bool = False,
) -> GradientTransformation:
    """DP-SGD: differentially private SGD on per-example gradients.

    The chain

        differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=seed)
        trace(decay=momentum, nesterov=nesterov)      (only if momentum is not None)
        scale_by_learning_rate(learning_rate)

    so each step is ``p = p - learning_rate * (momentum of) u`` with u the clipped,
    noised mean gradient. The updates must be per-example gradients (batch on axis 0,
    e.g. ``jax.vmap(jax.grad(loss), in_axes=(None, 0))(params, batch)``).

    Args:
        learning_rate: A number or a schedule of the step count.
        l2_norm_clip: The largest global L2 norm of one example's gradient, >= 0.
        noise_multiplier: The noise standard deviation as a multiple of l2_norm_clip.
        seed: The int seed (or PRNG key) of the noise.
        momentum: The momentum decay in [0, 1], or ``None`` for plain SGD.
        nesterov: Use Nesterov momentum.

    Returns:
        A GradientTransformation (state: the tuple of the chain's states, as Optax's).

    References:
        Abadi et al., "Deep Learning with Differential Privacy", CCS 2016,
        arXiv:1607.00133.
        Checked against optax.contrib.dpsgd in tests/transforms/test_privacy.py.
    """
    return chain(
        differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=seed),
        identity() if momentum is None else trace(decay=cast(float, momentum), nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )
