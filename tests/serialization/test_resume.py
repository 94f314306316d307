"""Exact resume: stop at step k, checkpoint, restore into abstract_state, continue.

For every optimizer in the registry and for the wrappers whose state carries the run's
position (schedules, inject_hyperparams, MultiSteps, apply_if_finite, Lookahead), the
resumed run must be bit-identical to the uninterrupted one, through Flax's msgpack and
through Orbax. Each case compiles one step and reuses it for all three continuations.
"""

import jax
import jax.numpy as jnp
import pytest

import optix
from optix.serialization import (
    abstract_state,
    as_abstract,
    from_bytes,
    restore_state,
    save_state,
    to_bytes,
)
from optix.transforms.lookahead import LookaheadParams, lookahead_in_state
from tests.registry import ENTRIES
from tests.serialization.common import assert_identical, make_grads, make_params

STOP, RESUME = 3, 2  # steps before the checkpoint, steps after it


def resume_all_ways(tx, update, params, grads_at, tmp_path, stop=STOP):
    """Run ``stop`` steps, checkpoint both ways, and check all three continuations agree.

    ``update(grads, state, params)`` is the step; ``grads_at(params, t)`` the gradients.
    """

    @jax.jit
    def step(params, state, grads):
        updates, state = update(grads, state, params)
        return optix.apply_updates(params, updates), state

    # Everything lives on one explicit device, so the restored trees (placed on it through
    # the target's sharding) hit the step's compilation cache.
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    params = jax.device_put(params, device)
    state = jax.device_put(tx.init(params), device)
    for t in range(stop):
        params, state = step(params, state, grads_at(params, t))
    checkpoint = {"params": params, "opt_state": state, "step": jnp.asarray(stop, jnp.int32)}
    data = to_bytes(checkpoint)
    save_state(tmp_path / "ckpt", checkpoint)

    target = {
        "params": as_abstract(params),
        "opt_state": abstract_state(tx, params, shardings=device),
        "step": jax.ShapeDtypeStruct((), jnp.int32, sharding=device),
    }
    runs = [checkpoint, from_bytes(target, data), restore_state(tmp_path / "ckpt", target)]
    for restored in runs[1:]:
        assert_identical(restored, checkpoint)
    for t in range(stop, stop + RESUME):
        runs = [
            {"params": p, "opt_state": s, "step": run["step"] + 1}
            for run in runs
            for p, s in [step(run["params"], run["opt_state"], grads_at(run["params"], t))]
        ]
        for resumed in runs[1:]:
            assert_identical(resumed, runs[0])


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_registry_optimizer_resumes_bit_identically(name, tmp_path):
    entry = ENTRIES[name]
    resume_all_ways(entry.make(), entry.updater(), make_params(), make_grads, tmp_path)


def plain(tx):
    return lambda grads, state, params: tx.update(grads, state, params)


SCHEDULE = optix.warmup_cosine_decay_schedule(0.0, 0.1, 2, 10)


def nan_at(step):
    """Gradients with a NaN at ``step``, so apply_if_finite skips it."""

    def grads_at(params, t):
        grads = make_grads(params, t)
        return jax.tree.map(lambda g: g * jnp.nan, grads) if t == step else grads

    return grads_at


WRAPPERS = {
    "schedule": (optix.adamw(SCHEDULE, weight_decay=0.1), None, 3),
    "inject_hyperparams": (
        optix.inject_hyperparams(optix.adamw)(learning_rate=SCHEDULE, weight_decay=0.1),
        None,
        3,
    ),
    # Stopped inside an accumulation window (4 = one inner step + 1 micro-step).
    "MultiSteps": (optix.MultiSteps(optix.adam(0.1), every_k_schedule=3), None, 4),
    "apply_if_finite": (optix.apply_if_finite(optix.adam(0.1), 2), nan_at(2), 3),
    "masked_clip": (
        optix.chain(
            optix.clip_by_global_norm(1.0),
            optix.masked(
                optix.adamw(0.1), {"dense": {"kernel": True, "bias": False}, "scale": True}
            ),
        ),
        None,
        3,
    ),
}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrappers_resume_bit_identically(name, tmp_path):
    tx, grads_at, stop = WRAPPERS[name]
    grads_at = grads_at or make_grads
    resume_all_ways(tx, plain(tx), make_params(), grads_at, tmp_path, stop=stop)


@pytest.mark.parametrize("pullback", ["none", "pullback"])
def test_lookahead_resumes_bit_identically_between_syncs(pullback, tmp_path):
    tx = optix.lookahead(optix.sgd(0.1, momentum=0.9), 3, 0.5, pullback_momentum=pullback)
    params = LookaheadParams.init_synced(make_params())
    resume_all_ways(tx, plain(tx), params, lambda p, t: make_grads(p.fast, t), tmp_path, stop=4)


def test_lookahead_in_state_resumes_bit_identically_between_syncs(tmp_path):
    tx = lookahead_in_state(optix.adam(0.1), 3, 0.5)
    resume_all_ways(tx, plain(tx), make_params(), make_grads, tmp_path, stop=4)


def test_bf16_state_resumes_bit_identically(tmp_path):
    tx = optix.adam(0.1, mu_dtype=jnp.bfloat16)
    params = make_params(jnp.bfloat16)
    assert {x.dtype for x in jax.tree.leaves(tx.init(params))} == {
        jnp.dtype(jnp.bfloat16),
        jnp.dtype(jnp.int32),
    }
    resume_all_ways(tx, plain(tx), params, make_grads, tmp_path)
