"""ASGD against torch.optim.ASGD: parameters, averaged parameters, eta and mu."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optix
from optix.optimizers.asgd import asgd, asgd_averaged_params, scale_by_asgd
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    SCHEDULES,
    assert_trajectories_close,
    compare,
    gradient_sequence,
    initial_params,
    learning_rates,
    lr_schedule,
    run_torch,
    torch_reference,
)
from tests.registry import ENTRIES

F32_RTOL = ENTRIES["asgd"].f32_rtol

CASES = {
    "default": {},
    "averaging": {"lambd": 0.1, "alpha": 0.6, "t0": 5.0},
    "weight_decay": {"lambd": 0.05, "t0": 3.0, "weight_decay": 0.1},
}


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("case", list(CASES))
def test_params_match_torch(case, dtype, schedule):
    kwargs = CASES[case]
    compare(
        lambda lr: asgd(lr, **kwargs),
        torch_reference(lambda params, lr: torch.optim.ASGD(params, lr=lr, **kwargs)),
        dtype,
        schedule,
        F32_RTOL,
    )


def torch_states(dtype, schedule, kwargs):
    """torch's (ax, eta, mu) after every step, for the parameters of tests/reference.py."""
    states = []

    def make(params):
        lr = learning_rates()[0] if schedule else CONSTANT_LR
        optimizer = torch.optim.ASGD(params, lr=lr, **kwargs)

        def record(opt, args, kw):
            names = ["w", "b", "s"]
            per_param = [opt.state[p] for p in opt.param_groups[0]["params"]]
            states.append(
                {
                    "ax": {
                        n: s["ax"].numpy().copy() for n, s in zip(names, per_param, strict=True)
                    },
                    "eta": float(per_param[0]["eta"]),
                    "mu": float(per_param[0]["mu"]),
                }
            )

        optimizer.register_step_post_hook(record)
        return optimizer

    run_torch(make, dtype, lrs=learning_rates() if schedule else None)
    return states


def optix_states(dtype, schedule, kwargs):
    tx = asgd(lr_schedule if schedule else CONSTANT_LR, **kwargs)
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    states = []
    for g in gradient_sequence():
        updates, state = step(params, state, jax.tree.map(lambda x: jnp.asarray(x, dtype), g))
        params = optix.apply_updates(params, updates)
        inner = state[1]
        states.append(
            {
                "ax": jax.tree.map(np.asarray, asgd_averaged_params(state)),
                "eta": float(inner.eta),
                "mu": float(inner.mu),
            }
        )
    return states


@SCHEDULES
@pytest.mark.parametrize("case", ["averaging", "weight_decay"])
def test_averaged_params_eta_and_mu_match_torch(case, schedule):
    kwargs = CASES[case]
    expected = torch_states(np.float64, schedule, kwargs)
    with jax.enable_x64(True):
        actual = optix_states(np.float64, schedule, kwargs)
    assert_trajectories_close([s["ax"] for s in actual], [s["ax"] for s in expected], 1e-10)
    for a, e in zip(actual, expected, strict=True):
        assert a["eta"] == pytest.approx(e["eta"], rel=1e-14)
        assert a["mu"] == e["mu"]
    assert expected[-1]["mu"] < 0.1, "averaging never started: the test would prove little"
    f32 = optix_states(np.float32, schedule, kwargs)
    assert_trajectories_close([s["ax"] for s in f32], [s["ax"] for s in expected], F32_RTOL)


def test_average_is_the_mean_of_the_iterates_after_t0(x64):
    """With lambd = 0 and integer t0, ax is the mean of the iterates from step t0 + 2 on."""
    tx = asgd(0.1, lambd=0.0, t0=0.0)
    params = {"w": jnp.asarray([1.0, -2.0])}
    state, iterates = tx.init(params), []
    for t in range(6):
        updates, state = tx.update({"w": jnp.asarray([np.sin(t), np.cos(t)])}, state, params)
        params = optix.apply_updates(params, updates)
        iterates.append(np.asarray(params["w"]))
    np.testing.assert_allclose(
        asgd_averaged_params(state)["w"], np.mean(iterates[1:], 0), rtol=1e-14
    )


def test_averaged_params_need_an_asgd_state():
    with pytest.raises(ValueError, match="asgd_averaged_params: the state holds no"):
        asgd_averaged_params(optix.sgd(0.1).init({"w": jnp.ones(2)}))


def test_scale_by_asgd_needs_params():
    tx = scale_by_asgd(0.1)
    with pytest.raises(ValueError, match="scale_by_asgd needs the current params"):
        tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: asgd(float("nan")), "asgd: learning_rate must be finite"),
        (lambda: asgd(0.1, lambd=-1.0), "asgd: lambd must be finite and >= 0, got lambd=-1.0"),
        (lambda: asgd(0.1, alpha=float("nan")), "asgd: alpha must be finite and >= 0"),
        (lambda: asgd(0.1, t0=-1.0), "asgd: t0 must be finite and >= 0, got t0=-1.0"),
        (lambda: asgd(0.1, weight_decay=-1.0), "asgd: weight_decay must be finite and >= 0"),
        (lambda: scale_by_asgd(0.1, lambd=-1.0), "scale_by_asgd: lambd must be finite"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
