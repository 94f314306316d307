"""State layouts from param layouts (optix.sharding.state_specs) and the ZeRO rules.

These need no devices: specs are computed from abstract params and checked against an
abstract mesh of 8 devices.
"""

import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.sharding import AbstractMesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.tree_util import keystr, tree_flatten_with_path

import optix
import optix.sharding as osh
from optix.optimizers.lbfgs import lbfgs
from tests.registry import ENTRIES

MESH = AbstractMesh((8, 2), ("data", "model"))


def sds(*shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


def specs_by_path(tx, params, param_specs, **kwargs):
    specs = osh.state_specs(tx, params, param_specs, mesh=MESH, **kwargs)
    leaves = tree_flatten_with_path(specs, is_leaf=lambda x: isinstance(x, P))[0]
    return {keystr(path): spec for path, spec in leaves}


def test_param_shaped_leaves_follow_their_param_and_scalars_are_replicated():
    params = {"w": sds(16, 4), "b": sds(4)}
    found = specs_by_path(optix.adam(1e-3), params, {"w": P("model", None), "b": P()})
    assert found == {
        "[0].count": P(),
        "[0].mu['b']": P(None),
        "[0].mu['w']": P("model", None),
        "[0].nu['b']": P(None),
        "[0].nu['w']": P("model", None),
    }


@pytest.mark.parametrize(
    ("shape", "spec", "row", "col"),
    [
        # (16, 24): rows r=0, columns c=1; v_row drops c, v_col drops r.
        ((16, 24), P("model", None), P("model"), P(None)),
        ((16, 24), P(None, "model"), P(None), P("model")),
        # Square: r=0, c=1 by position. Shapes alone cannot tell v_row from v_col.
        ((16, 16), P(None, "model"), P(None), P("model")),
        ((16, 16), P("model", None), P("model"), P(None)),
        # (8, 32, 24): r=2, c=1; the leading dim is kept by both factors.
        ((8, 32, 24), P("model", None, None), P("model", None), P("model", None)),
    ],
)
def test_adafactor_factors_keep_the_specs_of_their_dims(shape, spec, row, col):
    tx = optix.adafactor(1e-2, min_dim_size_to_factor=8)
    found = specs_by_path(tx, {"w": sds(*shape)}, {"w": spec})
    assert found["[0].v_row['w']"] == row
    assert found["[0].v_col['w']"] == col
    assert found["[0].v['w']"] == P(None)  # the unused (1,) placeholder


def test_sm3_per_dim_accumulators_take_the_spec_of_their_dim():
    found = specs_by_path(optix.sm3(0.1), {"w": sds(8, 8)}, {"w": P(None, "model")})
    assert found["[0].mu['w'][0]"] == P(None)
    assert found["[0].mu['w'][1]"] == P("model")
    assert found["[0].nu['w']"] == P(None, "model")


def test_history_stacks_get_an_unsplit_leading_dim():
    found = specs_by_path(lbfgs(memory_size=3), {"w": sds(16, 4)}, {"w": P("model", None)})
    assert found["[0].diff_params_memory['w']"] == P(None, "model", None)
    assert found["[0].weights_memory"] == P(None)


def test_states_of_masked_and_partitioned_transforms_find_their_params():
    params = {"a": sds(8, 4), "b": sds(3)}
    specs = {"a": P("model", None), "b": P()}
    tx = optix.multi_transform({"x": optix.adam(1.0), "y": optix.sgd(1.0)}, {"a": "x", "b": "y"})
    found = specs_by_path(tx, params, specs)
    assert found[".inner_states['x'].inner_state[0].mu['a']"] == P("model", None)
    masked = specs_by_path(optix.masked(optix.adam(1.0), {"a": True, "b": False}), params, specs)
    assert masked[".inner_state[0].nu['a']"] == P("model", None)


def test_leaves_without_a_param_are_replicated_or_split_by_zero():
    params = {"w": sds(16, 4), "b": sds(4)}  # 68 entries, flattened into one vector
    tx = optix.flatten(optix.adam(1e-3))
    assert specs_by_path(tx, params, P())["[0].mu"] == P(None)
    params["b"] = sds(12)  # 76 entries: still not divisible by 8
    assert specs_by_path(tx, params, P(), zero_axis="data")["[0].mu"] == P(None)
    params["b"] = sds(16)  # 80 entries: split
    assert specs_by_path(tx, params, P(), zero_axis="data")["[0].mu"] == P("data")


def test_zero_lays_the_state_out_as_if_the_params_were_split():
    params = {"w": sds(16, 24), "v": sds(24, 16), "odd": sds(3, 5)}
    tx = optix.adafactor(1e-2, min_dim_size_to_factor=8)
    found = specs_by_path(tx, params, P(), zero_axis="data")
    # w would be split along dim 0 (its rows r): v_row keeps it, v_col does not.
    assert found["[0].v_row['w']"] == P("data")
    assert found["[0].v_col['w']"] == P(None)
    # v would be split along dim 0, its columns c: the reverse.
    assert found["[0].v_row['v']"] == P(None)
    assert found["[0].v_col['v']"] == P("data")
    assert found["[0].v['odd']"] == P(None, None)
    adam = specs_by_path(
        optix.adam(1e-3), params, {"w": P(None, "model"), "v": P(), "odd": P()}, zero_axis="data"
    )
    assert adam["[0].mu['w']"] == P("data", "model")  # the first free divisible dim
    assert adam["[0].nu['odd']"] == P(None, None)


def test_zero_keeps_an_already_split_param_as_it_is():
    params = {"w": sds(16, 24)}
    found = specs_by_path(optix.adam(1e-3), params, {"w": P(None, "data")}, zero_axis="data")
    assert found["[0].mu['w']"] == P(None, "data")


@pytest.mark.parametrize(
    ("spec", "shape", "axis", "expected"),
    [
        (P(), (16, 4), "data", P("data", None)),
        (P(), (3, 16), "data", P(None, "data")),
        (P(), (3, 5), "data", P()),
        (P(), (0, 16), "data", P(None, "data")),
        (P("data"), (16, 16), "data", P("data")),
        (P(("data", "model")), (16, 16), "data", P(("data", "model"))),
        (P("model"), (16, 16), ("data",), P("model", "data")),
        (P(), (16,), ("data", "model"), P(("data", "model"))),
    ],
)
def test_data_axis_spec(spec, shape, axis, expected):
    assert osh.data_axis_spec(spec, shape, axis, 8 if axis == "data" else 16) == expected


def test_add_data_axis_needs_named_shardings():
    with pytest.raises(ValueError, match="expected a NamedSharding"):
        osh.add_data_axis({"w": None, "b": None}, {"w": sds(8), "b": sds(8)})


def test_params_without_shardings_are_an_error_that_says_what_to_pass():
    with pytest.raises(ValueError, match=r"param at \['w'\] has no NamedSharding"):
        osh.state_specs(optix.adam(1e-3), {"w": sds(8)})
    with pytest.raises(ValueError, match=r"param at \['w'\] has no NamedSharding"):
        osh.zero_shardings(optix.adam(1e-3), {"w": sds(8)})
    with pytest.raises(ValueError, match=r"spec .* of the param at \['w'\] has more entries"):
        osh.state_specs(optix.adam(1e-3), {"w": sds(8)}, {"w": P("data", None)})


def test_register_state_rule_lays_out_a_custom_state():
    from typing import Any, NamedTuple

    class RowStats(NamedTuple):
        rows: Any

    def init(params):
        return RowStats(jax.tree.map(lambda p: jnp.zeros((p.shape[0], 2)), params))

    tx = optix.GradientTransformation(init, lambda u, s, p=None, **k: (u, s))
    params, spec = {"w": sds(16, 2)}, {"w": P("model", None)}
    # (16, 2) has the param's shape: read as param-shaped, not as per-row statistics.
    assert specs_by_path(tx, params, spec)[".rows['w']"] == P("model", None)
    osh.register_state_rule(RowStats, "rows", lambda shape, s, leaf, extra: (s[0], None))
    params, spec = {"w": sds(16, 8)}, {"w": P(None, "model")}
    assert specs_by_path(tx, params, spec)[".rows['w']"] == P(None, None)


SHAPES = st.lists(st.sampled_from([1, 2, 3, 8, 16, 24]), min_size=0, max_size=3).map(tuple)


@settings(max_examples=15, deadline=None)
@given(shapes=st.lists(SHAPES, min_size=1, max_size=3), data=st.data())
def test_every_registry_state_gets_valid_specs(shapes, data):
    params = {f"p{i}": sds(*shape) for i, shape in enumerate(shapes)}

    def random_spec(shape):
        names = iter(data.draw(st.permutations(["data", "model"])))
        return P(
            *(next(names, None) if n % 8 == 0 and data.draw(st.booleans()) else None for n in shape)
        )

    specs = {k: random_spec(v.shape) for k, v in params.items()}
    for name in sorted(ENTRIES):
        tx = ENTRIES[name].make()
        for zero in (None, "data"):
            state = jax.eval_shape(tx.init, params)
            found = osh.state_specs(tx, params, specs, zero_axis=zero, mesh=MESH)
            for leaf, spec in zip(jax.tree.leaves(state), jax.tree.leaves(found), strict=True):
                assert len(spec) == leaf.ndim, (name, leaf.shape, spec)
                # Raises on a repeated axis or a dim the axis sizes do not divide.
                NamedSharding(MESH, spec).shard_shape(leaf.shape)
