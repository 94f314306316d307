"""quantize_moments: Adam's moments at about 2 bytes per parameter, each step is the
inner step on the dequantized moments, any moment optimizer of the registry wraps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.precision.blockwise import QuantizedArray, dequantize_blockwise, quantize_blockwise
from optix.precision.quantized import QuantizeMomentsState, quantize_moments
from optix.serialization import abstract_state, from_bytes, to_bytes
from optix.transforms.finite import apply_if_finite
from tests.precision.helpers import check_wrapper_contract
from tests.registry import ENTRIES
from tests.transforms.wrapper_helpers import assert_trees_equal


def is_quantized(x):
    return isinstance(x, QuantizedArray)


def params_like(shapes, dtype=jnp.float32, seed=0):
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return {
        name: jax.random.normal(k, shape, jnp.float32).astype(dtype)
        for k, (name, shape) in zip(keys, shapes.items(), strict=True)
    }


SHAPES = {"w": (64, 96), "b": (96,), "scale": ()}
PARAMS = params_like(SHAPES)


def nbytes(tree):
    return sum(np.prod(x.shape, dtype=int) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def gpt2_small_shapes():
    """GPT-2 small (124M parameters): embeddings and 12 blocks."""
    shapes = {"wte": (50257, 768), "wpe": (1024, 768), "ln_f": (768,)}
    for i in range(12):
        shapes |= {
            f"h{i}.attn": (768, 2304),
            f"h{i}.attn_b": (2304,),
            f"h{i}.proj": (768, 768),
            f"h{i}.mlp_in": (768, 3072),
            f"h{i}.mlp_out": (3072, 768),
            f"h{i}.ln": (4, 768),
        }
    return {k: jax.ShapeDtypeStruct(v, jnp.float32) for k, v in shapes.items()}


def test_adam_moments_take_at_most_2_1_bytes_per_parameter():
    params = gpt2_small_shapes()
    n = sum(np.prod(p.shape) for p in params.values())
    plain = jax.eval_shape(optix.adamw(1e-3).init, params)
    quantized = jax.eval_shape(quantize_moments(optix.adamw(1e-3)).init, params)
    per_param = nbytes(quantized) / n
    assert nbytes(plain) / n == pytest.approx(8.0, abs=1e-6)
    assert per_param <= 2.1
    # codes (1 byte) and one float32 absmax per 2048 entries, for mu and nu
    # (the few small leaves, layer norms and biases, stay float32)
    assert 2 + 8 / 2048 < per_param < 2.008


def test_one_leaf_costs_codes_plus_one_scale_per_block():
    params = {"w": jax.ShapeDtypeStruct((10_000,), jnp.float32)}
    state = jax.eval_shape(quantize_moments(optix.adam(1e-3), block_size=1000).init, params)
    # two moments: 10_000 codes, 10 float32 scales and a sign flag each; Adam's int32 count
    # (a constant learning rate keeps Optax's EmptyState)
    assert nbytes(state) == 2 * (10_000 + 10 * 4 + 1) + 4


def test_large_float_leaves_are_quantized_and_the_rest_kept():
    tx = quantize_moments(optix.adam(1e-3), block_size=256, min_size=1000)
    state = tx.init(PARAMS)
    adam_state = state.inner_state[0]
    assert is_quantized(adam_state.mu["w"]) and is_quantized(adam_state.nu["w"])
    assert adam_state.mu["w"].absmax.shape == (24,)  # 6144 entries in blocks of 256
    assert adam_state.mu["b"].dtype == jnp.float32 and adam_state.count.dtype == jnp.int32
    _, state = tx.update(params_like(SHAPES, seed=1), state)
    mu, nu = state.inner_state[0].mu["w"], state.inner_state[0].nu["w"]
    assert bool(mu.signed) and not bool(nu.signed)  # signed map for g, unsigned for g**2


def test_each_step_is_the_inner_step_on_the_dequantized_moments():
    tx, inner = quantize_moments(optix.adamw(1e-2), min_size=1000), optix.adamw(1e-2)
    state = tx.init(PARAMS)
    for t in range(1, 4):
        g = params_like(SHAPES, seed=t)
        dequantized = jax.tree.map(
            lambda x: dequantize_blockwise(x, 2048) if is_quantized(x) else x,
            state.inner_state,
            is_leaf=is_quantized,
        )
        expected_updates, expected_state = inner.update(g, dequantized, PARAMS)
        updates, state = tx.update(g, state, PARAMS)
        assert_trees_equal(updates, expected_updates)
        expected_state = jax.tree.map(
            lambda q, x: quantize_blockwise(x, 2048) if is_quantized(q) else x,
            state.inner_state,
            expected_state,
            is_leaf=is_quantized,
        )
        assert_trees_equal(state.inner_state, expected_state)


def train(tx, params, steps):
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    for t in range(steps):
        g = jax.tree.map(lambda p, t=t: p - 0.5 + jnp.sin(t * p).astype(p.dtype), params)
        updates, state = step(params, state, g)
        params = optix.apply_updates(params, updates)
    return params, state


def displacement_ratio(quantized, plain, start):
    """Distance between two runs over the distance the plain run moved."""
    diff = optix.tree.norm(optix.tree.sub(quantized, plain))
    return float(diff / optix.tree.norm(optix.tree.sub(plain, start)))


# Moment-based optimizers of the registry, one per kind of state: the largest distance
# measured (0.0102 adamw, 0.0099 amsgrad, 0.024 adagrad, 0.0098 adan, 0.024 lion, 0.0061
# rmsprop, 0.0102 sgd, 0.0045 adabelief) with room to spare. The moments' quantization
# error is 0.7% of a block's largest entry at most.
MOMENT_ENTRIES = {
    "adamw": 0.02,
    "amsgrad": 0.02,
    "adagrad": 0.04,
    "adan": 0.02,
    "lion": 0.04,
    "rmsprop": 0.02,
    "sgd": 0.02,
    "adabelief": 0.02,
}


@pytest.mark.parametrize("name", sorted(MOMENT_ENTRIES))
def test_registry_optimizers_train_like_their_float32_selves(name):
    assert name in ENTRIES
    params = {"w": PARAMS["w"], "b": PARAMS["b"]}
    tx = quantize_moments(ENTRIES[name].make(), block_size=512, min_size=0)
    quantized, state = train(tx, params, 10)
    plain, _ = train(ENTRIES[name].make(), params, 10)
    assert any(is_quantized(x) for x in jax.tree.leaves(state, is_leaf=is_quantized))
    assert displacement_ratio(quantized, plain, params) < MOMENT_ENTRIES[name]
    init = tx.init(params)
    assert jax.tree.structure(state) == jax.tree.structure(init)
    assert [x.dtype for x in jax.tree.leaves(state)] == [x.dtype for x in jax.tree.leaves(init)]


def test_checkpoint_round_trip_continues_bit_for_bit():
    tx = quantize_moments(optix.adamw(1e-2), min_size=100)
    params, state = train(tx, PARAMS, 3)
    restored = from_bytes(abstract_state(tx, PARAMS), to_bytes(state))
    assert isinstance(restored, QuantizeMomentsState)
    assert_trees_equal(restored, state)
    g = jax.tree.map(jnp.ones_like, PARAMS)
    assert_trees_equal(tx.update(g, restored, params), tx.update(g, state, params))


def test_wrapper_contract_with_bf16_and_none_leaves():
    params = {"w": PARAMS["w"].astype(jnp.bfloat16), "b": PARAMS["b"], "frozen": None}
    grads = {"w": jnp.ones((64, 96), jnp.bfloat16), "b": jnp.ones(96), "frozen": None}
    wrap = lambda inner: quantize_moments(inner, min_size=100)
    _, state = check_wrapper_contract(wrap, optix.adam(1e-2), params, grads)
    mu = state.inner_state[0].mu
    assert mu["w"].absmax.dtype == jnp.float32 and mu["b"].dtype == jnp.float32  # small
    assert mu["frozen"] is None


def test_a_skipped_step_keeps_the_codes_bit_for_bit():
    tx = apply_if_finite(quantize_moments(optix.adam(1e-2), min_size=100), 3)
    _, state = train(tx, PARAMS, 2)
    bad = jax.tree.map(lambda p: jnp.full_like(p, jnp.nan), PARAMS)
    updates, skipped = tx.update(bad, state, PARAMS)
    assert_trees_equal(skipped.inner_state, state.inner_state)
    assert all(bool(jnp.all(u == 0)) for u in jax.tree.leaves(updates))


def test_arguments_are_validated():
    with pytest.raises(
        ValueError, match="quantize_moments: block_size must be >= 1, got block_size=0"
    ):
        quantize_moments(optix.adam(1e-3), block_size=0)
    with pytest.raises(
        ValueError, match="quantize_moments: min_size must be >= 0, got min_size=-1"
    ):
        quantize_moments(optix.adam(1e-3), min_size=-1)
