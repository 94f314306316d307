"""Optax states of the same optimizer, live or from an Optax checkpoint, continue in optix.

Each case trains with Optax for a few steps, converts the state with ``from_optax`` and
continues in both libraries with the same gradients: the parameters must agree to
float64 rtol 1e-10. Schedules are optix's in both (``optax.linear_schedule`` returns
float32 even under x64, which alone moves the trajectories by 1e-8). The states have the
same layout in both libraries, so the conversion is a checked copy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.serialization import from_bytes, from_optax, restore_state, save_state, to_bytes
from tests.serialization.common import make_grads, raw

F64_RTOL = 1e-10
STOP, RESUME = 4, 4
SCHEDULE = optix.linear_schedule(0.1, 0.01, 10)


def both(make):
    return make(optax), make(optix)


# name: make(library) -> transformation
CASES = {
    "adam": lambda m: m.adam(0.1),
    "adamw": lambda m: m.adamw(0.1, weight_decay=0.1),
    "sgd_momentum": lambda m: m.sgd(0.1, momentum=0.9),
    "lion": lambda m: m.lion(0.01, weight_decay=0.1),
    "adafactor": lambda m: m.adafactor(0.1, min_dim_size_to_factor=2),
    "clip_adamw_schedule": lambda m: m.chain(
        m.clip_by_global_norm(1.0), m.adamw(SCHEDULE, weight_decay=0.1)
    ),
    "inject_hyperparams_adam": lambda m: m.inject_hyperparams(m.adam)(learning_rate=0.1),
    "inject_hyperparams_schedule": lambda m: m.inject_hyperparams(m.adamw)(
        learning_rate=SCHEDULE, weight_decay=0.1
    ),
    "rmsprop_centered": lambda m: m.rmsprop(0.1, momentum=0.9, centered=True),
    "rmsprop_bias_corrected": lambda m: m.rmsprop(0.1, bias_correction=True),
    "noisy_sgd": lambda m: m.noisy_sgd(0.1, key=jax.random.key(3)),
    "masked_adamw": lambda m: m.masked(
        m.adamw(0.1), {"dense": {"kernel": True, "bias": False}, "scale": True}
    ),
    "apply_if_finite_adam": lambda m: m.apply_if_finite(m.adam(0.1), 3),
    "nadam": lambda m: m.nadam(0.1),
    "amsgrad": lambda m: m.amsgrad(0.1),
    "lamb": lambda m: m.lamb(0.1),
    "lars": lambda m: m.lars(0.1),
}

# Optax's adafactor computes its decay rate in float32 even under x64 (optix in the
# default float), so the two continuations differ by that rounding: measured 6.6e-8.
RTOL = {"adafactor": 1e-7}


def f64_params():
    return {
        "dense": {
            "kernel": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float64).reshape(3, 4),
            "bias": jnp.full((4,), 0.5, jnp.float64),
        },
        "scale": jnp.asarray(2.0, jnp.float64),
    }


def stepper(tx, apply_updates, promotion="strict"):
    """A jitted step; Optax's code needs standard promotion (float ** int32 counts)."""

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params, value=jnp.asarray(1.0))
        return apply_updates(params, updates), state

    def run(params, state, steps):
        with jax.numpy_dtype_promotion(promotion):
            for t in steps:
                params, state = step(params, state, make_grads(params, t))
        return params, state

    return run


def optax_run(name):
    optax_tx, optix_tx = both(CASES[name])
    run_optax = stepper(optax_tx, optax.apply_updates, "standard")
    params = f64_params()
    params, state = run_optax(params, optax_tx.init(params), range(STOP))
    return run_optax, optix_tx, params, state


def assert_continues_like_optax(name, run_optax, optix_tx, params, optax_state, optix_state):
    rest = range(STOP, STOP + RESUME)
    expected, _ = run_optax(params, optax_state, rest)
    actual, _ = stepper(optix_tx, optix.apply_updates)(params, optix_state, rest)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, e, rtol=RTOL.get(name, F64_RTOL), atol=1e-3 * F64_RTOL)


def assert_every_optax_leaf_copied(optax_state, optix_state):
    """The conversion itself is exact: every Optax value is in the optix state, bit for bit."""
    ours = {raw(x).tobytes() + str(raw(x).dtype).encode() for x in jax.tree.leaves(optix_state)}
    for leaf in jax.tree.leaves(optax_state):
        assert raw(leaf).tobytes() + str(raw(leaf).dtype).encode() in ours


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_live_optax_state_continues_in_optix(name, x64):
    run_optax, optix_tx, params, optax_state = optax_run(name)
    optix_state = from_optax(optax_state, optix_tx, params)
    assert jax.tree.structure(optix_state) == jax.tree.structure(optix_tx.init(params))
    assert_every_optax_leaf_copied(optax_state, optix_state)
    counts = optix.tree.get_all_with_path(optix_state, "count")
    assert len(counts) == len(optax.tree.get_all_with_path(optax_state, "count"))
    assert all(int(c) == STOP for _, c in counts)
    assert_continues_like_optax(name, run_optax, optix_tx, params, optax_state, optix_state)


@pytest.mark.parametrize("source", ["orbax", "msgpack"])
def test_an_optax_checkpoint_continues_in_optix(source, tmp_path, x64):
    name = "clip_adamw_schedule"
    run_optax, optix_tx, params, optax_state = optax_run(name)
    target = jax.eval_shape(CASES[name](optax).init, params)
    if source == "orbax":
        save_state(tmp_path / "optax", optax_state)
        restored = restore_state(tmp_path / "optax", target)
    else:
        restored = from_bytes(target, to_bytes(optax_state))
    optix_state = from_optax(restored, optix_tx, params)
    assert_continues_like_optax(name, run_optax, optix_tx, params, optax_state, optix_state)


def test_an_optax_checkpoint_restores_straight_into_optix_s_target(tmp_path, x64):
    run_optax, optix_tx, params, optax_state = optax_run("clip_adamw_schedule")
    save_state(tmp_path / "optax", optax_state)
    target = optix.serialization.abstract_state(optix_tx, params)
    restored = restore_state(tmp_path / "optax", target)
    assert_continues_like_optax(
        "clip_adamw_schedule", run_optax, optix_tx, params, optax_state, restored
    )


def test_a_changed_chain_is_migrate_state_s_job(x64):
    """A constant learning rate (EmptyState) that became a schedule (a count)."""
    params = f64_params()
    optax_state = optax.adam(0.1).init(params)
    with pytest.raises(ValueError) as info:
        from_optax(optax_state, optix.adam(SCHEDULE), params)
    message = str(info.value)
    assert "(migrate_state moves a state into a changed optimizer)" in message
    fresh = "in the optix state, not in the Optax state (1):\n    [1].ScaleByScheduleState.count"
    assert fresh in message
    _, report = optix.serialization.migrate_state(optax_state, optix.adam(SCHEDULE), params)
    assert report.counted == {
        "[1].ScaleByScheduleState.count": "0 (from [0].ScaleByAdamState.count)"
    }


def test_another_optimizer_is_rejected_naming_both_sides(x64):
    params = f64_params()
    with pytest.raises(ValueError) as info:
        from_optax(optax.sgd(0.1, momentum=0.9).init(params), optix.adam(0.1), params)
    message = str(info.value)
    assert "same optimizer, with the same arguments and parameters?" in message
    assert "in the optix state, not in the Optax state (7):" in message
    assert "[0].ScaleByAdamState.mu['dense']['kernel']" in message
    assert "in the Optax state, not in the optix state (3):" in message
    assert "[0].TraceState.trace['dense']['kernel']" in message
