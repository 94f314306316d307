"""AdaGrad against Optax (eps inside the root) and torch.optim.Adagrad (eps outside)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from optix.core import chain
from optix.optimizers.adagrad import ScaleByRssState, adagrad, scale_by_rss
from optix.transforms.scaling import scale_by_learning_rate
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, torch_reference
from tests.registry import ENTRIES

OPTAX_CASES = {
    "default": {},
    "init0_eps": {"initial_accumulator_value": 0.0, "eps": 0.5},
    "init1_eps0": {"initial_accumulator_value": 1.0, "eps": 0.0},
}

# optix keyword arguments, torch.optim.Adagrad keyword arguments.
TORCH_CASES = {
    "torch_defaults": (
        {"initial_accumulator_value": 0.0, "eps": 1e-10},
        {},
    ),
    "init_eps": (
        {"initial_accumulator_value": 0.3, "eps": 0.5},
        {"initial_accumulator_value": 0.3, "eps": 0.5},
    ),
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", OPTAX_CASES.values(), ids=OPTAX_CASES.keys())
def test_adagrad_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: adagrad(lr, **kwargs),
        optax_reference(lambda lr: optax.adagrad(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES["adagrad"].f32_rtol,
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
def test_scale_by_rss_matches_optax_in_a_chain(dtype, schedule):
    compare(
        lambda lr: chain(scale_by_rss(0.2, 1e-3), scale_by_learning_rate(lr)),
        optax_reference(
            lambda lr: optax.chain(optax.scale_by_rss(0.2, 1e-3), optax.scale_by_learning_rate(lr))
        ),
        dtype,
        schedule,
        ENTRIES["adagrad"].f32_rtol,
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("kwargs", "torch_kwargs"), TORCH_CASES.values(), ids=TORCH_CASES.keys())
def test_eps_outside_the_root_matches_torch(kwargs, torch_kwargs, dtype, schedule):
    compare(
        lambda lr: adagrad(lr, eps_in_sqrt=False, **kwargs),
        torch_reference(lambda params, lr: torch.optim.Adagrad(params, lr=lr, **torch_kwargs)),
        dtype,
        schedule,
        ENTRIES["adagrad"].f32_rtol,
    )


def test_eps_placement_changes_the_numbers():
    g = {"w": jnp.asarray([3.0, 4.0])}
    inside, _ = scale_by_rss(0.0, 1.0).update(g, scale_by_rss(0.0, 1.0).init(g))
    outside_tx = scale_by_rss(0.0, 1.0, eps_in_sqrt=False)
    outside, _ = outside_tx.update(g, outside_tx.init(g))
    np.testing.assert_allclose(inside["w"], [3 / np.sqrt(10.0), 4 / np.sqrt(17.0)], rtol=1e-6)
    np.testing.assert_allclose(outside["w"], [3 / 4.0, 4 / 5.0], rtol=1e-6)


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
def test_all_zero_history_gives_zero_not_nan(eps_in_sqrt):
    tx = scale_by_rss(0.0, 0.0, eps_in_sqrt=eps_in_sqrt)
    g = {"w": jnp.asarray([0.0, 2.0])}
    updates, state = tx.update(g, tx.init(g))
    np.testing.assert_array_equal(updates["w"], [0.0, 1.0])
    assert isinstance(state, ScaleByRssState)
    np.testing.assert_array_equal(state.sum_of_squares["w"], [0.0, 4.0])


def test_state_starts_at_the_initial_accumulator():
    state = scale_by_rss(0.25).init({"w": jnp.zeros(3, jnp.bfloat16)})
    assert state.sum_of_squares["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(state.sum_of_squares["w"], [0.25] * 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: adagrad(float("nan")),
            "adagrad: learning_rate must be finite",
        ),
        (
            lambda: adagrad(0.1, initial_accumulator_value=-0.1),
            "adagrad: initial_accumulator_value must be finite and >= 0, "
            "got initial_accumulator_value=-0.1",
        ),
        (
            lambda: scale_by_rss(eps=float("nan")),
            "scale_by_rss: eps must be finite and >= 0, got eps=nan",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
