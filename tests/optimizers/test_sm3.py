"""SM3 against Optax: whole trajectories, float64 and float32.

Optax's ``scale_by_sm3`` fails on scalar leaves (it indexes the empty list of their
accumulators); optix keeps one scalar accumulator, which is what Optax computes for
the same value stored as shape (1,). The reference runs Optax on scalars reshaped so.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.optimizers.sm3 import ScaleBySM3State, scale_by_sm3, sm3
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference
from tests.registry import ENTRIES


def scalars_as_vectors(tx):
    """``tx`` applied with every scalar leaf viewed as shape (1,)."""
    as_1d = lambda tree: jax.tree.map(jnp.atleast_1d, tree)

    def update(updates, state, params=None):
        new, state = tx.update(as_1d(updates), state, None if params is None else as_1d(params))
        return jax.tree.map(lambda x, u: x.reshape(u.shape), new, updates), state

    return optax.GradientTransformation(lambda params: tx.init(as_1d(params)), update)


@DTYPES
@pytest.mark.parametrize("momentum", [0.9, 0.5, 0.0])
def test_matches_optax_sm3(momentum, dtype):
    compare(
        lambda lr: sm3(lr, momentum),
        optax_reference(lambda lr: scalars_as_vectors(optax.sm3(lr, momentum))),
        dtype,
        False,
        ENTRIES["sm3"].f32_rtol,
        same_dtype_reference=False,
    )


SCHEDULED_CASES = {
    "alias": (lambda lr: sm3(lr, 0.9), (0.9, 1.0, 1e-8)),
    "average_eps": (
        lambda lr: optix.chain(scale_by_sm3(0.8, 0.9, 1e-3), optix.scale_by_learning_rate(lr)),
        (0.8, 0.9, 1e-3),
    ),
    "no_momentum_no_eps": (
        lambda lr: optix.chain(scale_by_sm3(0.0, 0.5, 0.0), optix.scale_by_learning_rate(lr)),
        (0.0, 0.5, 0.0),
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("make", "optax_args"), SCHEDULED_CASES.values(), ids=SCHEDULED_CASES)
def test_schedules_and_transform_match_optax(make, optax_args, dtype, schedule):
    """Optax's transform with its learning-rate step (its sm3 alias takes no schedule)."""
    compare(
        make,
        optax_reference(
            lambda lr: scalars_as_vectors(
                optax.chain(optax.scale_by_sm3(*optax_args), optax.scale_by_learning_rate(lr))
            )
        ),
        dtype,
        schedule,
        ENTRIES["sm3"].f32_rtol,
        same_dtype_reference=False,
    )


def test_rank_3_leaf_keeps_one_vector_per_dim_like_optax(x64):
    params = {"x": jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 3)))}
    ours, theirs = scale_by_sm3(), optax.scale_by_sm3()
    our_state, their_state = ours.init(params), theirs.init(params)
    for t in range(5):
        grads = jax.tree.map(lambda p, t=t: jnp.cos(p * (t + 1.0)), params)
        our_updates, our_state = ours.update(grads, our_state)
        with jax.numpy_dtype_promotion("standard"):
            their_updates, their_state = theirs.update(grads, their_state)
        np.testing.assert_allclose(our_updates["x"], their_updates["x"], rtol=1e-12)
    assert [m.shape for m in our_state.mu["x"]] == [(2,), (5,), (3,)]
    for a, b in zip(our_state.mu["x"], their_state.mu["x"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_scalar_leaf_keeps_one_scalar_accumulator():
    state = scale_by_sm3().init({"s": jnp.asarray(2.0)})
    assert [m.shape for m in state.mu["s"]] == [()]
    updates, state = scale_by_sm3(b1=0.0).update({"s": jnp.asarray(-3.0)}, state)
    np.testing.assert_allclose(updates["s"], -1.0, rtol=1e-6)
    np.testing.assert_allclose(state.mu["s"][0], 9.0)


def test_signatures_and_state_match_optax():
    for ours, theirs in [(sm3, optax.sm3), (scale_by_sm3, optax.scale_by_sm3)]:
        names = lambda fn: [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
        # Optax's parameters first, then optix's keyword-only state dtypes.
        assert names(ours) == [*names(theirs), ("mu_dtype", None), ("nu_dtype", None)]
    assert ScaleBySM3State._fields == optax.ScaleBySM3State._fields


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sm3(float("nan")), "sm3: learning_rate must be finite"),
        (lambda: sm3(0.1, momentum=1.0), "sm3: momentum must be in (-1, 1), got momentum=1.0"),
        (lambda: scale_by_sm3(b2=1.5), "scale_by_sm3: b2 must be in [0, 1], got b2=1.5"),
        (lambda: scale_by_sm3(eps=-1.0), "scale_by_sm3: eps must be finite and >= 0"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
