"""MADGRAD against the official madgrad.MADGRAD and optax.contrib.madgrad."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from madgrad import MADGRAD

from optix.optimizers.madgrad import madgrad, scale_by_madgrad
from tests.optax_layout import assert_same_layout
from tests.reference import DTYPES, compare, optax_reference, torch_reference
from tests.registry.adam_variants import F32_RTOL

F32 = F32_RTOL["madgrad"]
# With momentum 0 each step is the difference of two growing ratios s / rms, whose
# float32 rounding shows in the params (measured 4.8e-5).
F32_MOMENTUM_0 = 6e-5


def f32_rtol(kwargs):
    return F32_MOMENTUM_0 if kwargs.get("momentum") == 0 else F32


CASES = {
    "default": {},
    "momentum_0": {"momentum": 0.0},
    "l2": {"momentum": 0.5, "weight_decay": 0.3},
    "decoupled": {"weight_decay": 0.3, "decouple_decay": True},
    "decoupled_momentum_0": {"momentum": 0.0, "weight_decay": 0.3, "decouple_decay": True},
    "eps_0": {"eps": 0.0},
}


@DTYPES
@pytest.mark.parametrize("kwargs", CASES.values(), ids=CASES)
def test_trajectory_matches_the_official_madgrad(kwargs, dtype):
    compare(
        lambda lr: madgrad(lr, **kwargs),
        torch_reference(lambda params, lr: MADGRAD(params, lr=lr, **kwargs)),
        dtype,
        kwargs == {},
        f32_rtol(kwargs),
    )


@pytest.fixture
def optax_sqrt_in_float64(monkeypatch):
    """Optax forms ``sqrt(count + 1)`` from the int32 count, which JAX does in float32
    even under x64 (1.7e-7 off in float64 runs); give its module a float64 sqrt."""
    import optax.contrib._madgrad as module

    names = {name: getattr(jnp, name) for name in dir(jnp) if not name.startswith("__")}
    names["sqrt"] = lambda x: jnp.sqrt(jnp.asarray(x, jnp.result_type(float)))
    monkeypatch.setattr(module, "jnp", types.SimpleNamespace(**names))


@DTYPES
@pytest.mark.parametrize(
    "kwargs", [{}, {"momentum": 0.0, "weight_decay": 0.3}], ids=["default", "momentum_0_l2"]
)
def test_trajectory_matches_optax_madgrad(kwargs, dtype, optax_sqrt_in_float64):
    compare(
        lambda lr: madgrad(lr, **kwargs),
        optax_reference(lambda lr: optax.contrib.madgrad(lr, **kwargs)),
        dtype,
        True,
        f32_rtol(kwargs),
        same_dtype_reference=False,
    )


def test_zero_learning_rate_leaves_the_params_alone():
    """The official code adds eps only to a nonzero learning rate (Optax's always adds it)."""
    tx = scale_by_madgrad(0.0)
    params = jnp.ones(3)
    updates, _ = tx.update(jnp.ones(3), tx.init(params), params)
    np.testing.assert_array_equal(updates, np.zeros(3))


def test_eps_0_takes_an_empty_sum_as_infinite_rms():
    """Where every gradient so far is 0, s / rms is 0, not 0 / 0 (the official momentum-0
    path gives NaN there)."""
    for momentum in (0.0, 0.9):
        tx = scale_by_madgrad(0.1, momentum=momentum, eps=0.0)
        params = jnp.ones(2)
        state = tx.init(params)
        for g in ([0.0, 1.0], [0.0, 2.0]):
            updates, state = tx.update(jnp.asarray(g), state, params)
            params = params + updates
            assert updates[0] == 0.0 and updates[1] < 0.0


def test_update_needs_params():
    tx = madgrad(0.1)
    with pytest.raises(ValueError, match="needs the current params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


def _state(tx, params):
    def run():
        return tx.update(params, tx.init(params), params)[1]

    with jax.numpy_dtype_promotion("standard"):  # Optax's code mixes dtypes
        return jax.eval_shape(run)


@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.1, "momentum": 0.0}])
def test_state_layout_is_optax_s(kwargs):
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    assert_same_layout(
        _state(madgrad(0.1, **kwargs), params), _state(optax.contrib.madgrad(0.1, **kwargs), params)
    )
    decoupled = madgrad(0.1, weight_decay=0.1, decouple_decay=True)
    assert_same_layout(_state(decoupled, params), _state(optax.contrib.madgrad(0.1), params))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: madgrad(0.1, momentum=1.0), ValueError, "madgrad: momentum must be in [0, 1)"),
        (lambda: madgrad(0.1, weight_decay=-1.0), ValueError, "madgrad: weight_decay must be"),
        (lambda: madgrad(0.1, eps=-1.0), ValueError, "madgrad: eps must be finite and >= 0"),
        (lambda: madgrad("0.1"), TypeError, "learning_rate must be"),
        (
            lambda: madgrad(0.1, weight_decay=lambda c: 0.1, decouple_decay=True),
            TypeError,
            "madgrad: weight_decay must be a number or an array",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
