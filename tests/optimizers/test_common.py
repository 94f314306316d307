"""Properties every optimizer in the registry must have (DESIGN.md section 6)."""

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from tests.registry import ENTRIES

NAMES = sorted(ENTRIES)


def make_params(dtype=jnp.float32):
    return {
        "dense": {
            "kernel": jnp.linspace(-1.0, 1.0, 12, dtype=dtype).reshape(3, 4),
            "bias": jnp.full((4,), 0.5, dtype),
        },
        "scale": jnp.asarray(2.0, dtype),
    }


def make_grads(params, seed=0):
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return treedef.unflatten(
        [
            jax.random.normal(k, x.shape, jnp.float32).astype(x.dtype)
            for k, x in zip(keys, leaves, strict=True)
        ]
    )


def run(name, params, steps, **extra_args):
    tx, update = ENTRIES[name].make(), ENTRIES[name].updater(**extra_args)
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: update(g, s, p))
    for t in range(steps):
        updates, state = step(params, state, make_grads(params, t))
        params = optix.apply_updates(params, updates)
    return params, state


def signature(tree):
    """Structure, shapes and dtypes of a tree."""
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("name", NAMES)
def test_jit_compiles_once(name):
    tx, update = ENTRIES[name].make(), ENTRIES[name].updater()
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = update(grads, state, params)
        return optix.apply_updates(params, updates), state

    params = make_params()
    state = tx.init(params)
    for t in range(4):
        params, state = step(params, state, make_grads(params, t))
    assert len(traces) == 1


@pytest.mark.parametrize("name", NAMES)
def test_state_structure_shapes_and_dtypes_are_stable(name):
    tx = ENTRIES[name].make()
    params = make_params()
    _, state = run(name, params, steps=3)
    assert signature(state) == signature(tx.init(params))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("name", NAMES)
def test_low_precision_params_keep_their_dtype(name, dtype):
    tx = ENTRIES[name].make()
    params = make_params(dtype)
    state0 = tx.init(params)
    new_params, state = run(name, params, steps=3)
    assert signature(new_params) == signature(params)
    assert signature(state) == signature(state0)
    param_shaped = [x for x in jax.tree.leaves(state) if x.shape == (3, 4)]
    assert all(x.dtype == dtype for x in param_shaped)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(new_params))
    assert not np.array_equal(new_params["dense"]["kernel"], params["dense"]["kernel"])


@pytest.mark.parametrize("name", NAMES)
def test_float64_params_keep_their_dtype(name, x64):
    params = make_params(jnp.float64)
    new_params, state = run(name, params, steps=3)
    assert signature(new_params) == signature(params)
    assert all(x.dtype != jnp.float32 for x in jax.tree.leaves(state))


@pytest.mark.parametrize("name", NAMES)
def test_init_from_shape_dtype_structs(name):
    tx = ENTRIES[name].make()
    params = make_params()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    assert signature(jax.eval_shape(tx.init, abstract)) == signature(tx.init(params))


@pytest.mark.parametrize("name", NAMES)
def test_none_leaves_pass_through(name):
    tx = ENTRIES[name].make()
    params = {"w": jnp.ones((2, 2)), "frozen": None}
    state = tx.init(params)
    grads = {"w": jnp.full((2, 2), 0.3), "frozen": None}
    updates, state = ENTRIES[name].updater()(grads, state, params)
    # SOAP's first update only builds its eigenbasis, ADOPT's only fills nu (zero updates)
    if name in ("soap", "adopt"):
        updates, _ = ENTRIES[name].updater()(grads, state, params)
    assert updates["frozen"] is None
    new_params = optix.apply_updates(params, updates)
    assert new_params["frozen"] is None
    assert bool(jnp.all(new_params["w"] != 1.0))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_extra_args_are_accepted_and_ignored(name):
    params = make_params()
    plain, _ = run(name, params, steps=2)
    with_extra, _ = run(name, params, steps=2, value=jnp.asarray(1.0), unknown_flag=3)
    jax.tree.map(np.testing.assert_array_equal, plain, with_extra)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_resumes_identically(name):
    """Serialize the state mid-run with Flax's msgpack; the resumed run is bit-identical.

    Flax refuses typed PRNG keys (Optax's noise states hold one): those states go through
    optix.serialization, which writes Flax's format with the key data."""
    tx, update = ENTRIES[name].make(), ENTRIES[name].updater()
    params = make_params()
    step = jax.jit(lambda p, s, g: update(g, s, p))
    state = tx.init(params)
    for t in range(3):
        updates, state = step(params, state, make_grads(params, t))
        params = optix.apply_updates(params, updates)
    typed_key = lambda x: jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
    io = optix.serialization if any(map(typed_key, jax.tree.leaves(state))) else flax.serialization
    restored = io.from_bytes(tx.init(params), io.to_bytes(state))
    assert signature(restored) == signature(state)
    for t in range(3, 5):
        grads = make_grads(params, t)
        expected, _ = step(params, state, grads)
        actual, restored = step(params, restored, grads)
        jax.tree.map(np.testing.assert_array_equal, actual, expected)
        state = restored


@pytest.mark.parametrize("name", NAMES)
def test_converges_on_an_ill_conditioned_quadratic(name):
    curvature = jnp.asarray([1.0, 3.0, 10.0])
    loss = lambda p: 0.5 * jnp.sum(curvature * p["x"] ** 2)
    tx = ENTRIES[name].make()
    params = {"x": jnp.asarray([1.0, -1.0, 0.5])}
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        # The loss value goes along as an extra argument: Polyak step sizes use it,
        # every other optimizer ignores it; line searches also evaluate `value_fn`.
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = tx.update(grads, state, params, value=value, grad=grads, value_fn=loss)
        return optix.apply_updates(params, updates), state

    for _ in range(300):
        params, state = step(params, state)
    assert float(loss(params)) < 1e-2 * float(loss({"x": jnp.asarray([1.0, -1.0, 0.5])}))


@pytest.mark.parametrize("name", NAMES)
def test_state_from_other_params_is_rejected_with_both_structures(name):
    tx = ENTRIES[name].make()
    state = tx.init({"a": jnp.ones(3)})
    other = {"b": jnp.ones(3), "c": jnp.ones(2)}
    if signature(state) == signature(tx.init(other)):
        # The state holds nothing shaped like the params, so it fits any params.
        updates, _ = ENTRIES[name].updater()(other, state, other)
        assert jax.tree.structure(updates) == jax.tree.structure(other)
        return
    with pytest.raises(ValueError, match="structure") as info:
        ENTRIES[name].updater()(other, state, other)
    assert "'a'" in str(info.value) and "'b'" in str(info.value)
