"""The Adam family against torch.optim and Optax: whole trajectories, float64 and float32."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import optix
from tests.reference import DTYPES, SCHEDULES, compare, optax_reference, run_jax, torch_reference
from tests.registry import ENTRIES

OPTAX_CASES = [
    ("adam", {}),
    ("adam", {"b1": 0.8, "b2": 0.9, "eps": 0.1, "eps_root": 1e-3}),
    ("adam", {"nesterov": True}),
    ("adamw", {"weight_decay": 0.1}),
    ("adamw", {"weight_decay": 0.1, "nesterov": True}),
    ("nadam", {}),
    ("nadam", {"b1": 0.7, "eps": 1e-3}),
    ("nadamw", {"weight_decay": 0.1}),
    ("amsgrad", {"b2": 0.8}),
    ("amsgrad", {"b2": 0.8, "bias_correction_nu": False}),
    ("amsgrad", {"b2": 0.8, "bias_correction_mu": False, "eps_root": 1e-4}),
]


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(("name", "kwargs"), OPTAX_CASES, ids=lambda x: str(x))
def test_trajectory_matches_optax(name, kwargs, dtype, schedule):
    compare(
        lambda lr: getattr(optix, name)(lr, **kwargs),
        optax_reference(lambda lr: getattr(optax, name)(lr, **kwargs)),
        dtype,
        schedule,
        ENTRIES[name].f32_rtol,
        same_dtype_reference=False,
    )


@SCHEDULES
@DTYPES
@pytest.mark.parametrize(
    ("name", "kwargs", "torch_cls", "torch_kwargs"),
    [
        ("adam", {}, torch.optim.Adam, {}),
        (
            "adam",
            {"b1": 0.8, "b2": 0.9, "eps": 0.1},
            torch.optim.Adam,
            {"betas": (0.8, 0.9), "eps": 0.1},
        ),
        ("adamw", {"weight_decay": 0.1}, torch.optim.AdamW, {"weight_decay": 0.1}),
    ],
    ids=["adam", "adam_betas_eps", "adamw"],
)
def test_trajectory_matches_torch(name, kwargs, torch_cls, torch_kwargs, dtype, schedule):
    compare(
        lambda lr: getattr(optix, name)(lr, **kwargs),
        torch_reference(lambda params, lr: torch_cls(params, lr=lr, **torch_kwargs)),
        dtype,
        schedule,
        ENTRIES[name].f32_rtol,
    )


def test_amsgrad_raw_order_is_torch_amsgrad(x64):
    expected = torch_reference(
        lambda p, lr: torch.optim.Adam(p, lr=lr, betas=(0.9, 0.8), amsgrad=True)
    )(np.float64, False)
    actual = run_jax(optix.amsgrad(0.05, b2=0.8, nu_max_of="raw"), np.float64)
    np.testing.assert_allclose(actual[-1]["w"], expected[-1]["w"], rtol=1e-10)
    corrected = run_jax(optix.amsgrad(0.05, b2=0.8), np.float64)
    assert np.max(np.abs(corrected[-1]["w"] - expected[-1]["w"])) > 1e-3


def test_mu_dtype_keeps_first_moment_in_bfloat16():
    params = {"w": jnp.ones((3,), jnp.float32)}
    tx = optix.adam(0.1, mu_dtype=jnp.bfloat16)
    state = tx.init(params)
    assert state[0].mu["w"].dtype == jnp.bfloat16
    assert state[0].nu["w"].dtype == jnp.float32
    updates, state = tx.update({"w": jnp.full((3,), 0.5, jnp.float32)}, state, params)
    assert state[0].mu["w"].dtype == jnp.bfloat16
    assert updates["w"].dtype == jnp.float32
    # The first Adam step is -lr * g / (|g| + eps) exactly.
    np.testing.assert_allclose(updates["w"], -0.1 * 0.5 / (0.5 + 1e-8), rtol=1e-7)


def test_float32_bias_correction_within_1e6_of_float64():
    """Step-dependent scalars stay accurate in float32 over long runs."""
    g = {"w": jnp.asarray(np.linspace(-1, 1, 8), jnp.float32)}

    def run(dtype, steps):
        tx = optix.adam(1e-3)
        grads = jax.tree.map(lambda x: x.astype(dtype), g)
        params = jax.tree.map(jnp.zeros_like, grads)
        state = tx.init(params)
        step = jax.jit(lambda s: tx.update(grads, s, params))
        out = []
        for _ in range(steps):
            u, state = step(state)
            out.append(np.asarray(u["w"], np.float64))
        return np.array(out)

    f32 = run(jnp.float32, 50)
    with jax.enable_x64(True):
        f64 = run(jnp.float64, 50)
    assert np.max(np.abs(f32 - f64) / np.abs(f64)) < 1e-6


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: optix.adam(float("nan")),
            "adam: learning_rate must be finite",
        ),
        (lambda: optix.adam(1e-3, b1=1.2), "adam: b1 must be in (-1, 1), got b1=1.2"),
        (lambda: optix.adam(1e-3, b2=-0.1), "adam: b2 must be in [0, 1), got b2=-0.1"),
        (lambda: optix.adam(1e-3, eps=-1e-8), "adam: eps must be finite and >= 0, got eps=-1e-08"),
        (
            lambda: optix.adamw(1e-3, weight_decay=-1.0),
            "adamw: weight_decay must be finite and >= 0",
        ),
        (lambda: optix.nadam(1e-3, b1=float("nan")), "adam: b1 must be in (-1, 1), got b1=nan"),
        (
            lambda: optix.amsgrad(1e-3, nu_max_of="max"),
            "scale_by_amsgrad: nu_max_of must be one of",
        ),
        (lambda: optix.scale_by_adam(eps_root=-1.0), "scale_by_adam: eps_root must be finite"),
        (
            lambda: optix.scale_by_nadam(momentum_decay=0.0),
            "scale_by_nadam: momentum_decay must be > 0",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_hyperparameters_may_be_traced():
    """Validation lets tracers through, so hyperparameters can be jit arguments."""

    @jax.jit
    def step(lr, b1):
        tx = optix.adam(lr, b1=b1)
        params = {"w": jnp.ones(2)}
        return tx.update({"w": jnp.ones(2)}, tx.init(params), params)[0]["w"]

    np.testing.assert_allclose(step(0.1, 0.9), -0.1 * np.ones(2), rtol=1e-5)


def test_nadam_momentum_decay_inf_is_optax_nadam(x64):
    """With an infinite momentum_decay the schedule is constant: Optax's nadam."""
    tx = optix.chain(optix.scale_by_nadam(momentum_decay=float("inf")), optix.scale(-0.05))
    actual = run_jax(tx, np.float64)
    expected = optax_reference(optax.nadam)(np.float64, False)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a["w"], e["w"], rtol=1e-10)
