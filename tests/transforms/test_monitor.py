"""snapshot, monitor and measure_with_ema against Optax's; monitored's stats against NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.transforms.hyperparams import inject_hyperparams
from optix.transforms.monitor import (
    MonitoredState,
    MonitorState,
    SnapshotState,
    measure_with_ema,
    monitor,
    monitored,
    snapshot,
)
from optix.transforms.partition import partition
from optix.tree.state import assign

PARAMS = {"w": jnp.asarray([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.asarray([0.1, -0.3])}


def grads(t, params=PARAMS):
    return jax.tree.map(lambda p: jnp.sin(p * (t + 1)) + 0.1 * t, params)


def f64_norm(tree):
    return np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(tree)))


# Optax's snapshot / monitor / measure_with_ema.


def _optax_pair(build):
    """The same chain built from optix and from optax (``build(library, measure_lib)``)."""
    return build(optix, _OptixMeasures), build(optax, optax)


class _OptixMeasures:
    snapshot, monitor, measure_with_ema = snapshot, monitor, measure_with_ema


def _run_both(build, steps=4):
    ours_tx, theirs_tx = _optax_pair(build)
    with jax.numpy_dtype_promotion("standard"):
        ours, theirs = ours_tx.init(PARAMS), theirs_tx.init(PARAMS)
        for t in range(steps):
            u, ours = ours_tx.update(grads(t), ours, PARAMS)
            v, theirs = theirs_tx.update(grads(t), theirs, PARAMS)
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), u, v)
            yield ours, theirs


def _names_and_values(state, names):
    return {n: optix.tree.get(state, n) for n in names}


def test_snapshot_matches_optax():
    def build(lib, m):
        return lib.chain(
            lib.sgd(0.1, momentum=0.9),
            m.snapshot("norm_before_clip", lib.tree.norm),
            lib.clip_by_global_norm(0.05),
        )

    for ours, theirs in _run_both(build):
        assert type(ours[1]).__name__ == type(theirs[1]).__name__ == "SnapshotState"
        assert ours[1]._fields == theirs[1]._fields == SnapshotState._fields
        np.testing.assert_allclose(
            optix.tree.get(ours, "norm_before_clip"),
            optax.tree.get(theirs, "norm_before_clip"),
            rtol=1e-6,
        )


def test_snapshot_records_the_updates_reaching_it():
    tx = optix.chain(optix.scale(2.0), snapshot("doubled", lambda u: u["b"]), optix.scale(3.0))
    state = tx.init(PARAMS)
    np.testing.assert_array_equal(optix.tree.get(state, "doubled"), PARAMS["b"])
    updates, state = tx.update(grads(0), state)
    np.testing.assert_array_equal(optix.tree.get(state, "doubled"), 2.0 * grads(0)["b"])
    np.testing.assert_array_equal(updates["b"], 3.0 * (2.0 * grads(0)["b"]))


def _monitor_chain(lib, m):
    return lib.chain(
        lib.sgd(0.1, momentum=0.9),
        m.monitor(
            {
                "norm_before_clip": lib.tree.norm,
                "norm_ema": m.measure_with_ema(lib.tree.norm, 0.9),
                "clipped_fraction": m.measure_with_ema(lambda u: lib.tree.norm(u) > 1.0, 0.8),
                "undebiased": m.measure_with_ema(lib.tree.norm, 0.5, debias=False),
            }
        ),
        lib.clip_by_global_norm(1.0),
    )


def test_monitor_and_measure_with_ema_match_optax():
    names = ["norm_before_clip", "norm_ema", "clipped_fraction", "undebiased"]
    for ours, theirs in _run_both(_monitor_chain):
        assert type(ours[1]).__name__ == type(theirs[1]).__name__ == "MonitorState"
        assert ours[1]._fields == theirs[1]._fields == MonitorState._fields
        ours_values = _names_and_values(ours[1].measurements, names)
        theirs_values = {n: theirs[1].measurements[n] for n in names}
        for n in names:
            np.testing.assert_allclose(ours_values[n], theirs_values[n], rtol=1e-6)
            assert ours_values[n].dtype == jnp.float32


def test_measure_with_ema_is_the_debiased_average():
    tx = optix.chain(monitor({"average": measure_with_ema(lambda u: u["b"][0], 0.9)}))
    state = tx.init(PARAMS)
    average = 0.0
    for t in range(1, 6):
        g = grads(t)
        _, state = tx.update(g, state)
        average = 0.9 * average + 0.1 * float(g["b"][0])
        np.testing.assert_allclose(
            optix.tree.get(state, "average"), average / (1 - 0.9**t), rtol=1e-6
        )


def test_monitor_state_structure_never_changes():
    tx = _monitor_chain(optix, _OptixMeasures)
    state = tx.init(PARAMS)
    step = jax.jit(lambda s, g: tx.update(g, s, PARAMS))
    new_state = state
    for t in range(3):
        _, new_state = step(new_state, grads(t))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert [x.dtype for x in jax.tree.leaves(new_state)] == [
        x.dtype for x in jax.tree.leaves(state)
    ]
    assert float(optix.tree.get(state, "norm_before_clip")) == 0.0


# monitored: the usual training stats.


def test_monitored_leaves_the_updates_and_inner_state_alone():
    inner = optix.adamw(0.1, weight_decay=0.1)
    tx = monitored(inner, learning_rate=0.1)
    state, inner_state = tx.init(PARAMS), inner.init(PARAMS)
    for t in range(4):
        u, state = jax.jit(tx.update)(grads(t), state, PARAMS)
        v, inner_state = jax.jit(inner.update)(grads(t), inner_state, PARAMS)
        jax.tree.map(np.testing.assert_array_equal, u, v)
    jax.tree.map(np.testing.assert_array_equal, state.inner_state, inner_state)


def test_monitored_records_norms_and_the_scheduled_learning_rate():
    def schedule(count):
        return 0.1 / (1.0 + count.astype(jnp.float32))

    tx = optix.chain(optix.clip_by_global_norm(1.0), optix.adam(schedule))
    tx = monitored(tx, learning_rate=schedule)
    params, state = PARAMS, tx.init(PARAMS)
    assert np.isnan(optix.tree.get(state, "grad_norm"))
    step = jax.jit(tx.update)
    for t in range(5):
        g = grads(t, params)
        updates, state = step(g, state, params)
        np.testing.assert_allclose(optix.tree.get(state, "grad_norm"), f64_norm(g), rtol=1e-6)
        np.testing.assert_allclose(
            optix.tree.get(state, "update_norm"), f64_norm(updates), rtol=1e-6
        )
        np.testing.assert_allclose(optix.tree.get(state, "param_norm"), f64_norm(params), rtol=1e-6)
        np.testing.assert_allclose(optix.tree.get(state, "lr"), 0.1 / (1 + t), rtol=1e-7)
        params = optix.apply_updates(params, updates)
    assert int(optix.tree.get(state, "MonitoredState").count) == 5


def test_monitored_reads_the_injected_learning_rate_even_after_a_change():
    tx = monitored(inject_hyperparams(optix.sgd)(learning_rate=0.1, momentum=0.9))
    state = tx.init(PARAMS)
    step = jax.jit(tx.update)
    traces = []
    for t, lr in enumerate([0.1, 0.1, 0.03, 0.03]):
        state = assign(state, learning_rate=lr)
        _, state = step(grads(t), state, PARAMS)
        traces.append(float(optix.tree.get(state, "lr")))
    np.testing.assert_allclose(traces, [0.1, 0.1, 0.03, 0.03], rtol=1e-7)
    assert step._cache_size() == 1


def test_monitored_constant_learning_rate_and_unknown_learning_rate():
    tx = monitored(optix.sgd(0.25), learning_rate=0.25)
    _, state = tx.update(grads(0), tx.init(PARAMS), PARAMS)
    np.testing.assert_array_equal(optix.tree.get(state, "lr"), np.float32(0.25))
    tx = monitored(optix.sgd(0.25))
    _, state = tx.update(grads(0), tx.init(PARAMS))
    assert np.isnan(optix.tree.get(state, "lr"))
    assert np.isnan(optix.tree.get(state, "param_norm"))  # no params passed
    np.testing.assert_allclose(optix.tree.get(state, "grad_norm"), f64_norm(grads(0)), rtol=1e-6)


def test_monitored_refuses_to_guess_among_several_learning_rates():
    inner = partition(
        {
            "a": inject_hyperparams(optix.sgd)(learning_rate=0.1),
            "b": inject_hyperparams(optix.adam)(learning_rate=0.01),
        },
        {"w": "a", "b": "b"},
    )
    with pytest.raises(ValueError, match=r"monitored: the inner state holds 2 learning rates"):
        monitored(inner).init(PARAMS)
    state = monitored(inner, learning_rate=0.1).init(PARAMS)
    assert isinstance(state, MonitoredState)


def test_monitored_low_precision_params():
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), PARAMS)
    tx = monitored(optix.adam(0.1), learning_rate=0.1)
    state = tx.init(params)
    g = jax.tree.map(lambda p: (p * 300.0).astype(jnp.bfloat16), params)
    updates, new_state = jax.jit(tx.update)(g, state, params)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert [x.dtype for x in jax.tree.leaves(new_state)] == [
        x.dtype for x in jax.tree.leaves(state)
    ]
    assert new_state.grad_norm.dtype == jnp.float32
    # Summed in float32: the norm of bf16 values, not a bf16-rounded sum.
    np.testing.assert_allclose(new_state.grad_norm, f64_norm(g), rtol=1e-6)
    assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))


def test_monitored_with_none_leaves_and_extra_args():
    params = {"w": jnp.asarray([1.0, 2.0]), "frozen": None}
    g = {"w": jnp.asarray([0.5, 1.0]), "frozen": None}
    tx = monitored(optix.polyak_sgd(max_learning_rate=2.0))
    state = tx.init(params)
    updates, state = tx.update(g, state, params, value=jnp.asarray(1.25))
    assert updates["frozen"] is None
    np.testing.assert_allclose(updates["w"], -jnp.asarray([0.5, 1.0]), rtol=1e-6)
    np.testing.assert_allclose(state.grad_norm, np.sqrt(1.25), rtol=1e-6)


@settings(deadline=None, max_examples=25)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=4, max_size=4).map(
        lambda xs: jnp.asarray(xs, jnp.float32)
    )
)
def test_monitored_is_transparent_and_measures_the_gradient(g):
    inner = optix.chain(optix.clip_by_global_norm(1.0), optix.sgd(0.1, momentum=0.5))
    tx = monitored(inner, learning_rate=0.1)
    params = {"w": jnp.ones(4)}
    u, state = tx.update({"w": g}, tx.init(params), params)
    v, _ = inner.update({"w": g}, inner.init(params), params)
    np.testing.assert_array_equal(u["w"], v["w"])
    np.testing.assert_allclose(state.grad_norm, f64_norm(g), rtol=1e-6, atol=1e-30)
    assert float(state.update_norm) <= 0.1 * 1.0 * (1 + 1e-6)
