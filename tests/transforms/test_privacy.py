"""differentially_private_aggregate and dpsgd: Optax's numbers for the same key, and the
clipping and noise laws of DP-SGD.

The hyperparameters are traced (one compiled update serves every value), so the laws
are checked on many values at the cost of one compilation.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.transforms.privacy import (
    DifferentiallyPrivateAggregateState,
    differentially_private_aggregate,
    dpsgd,
)

BATCH = 8
PARAMS = {"key_a": (jnp.zeros((2, 3, 4)), jnp.zeros([])), "key_b": jnp.zeros((6, 7))}


def constant_grads():
    """Example i's gradient is full of i's (example 0 is all zeros: no 0/0 in clipping)."""
    return jax.tree.map(
        lambda p: jnp.asarray(
            np.broadcast_to(np.arange(BATCH, dtype=np.float32).reshape(-1, *[1] * p.ndim),
                            (BATCH, *p.shape))
        ),
        PARAMS,
    )  # fmt: skip


def random_grads(dtype=jnp.float32):
    rng = np.random.default_rng(3)
    return jax.tree.map(
        lambda p: jnp.asarray(3 * rng.normal(size=(BATCH, *p.shape)), dtype), PARAMS
    )


@jax.jit
def dp_update(clip, noise, grads, state):
    return differentially_private_aggregate(clip, noise).update(grads, state)


@jax.jit
def optax_dp_update(clip, noise, grads, state):
    with jax.numpy_dtype_promotion("standard"):
        tx = optax.contrib.differentially_private_aggregate(clip, noise, key=0)
        return tx.update(grads, state)


def rbg_key(seed):
    """A key of XLA's RngBitGenerator: it compiles faster than threefry on CPU; the
    transformation splits and samples whatever key it holds (dpsgd below uses threefry)."""
    return jax.random.key(seed, impl="rbg")


def float32_close(x, y):
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def run(update, clip, noise, grads, key, steps=3):
    state, out = DifferentiallyPrivateAggregateState(rng_key=key), []
    for _ in range(steps):
        updates, state = update(clip, noise, grads, state)
        out.append(updates)
    return out, state


def test_same_key_gives_optax_noise_bit_for_bit_and_its_clipping():
    """Unclipped, the updates are Optax's bit for bit (the same noise for the same key).

    Clipped, they agree to float32 rounding: the per-example norms are optix's
    ``wide_global_norm``, whose last bit may differ from ``optax.tree.norm``'s.
    """
    grads = random_grads()
    for clip, noise in [(1e30, 1.1e-30), (1.0, 1.1), (100.0, 2.0), (1.0, 0.0)]:
        ours, state = run(dp_update, clip, noise, grads, rbg_key(5))
        theirs, their_state = run(optax_dp_update, clip, noise, grads, rbg_key(5))
        for a, b in zip(ours, theirs, strict=True):
            if clip == 1e30:  # no example is clipped: every multiplier is exactly 1
                jax.tree.map(np.testing.assert_array_equal, a, b)
            else:
                jax.tree.map(float32_close, a, b)
        np.testing.assert_array_equal(
            jax.random.key_data(state.rng_key), jax.random.key_data(their_state.rng_key)
        )


def test_init_state_is_optax_s_for_every_key_spelling():
    theirs = optax.contrib.differentially_private_aggregate(1.0, 1.0, key=5).init(PARAMS)
    with pytest.warns(DeprecationWarning, match="seed is deprecated"):
        seeded = differentially_private_aggregate(1.0, 1.0, seed=5)
    for tx in [
        differentially_private_aggregate(1.0, 1.0, key=5),
        differentially_private_aggregate(1.0, 1.0, key=jax.random.key(5)),
        differentially_private_aggregate(1.0, 1.0, key=jax.random.PRNGKey(5)),
        seeded,
    ]:
        state = tx.init(PARAMS)
        assert isinstance(state, DifferentiallyPrivateAggregateState)
        assert state.rng_key.dtype == theirs.rng_key.dtype
        key_data = jax.random.key_data
        np.testing.assert_array_equal(key_data(state.rng_key), key_data(theirs.rng_key))
    default = differentially_private_aggregate(1.0, 1.0).init(PARAMS)
    np.testing.assert_array_equal(
        jax.random.key_data(default.rng_key), jax.random.key_data(jax.random.key(0))
    )


def test_dpsgd_matches_optax():
    rng = np.random.default_rng(4)  # a small two-leaf tree: each leaf costs a noise draw
    grads = {"w": jnp.asarray(rng.normal(size=(BATCH, 3, 2)), jnp.float32),
             "b": jnp.asarray(rng.normal(size=(BATCH, 2)), jnp.float32)}  # fmt: skip
    params = jax.tree.map(lambda g: g[0], grads)
    ours = dpsgd(0.1, 1.0, 1.1, 7, momentum=0.9, nesterov=True)
    with warnings.catch_warnings():
        # Optax's dpsgd passes its seed through a deprecated argument, which warns.
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = optax.contrib.dpsgd(0.1, 1.0, 1.1, 7, momentum=0.9, nesterov=True)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    step_ours = jax.jit(ours.update)
    with jax.numpy_dtype_promotion("standard"):
        step_theirs = jax.jit(theirs.update)
        for _ in range(3):
            u_ours, s_ours = step_ours(grads, s_ours)
            u_theirs, s_theirs = step_theirs(grads, s_theirs)
            # The same noise; clipping norms may differ from Optax's in the last bit.
            jax.tree.map(float32_close, u_ours, u_theirs)
    assert [type(s).__name__ for s in s_ours] == [type(s).__name__ for s in s_theirs]


def test_no_clipping_and_no_noise_is_the_mean_gradient():
    grads = constant_grads()
    updates, _ = run(dp_update, jnp.finfo(jnp.float32).max, 0.0, grads, rbg_key(0))
    for u in updates:
        jax.tree.map(lambda u, g: np.testing.assert_allclose(u, g.mean(0)), u, grads)


def test_each_example_is_clipped_to_the_bound():
    grads = constant_grads()
    size = sum(p.size for p in jax.tree.leaves(PARAMS))
    norms = np.arange(BATCH) * np.sqrt(size)  # example i: size entries equal to i
    for clip in [0.5, 10.0, 40.0, 80.0]:
        expected = np.mean(np.arange(BATCH) / np.maximum(norms / clip, 1.0))
        for u in run(dp_update, clip, 0.0, grads, rbg_key(42))[0]:
            jax.tree.map(lambda leaf: np.testing.assert_allclose(leaf, expected, rtol=2e-7), u)


def test_noise_std_is_clip_times_multiplier():
    # One example of norm 100: u = g * min(1, C / 100) + noise.
    grads = [jnp.ones((1, 100, 100))]
    for clip, noise in [(3.0, 2.0), (1.0, 5.0), (100.0, 4.0), (1.0, 90.0)]:
        for u in run(dp_update, clip, noise, grads, rbg_key(1337))[0]:
            np.testing.assert_allclose(np.std(u[0]), clip * noise, rtol=0.05)
            mean = min(1.0, clip / 100)
            np.testing.assert_allclose(np.mean(u[0]), mean, atol=0.05 * clip * noise)


def test_low_precision_updates_keep_their_dtype():
    grads = [jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.bfloat16)]
    updates, _ = run(dp_update, 1.0, 1.0, grads, rbg_key(0), 1)
    assert updates[0][0].dtype == jnp.bfloat16 and updates[0][0].shape == (3,)


def test_aggregated_updates_are_refused():
    tx = differentially_private_aggregate(0.1, 1.1, key=2021)
    mean_grads = jax.tree.map(lambda g: g.mean(0), constant_grads())
    with pytest.raises(ValueError, match="one gradient per example along axis 0"):
        tx.update(mean_grads, tx.init(PARAMS))


def test_bad_hyperparameters_and_keys_fail_at_construction():
    with pytest.raises(ValueError, match="pass key or seed, not both"):
        differentially_private_aggregate(1.0, 1.0, key=1, seed=1)
    with pytest.raises(ValueError, match="l2_norm_clip must be >= 0"):
        differentially_private_aggregate(-1.0, 1.0)
    with pytest.raises(ValueError, match="noise_multiplier must be finite and >= 0"):
        differentially_private_aggregate(1.0, -0.5)
    with pytest.raises(TypeError, match="key must be an int seed or a PRNG key"):
        differentially_private_aggregate(1.0, 1.0, key="0")
