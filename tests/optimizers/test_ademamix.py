"""AdEMAMix and simplified AdEMAMix against the official codes (NumPy), Optax's contrib
versions and pytorch_optimizer.AdEMAMix, with the alpha / b3 / b1 warmup schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from pytorch_optimizer import AdEMAMix

from optix.optimizers.ademamix import ademamix, scale_by_ademamix
from optix.optimizers.simplified_ademamix import (
    scale_by_simplified_ademamix,
    simplified_ademamix,
)
from optix.schedules.ademamix import ademamix_alpha_schedule, ademamix_b3_schedule
from tests.optax_layout import assert_same_layout
from tests.reference import DTYPES, compare, optax_reference, torch_reference
from tests.references.ademamix import run_official_ademamix, run_official_simplified_ademamix
from tests.registry.adam_variants import F32_RTOL

F32 = F32_RTOL["ademamix"]
F32_SIMPLIFIED = F32_RTOL["simplified_ademamix"]
T = 8  # warmup steps, within the 20-step trajectories


def shifted(schedule):
    """A schedule of the count evaluated at count + 1, the 1-based step of PyTorch codes."""
    return lambda count: schedule(count + 1)


OFFICIAL = {
    "default": ({"alpha": 2.0}, {}),
    "wd_betas": (
        {"b1": 0.8, "b2": 0.9, "b3": 0.99, "alpha": 3.0, "weight_decay": 0.2},
        {"betas": (0.8, 0.9, 0.99), "alpha": 3.0, "weight_decay": 0.2},
    ),
    "alpha_warmup": (
        {"alpha": shifted(ademamix_alpha_schedule(4.0, 0.0, T))},
        {"alpha": 4.0, "alpha_warmup": T},
    ),
}


@DTYPES
@pytest.mark.parametrize(("kwargs", "official"), OFFICIAL.values(), ids=OFFICIAL)
def test_ademamix_matches_the_official_pytorch_code(kwargs, official, dtype):
    compare(
        lambda lr: ademamix(lr, **kwargs),
        lambda dt, schedule: run_official_ademamix(dt, schedule, **official),
        dtype,
        dtype == np.float64,
        F32,
    )


def test_b3_warmup_is_the_official_pytorch_one_up_to_its_log_offset():
    """The official PyTorch scheduler adds 1e-8 to b inside the log: 3e-6 apart, not 1e-10."""
    kwargs = {"b3": shifted(ademamix_b3_schedule(0.999, 0.9, T)), "alpha": 2.0}
    official = {"betas": (0.9, 0.999, 0.999), "beta3_warmup": T}
    run = lambda dt, schedule: run_official_ademamix(dt, schedule, **official)
    compare(lambda lr: ademamix(lr, **kwargs), run, np.float64, False, F32, f64_rtol=5e-6)
    with pytest.raises(AssertionError):
        compare(lambda lr: ademamix(lr, **kwargs), run, np.float64, False, F32, f64_rtol=1e-9)


@DTYPES
def test_ademamix_warmups_match_pytorch_optimizer(dtype):
    b1, b3, alpha = 0.9, 0.999, 4.0
    compare(
        lambda lr: ademamix(
            lr,
            b1=b1,
            b3=shifted(ademamix_b3_schedule(b3, b1, T)),
            alpha=shifted(ademamix_alpha_schedule(alpha, 0.0, T)),
            weight_decay=0.1,
        ),
        torch_reference(
            lambda params, lr: AdEMAMix(
                params,
                lr=lr,
                betas=(b1, 0.999, b3),
                alpha=alpha,
                t_alpha_beta3=T,
                weight_decay=0.1,
                weight_decouple=True,
                foreach=False,
            )
        ),
        dtype,
        dtype == np.float32,
        F32,
    )


OPTAX = {
    "default": {},
    "schedules": {
        "b3": ademamix_b3_schedule(0.999, 0.9, T),
        "alpha": ademamix_alpha_schedule(3.0, 1.0, T),
        "eps_root": 1e-6,
        "weight_decay": 0.1,
    },
}


@DTYPES
@pytest.mark.parametrize("kwargs", OPTAX.values(), ids=OPTAX)
def test_ademamix_matches_optax(kwargs, dtype):
    compare(
        lambda lr: ademamix(lr, **kwargs),
        optax_reference(lambda lr: optax.contrib.ademamix(lr, **kwargs)),
        dtype,
        True,
        F32,
        same_dtype_reference=False,
    )


SIMPLIFIED_OFFICIAL = {
    "default": ({"alpha": 0.0}, {}),
    "alpha_wd": (
        {"b1": 0.9, "b2": 0.99, "alpha": 5.0, "weight_decay": 0.2},
        {"betas": (0.9, 0.99), "alpha": 5.0, "weight_decay": 0.2},
    ),
}


@DTYPES
@pytest.mark.parametrize(
    ("kwargs", "official"), SIMPLIFIED_OFFICIAL.values(), ids=SIMPLIFIED_OFFICIAL
)
def test_simplified_ademamix_matches_the_official_code(kwargs, official, dtype):
    compare(
        lambda lr: simplified_ademamix(lr, **kwargs),
        lambda dt, schedule: run_official_simplified_ademamix(dt, schedule, **official),
        dtype,
        dtype == np.float64,
        F32_SIMPLIFIED,
    )


def test_simplified_b1_warmup_is_the_official_one_up_to_its_log_offset():
    kwargs = {"b1": shifted(ademamix_b3_schedule(0.99, 0.9, T)), "alpha": 1.0}
    official = {"betas": (0.99, 0.95), "alpha": 1.0, "beta1_warmup": T, "min_beta1": 0.9}
    run = lambda dt, schedule: run_official_simplified_ademamix(dt, schedule, **official)
    compare(lambda lr: simplified_ademamix(lr, **kwargs), run, np.float64, True, 1e-5, 3e-6)
    with pytest.raises(AssertionError):
        compare(lambda lr: simplified_ademamix(lr, **kwargs), run, np.float64, True, 1e-5, 1e-9)


@DTYPES
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"alpha": ademamix_alpha_schedule(3.0, 1.0, T), "eps_root": 1e-6, "weight_decay": 0.1}],
    ids=["default", "alpha_schedule"],
)
def test_simplified_ademamix_matches_optax(kwargs, dtype):
    compare(
        lambda lr: simplified_ademamix(lr, **kwargs),
        optax_reference(lambda lr: optax.contrib.simplified_ademamix(lr, **kwargs)),
        dtype,
        dtype == np.float32,
        F32_SIMPLIFIED,
        same_dtype_reference=False,
    )


def test_schedules_follow_the_official_jax_formulas():
    a, b = ademamix_alpha_schedule(8.0, 2.0, 4), ademamix_b3_schedule(0.9999, 0.9, 4)
    steps = np.arange(6.0)
    np.testing.assert_allclose([a(s) for s in steps], [2.0, 3.5, 5.0, 6.5, 8.0, 8.0], rtol=1e-6)
    f = lambda beta: np.log(0.5) / np.log(beta) - 1
    expected = [0.5 ** (1 / ((1 - s / 4) * f(0.9) + s / 4 * f(0.9999) + 1)) for s in steps[:4]]
    np.testing.assert_allclose([b(s) for s in steps], [*expected, 0.9999, 0.9999], rtol=1e-6)
    assert float(ademamix_b3_schedule(0.99, 0.0, 4)(0)) == 0.0  # b3_start = 0: no slow EMA
    assert float(ademamix_alpha_schedule(3.0)(0)) == 3.0  # no warmup


def _state(tx, params, steps=1):
    def run():
        state = tx.init(params)
        for _ in range(steps):
            state = tx.update(params, state, params)[1]
        return state

    with jax.numpy_dtype_promotion("standard"):  # Optax's code mixes dtypes
        return jax.eval_shape(run)


def test_state_layouts_are_optax_s():
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    contrib = optax.contrib
    schedule = ademamix_alpha_schedule(2.0, 0.0, 4)
    for ours, theirs in [
        (ademamix(schedule, alpha=schedule), contrib.ademamix(schedule, alpha=schedule)),
        (scale_by_ademamix(), contrib.scale_by_ademamix()),
        (
            simplified_ademamix(0.1, weight_decay=0.1),
            contrib.simplified_ademamix(0.1, weight_decay=0.1),
        ),
        (scale_by_simplified_ademamix(), contrib.scale_by_simplified_ademamix()),
    ]:
        assert_same_layout(_state(ours, params), _state(theirs, params))
    # Optax's update returns m1, m2 and nu in float32 whatever mu_dtype; optix keeps it.
    ours, theirs = (
        ademamix(0.1, mu_dtype=jnp.bfloat16),
        contrib.ademamix(0.1, mu_dtype=jnp.bfloat16),
    )
    assert_same_layout(_state(ours, params, 0), _state(theirs, params, 0))
    assert jax.tree.leaves(_state(ours, params)[0].m1)[0].dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: ademamix(0.1, b3=1.5), ValueError, "ademamix: b3 must be in [0, 1], got b3=1.5"),
        (lambda: ademamix(0.1, alpha="5"), TypeError, "ademamix: alpha must be"),
        (lambda: ademamix(0.1, b2=1.0), ValueError, "ademamix: b2 must be in [0, 1)"),
        (lambda: simplified_ademamix(0.1, b1=1.0), ValueError, "simplified_ademamix: b1 must be"),
        (lambda: simplified_ademamix(0.1, weight_decay=-1.0), ValueError, "weight_decay must be"),
        (
            lambda: ademamix_b3_schedule(1.0),
            ValueError,
            "ademamix_b3_schedule: b3 must be in [0, 1)",
        ),
        (lambda: ademamix_alpha_schedule(1.0, warmup=-1), ValueError, "warmup must be >= 0"),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
