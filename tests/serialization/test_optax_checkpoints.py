"""Optax checkpoints restore into optix's ``init`` target, and optix's into Optax's.

For every optimizer both libraries have (found at test time), Optax trains a few steps,
its state goes through ``flax.serialization.to_bytes`` and comes back with
``from_bytes`` into ``optix_tx.init(params)``; optix's next update must equal Optax's
(float64, rtol 1e-10). The same holds the other way round (optix trains, Optax
continues). Orbax checkpoints do the same for a few optimizers. After the same steps,
``optix.tree.get(state, "count")`` gives what ``optax.tree.get`` gives.
"""

from __future__ import annotations

import inspect

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.serialization import restore_state, save_state
from tests.optax_layout import (
    SHARED,
    assert_same_layout,
    builders,
    ignore_optax_deprecations,
    resolve,
)
from tests.serialization.common import raw

STEPS = 3
RTOL = 1e-10
# Optax's adafactor computes its decay rate in float32 even under x64 (measured 6.6e-8),
# its madgrad sqrt(count + 1) from the int32 count, also in float32 (measured 3.1e-10).
RTOLS = {"adafactor": 1e-7, "madgrad": 1e-8}
# Arguments beyond the required ones where the two libraries' numbers differ by design:
# optix's Adan follows the official code, whose b2 coefficient Optax replaces by 1 - b2;
# the two coincide at b2 = 0.5. Optax's adadelta without a learning rate skips the sign
# flip (it ascends); optix reads None as the paper's 1.0.
ARGUMENTS = {"adan": {"b2": 0.5}, "adadelta": {"learning_rate": 1.0}}
# Optax's rprop returns the previous step (zeroed on sign changes) where torch and optix
# return this one; its state is the same, so the next states are compared.
STATE_ONLY = {"rprop"}
# dpsgd's gradients carry a leading per-example axis.
PER_EXAMPLE = {"dpsgd"}


def is_optimizer(qualified: str) -> bool:
    module, _, name = qualified.rpartition(".")
    if module not in ("", "contrib") or name.startswith("scale_by"):
        return False
    parameters = inspect.signature(resolve(optax, qualified)).parameters
    return "learning_rate" in parameters or "max_learning_rate" in parameters


OPTIMIZERS = [q for q in SHARED if is_optimizer(q)]


def make(qualified, library):
    extra = ARGUMENTS.get(qualified.split(".")[-1], {})
    return builders(qualified, **extra)[0](library)


def start():
    return {
        "w": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float64).reshape(3, 4),
        "b": jnp.full((4,), 0.5, jnp.float64),
    }


def value_fn(params):
    """A quadratic with its minimum away from the start; its gradient drives every step."""
    total = jnp.zeros([], jnp.float64)
    for i, p in enumerate(jax.tree.leaves(params)):
        curvature = 1.0 + jnp.arange(p.size, dtype=p.dtype).reshape(p.shape) / p.size
        total = total + 0.5 * jnp.sum(curvature * (p - 0.3 * (i + 1)) ** 2)
    return total


def step_inputs(qualified, params):
    value, grad = jax.value_and_grad(value_fn)(params)
    grads = grad
    if qualified.split(".")[-1] in PER_EXAMPLE:
        grads = jax.tree.map(lambda g: jnp.stack([g, 0.5 * g]), grad)
    extra = {"value": value, "grad": grad, "value_fn": value_fn}
    if qualified.split(".")[-1] == "sophia":  # its Hutchinson estimator reads the objective
        extra["obj_fn"] = value_fn  # (line searches refuse arguments value_fn does not take)
    return grads, extra


def update(qualified, library, tx, params, state):
    promotion = "standard" if library is optax else "strict"  # Optax's code mixes dtypes
    grads, extra = step_inputs(qualified, params)
    with jax.numpy_dtype_promotion(promotion):
        return tx.update(grads, state, params, **extra)


def train(qualified, library, tx, steps=STEPS):
    params = start()
    state = tx.init(params)
    for _ in range(steps):
        updates, state = update(qualified, library, tx, params, state)
        params = library.apply_updates(params, updates)
    return params, state


def has_typed_keys(tree):
    return any(jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) for x in jax.tree.leaves(tree))


def msgpack_round_trip(state, target):
    """Flax's msgpack bytes of ``state`` read into ``target``, put on the device (Flax
    returns NumPy arrays, which both libraries' L-BFGS cannot update in place). msgpack
    has no PRNG key type (Flax refuses typed keys, Optax's included): optix's functions
    write Flax's format with the key data and wrap it again."""
    if has_typed_keys(state):
        return optix.serialization.from_bytes(target, optix.serialization.to_bytes(state))
    restored = flax.serialization.from_bytes(target, flax.serialization.to_bytes(state))
    return jax.device_put(restored)


def assert_close(actual, expected, rtol):
    # Dtypes are not compared: Optax's L-BFGS state turns an int32 count into int64 at
    # its first update under x64 (its init, the restore target, has int32).
    assert_same_layout(actual, expected, dtypes=False)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(raw(a), raw(e), rtol=rtol, atol=rtol * 1e-3)


def assert_same_step(qualified, ours, theirs):
    name = qualified.split(".")[-1]
    rtol = RTOLS.get(name, RTOL)
    (our_updates, our_state), (their_updates, their_state) = ours, theirs
    if name not in STATE_ONLY:
        assert_close(our_updates, their_updates, rtol)
    assert_close(our_state, their_state, rtol)


def assert_bitwise(restored, state):
    for a, e in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        assert a.dtype == e.dtype
        np.testing.assert_array_equal(raw(a), raw(e))


@ignore_optax_deprecations
@pytest.mark.parametrize("qualified", OPTIMIZERS)
def test_an_optax_checkpoint_continues_in_optix_and_back(qualified, x64):
    theirs, ours = make(qualified, optax), make(qualified, optix)

    params, optax_state = train(qualified, optax, theirs)
    restored = msgpack_round_trip(optax_state, ours.init(params))
    assert_bitwise(restored, optax_state)
    assert_same_step(
        qualified,
        update(qualified, optix, ours, params, restored),
        update(qualified, optax, theirs, params, optax_state),
    )

    params, optix_state = train(qualified, optix, ours)
    restored = msgpack_round_trip(optix_state, theirs.init(params))
    assert_bitwise(restored, optix_state)
    assert_same_step(
        qualified,
        update(qualified, optix, ours, params, optix_state),
        update(qualified, optax, theirs, params, restored),
    )

    # After the same steps, both find the same count (or both none, or both refuse).
    ours_count = _count(optix.tree.get, optix_state)
    theirs_count = _count(optax.tree.get, optax_state)
    assert ours_count == theirs_count


def _count(get, state):
    try:
        found = get(state, "count")
    except (KeyError, ValueError) as error:
        return type(error).__name__
    return None if found is None else int(found)


# Schedules are optix's in both (optax.linear_schedule computes in float32 under x64).
ORBAX_CASES = {
    "adamw_schedule_masked": lambda m: m.adamw(
        optix.linear_schedule(0.1, 0.01, 10), weight_decay=0.1, mask={"w": True, "b": False}
    ),
    "rmsprop_centered_momentum": lambda m: m.rmsprop(0.1, centered=True, momentum=0.9),
    "noisy_sgd": lambda m: m.noisy_sgd(0.1, key=jax.random.key(3)),
    "clip_inject_adam": lambda m: m.chain(
        m.clip_by_global_norm(1.0), m.inject_hyperparams(m.adam)(learning_rate=0.1)
    ),
}


def test_orbax_checkpoints_go_both_ways(tmp_path, x64):
    for name, build in ORBAX_CASES.items():
        theirs, ours = build(optax), build(optix)
        params, optax_state = train(name, optax, theirs)
        save_state(tmp_path / f"{name}-optax", optax_state)
        restored = restore_state(tmp_path / f"{name}-optax", jax.eval_shape(ours.init, params))
        assert_bitwise(restored, optax_state)
        assert_same_step(
            name,
            update(name, optix, ours, params, restored),
            update(name, optax, theirs, params, optax_state),
        )

        params, optix_state = train(name, optix, ours)
        save_state(tmp_path / f"{name}-optix", optix_state)
        restored = restore_state(tmp_path / f"{name}-optix", jax.eval_shape(theirs.init, params))
        assert_bitwise(restored, optix_state)
        assert_same_step(
            name,
            update(name, optix, ours, params, optix_state),
            update(name, optax, theirs, params, restored),
        )
