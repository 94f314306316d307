"""optix.sharding on the devices this process has: init, jit_step, reduce_over's rules.

A ``shard_map`` over a mesh of one device still types its inputs as split or
replicated, which is all the refusals below need; the numbers on 8 devices are
checked in test_eight_devices.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optix
import optix.sharding as osh
from optix.tree.shards import reduce_over, split_axes

MESH = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
REPLICATED = NamedSharding(MESH, P())
SPLIT = NamedSharding(MESH, P("data"))


def make_params():
    return {"w": jnp.linspace(-1.0, 1.0, 32).reshape(8, 4), "b": jnp.full((4,), 0.5)}


def abstract(tree, sharding=REPLICATED):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    "tx", [optix.adam(1e-3), optix.adafactor(1e-2, min_dim_size_to_factor=2), optix.sm3(0.1)]
)
def test_init_from_abstract_params_equals_init(tx):
    params = make_params()
    shardings = osh.state_shardings(tx, abstract(params))
    state = osh.init(tx, abstract(params), shardings)
    assert_trees_equal(state, tx.init(params))
    for leaf, sharding in zip(jax.tree.leaves(state), jax.tree.leaves(shardings), strict=True):
        assert leaf.sharding == sharding


def test_init_refuses_abstract_params_for_a_state_that_copies_them():
    tx = optix.lookahead_in_state(optix.adam(1e-3), sync_period=2, slow_step_size=0.5)
    with pytest.raises(ValueError, match=r"\.slow\['b'\].*copies param values"):
        osh.init(tx, abstract(make_params()))
    params = jax.device_put(make_params(), REPLICATED)
    assert_trees_equal(osh.init(tx, params), tx.init(make_params()))


def test_init_takes_a_mix_of_abstract_and_concrete_params():
    tx = optix.lookahead_in_state(optix.sgd(1e-3), sync_period=2, slow_step_size=0.5)
    params = make_params()
    mixed = {"w": jax.device_put(params["w"], REPLICATED), "b": abstract(params["b"])}
    with pytest.raises(ValueError, match=r"\.slow\['b'\]"):
        osh.init(tx, mixed)
    mixed = {"w": abstract(params["w"]), "b": jax.device_put(params["b"], REPLICATED)}
    with pytest.raises(ValueError, match=r"\.slow\['w'\]"):
        osh.init(tx, mixed)


def step(tx):
    def run(p, s, g):
        u, s = tx.update(g, s, p)
        return optix.apply_updates(p, u), s

    return run


def test_jit_step_donates_and_matches_a_plain_step():
    tx = optix.adamw(1e-2)
    params = jax.device_put(make_params(), REPLICATED)
    plan = osh.zero_shardings(tx, params)
    state = osh.init(tx, params, plan.state)
    grads = jax.tree.map(jnp.ones_like, make_params())
    expected = jax.jit(step(tx))(make_params(), tx.init(make_params()), grads)
    train = osh.jit_step(step(tx), (plan.params, plan.state, plan.grads), (plan.params, plan.state))
    result = train(params, state, grads)
    assert_trees_equal(result, expected)
    assert all(x.is_deleted() for x in jax.tree.leaves((params, state)))


def test_jit_step_refuses_a_donation_whose_buffer_cannot_be_reused():
    tx = optix.adamw(1e-2)
    plan = osh.zero_shardings(tx, abstract(make_params()))
    moved = jax.tree.map(lambda _: SPLIT, plan.params)
    with pytest.raises(ValueError, match=r"argument 0 is donated, but at \['b'\]"):
        osh.jit_step(step(tx), (plan.params, plan.state, plan.grads), (moved, plan.state))
    with pytest.raises(ValueError, match="has 1 outputs"):
        osh.jit_step(lambda p, s: p, (plan.params, plan.state), plan.params)


def test_zero_stages_split_what_they_promise():
    tx = optix.adam(1e-3)
    params = abstract(make_params())
    one, two, three = (osh.zero_shardings(tx, params, stage=k) for k in (1, 2, 3))
    spec = lambda tree: jax.tree.map(lambda s: s.spec, tree)
    assert spec(one.params) == spec(one.grads) == {"w": P(), "b": P()}
    assert spec(two.params) == {"w": P(), "b": P()}
    assert spec(two.grads) == spec(three.params) == {"w": P("data", None), "b": P("data")}
    assert spec(one.state) == spec(three.state)
    assert spec(one.state)[0].mu == {"w": P("data", None), "b": P("data")}
    with pytest.raises(ValueError, match="stage must be 1, 2 or 3"):
        osh.zero_shardings(tx, params, stage=0)


def test_device_bytes_counts_every_addressable_block():
    state = osh.init(optix.adam(1e-3), abstract(make_params()))
    assert osh.device_bytes(state) == {
        jax.devices()[0]: 2 * 36 * 4 + 4
    }  # mu, nu and Adam's count (a constant learning rate keeps Optax's EmptyState)


TRANSFORMS = {
    "clip": optix.chain(optix.clip_by_global_norm(0.1), optix.sgd(0.1)),
    "lamb": optix.lamb(1e-2),
    "adafactor": optix.adafactor(1e-2, min_dim_size_to_factor=2),
    "monitored": optix.monitored(optix.adam(1e-2)),
    "apply_if_finite": optix.apply_if_finite(optix.adam(1e-2), 2),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_with_axis_name_changes_nothing_outside_shard_map(name):
    tx = TRANSFORMS[name]
    params, grads = make_params(), jax.tree.map(lambda x: 3.0 * jnp.cos(x), make_params())
    grads["w"] = grads["w"].at[0, 0].set(jnp.nan) if name == "apply_if_finite" else grads["w"]
    expected = jax.jit(step(tx))(params, tx.init(params), grads)
    result = jax.jit(step(osh.with_axis_name(tx, "data")))(params, tx.init(params), grads)
    assert_trees_equal(result, expected)


def shard_mapped(fn, in_specs, out_specs, check_vma=True):
    return jax.jit(
        jax.shard_map(fn, mesh=MESH, in_specs=in_specs, out_specs=out_specs, check_vma=check_vma)
    )


def test_split_axes_reads_split_and_replicated_values():
    def probe(split, replicated):
        with reduce_over("data"):
            found = (split_axes(split), split_axes(replicated), split_axes(split, like=split))
        assert found == (("data",), (), ())
        assert split_axes(split) == ()  # outside reduce_over
        return split, replicated

    shard_mapped(probe, (P("data"), P()), (P("data"), P()))(jnp.ones(4), jnp.ones(3))


def test_reduce_over_refuses_shard_map_without_check_vma():
    tx = osh.with_axis_name(optix.clip_by_global_norm(1.0), "data")
    run = step(tx)
    specs = {"w": P("data"), "b": P()}
    with pytest.raises(ValueError, match=r"check_vma=True"):
        shard_mapped(run, (specs, P(), specs), (specs, P()), check_vma=False)(
            make_params(), tx.init(make_params()), make_params()
        )


def test_adafactor_refuses_split_updates_with_a_replicated_factored_state():
    tx = osh.with_axis_name(optix.adafactor(1e-2, min_dim_size_to_factor=2), "data")
    params = make_params()
    specs = {"w": P("data"), "b": P()}
    state = tx.init(params)
    state_specs = jax.tree.map(lambda _: P(), state)
    with pytest.raises(ValueError, match="split over the mesh axes \\['data'\\] but its factored"):
        shard_mapped(step(tx), (specs, state_specs, specs), (specs, state_specs))(
            params, state, params
        )


def test_adaptive_grad_clip_refuses_split_leaves_inside_reduce_over():
    tx = osh.with_axis_name(optix.adaptive_grad_clip(0.1), "data")
    specs = {"w": P("data"), "b": P()}
    with pytest.raises(ValueError, match="unit norms need whole units"):
        shard_mapped(step(tx), (specs, P(), specs), (specs, P()))(
            make_params(), tx.init(make_params()), make_params()
        )
