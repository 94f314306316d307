"""add_noise against optax.add_noise: the same key gives the same noise, bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.transforms.noise import AddNoiseState, add_noise


def run(tx, dtype, steps=5, standard=False):
    """The updates of ``tx`` for zero gradients on a small tree, in ``dtype``."""
    grads = {"w": jnp.zeros((3, 4), dtype), "b": jnp.zeros((4,), dtype), "s": jnp.zeros((), dtype)}
    state = tx.init(grads)
    out = []
    for _ in range(steps):
        if standard:
            with jax.numpy_dtype_promotion("standard"):
                updates, state = tx.update(grads, state)
        else:
            updates, state = tx.update(grads, state)
        out.append(jax.tree.map(np.asarray, updates))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "key",
    [0, 7, np.int64(7), jnp.asarray(7), jax.random.key(7), jax.random.PRNGKey(7)],
    ids=["0", "7", "numpy_int", "int_array", "typed", "raw"],
)
def test_noise_is_optax_noise_bit_for_bit(key, dtype):
    optax_key = key if isinstance(key, int) and key == 0 else jax.random.key(7)
    with jax.enable_x64(dtype == np.float64):
        ours = run(add_noise(0.3, 0.55, key), dtype)
        theirs = run(optax.add_noise(0.3, 0.55, optax_key), dtype, standard=True)
    for a, b in zip(ours, theirs, strict=True):
        jax.tree.map(np.testing.assert_array_equal, a, b)
        assert a["w"].dtype == dtype


def test_variance_decays_as_eta_over_t_to_the_gamma():
    eta, gamma = 0.5, 0.55
    tx = add_noise(eta, gamma, key=1)
    grads = jnp.zeros(200_000)
    state = tx.init(grads)
    for t in range(1, 4):
        noise, state = tx.update(grads, state)
        np.testing.assert_allclose(np.std(noise), np.sqrt(eta / t**gamma), rtol=1e-2)
        assert abs(float(np.mean(noise))) < 1e-2
    assert int(state.count) == 3


def test_state_holds_optax_typed_key_and_survives_msgpack():
    tx = add_noise(0.1, 0.55, key=3)
    grads = {"w": jnp.ones(4)}
    state = tx.init(grads)
    expected = optax.add_noise(0.1, 0.55, key=3).init(grads)
    assert isinstance(state, AddNoiseState) and state.rng_key.dtype == expected.rng_key.dtype
    np.testing.assert_array_equal(
        jax.random.key_data(state.rng_key), jax.random.key_data(expected.rng_key)
    )
    _, state = tx.update(grads, state)
    # Flax's msgpack has no PRNG key type: optix's to_bytes writes the key data.
    restored = optix.serialization.from_bytes(tx.init(grads), optix.serialization.to_bytes(state))
    np.testing.assert_array_equal(
        tx.update(grads, restored)[0]["w"], tx.update(grads, state)[0]["w"]
    )


def test_none_leaves_and_low_precision():
    tx = add_noise(0.1, 0.55, key=0)
    grads = {"w": jnp.zeros(3, jnp.bfloat16), "frozen": None}
    updates, _ = tx.update(grads, tx.init(grads))
    assert updates["frozen"] is None and updates["w"].dtype == jnp.bfloat16
    assert bool(jnp.any(updates["w"] != 0))


def test_seed_is_a_deprecated_key():
    with pytest.warns(DeprecationWarning, match="add_noise: seed is deprecated"):
        tx = add_noise(0.1, 0.55, seed=5)
    expected = run(add_noise(0.1, 0.55, key=5), np.float32, steps=1)
    jax.tree.map(np.testing.assert_array_equal, run(tx, np.float32, steps=1), expected)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: add_noise(-0.1, 0.55), ValueError, "add_noise: eta must be finite and >= 0"),
        (lambda: add_noise(0.1, -1.0), ValueError, "add_noise: gamma must be finite and >= 0"),
        (lambda: add_noise(0.1, 0.5, key=1, seed=2), ValueError, "add_noise: pass key or seed"),
        (lambda: add_noise(0.1, 0.5, key="a"), TypeError, "add_noise: key must be an int seed"),
    ],
)
def test_bad_arguments_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
