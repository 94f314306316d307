"""Reading, replacing and mapping over optimizer states, against ``optax.tree_utils``."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
import optix.tree as ot
import optix.tree.state as ot_state
import optix.tree_utils as otu_ours

otu = optax.tree_utils


class ScaleByAdamState(NamedTuple):
    count: Any
    mu: Any
    nu: Any


class ScaleByScheduleState(NamedTuple):
    count: Any


class InjectState(NamedTuple):
    count: Any
    hyperparams: Any
    inner_state: Any


PARAMS = {"w": jnp.array([[1.0, 2.0]]), "b": jnp.array([3.0, 4.0, 5.0])}


def _adam_init(params: Any) -> ScaleByAdamState:
    zeros = jax.tree.map(jnp.zeros_like, params)
    return ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)


def _chain_init(params: Any) -> tuple:
    return (_adam_init(params), ScaleByScheduleState(count=jnp.zeros([], jnp.int32)))


def _state() -> tuple:
    """An Adam state and a schedule state, both with a ``count``, as in a chain."""
    return (
        ScaleByAdamState(count=jnp.array(3), mu=PARAMS, nu={"w": jnp.ones((1, 2)), "b": None}),
        ScaleByScheduleState(count=jnp.array(5)),
    )


def _plain(path: tuple) -> tuple:
    """A path with either library's NamedTupleKey replaced by a comparable tuple."""
    return tuple(
        ("nt", e.tuple_name, e.name) if type(e).__name__ == "NamedTupleKey" else e for e in path
    )


def _same_matches(ours: list, theirs: list) -> None:
    assert [_plain(p) for p, _ in ours] == [_plain(p) for p, _ in theirs]
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        assert jax.tree.structure(a) == jax.tree.structure(b)
        assert all(
            np.array_equal(x, y)
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        )


def _adam_filter(path: tuple, _: Any) -> bool:
    # Checks the class name so that it also works on Optax's paths.
    last = path[-1]
    return type(last).__name__ == "NamedTupleKey" and last.tuple_name == "ScaleByAdamState"


INJECTED = InjectState(
    count=jnp.array(1),
    hyperparams={"learning_rate": jnp.array(0.1), "b1": jnp.array(0.9)},
    inner_state=_state(),
)


@pytest.mark.parametrize(
    ("tree", "key"),
    [
        (_state(), "count"),
        (_state(), "mu"),
        (_state(), "ScaleByScheduleState"),
        (_state(), "missing"),
        (INJECTED, "count"),
        (INJECTED, "learning_rate"),
        ({"a": {"a": 1.0}, "b": [{"a": 2.0}, {"c": 3.0}]}, "a"),
        ({"hparams": {"learning_rate": 1.0}, "learning_rate": "foo"}, "learning_rate"),
        ((), "foo"),
        (jnp.ones(3), "foo"),
    ],
)
def test_get_all_with_path_matches_optax(tree: Any, key: str) -> None:
    _same_matches(ot.get_all_with_path(tree, key), otu.tree_get_all_with_path(tree, key))
    _same_matches(
        ot.get_all_with_path(tree, key, _adam_filter),
        otu.tree_get_all_with_path(tree, key, _adam_filter),
    )


def test_get_all_with_path_paths() -> None:
    found = ot.get_all_with_path(_state(), "count")
    assert [p for p, _ in found] == [
        (jax.tree_util.SequenceKey(0), ot.NamedTupleKey("ScaleByAdamState", "count")),
        (jax.tree_util.SequenceKey(1), ot.NamedTupleKey("ScaleByScheduleState", "count")),
    ]
    assert [int(v) for _, v in found] == [3, 5]
    assert str(ot.NamedTupleKey("ScaleByAdamState", "mu")) == "ScaleByAdamState.mu"


def test_get() -> None:
    state = _state()
    assert int(ot.get(state, "count", filtering=_adam_filter)) == 3
    assert ot.get(state, "ScaleByScheduleState") is state[1]
    assert ot.get(state, "mu") is PARAMS
    assert ot.get(state, "missing") is None and ot.get(state, "missing", default=7) == 7
    assert float(ot.get(INJECTED, "learning_rate")) == pytest.approx(0.1)
    assert float(otu.tree_get(INJECTED, "learning_rate")) == pytest.approx(0.1)


def test_get_with_several_matches_lists_their_paths() -> None:
    with pytest.raises(KeyError) as error:
        ot.get(_state(), "count")
    message = str(error.value)
    assert "Found 2 values for 'count'" in message
    assert "[0].ScaleByAdamState.count" in message
    assert "[1].ScaleByScheduleState.count" in message
    assert "filtering" in message
    with pytest.raises(KeyError, match=r"InjectState\.count, InjectState\.inner_state\[0\]"):
        ot.get(INJECTED, "count")


def test_set() -> None:
    state = _state()
    new = ot.set(state, count=jnp.array(7))
    assert [int(v) for _, v in ot.get_all_with_path(new, "count")] == [7, 7]
    assert new[0].mu is state[0].mu and new[0].nu is state[0].nu
    assert isinstance(new[0], ScaleByAdamState) and isinstance(new[1], ScaleByScheduleState)
    new = ot.set(state, _adam_filter, count=jnp.array(9))
    assert int(new[0].count) == 9 and new[1] is state[1]
    replacement = ScaleByScheduleState(count=jnp.array(42))
    new = ot.set(state, ScaleByScheduleState=replacement)
    assert new[1] is replacement and new[0] is state[0]
    assert ot.set(state, mu=None)[0].mu is None
    new = ot.set(INJECTED, learning_rate=0.5, b1=0.8)
    assert new.hyperparams == {"learning_rate": 0.5, "b1": 0.8}
    assert new.inner_state is INJECTED.inner_state


@pytest.mark.parametrize(
    ("tree", "filtering", "kwargs"),
    [
        (_state(), None, {"count": 7}),
        (_state(), _adam_filter, {"count": 7, "mu": 1.0}),
        (_state(), None, {"ScaleByAdamState": 0}),
        ({"a": {"a": 1.0}, "b": {"a": 1}}, lambda _, v: isinstance(v, float), {"a": 2.0}),
        ({"a": {"a": 1.0}, "b": {"a": 1}}, lambda _, v: isinstance(v, dict), {"a": {"c": 0.0}}),
        (INJECTED, None, {"learning_rate": 2.0, "b1": 3.0}),
    ],
)
def test_set_matches_optax(tree: Any, filtering: Any, kwargs: dict) -> None:
    ours = ot.set(tree, filtering, **kwargs)
    theirs = otu.tree_set(tree, filtering, **kwargs)
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_set_replaces_every_match_that_get_finds() -> None:
    # Optax leaves the inner count alone here, as it sits in a plain tuple inside the
    # outer state; get_all_with_path reports both, and set replaces both.
    new = ot.set(INJECTED, count=0)
    assert [v for _, v in ot.get_all_with_path(new, "count")] == [0, 0, 0]


def test_set_with_missing_keys_names_them() -> None:
    with pytest.raises(KeyError, match=r"No values found in the tree for: 'ema', 'foo'\."):
        ot.set(_state(), count=1, ema=2.0, foo=3)
    with pytest.raises(KeyError, match=r"No values that pass `filtering` found .*: 'nu'"):
        ot.set(_state(), lambda p, _: p[0] == jax.tree_util.SequenceKey(1), nu=1, count=2)
    for tree in [(), jnp.ones(3)]:
        with pytest.raises(KeyError, match="'foo'"):
            ot.set(tree, foo=1.0)


def test_get_and_set_under_jit() -> None:
    @jax.jit
    def bump(state: Any, lr: jax.Array) -> tuple:
        new = ot.set(state, learning_rate=lr)
        return new, ot.get(new, "learning_rate") * 2

    new, doubled = bump(INJECTED, jnp.array(0.25))
    assert float(new.hyperparams["learning_rate"]) == 0.25 and float(doubled) == 0.5


names = st.sampled_from(["a", "b", "c", "count"])
states = st.recursive(
    st.integers(0, 9),
    lambda kids: (
        st.dictionaries(names, kids, max_size=3)
        | st.builds(ScaleByScheduleState, kids)
        | st.lists(kids, max_size=2).map(tuple)
    ),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(states, names)
def test_get_after_set_returns_the_set_value(state: Any, key: str) -> None:
    if not ot.get_all_with_path(state, key):
        with pytest.raises(KeyError):
            ot.set(state, **{key: -1})
        return
    new = ot.set(state, **{key: -1})
    found = ot.get_all_with_path(new, key)
    assert found and all(value == -1 for _, value in found)
    if len(found) == 1:
        assert ot.get(new, key) == -1


def test_map_params_applies_f_only_to_param_copies() -> None:
    state = ScaleByAdamState(count=jnp.array(4), mu=PARAMS, nu=jax.tree.map(jnp.square, PARAMS))
    specs = {"w": "shard-w", "b": "shard-b"}
    got = ot.map_params(
        _adam_init, lambda x, spec: (x.shape, spec), state, specs, transform_non_params=str
    )
    assert got.count == "4"
    want = {"w": ((1, 2), "shard-w"), "b": ((3,), "shard-b")}
    assert got.mu == want and got.nu == want
    doubled = ot.map_params(_adam_init, lambda x: 2 * x, state)
    assert doubled.count is state.count
    np.testing.assert_array_equal(doubled.nu["b"], [18.0, 32.0, 50.0])
    theirs = otu.tree_map_params(_adam_init, lambda x: 2 * x, state)
    for a, b in zip(jax.tree.leaves(doubled), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_map_params_with_a_transformation_object() -> None:
    opt = optax.chain(optax.scale_by_adam(), optax.scale_by_schedule(lambda c: 0.1))
    state = opt.init(PARAMS)
    args = (lambda x: x + 1, state)
    kwargs = {"transform_non_params": lambda _: None}
    ours, theirs = ot.map_params(opt, *args, **kwargs), otu.tree_map_params(opt, *args, **kwargs)
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    assert ours[0].count is None and ours[1].count is None
    np.testing.assert_array_equal(ours[0].mu["b"], [1.0, 1.0, 1.0])
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_array_equal(a, b)
    nested = ot.map_params(_chain_init, lambda x: None, _chain_init(PARAMS))
    assert nested[0].mu == {"w": None, "b": None} and nested[1] == _chain_init(PARAMS)[1]


def test_tree_utils_has_every_optax_name() -> None:
    public = [n for n in dir(otu) if n.startswith("tree_") or n == "NamedTupleKey"]
    assert len(public) == 36
    for name in public:
        assert hasattr(otu_ours, name), name
    assert otu_ours.tree_norm is ot.norm and otu_ours.tree_set is ot.set
    assert sorted(otu_ours.__all__) == sorted(public)


# inside: pick matches by the classes, labels and positions on their path.


def _adamw_chain_state():
    """Three counts: Adam's, and the scheduled weight decay's and learning rate's."""
    schedule = optix.linear_schedule(0.1, 0.01, 10)
    return optix.adamw(schedule, weight_decay=schedule).init(PARAMS)


def test_inside_picks_one_count_among_several():
    state = _adamw_chain_state()
    with pytest.raises(KeyError, match=r"filtering=optix.tree.inside\("):
        ot.get(state, "count")
    adam = ot.get(state, "count", filtering=ot_state.inside("ScaleByAdamState"))
    assert adam is state[0].count
    schedule = ot.get(state, "count", filtering=ot_state.inside(2))
    assert schedule is state[2].count
    assert ot.get(state, "count", filtering=ot_state.inside("NoSuchState")) is None


def test_inside_follows_labels_in_order():
    state = {"decay": (_adam_init(PARAMS),), "no_decay": (_adam_init(PARAMS),)}
    mu = ot.get(state, "mu", filtering=ot_state.inside("no_decay", "ScaleByAdamState"))
    assert mu is state["no_decay"][0].mu
    assert ot.get(state, "mu", filtering=ot_state.inside("ScaleByAdamState", "no_decay")) is None
    adam = ot.get(state, "ScaleByAdamState", filtering=ot_state.inside("decay"))
    assert adam is state["decay"][0]


def test_set_with_inside_replaces_only_those_matches():
    state = _adamw_chain_state()
    new = ot.set(state, ot_state.inside("ScaleByAdamState"), count=jnp.asarray(7, jnp.int32))
    assert int(new[0].count) == 7
    assert int(new[2].count) == 0


# assign: set, keeping each replaced value's dtype and shape.


def test_assign_keeps_the_dtype_so_jit_does_not_recompile():
    state = INJECTED._replace(hyperparams={"learning_rate": jnp.asarray(0.1, jnp.float32)})
    traces = []  # one entry per trace: jit retraces (and recompiles) for a new input type

    def double(s):
        traces.append(None)
        return s.hyperparams["learning_rate"] * 2.0

    step = jax.jit(double)
    step(state)
    for lr in (0.5, 3, np.float64(0.25)):
        new = ot_state.assign(state, learning_rate=lr)
        value = new.hyperparams["learning_rate"]
        assert value.dtype == jnp.float32
        assert not jax.typeof(value).weak_type
        np.testing.assert_array_equal(step(new), np.float32(lr) * 2)
    assert len(traces) == 1
    # set stores the Python number itself: a new input type for the jitted step.
    step(ot.set(state, learning_rate=0.5))
    assert len(traces) == 2


def test_assign_replaces_tuples_leafwise():
    betas = (jnp.asarray(0.9, jnp.float32), jnp.asarray(0.999, jnp.float32))
    state = {"hyperparams": {"betas": betas}}
    new = ot_state.assign(state, betas=(0.8, 0.99))["hyperparams"]["betas"]
    assert [b.dtype for b in new] == [jnp.float32, jnp.float32]
    np.testing.assert_array_equal(jnp.stack(new), jnp.asarray([0.8, 0.99], jnp.float32))


def test_assign_rejects_other_shapes_structures_and_missing_keys():
    state = {"hyperparams": {"lr": jnp.zeros(3), "betas": (jnp.zeros(()), jnp.zeros(()))}}
    with pytest.raises(ValueError, match=r"assign: the new value has shape \(2,\)"):
        ot_state.assign(state, lr=jnp.ones(2))
    with pytest.raises(ValueError, match=r"assign: the new value 0.9 has the structure"):
        ot_state.assign(state, betas=0.9)
    with pytest.raises(KeyError, match=r"No values found in the tree for: 'b1'"):
        ot_state.assign(state, b1=0.9)


def test_assign_never_truncates_a_float_into_an_integer():
    state = {"weight_decay": jnp.asarray(0), "count": jnp.asarray(3, jnp.int32)}
    with pytest.raises(TypeError, match=r"assign: the value replaced is an integer \(int32\)"):
        ot_state.assign(state, weight_decay=0.01)
    assert int(ot_state.assign(state, count=5)["count"]) == 5
