"""partition / multi_transform: Optax's numbers and state layout, the one-group law, the
per-group law, errors that name the label, extra args, jit, None leaves and bf16."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.core import GradientTransformation
from optix.transforms import masking
from optix.transforms.freeze import freeze, selective_transform
from optix.transforms.partition import (
    MultiTransformState,
    PartitionState,
    multi_transform,
    partition,
)
from tests.reference import initial_params, run_jax
from tests.test_optax_compat import positional_and_defaults
from tests.transforms.basics import check_basics
from tests.transforms.group_helpers import assert_same_trajectory, layout, run_optax

TRANSFORMS = {
    "adam": lambda m: m.scale_by_adam(b1=0.8),
    "trace": lambda m: m.trace(0.9, nesterov=True),
    "scale": lambda m: m.scale(-0.3),
}
LABELS = {
    "tree": {"w": "adam", "b": "trace", "s": "scale"},
    "function": lambda p: jax.tree.map(lambda x: ("scale", "trace", "adam")[min(np.ndim(x), 2)], p),
    "prefix": "adam",
}


def partition_of(m):
    # optix.partition is exported by the package's __init__; import it by module path here.
    return partition if m is optix else optax.partition


def groups(m, labels):
    used = set(jax.tree.leaves(labels(initial_params()) if callable(labels) else labels))
    return {name: TRANSFORMS[name](m) for name in TRANSFORMS if name in used}


@pytest.mark.parametrize("labels", LABELS)
def test_matches_optax_numbers_and_state_layout(x64, labels):
    labels = LABELS[labels]
    ours, theirs = (
        partition(groups(optix, labels), labels),
        optax.partition(groups(optax, labels), labels),
    )
    assert_same_trajectory(run_jax(ours, np.float64), run_optax(theirs), rtol=1e-10)
    params = initial_params()
    assert layout(ours.init(params)) == layout(theirs.init(params))


def test_whole_optimizers_per_group_match_optax(x64):
    def build(m):
        labels = {"w": "decay", "b": "plain", "s": "plain"}
        return partition_of(m)(
            {"decay": m.adamw(0.05, weight_decay=0.1), "plain": m.sgd(0.1, 0.9)}, labels
        )

    assert_same_trajectory(run_jax(build(optix), np.float64), run_optax(build(optax)), rtol=1e-10)
    state = build(optix).init(initial_params())
    assert isinstance(state, PartitionState) and set(state.inner_states) == {"decay", "plain"}
    assert all(isinstance(s, masking.MaskedState) for s in state.inner_states.values())


@settings(deadline=None, max_examples=10)
@given(st.sampled_from(["adam", "sgd", "adamw"]), st.sampled_from(["tree", "function"]))
def test_one_label_equals_the_plain_transformation_exactly(name, how):
    tx = {"adam": optix.adam(0.1), "sgd": optix.sgd(0.1, 0.9), "adamw": optix.adamw(0.1)}[name]
    labels = {"w": "all", "b": "all", "s": "all"} if how == "tree" else lambda p: "all"
    ours = run_jax(partition({"all": tx}, labels), np.float32)
    assert_same_trajectory(ours, run_jax(tx, np.float32), rtol=0)


def test_each_group_equals_its_transformation_on_its_own_leaves():
    tx = partition(
        {"a": optix.adam(0.1), "b": optix.sgd(0.05, 0.9)}, {"w": "a", "b": "b", "s": "a"}
    )
    ours = run_jax(tx, np.float32)
    alone_a = run_jax(optix.adam(0.1), np.float32)
    alone_b = run_jax(optix.sgd(0.05, 0.9), np.float32)
    for step, a, b in zip(ours, alone_a, alone_b, strict=True):
        np.testing.assert_array_equal(step["w"], a["w"])
        np.testing.assert_array_equal(step["s"], a["s"])
        np.testing.assert_array_equal(step["b"], b["b"])


def test_multi_transform_is_partition():
    assert multi_transform is partition
    assert MultiTransformState is PartitionState
    assert PartitionState._fields == optax.PartitionState._fields == ("inner_states",)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (partition, optax.partition),
        (multi_transform, optax.multi_transform),
        (masking.masked, optax.masked),
        (freeze, optax.freeze),
        (selective_transform, optax.selective_transform),
    ],
    ids=lambda f: f.__name__,
)
def test_signatures_match_optax(ours, theirs):
    ours, theirs = positional_and_defaults(ours), positional_and_defaults(theirs)
    assert ours[: len(theirs)] == theirs
    assert all(kind is inspect.Parameter.KEYWORD_ONLY for _, kind, _ in ours[len(theirs) :])


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            {"w": "decay", "b": "no_decy", "s": "decay"},
            "partition: the param labels 'no_decy' have no transformation; the "
            "transformations are labelled 'decay', 'no_decay'.",
        ),
        (
            {"w": "decay", "b": "decay", "s": "decay"},
            "partition: no parameter is labelled 'no_decay', so those transformations would "
            "never run; the labels in use are 'decay'. Fix the label (a typo?), or pass "
            "allow_unused=True if a group may be empty.",
        ),
    ],
    ids=["unknown_label", "unused_transformation"],
)
def test_a_wrong_label_is_named_with_the_valid_ones(labels, message):
    tx = partition({"decay": optix.adam(0.1), "no_decay": optix.sgd(0.1)}, labels)
    with pytest.raises(ValueError) as info:
        tx.init(initial_params())
    assert str(info.value).startswith(message)


def test_allow_unused_keeps_optax_behaviour_and_layout(x64):
    def build(m, **kwargs):
        return partition_of(m)(
            {"a": m.trace(0.5), "b": m.scale_by_adam(), "unused": m.trace(0.1)},
            {"w": "a", "b": "b", "s": "a"},
            **kwargs,
        )

    ours, theirs = build(optix, allow_unused=True), build(optax)
    assert_same_trajectory(run_jax(ours, np.float64), run_optax(theirs), rtol=1e-10)
    assert layout(ours.init(initial_params())) == layout(theirs.init(initial_params()))


def test_a_state_from_another_partition_is_refused():
    params = initial_params()
    state = partition({"a": optix.sgd(0.1)}, "a").init(params)
    tx = partition({"a": optix.sgd(0.1), "b": optix.sgd(0.1)}, {"w": "a", "b": "b", "s": "a"})
    with pytest.raises(
        ValueError, match="partition: the state has groups 'a' but the transformation has 'a', 'b'"
    ):
        tx.update(params, state, params)


def test_labels_that_are_not_a_prefix_say_where():
    tx = partition({"a": optix.sgd(0.1)}, {"w": "a", "bias": "a", "s": "a"})
    with pytest.raises(
        ValueError,
        match=r"param_labels must have the structure of the params.*\['bias'\], which the params",
    ):
        tx.init(initial_params())


def test_transforms_must_be_a_mapping():
    with pytest.raises(TypeError, match="partition: transforms must be a non-empty mapping"):
        partition([optix.sgd(0.1)], "a")


def recording(seen, name, kind=GradientTransformation):
    def update(updates, state, params=None, **extra_args):
        seen[name] = extra_args
        return updates, state

    return kind(lambda p: optix.EmptyState(), update)


def test_extra_args_reach_every_group_and_can_be_masked_like_optax():
    params = {"w": jnp.ones(2), "b": jnp.ones(3)}
    tags = {"w": jnp.zeros(2), "b": jnp.zeros(3)}
    for m, kind in (
        (optix, GradientTransformation),
        (optax, optax.GradientTransformationExtraArgs),
    ):
        seen = {}
        tx = partition_of(m)(
            {"x": recording(seen, "x", kind), "y": recording(seen, "y", kind)},
            {"w": "x", "b": "y"},
            mask_compatible_extra_args=True,
        )
        tx.update(params, tx.init(params), params, tags=tags, value=jnp.asarray(2.0))
        assert set(seen) == {"x", "y"}
        assert float(seen["x"]["value"]) == 2.0
        # Each group sees the tags of its own leaves only.
        assert type(seen["x"]["tags"]["b"]).__name__ == "MaskedNode"
        assert type(seen["y"]["tags"]["w"]).__name__ == "MaskedNode"
        np.testing.assert_array_equal(seen["x"]["tags"]["w"], tags["w"])


def test_basics():
    # jit compiles once, stable state, bf16/f16/f64 kept, extra args, None leaves.
    labels = lambda p: jax.tree.map(lambda x: "matrix" if x.ndim == 2 else "vector", p)
    tx = partition({"matrix": optix.adam(0.1), "vector": optix.sgd(0.5)}, labels, allow_unused=True)
    check_basics(tx)


def test_groups_with_none_leaves_and_bf16():
    params = {"w": jnp.ones((2, 2), jnp.bfloat16), "b": jnp.ones(2, jnp.bfloat16), "frozen": None}
    grads = {
        "w": jnp.full((2, 2), 0.5, jnp.bfloat16),
        "b": jnp.full(2, 0.5, jnp.bfloat16),
        "frozen": None,
    }
    tx = partition(
        {"matrix": optix.adam(0.1), "vector": optix.sgd(0.5)},
        {"w": "matrix", "b": "vector", "frozen": "vector"},
    )
    updates, _ = tx.update(grads, tx.init(params), params)
    assert updates["frozen"] is None
    assert updates["w"].dtype == updates["b"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(updates["b"], np.float32), -0.25)
    np.testing.assert_allclose(np.asarray(updates["w"], np.float32), -0.1, rtol=1e-2)


def test_an_empty_tree_with_a_prefix_label_works_like_optax():
    for container in (dict, tuple, list):
        tx = partition({0: optix.sgd(1.0)}, lambda _: 0)
        updates, _ = tx.update(container(), tx.init(container()))
        assert updates == container()


def test_map_params_sees_every_group_like_optax():
    params = initial_params()
    labels = LABELS["tree"]
    ours = partition(groups(optix, labels), labels)
    theirs = optax.partition(groups(optax, labels), labels)
    mapped = optix.tree.map_params(ours, lambda x: x + 1.0, ours.init(params))
    expected = optax.tree_utils.tree_map_params(theirs, lambda x: x + 1.0, theirs.init(params))
    assert layout(mapped) == layout(expected)
    np.testing.assert_array_equal(mapped.inner_states["adam"].inner_state.mu["w"], 1.0)


def test_gradient_sequence_moves_every_group():
    # Guards the trajectory tests above against comparing parameters that never move.
    tx = partition(groups(optix, LABELS["tree"]), LABELS["tree"])
    last = run_jax(tx, np.float32)[-1]
    for k, start in initial_params().items():
        assert np.max(np.abs(last[k] - start)) > 1e-2, k
