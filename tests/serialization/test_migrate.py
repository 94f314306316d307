"""Moving a checkpointed state into a changed optimizer's state, by names and paths."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.serialization import MigrationError, migrate_state
from tests.serialization.common import assert_identical, make_grads, make_params

SCHEDULE = optix.linear_schedule(0.1, 0.01, 10)
STEPS = 3


def trained_adamw(params=None, learning_rate=0.1):
    tx = optix.adamw(learning_rate, weight_decay=0.1)
    params = make_params() if params is None else params
    state = tx.init(params)
    for t in range(STEPS):
        updates, state = tx.update(make_grads(params, t), state, params)
        params = optix.apply_updates(params, updates)
    return params, state


def adam_part(state):
    return optix.tree.get(state, "ScaleByAdamState")


def test_adding_clipping_and_a_schedule_keeps_moments_and_counts():
    """A constant learning rate (EmptyState, as in Optax) becomes a schedule: its count
    continues from the checkpoint's step."""
    params, old = trained_adamw()
    new_tx = optix.chain(optix.clip_by_global_norm(1.0), optix.adamw(SCHEDULE, weight_decay=0.1))
    new, report = migrate_state(old, new_tx, params, strict=True)
    assert_identical(adam_part(new), old[0])
    assert_identical(new[1][1], old[1])
    assert isinstance(old[2], optix.EmptyState) and int(new[1][2].count) == STEPS
    assert report.fresh == report.problems == report.dropped == ()
    assert report.copied["[1][0].ScaleByAdamState.mu['dense']['kernel']"] == (
        "[0].ScaleByAdamState.mu['dense']['kernel']"
    )
    assert len(report.copied) == 7
    assert report.counted == {
        "[1][2].ScaleByScheduleState.count": "3 (from [1][0].ScaleByAdamState.count)"
    }
    # The schedule picks up at the checkpoint's step.
    updates, _ = new_tx.update(make_grads(params, STEPS), new, params)
    expected, _ = optix.adamw(SCHEDULE(STEPS), weight_decay=0.1).update(
        optix.clip_by_global_norm(1.0).update(make_grads(params, STEPS), optix.EmptyState())[0],
        old,
        params,
    )
    jax.tree.map(np.testing.assert_array_equal, updates, expected)


def test_wrapping_in_inject_hyperparams_continues_its_counts():
    params, old = trained_adamw()
    new_tx = optix.inject_hyperparams(optix.adamw)(learning_rate=SCHEDULE, weight_decay=0.1)
    # The hyperparameters are new: strict mode accepts them only when asked to.
    with pytest.raises(MigrationError, match=r"InjectStatefulHyperparamsState.hyperparams\['b1'\]"):
        migrate_state(old, new_tx, params, strict=True)
    fresh_hyperparams = optix.tree.inside("hyperparams")
    new, report = migrate_state(old, new_tx, params, strict=True, keep_fresh=fresh_hyperparams)
    assert_identical(new.inner_state, old)
    assert int(new.count) == STEPS
    assert int(new.hyperparams_states["learning_rate"].count) == STEPS
    assert report.counted["InjectStatefulHyperparamsState.count"] == (
        "3 (from InjectStatefulHyperparamsState.inner_state[0].ScaleByAdamState.count)"
    )
    # Continuing follows the same schedule as adamw(SCHEDULE) whose count was copied, bit
    # for bit (under jit; a restarted count would give SCHEDULE(0) = 0.1, not 0.073).
    plain_tx = optix.adamw(SCHEDULE, weight_decay=0.1)
    plain, _ = migrate_state(old, plain_tx, params, strict=True)
    for t in range(STEPS, STEPS + 3):
        grads = make_grads(params, t)
        updates, new = jax.jit(new_tx.update)(grads, new, params)
        expected, plain = jax.jit(plain_tx.update)(grads, plain, params)
        jax.tree.map(np.testing.assert_array_equal, updates, expected)
        params = optix.apply_updates(params, updates)


def test_counts_can_restart_or_be_given():
    params, old = trained_adamw()
    new_tx = optix.inject_hyperparams(optix.adamw)(learning_rate=SCHEDULE)
    restarted, report = migrate_state(old, new_tx, params, count=None)
    assert int(restarted.count) == 0 and "InjectStatefulHyperparamsState.count" in report.fresh
    with pytest.raises(MigrationError, match=r"InjectStatefulHyperparamsState\.count"):
        migrate_state(old, new_tx, params, count=None, strict=True)
    given, _ = migrate_state(old, new_tx, params, count=10)
    assert int(given.count) == 10 and int(given.inner_state[0].count) == STEPS


def test_removing_a_wrapper_drops_its_state():
    tx = optix.apply_if_finite(optix.adamw(0.1, weight_decay=0.1), 3)
    params = make_params()
    state = tx.init(params)
    _, state = tx.update(make_grads(params, 0), state, params)
    new, report = migrate_state(state, optix.adamw(0.1, weight_decay=0.1), params, strict=True)
    assert_identical(new, state.inner_state)
    assert report.dropped == (
        "ApplyIfFiniteState.notfinite_count",
        "ApplyIfFiniteState.last_finite",
        "ApplyIfFiniteState.total_notfinite",
    )


def test_masking_keeps_the_unmasked_moments_and_drops_the_rest():
    params, old = trained_adamw()
    mask = {"dense": {"kernel": True, "bias": False}, "scale": True}
    new, report = migrate_state(old, optix.masked(optix.adamw(0.1, weight_decay=0.1), mask), params)
    np.testing.assert_array_equal(
        new.inner_state[0].mu["dense"]["kernel"], old[0].mu["dense"]["kernel"]
    )
    assert report.dropped == (
        "[0].ScaleByAdamState.mu['dense']['bias']",
        "[0].ScaleByAdamState.nu['dense']['bias']",
    )


def test_new_and_reshaped_params_get_fresh_state():
    params, old = trained_adamw()
    grown = {**params, "head": jnp.ones(2), "dense": {**params["dense"], "bias": jnp.ones(5)}}
    new, report = migrate_state(old, optix.adamw(0.1, weight_decay=0.1), grown)
    assert report.fresh == ("[0].ScaleByAdamState.mu['head']", "[0].ScaleByAdamState.nu['head']")
    assert report.problems == (
        "[0].ScaleByAdamState.mu['dense']['bias']: expected float32[5], found float32[4] at "
        "[0].ScaleByAdamState.mu['dense']['bias']",
        "[0].ScaleByAdamState.nu['dense']['bias']: expected float32[5], found float32[4] at "
        "[0].ScaleByAdamState.nu['dense']['bias']",
    )
    np.testing.assert_array_equal(new[0].mu["head"], np.zeros(2))
    np.testing.assert_array_equal(new[0].mu["dense"]["kernel"], old[0].mu["dense"]["kernel"])
    with pytest.raises(MigrationError, match=r"problems \(left fresh\) \(2\)"):
        migrate_state(old, optix.adamw(0.1, weight_decay=0.1), grown, strict=True)


def test_moments_change_dtype_within_their_kind():
    params, old = trained_adamw()
    new, report = migrate_state(old, optix.adamw(0.1, mu_dtype=jnp.bfloat16), params)
    assert new[0].mu["scale"].dtype == jnp.bfloat16
    assert new[0].mu["scale"] == old[0].mu["scale"].astype(jnp.bfloat16)
    assert report.cast["[0].ScaleByAdamState.mu['scale']"] == "float32 -> bfloat16"


def test_equally_good_matches_are_reported_not_guessed():
    params = make_params()
    both = optix.named_chain(("a", optix.adam(0.1)), ("b", optix.adam(0.2)))
    old = both.init(params)
    _, report = migrate_state(old, optix.adam(0.1), params)
    assert report.copied == {}
    assert report.problems[0] == (
        "[0].ScaleByAdamState.count: matches 2 places in the old state equally well: "
        "['a'][0].ScaleByAdamState.count; ['b'][0].ScaleByAdamState.count"
    )
    with pytest.raises(MigrationError, match="equally well"):
        migrate_state(old, optix.adam(0.1), params, strict=True)


def test_uneven_repeats_are_reported():
    params, old = trained_adamw()
    twice = optix.chain(optix.adamw(0.1), optix.adamw(0.1))
    _, report = migrate_state(old, twice, params)
    assert report.copied == {}
    assert (
        "[0][0].ScaleByAdamState.count: 2 leaves are named like this in the new state and 1 "
        "in the old one ([0].ScaleByAdamState.count)"
    ) in report.problems


def test_a_second_schedule_starts_from_the_step_and_leaves_the_first_alone():
    params, old = trained_adamw(learning_rate=SCHEDULE)
    new_tx = optix.chain(
        optix.adamw(SCHEDULE, weight_decay=0.1),
        optix.scale_by_schedule(optix.linear_schedule(1.0, 0.1, 10)),
    )
    new, report = migrate_state(old, new_tx, params, strict=True)
    assert_identical(new[0], old)
    assert report.copied["[0][2].ScaleByScheduleState.count"] == "[2].ScaleByScheduleState.count"
    assert int(new[1].count) == STEPS and "[1].ScaleByScheduleState.count" in report.counted


def test_repeats_pair_in_order():
    params = make_params()
    old_tx = optix.chain(optix.adam(0.1), optix.adam(0.2))
    old = old_tx.init(params)
    _, old = old_tx.update(make_grads(params, 0), old, params)
    old = optix.tree.set(old, optix.tree.inside(1), count=jnp.asarray(5, jnp.int32))
    new, _ = migrate_state(old, optix.chain(optix.clip(1.0), old_tx), params, strict=True)
    assert_identical(new[1], old)


def test_keep_fresh_takes_the_new_values():
    params = make_params()
    old_tx = optix.inject_hyperparams(optix.adam)(learning_rate=0.1)
    new_tx = optix.inject_hyperparams(optix.adam)(learning_rate=0.5)
    old = old_tx.init(params)
    kept, _ = migrate_state(old, new_tx, params)
    assert float(kept.hyperparams["learning_rate"]) == pytest.approx(0.1)
    new, report = migrate_state(
        old, new_tx, params, strict=True, keep_fresh=optix.tree.inside("hyperparams")
    )
    assert float(new.hyperparams["learning_rate"]) == 0.5
    assert "InjectStatefulHyperparamsState.hyperparams['learning_rate']" in report.reset


def test_renamed_state_classes_are_followed():
    class OldAdamState(optix.ScaleByAdamState):
        pass

    params, old = trained_adamw()
    renamed = (OldAdamState(*old[0]), *old[1:])
    _, report = migrate_state(renamed, optix.adamw(0.1), params)
    assert len(report.fresh) == 6 and report.counted == {}
    assert report.problems == (
        "[0].ScaleByAdamState.count: cannot continue the count: the old state holds no "
        "count to continue from; pass count=<steps taken>",
    )
    new, _ = migrate_state(
        renamed, optix.adamw(0.1), params, strict=True, renames={"OldAdamState": "ScaleByAdamState"}
    )
    assert_identical(new, old)


def test_a_state_template_works_in_place_of_the_transformation():
    params, old = trained_adamw()
    tx = optix.chain(optix.clip(1.0), optix.adamw(0.1))
    from_template, _ = migrate_state(old, tx.init(params))
    from_tx, _ = migrate_state(old, tx, params)
    assert_identical(from_template, from_tx)
    with pytest.raises(TypeError, match=r"migrate_state: pass params="):
        migrate_state(old, tx)


def test_the_report_is_logged(caplog):
    params, old = trained_adamw()
    with caplog.at_level(logging.INFO, logger="optix.serialization"):
        migrate_state(old, optix.chain(optix.clip(1.0), optix.adamw(0.1)), params)
    assert "migrate_state: 7 leaves copied, 0 counts set, 0 fresh" in caplog.text
