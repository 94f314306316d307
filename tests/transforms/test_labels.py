"""labels_by_path, ndim_at_least, mask_by_label, paths_by_label on plain dicts, Flax linen
params (dict and FrozenDict) and nnx.State, and in training with partition and masked."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.core import freeze as frozen_dict
from flax.training.train_state import TrainState

import optix
from optix.transforms.labels import (
    labels_by_path,
    leaves_with_paths,
    mask_by_label,
    ndim_at_least,
    path_string,
    paths_by_label,
)
from optix.transforms.masking import masked
from optix.transforms.partition import partition
from tests.transforms.group_helpers import LinenMLP, NnxMLP, linen_params

NO_DECAY = labels_by_path({r"(bias|scale)$": "no_decay"}, default="decay")


class Pair(NamedTuple):
    left: jax.Array
    right: jax.Array


def test_path_strings_join_keys_attributes_and_indices_with_slashes():
    tree = {"enc": [{"kernel": 1.0}, Pair(2.0, 3.0)], "head": (4.0,)}
    assert [p for p, _ in leaves_with_paths(tree)] == [
        "enc/0/kernel",
        "enc/1/left",
        "enc/1/right",
        "head/0",
    ]
    path = (jax.tree_util.DictKey("a"), jax.tree_util.SequenceKey(2), jax.tree_util.GetAttrKey("b"))
    assert path_string(path) == "a/2/b"


def test_first_matching_pattern_wins_and_default_takes_the_rest():
    labels = labels_by_path({r"^head/": "head", r"bias$": "no_decay"}, default="decay")
    params = {"head": {"bias": 0.0, "kernel": 0.0}, "body": {"bias": 0.0, "kernel": 0.0}}
    assert labels(params) == {
        "head": {"bias": "head", "kernel": "head"},
        "body": {"bias": "no_decay", "kernel": "decay"},
    }


LINEN_EXPECTED = {
    "params": {
        "Dense_0": {"bias": "no_decay", "kernel": "decay"},
        "Dense_1": {"bias": "no_decay", "kernel": "decay"},
        "LayerNorm_0": {"bias": "no_decay", "scale": "no_decay"},
    }
}


@pytest.mark.parametrize("wrap", [dict, frozen_dict], ids=["dict", "FrozenDict"])
def test_flax_linen_params(wrap):
    params = wrap(linen_params())
    labels = NO_DECAY(params)
    assert type(labels) is type(params)
    assert labels == wrap(LINEN_EXPECTED)
    assert paths_by_label(NO_DECAY, params)["decay"] == [
        "params/Dense_0/kernel",
        "params/Dense_1/kernel",
    ]
    assert jax.tree.leaves(ndim_at_least(2)(params)) == [False, True, False, True, False, False]


def nnx_states():
    model = NnxMLP(nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    return state, nnx.as_pure(state)


def test_nnx_state_with_variables_and_bare_arrays_get_the_same_paths_and_labels():
    with_variables, bare = nnx_states()
    expected = {
        "decay": ["first/kernel", "layers/0/kernel"],
        "no_decay": ["first/bias", "layers/0/bias", "norm/bias", "norm/scale"],
    }
    assert paths_by_label(NO_DECAY, with_variables) == expected
    assert paths_by_label(NO_DECAY, bare) == expected
    assert paths_by_label(ndim_at_least(2), with_variables)[True] == expected["decay"]
    # A Variable gets one label: the label tree is a prefix of the state, as masks may be.
    labels = NO_DECAY(with_variables)
    assert labels["first"]["kernel"] == "decay"
    assert jax.tree.leaves(NO_DECAY(bare)) == jax.tree.leaves(labels)


def train_nnx(make, steps=3):
    model = NnxMLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, make(), wrt=nnx.Param)
    x = jnp.linspace(-1.0, 1.0, 15, dtype=jnp.float32).reshape(5, 3)
    for _ in range(steps):
        grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
        with jax.numpy_dtype_promotion("standard"):
            optimizer.update(model, grads)
    return nnx.as_pure(nnx.state(model, nnx.Param))


def groups_for(m, part):
    # One group frozen, so a label that reached the wrong group shows up as a moved parameter.
    return lambda: part(
        {"decay": m.adamw(0.1, weight_decay=0.5), "no_decay": m.set_to_zero()}, NO_DECAY
    )


def test_partition_by_path_in_nnx_optimizer_matches_optax():
    ours = train_nnx(groups_for(optix, partition))
    theirs = train_nnx(groups_for(optax, optax.partition))
    start = nnx.as_pure(nnx.state(NnxMLP(nnx.Rngs(0)), nnx.Param))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), ours, theirs)
    for get in (
        lambda s: s["first"]["bias"],
        lambda s: s["norm"]["scale"],
        lambda s: s["layers"][0]["bias"],
    ):
        np.testing.assert_array_equal(get(ours), get(start))
    assert not np.allclose(ours["first"]["kernel"], start["first"]["kernel"])


def test_partition_by_path_in_a_linen_train_state_matches_optax(x64):
    params = jax.tree.map(lambda p: p.astype(jnp.float64), frozen_dict(linen_params()))
    x = jnp.linspace(-1.0, 1.0, 15, dtype=jnp.float64).reshape(5, 3)
    results = []
    for make in (groups_for(optix, partition), groups_for(optax, optax.partition)):
        state = TrainState.create(apply_fn=LinenMLP().apply, params=params, tx=make())
        for _ in range(3):
            with jax.numpy_dtype_promotion("standard"):
                grads = jax.grad(lambda p, s=state: jnp.mean(s.apply_fn(p, x) ** 2))(state.params)
                state = state.apply_gradients(grads=grads)
        results.append(state.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), *results)
    np.testing.assert_array_equal(
        results[0]["params"]["Dense_0"]["bias"], params["params"]["Dense_0"]["bias"]
    )


def test_weight_decay_on_matrices_only_with_ndim_at_least():
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    zero = jax.tree.map(jnp.zeros_like, params)
    tx = optix.add_decayed_weights(0.5, mask=ndim_at_least(2))
    out, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_array_equal(out["w"], 0.5)
    np.testing.assert_array_equal(out["b"], 0.0)


def test_ndim_at_least_reads_shapes_only():
    abstract = {
        "w": jax.ShapeDtypeStruct((3, 4), jnp.float32),
        "s": jax.ShapeDtypeStruct((), jnp.float32),
    }
    assert ndim_at_least(2)(abstract) == {"w": True, "s": False}
    assert ndim_at_least(0)(abstract) == {"w": True, "s": True}
    with pytest.raises(ValueError, match="ndim_at_least: n must be >= 0, got n=-1"):
        ndim_at_least(-1)
    with pytest.raises(TypeError, match=r"ndim_at_least: n must be an int, got n=2\.0"):
        ndim_at_least(2.0)


def test_mask_by_label_selects_the_chosen_groups():
    params = {"head": {"bias": 0.0, "kernel": 0.0}, "body": {"kernel": 0.0}}
    labels = labels_by_path(
        {r"^head/": "head", r"bias$": "no_decay"}, default="decay", allow_unused=True
    )
    assert mask_by_label(labels, "decay", "head")(params) == {
        "head": {"bias": True, "kernel": True},
        "body": {"kernel": True},
    }
    assert mask_by_label(labels, "decay")(params)["head"] == {"bias": False, "kernel": False}
    tx = masked(optix.scale(0.0), mask_by_label(NO_DECAY, "decay"))
    g = {"w": jnp.ones(2), "bias": jnp.ones(2)}
    out, _ = tx.update(g, tx.init(g))
    np.testing.assert_array_equal(out["w"], 0.0)
    np.testing.assert_array_equal(out["bias"], 1.0)


def test_mask_by_label_names_a_label_no_parameter_has():
    with pytest.raises(ValueError) as info:
        mask_by_label(NO_DECAY, "decya")({"w": 0.0, "bias": 0.0})
    assert str(info.value) == (
        "mask_by_label: no parameter is labelled 'decya'; the labels in use are 'decay', "
        "'no_decay'."
    )
    with pytest.raises(TypeError, match="mask_by_label: give at least one label"):
        mask_by_label(NO_DECAY)


def test_a_path_no_pattern_matches_is_named_when_there_is_no_default():
    labels = labels_by_path({r"kernel$": "decay"})
    with pytest.raises(ValueError) as info:
        labels({"dense": {"kernel": 0.0, "bias": 0.0}})
    assert str(info.value) == (
        "labels_by_path: no pattern matches the parameter 'dense/bias' and no default label "
        "is given; the patterns are ['kernel$']."
    )


def test_a_pattern_that_labels_nothing_is_named_with_the_paths():
    labels = labels_by_path({r"kernal$": "decay", r"bias$": "no_decay"}, default="decay")
    with pytest.raises(ValueError) as info:
        labels({"dense": {"kernel": 0.0, "bias": 0.0}})
    assert str(info.value).startswith(
        "labels_by_path: the patterns 'kernal$' match no parameter (or only ones an earlier "
        "pattern took); the paths are 'dense/bias', 'dense/kernel'."
    )
    relaxed = labels_by_path(
        {r"kernal$": "x", r"bias$": "no_decay"}, default="decay", allow_unused=True
    )
    assert relaxed({"kernel": 0.0, "bias": 0.0}) == {"kernel": "decay", "bias": "no_decay"}


def test_bad_patterns_and_labels_are_refused_at_construction():
    with pytest.raises(ValueError, match=r"labels_by_path: '\(bias' is not a regular expression"):
        labels_by_path({"(bias": "no_decay"})
    with pytest.raises(TypeError, match="labels_by_path: labels must be hashable and not None"):
        labels_by_path({"bias": None})


def test_none_leaves_get_no_label():
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2), "frozen": None}
    assert NO_DECAY(params) == {"kernel": "decay", "bias": "no_decay", "frozen": None}
    assert paths_by_label(NO_DECAY, params) == {"decay": ["kernel"], "no_decay": ["bias"]}
