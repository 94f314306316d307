"""LAMB against optax.lamb, TF-Addons' LAMB, cybertronai's pytorch-lamb and pytorch_optimizer."""

import jax
import jax.numpy as jnp
import optax
import pytest
from pytorch_optimizer import Lamb

from optix.optimizers.lamb import lamb
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, torch_reference
from tests.references.lamb import run_cybertronai_lamb, run_tfa_lamb
from tests.registry.large_batch_sign import F32_RTOL

F32 = F32_RTOL["lamb"]


def all_but_b(params):
    return {k: k != "b" for k in params}


OPTAX_CASES = [
    {},
    {"weight_decay": 0.1},
    {"b1": 0.8, "b2": 0.9, "eps": 1e-3, "eps_root": 1e-4, "weight_decay": 0.1},
    {"weight_decay": 0.1, "mask": all_but_b},
]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("kwargs", OPTAX_CASES, ids=["default", "wd", "betas_eps", "mask"])
def test_trajectory_matches_optax(kwargs, dtype, schedule):
    compare(
        lambda lr: lamb(lr, **kwargs),
        optax_reference(lambda lr: optax.lamb(lr, **kwargs)),
        dtype,
        schedule,
        F32,
        same_dtype_reference=False,
    )


TFA_CASES = [
    ({}, {}),
    ({"weight_decay": 0.1}, {"weight_decay": 0.1}),
    ({"b1": 0.8, "b2": 0.9, "eps": 1e-3}, {"beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3}),
    # TF-Addons skips the trust ratio wherever it skips the decay.
    (
        {"weight_decay": 0.1, "mask": all_but_b, "trust_ratio_mask": all_but_b},
        {"weight_decay": 0.1, "exclude_from_weight_decay": ("b",)},
    ),
]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(
    ("kwargs", "tfa_kwargs"), TFA_CASES, ids=["default", "wd", "betas", "exclude"]
)
def test_trajectory_matches_tfa_lamb(kwargs, tfa_kwargs, dtype, schedule):
    compare(
        lambda lr: lamb(lr, **kwargs),
        lambda dt, sched: run_tfa_lamb(sched, **tfa_kwargs),
        dtype,
        schedule,
        F32,
        same_dtype_reference=False,
    )


CYBERTRONAI_CASES = [
    ({}, {}),
    ({"weight_decay": 0.1}, {"weight_decay": 0.1}),
    ({"eps": 1e-3, "b1": 0.8, "b2": 0.9}, {"eps": 1e-3, "betas": (0.8, 0.9)}),
    # A clip below the parameters' norms (about 2 to 4) reaches the clipped branch.
    ({"weight_decay": 0.1, "max_param_norm": 2.0}, {"weight_decay": 0.1, "clamp": 2.0}),
]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(
    ("kwargs", "reference_kwargs"), CYBERTRONAI_CASES, ids=["default", "wd", "betas_eps", "clip"]
)
def test_trajectory_matches_cybertronai_lamb(kwargs, reference_kwargs, dtype, schedule):
    options = {"bias_correction": False, "max_param_norm": 10.0, **kwargs}
    compare(
        lambda lr: lamb(lr, **options),
        lambda dt, sched: run_cybertronai_lamb(sched, **reference_kwargs),
        dtype,
        schedule,
        F32,
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
def test_trajectory_matches_pytorch_optimizer_lamb(dtype, schedule):
    """pytorch_optimizer.Lamb adds eps to ||r|| in the ratio: with eps=0 it is cybertronai's."""
    compare(
        lambda lr: lamb(lr, eps=0.0, weight_decay=0.1, bias_correction=False, max_param_norm=10.0),
        torch_reference(
            lambda params, lr: Lamb(
                params, lr=lr, eps=0.0, weight_decay=0.1, weight_decouple=False, adam_debias=True
            )
        ),
        dtype,
        schedule,
        F32,
    )


def test_both_forms_share_one_state_layout():
    params = {"w": jnp.ones((2, 3))}
    with_correction = jax.eval_shape(lamb(0.1).init, params)
    without = jax.eval_shape(lamb(0.1, bias_correction=False).init, params)
    assert jax.tree.structure(with_correction) == jax.tree.structure(without)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: lamb(float("nan")), "lamb: learning_rate must be finite"),
        (lambda: lamb(0.1, b1=1.0), "lamb: b1 must be in (-1, 1), got b1=1.0"),
        (lambda: lamb(0.1, eps=-1.0), "lamb: eps must be finite and >= 0, got eps=-1.0"),
        (lambda: lamb(0.1, weight_decay=-1.0), "lamb: weight_decay must be finite and >= 0"),
        (lambda: lamb(0.1, max_param_norm=0.0), "lamb: max_param_norm must be > 0"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
