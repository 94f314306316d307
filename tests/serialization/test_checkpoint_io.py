"""Save and restore with Orbax and Flax's msgpack: types kept, mismatches named exactly."""

import sys

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import optix
from optix.serialization import (
    CheckpointMismatchError,
    abstract_state,
    as_abstract,
    from_bytes,
    restore_state,
    save_state,
    to_bytes,
)
from optix.transforms.masking import MaskedNode, MaskedState
from tests.serialization.common import assert_identical, make_grads, make_params

MASK = {"dense": {"kernel": True, "bias": False}, "scale": True}


def masked_chain():
    """A state with EmptyState, MaskedState and MaskedNode in it."""
    return optix.chain(optix.clip_by_global_norm(1.0), optix.masked(optix.adamw(0.1), MASK))


def trained(tx, params, steps=2):
    state = tx.init(params)
    for t in range(steps):
        updates, state = tx.update(make_grads(params, t), state, params)
        params = optix.apply_updates(params, updates)
    return params, state


def msgpack_round_trip(tree, target, tmp_path):
    return from_bytes(target, to_bytes(tree))


def orbax_round_trip(tree, target, tmp_path):
    save_state(tmp_path / "ckpt", tree)
    return restore_state(tmp_path / "ckpt", target)


ROUND_TRIPS = pytest.mark.parametrize(
    "round_trip", [msgpack_round_trip, orbax_round_trip], ids=["msgpack", "orbax"]
)


@ROUND_TRIPS
def test_namedtuples_and_empty_states_come_back(round_trip, tmp_path):
    tx = masked_chain()
    params, state = trained(tx, make_params())
    restored = round_trip(state, abstract_state(tx, params), tmp_path)
    assert_identical(restored, state)
    assert isinstance(restored[0], optix.EmptyState)
    assert isinstance(restored[1], MaskedState)
    assert isinstance(restored[1].inner_state[0], optix.ScaleByAdamState)
    assert isinstance(restored[1].inner_state[0].mu["dense"]["bias"], MaskedNode)


@ROUND_TRIPS
def test_a_dict_of_params_state_and_step_with_bf16_and_keys(round_trip, tmp_path):
    tx = optix.adam(0.1, mu_dtype=jnp.bfloat16)
    params, state = trained(tx, make_params(jnp.bfloat16))
    tree = {
        "params": params,
        "opt_state": state,
        "step": 2,  # a Python int is stored as int32
        "rng": jax.random.key(7),
        "rbg_rng": jax.random.split(jax.random.key(8, impl="rbg"), 3),
        "frozen": None,
    }
    target = {
        "params": as_abstract(params),
        "opt_state": abstract_state(tx, params),
        "step": jax.ShapeDtypeStruct((), jnp.int32),
        "rng": jax.eval_shape(lambda: tree["rng"]),
        "rbg_rng": jax.eval_shape(lambda: tree["rbg_rng"]),
        "frozen": None,
    }
    restored = round_trip(tree, target, tmp_path)
    assert_identical(restored, {**tree, "step": jnp.asarray(2, jnp.int32)})
    assert restored["opt_state"][0].mu["dense"]["kernel"].dtype == jnp.bfloat16
    assert jax.random.key_impl(restored["rbg_rng"]) == jax.random.key_impl(tree["rbg_rng"])
    # The keys work as keys again, and draw what the originals draw.
    np.testing.assert_array_equal(
        jax.random.normal(restored["rng"], (3,)), jax.random.normal(tree["rng"], (3,))
    )


@ROUND_TRIPS
def test_zero_size_arrays_round_trip(round_trip, tmp_path):
    tx = optix.adam(0.1)
    params, state = trained(tx, {**make_params(), "unused": jnp.zeros((0, 3))})
    restored = round_trip(state, abstract_state(tx, params), tmp_path)
    assert_identical(restored, state)
    assert restored[0].mu["unused"].shape == (0, 3)


def test_msgpack_stores_typed_keys_as_their_key_data():
    key = jax.random.key(3)
    stored = flax.serialization.msgpack_restore(to_bytes({"rng": key}))
    assert stored["rng"].dtype == np.uint32
    np.testing.assert_array_equal(stored["rng"], jax.random.key_data(key))


def test_bytes_are_flax_msgpack_both_ways():
    tx = masked_chain()
    params, state = trained(tx, make_params())
    ours = to_bytes(state)
    assert_identical(flax.serialization.from_bytes(tx.init(params), ours), state)
    assert_identical(
        from_bytes(abstract_state(tx, params), flax.serialization.to_bytes(state)), state
    )


def test_restore_places_leaves_on_the_target_shardings(tmp_path):
    tx = optix.adamw(0.1)
    params, state = trained(tx, make_params())
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    target = abstract_state(tx, params, shardings=replicated)
    save_state(tmp_path / "ckpt", state)
    for restored in (restore_state(tmp_path / "ckpt", target), from_bytes(target, to_bytes(state))):
        assert_identical(restored, state)
        assert all(x.sharding == replicated for x in jax.tree.leaves(restored))


def mismatch_message(restore, tree, target, tmp_path):
    if restore == "msgpack":
        data = to_bytes(tree)
        with pytest.raises(CheckpointMismatchError) as info:
            from_bytes(target, data)
    else:
        save_state(tmp_path / "ckpt", tree)
        with pytest.raises(CheckpointMismatchError) as info:
            restore_state(tmp_path / "ckpt", target)
    return str(info.value)


@pytest.fixture
def orbax_never_reads(monkeypatch):
    """Fails the test if Orbax starts reading arrays: a mismatch must stop it before."""

    def refuse(*args, **kwargs):
        raise AssertionError("restore started on a mismatched checkpoint")

    monkeypatch.setattr(ocp.StandardCheckpointer, "restore", refuse)


RESTORES = pytest.mark.parametrize("restore", ["msgpack", "orbax"])


@RESTORES
def test_a_changed_chain_is_rejected_naming_every_path(restore, tmp_path, orbax_never_reads):
    params, state = trained(optix.adamw(0.1), make_params())
    target = abstract_state(optix.chain(optix.clip_by_global_norm(1.0), optix.adamw(0.1)), params)
    message = mismatch_message(restore, state, target, tmp_path)
    assert "does not fit the target (14 differences); nothing was restored." in message
    assert "in the target, not in the checkpoint (7):" in message
    assert "[1][0].ScaleByAdamState.mu['dense']['kernel']  float32[3,4]" in message
    assert "(stored as 1/0/mu/dense/kernel)" in message
    assert "in the checkpoint, not in the target (7):" in message
    assert "0/mu/dense/kernel  float32[3,4]" in message
    assert "migrate_state" in message


@RESTORES
def test_changed_shapes_and_dtypes_are_rejected_with_both(restore, tmp_path, orbax_never_reads):
    tx = optix.adam(0.1)
    params, state = trained(tx, make_params())
    other = {**params, "dense": {"kernel": jnp.ones((3, 5)), "bias": jnp.ones(4, jnp.bfloat16)}}
    message = mismatch_message(restore, state, abstract_state(tx, other), tmp_path)
    assert "(4 differences)" in message
    assert "shape or dtype differs (4):" in message
    assert (
        "[0].ScaleByAdamState.mu['dense']['kernel']: expected float32[3,5], found float32[3,4]"
        in message
    )
    assert (
        "[0].ScaleByAdamState.nu['dense']['bias']: expected bfloat16[4], found float32[4]"
        in message
    )
    assert "not in the" not in message and "migrate_state" not in message


def test_a_checkpoint_with_extra_entries_is_rejected(tmp_path):
    tx = optix.adam(0.1)
    params, state = trained(tx, make_params())
    message = mismatch_message(
        "msgpack",
        {"opt_state": state, "step": 3},
        {"opt_state": abstract_state(tx, params)},
        tmp_path,
    )
    assert "in the checkpoint, not in the target (1):\n    step  int32[]" in message


def test_a_live_target_is_left_as_it_was(tmp_path):
    tx = optix.adam(0.1)
    params, state = trained(tx, make_params())
    target = tx.init({**params, "scale": jnp.ones(2)})
    before = jax.tree.map(np.array, target)
    with pytest.raises(CheckpointMismatchError):
        from_bytes(target, to_bytes(state))
    assert_identical(target, jax.tree.map(jnp.asarray, before))


def test_long_difference_lists_are_cut_with_a_count(tmp_path):
    params = {f"w{i:02d}": jnp.ones(2) for i in range(30)}
    message = mismatch_message("msgpack", params, {"other": jnp.ones(2)}, tmp_path)
    assert "in the checkpoint, not in the target (30):" in message
    assert "... and 10 more" in message


def test_to_bytes_names_what_msgpack_cannot_store():
    class Opaque:
        pass

    jax.tree_util.register_pytree_node(
        Opaque, lambda _: ((jnp.ones(1),), None), lambda *_: Opaque()
    )
    with pytest.raises(TypeError, match=r"cannot store the Opaque at state/1: .*save_state"):
        to_bytes({"state": (jnp.ones(1), Opaque())})


def test_save_refuses_to_overwrite_unless_asked(tmp_path):
    save_state(tmp_path / "ckpt", {"a": jnp.ones(2)})
    with pytest.raises(ValueError, match="exists"):
        save_state(tmp_path / "ckpt", {"a": jnp.zeros(2)})
    save_state(tmp_path / "ckpt", {"a": jnp.zeros(2)}, overwrite=True)
    restored = restore_state(tmp_path / "ckpt", {"a": jax.ShapeDtypeStruct((2,), jnp.float32)})
    np.testing.assert_array_equal(restored["a"], np.zeros(2))


@pytest.mark.parametrize(
    ("module", "call", "extra"),
    [
        (
            "orbax.checkpoint",
            lambda: save_state("/nonexistent", {}),
            r"pip install orbax-checkpoint \(or the extra: pip install 'optix-jax\[checkpoint\]'",
        ),
        (
            "flax.serialization",
            lambda: to_bytes({}),
            r"pip install flax \(or the extra: pip install 'optix-jax\[checkpoint\]'",
        ),
    ],
)
def test_missing_optional_dependencies_are_named(module, call, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=extra):
        call()
