"""freeze and selective_transform: Optax's numbers and state layout, frozen parameters
never move, and the trained ones move exactly as under the plain optimizer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.transforms.freeze import freeze, selective_transform
from optix.transforms.masking import MaskedNode, MaskedState
from optix.transforms.partition import PartitionState
from tests.reference import initial_params, run_jax
from tests.transforms.basics import check_basics
from tests.transforms.group_helpers import assert_same_trajectory, layout, run_optax

MASKS = {
    "tree": {"w": True, "b": False, "s": False},
    "all": True,
    "none": False,
    "array_scalar": jnp.asarray(True),
}


@pytest.mark.parametrize("mask", MASKS)
def test_freeze_matches_optax(x64, mask):
    ours = optix.chain(optix.adam(0.1), freeze(MASKS[mask]))
    theirs = optax.chain(optax.adam(0.1), optax.freeze(MASKS[mask]))
    assert_same_trajectory(run_jax(ours, np.float64), run_optax(theirs), rtol=1e-10)
    state = freeze(MASKS[mask]).init(initial_params())
    assert layout(state) == layout(optax.freeze(MASKS[mask]).init(initial_params()))
    assert state == MaskedState(inner_state=optix.EmptyState())


@pytest.mark.parametrize("mask", MASKS)
def test_selective_transform_matches_optax(x64, mask):
    trajectories = (
        run_jax(selective_transform(optix.adam(0.1), freeze_mask=MASKS[mask]), np.float64),
        run_optax(optax.selective_transform(optax.adam(0.1), freeze_mask=MASKS[mask])),
    )
    assert_same_trajectory(*trajectories, rtol=1e-10)
    params = initial_params()
    ours = selective_transform(optix.scale_by_adam(), freeze_mask=MASKS[mask]).init(params)
    theirs = optax.selective_transform(optax.scale_by_adam(), freeze_mask=MASKS[mask]).init(params)
    assert layout(ours) == layout(theirs)
    assert isinstance(ours, PartitionState) and set(ours.inner_states) == {"train", "freeze"}


def test_frozen_parameters_never_move_and_the_rest_move_as_under_the_plain_optimizer():
    start = initial_params()
    plain = run_jax(optix.adam(0.1), np.float32)
    for tx in (
        selective_transform(optix.adam(0.1), freeze_mask=MASKS["tree"]),
        optix.chain(optix.adam(0.1), freeze(MASKS["tree"])),
    ):
        for step, reference in zip(run_jax(tx, np.float32), plain, strict=True):
            np.testing.assert_array_equal(step["w"], start["w"].astype(np.float32))
            np.testing.assert_array_equal(step["b"], reference["b"])
            np.testing.assert_array_equal(step["s"], reference["s"])
    assert not np.allclose(plain[-1]["w"], start["w"])


def test_selective_transform_keeps_no_state_for_frozen_leaves():
    state = selective_transform(optix.scale_by_adam(), freeze_mask=MASKS["tree"]).init(
        initial_params()
    )
    adam_state = state.inner_states["train"].inner_state
    assert adam_state.mu["w"] == MaskedNode() and adam_state.nu["w"] == MaskedNode()
    assert adam_state.mu["b"].shape == (4,)
    # freeze keeps the optimizer's full state: it only zeroes the updates afterwards.
    chained = optix.chain(optix.scale_by_adam(), freeze(MASKS["tree"])).init(initial_params())
    assert chained[0].mu["w"].shape == (3, 4)


def test_a_function_freeze_mask_equals_the_tree_it_returns():
    # An optix extension: Optax's selective_transform takes a tree or a bool only.
    by_function = selective_transform(
        optix.adam(0.1), freeze_mask=lambda p: jax.tree.map(lambda x: np.ndim(x) == 0, p)
    )
    by_tree = selective_transform(optix.adam(0.1), freeze_mask={"w": False, "b": False, "s": True})
    assert_same_trajectory(run_jax(by_function, np.float32), run_jax(by_tree, np.float32), rtol=0)
    start = initial_params()
    np.testing.assert_array_equal(run_jax(by_function, np.float32)[-1]["s"], np.float32(start["s"]))


@pytest.mark.parametrize(
    "tx",
    [
        optix.chain(optix.adam(0.1), freeze(lambda p: jax.tree.map(lambda x: x.ndim == 1, p))),
        selective_transform(
            optix.adam(0.1), freeze_mask=lambda p: jax.tree.map(lambda x: x.ndim == 1, p)
        ),
    ],
    ids=["freeze", "selective_transform"],
)
def test_basics(tx):
    # jit compiles once, stable state, bf16/f16/f64 kept, extra args, None leaves.
    check_basics(tx)


def test_freeze_keeps_none_leaves_and_bf16():
    params = {"w": jnp.ones((2, 2), jnp.bfloat16), "frozen": None}
    tx = optix.chain(optix.adam(0.1), freeze({"w": False, "frozen": True}))
    out, _ = tx.update(params, tx.init(params), params)
    assert out["frozen"] is None and out["w"].dtype == jnp.bfloat16
    tx = selective_transform(optix.adam(0.1), freeze_mask={"w": True, "frozen": True})
    out, _ = tx.update(params, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(out["w"], np.float32), 0.0)
    assert out["w"].dtype == jnp.bfloat16
