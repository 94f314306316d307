"""Adafactor against Optax: whole trajectories, factored and unfactored, float64 and float32.

Optax computes its default decay schedule 1 - t**-0.8 in float32 even under x64, so
in float64 optix (which uses the default float dtype) and ``optax.adafactor`` agree to
``OPTAX_F32_DECAY_RTOL`` only. The float64 comparisons at 1e-10 rebuild Optax's chain
from Optax's own transforms with a float64 decay schedule.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.optimizers.adafactor import FactoredState, adafactor, scale_by_factored_rms
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference
from tests.registry import ENTRIES

# Measured: 1.0e-6 (float32 decay rates inside Optax's float64 runs).
OPTAX_F32_DECAY_RTOL = 2e-6

CASES = {
    "defaults_unfactored": {},
    "factored": {"min_dim_size_to_factor": 3},
    "factored_momentum_decay": {
        "min_dim_size_to_factor": 3,
        "momentum": 0.9,
        "weight_decay_rate": 0.01,
    },
    "unfactored_momentum_decay_mask": {
        "factored": False,
        "momentum": 0.5,
        "weight_decay_rate": 0.1,
        "weight_decay_mask": {"w": True, "b": False, "s": True},
    },
    "no_clipping_no_param_scale": {
        "min_dim_size_to_factor": 3,
        "clipping_threshold": None,
        "multiply_by_parameter_scale": False,
    },
    "decay_rate_eps_clipping": {
        "min_dim_size_to_factor": 3,
        "decay_rate": 0.5,
        "eps": 1e-3,
        "clipping_threshold": 0.5,
    },
}


def decay_f64(step, exponent):
    """Optax's default decay schedule, computed in float64."""
    return 1.0 - jnp.asarray(step + 1, jnp.float64) ** -exponent


def optax_chain_f64_decay(
    learning_rate,
    min_dim_size_to_factor=128,
    decay_rate=0.8,
    multiply_by_parameter_scale=True,
    clipping_threshold=1.0,
    momentum=None,
    weight_decay_rate=None,
    eps=1e-30,
    factored=True,
    weight_decay_mask=None,
):
    """``optax.adafactor``'s chain, from Optax's transforms, with ``decay_f64``."""
    steps = [
        optax.scale_by_factored_rms(
            factored, decay_rate, 0, min_dim_size_to_factor, eps, decay_rate_fn=decay_f64
        )
    ]
    if clipping_threshold is not None:
        steps.append(optax.clip_by_block_rms(clipping_threshold))
    steps.append(optax.scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        steps.append(optax.scale_by_param_block_rms())
    if momentum is not None:
        steps.append(optax.ema(momentum, debias=False, accumulator_dtype=jnp.float64))
    if weight_decay_rate is not None:
        steps.append(optax.add_decayed_weights(weight_decay_rate, weight_decay_mask))
    steps.append(optax.scale(-1))
    return optax.chain(*steps)


@SCHEDULES
@pytest.mark.parametrize("kwargs", CASES.values(), ids=CASES)
def test_float64_matches_optax_chain_with_float64_decay(kwargs, schedule):
    compare(
        lambda lr: adafactor(lr, dtype_momentum=jnp.float64, **kwargs),
        optax_reference(lambda lr: optax_chain_f64_decay(lr, **kwargs)),
        np.float64,
        schedule,
        ENTRIES["adafactor"].f32_rtol,
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", CASES.values(), ids=CASES)
def test_matches_optax_adafactor(kwargs, dtype, schedule):
    compare(
        lambda lr: adafactor(lr, **kwargs),
        optax_reference(lambda lr: optax.adafactor(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["adafactor"].f32_rtol,
        f64_rtol=OPTAX_F32_DECAY_RTOL,
        same_dtype_reference=False,
    )


def run_transform(tx, params, steps, standard=False, count=0):
    """Updates of ``tx`` over ``steps`` steps, from a state whose count is ``count``."""
    with jax.numpy_dtype_promotion("standard" if standard else "strict"):
        state = tx.init(params)._replace(count=jnp.asarray(count, jnp.int32))
        out = []
        for t in range(steps):
            grads = jax.tree.map(lambda p, t=t: jnp.sin(p * (t + 2.0)) + 0.1 * t, params)
            updates, state = tx.update(grads, state, params)
            out.append(updates)
        return out, state


@pytest.mark.parametrize(
    "shape", [(2, 6, 3), (6, 2, 3), (3, 5, 7, 2), (4, 4), (4, 4, 1)], ids=lambda s: str(s)
)
def test_higher_rank_leaves_factor_like_optax(shape, x64):
    """The largest two dims are factored wherever they are; ties go to the earlier dim."""
    params = {"x": jnp.asarray(np.random.default_rng(0).normal(size=shape))}
    ours, our_state = run_transform(scale_by_factored_rms(min_dim_size_to_factor=2), params, 5)
    theirs, their_state = run_transform(
        optax.scale_by_factored_rms(min_dim_size_to_factor=2, decay_rate_fn=decay_f64),
        params,
        5,
        standard=True,
    )
    for field in FactoredState._fields[1:]:
        a, b = getattr(our_state, field)["x"], getattr(their_state, field)["x"]
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a["x"], b["x"], rtol=1e-12)
    assert our_state.v["x"].shape == (1,)


def test_step_offset_and_custom_decay_schedule_match_optax(x64):
    """A capped schedule (Zhai et al.) and a restart offset, from a state already at step 7."""
    capped = lambda step, rate: jnp.minimum(decay_f64(step, rate), 0.6)
    params = {"w": jnp.asarray(np.linspace(-1.0, 1.0, 12).reshape(3, 4)), "b": jnp.ones(4)}
    ours, _ = run_transform(
        scale_by_factored_rms(True, 0.8, 5, 3, 1e-30, capped), params, 4, count=7
    )
    theirs, _ = run_transform(
        optax.scale_by_factored_rms(True, 0.8, 5, 3, 1e-30, capped), params, 4, True, count=7
    )
    for a, b in zip(ours, theirs, strict=True):
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-12), a, b)


def test_no_learning_rate_leaves_the_step_at_its_relative_size():
    params = {"w": jnp.full((4,), 2.0)}
    tx = adafactor(None)
    updates, _ = tx.update({"w": jnp.full((4,), 3.0)}, tx.init(params), params)
    # First step: g / sqrt(g**2) = 1, times rms(p) = 2, descending.
    np.testing.assert_allclose(updates["w"], -2.0, rtol=1e-6)


def test_state_layout_matches_optax():
    params = {"w": jnp.zeros((3, 4)), "b": jnp.zeros(4)}
    ours = scale_by_factored_rms(min_dim_size_to_factor=3).init(params)
    theirs = optax.scale_by_factored_rms(min_dim_size_to_factor=3).init(params)
    assert FactoredState._fields == optax.FactoredState._fields
    assert jax.tree.map(jnp.shape, ours) == jax.tree.map(jnp.shape, tuple(theirs))


def parameters(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_signatures_match_optax():
    assert parameters(adafactor) == parameters(optax.adafactor)
    ours, theirs = parameters(scale_by_factored_rms), parameters(optax.scale_by_factored_rms)
    assert ours[:-1] == theirs[:-1]
    # The default decay schedule is optix's own function with Optax's name and formula.
    assert ours[-1][0] == theirs[-1][0] == "decay_rate_fn"
    assert ours[-1][2].__name__ == theirs[-1][2].__name__
    for step in [0, 1, 10]:
        np.testing.assert_allclose(ours[-1][2](step, 0.8), theirs[-1][2](step, 0.8), rtol=1e-7)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: adafactor(float("nan")), "adafactor: learning_rate must be finite"),
        (
            lambda: adafactor(0.1, clipping_threshold=-1.0),
            "adafactor: clipping_threshold must be >= 0, got clipping_threshold=-1.0",
        ),
        (lambda: adafactor(0.1, momentum=1.5), "adafactor: momentum must be in (-1, 1]"),
        (lambda: adafactor(0.1, weight_decay_rate=-1.0), "adafactor: weight_decay_rate must be"),
        (lambda: adafactor(0.1, decay_rate=-0.8), "adafactor: decay_rate must be finite and >= 0"),
        (
            lambda: scale_by_factored_rms(epsilon=-1.0),
            "scale_by_factored_rms: epsilon must be finite and >= 0",
        ),
        (
            lambda: scale_by_factored_rms(min_dim_size_to_factor=-1),
            "scale_by_factored_rms: min_dim_size_to_factor must be >= 0",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_non_callable_decay_rate_fn_is_a_type_error():
    with pytest.raises(TypeError, match="scale_by_factored_rms: decay_rate_fn must be callable"):
        scale_by_factored_rms(decay_rate_fn=0.8)
