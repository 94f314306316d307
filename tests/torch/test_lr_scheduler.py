"""optix.torch's learning-rate schedules against torch.optim.lr_scheduler, step by step.

torch's real schedulers drive a dummy optimizer; count k is ``get_last_lr()`` after k
``scheduler.step()`` calls (count 0: the lr of the first ``optimizer.step()``). Every
run is long enough to pass every phase (restarts, cycles, milestones, past T_max).
Comparison: relative, floored at 1e-3 of the run's peak (near a zero both torch's and
optix's values are rounding noise of the peak); float64 within 1e-12, float32 (optix
in float32 against torch's float64) within 1e-6 unless a case states otherwise.
"""

from __future__ import annotations

import inspect
import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as L

import optix
from optix.torch.lr_scheduler import (
    chained_scheduler,
    constant_lr,
    cosine_annealing_lr,
    cosine_annealing_warm_restarts,
    cyclic_lr,
    exponential_lr,
    lambda_lr,
    linear_lr,
    multi_step_lr,
    multiplicative_lr,
    one_cycle_lr,
    polynomial_lr,
    sequential_lr,
    step_lr,
)
from optix.transforms.hyperparams import inject_hyperparams
from tests.reference import gradient_sequence, initial_params, max_relative_difference, run_jax
from tests.schedules.common import run, run64

LR = 0.1
F64_RTOL, F32_RTOL = 1e-12, 1e-6


def torch_lrs(make, steps, optimizer="sgd"):
    """torch's lr and momentum (SGD) or beta1 (Adam) in use at counts 0..steps-1."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    if optimizer == "sgd":
        opt = torch.optim.SGD([param], lr=LR, momentum=0.9)
    else:
        opt = torch.optim.Adam([param], lr=LR)
    scheduler = make(opt)
    lrs, momenta = [], []
    for _ in range(steps):
        group = opt.param_groups[0]
        lrs.append(scheduler.get_last_lr()[0])
        momenta.append(group["momentum"] if optimizer == "sgd" else group["betas"][0])
        opt.step()
        scheduler.step()
    return np.asarray(lrs), np.asarray(momenta)


def relative_error(actual, expected, peak=None):
    """Largest |actual - expected| / max(|expected|, 1e-3 * peak), peak = max |expected|."""
    peak = np.max(np.abs(expected)) if peak is None else peak
    scale = np.maximum(np.abs(expected), 1e-3 * peak)
    return float(np.max(np.abs(np.asarray(actual, np.float64) - expected) / scale))


def odd_even(e):
    return jnp.where(e % 2 == 1, 0.95, 0.99)


CASES = [
    ("StepLR", lambda o: L.StepLR(o, 7, 0.5), lambda: step_lr(LR, 7, 0.5), 40),
    (
        "MultiStepLR",
        lambda o: L.MultiStepLR(o, [0, 3, 10, 10, 20], 0.3),
        lambda: multi_step_lr(LR, [0, 3, 10, 10, 20], 0.3),
        30,
    ),
    ("ConstantLR", lambda o: L.ConstantLR(o, 0.25, 6), lambda: constant_lr(LR, 0.25, 6), 15),
    ("LinearLR-default", lambda o: L.LinearLR(o), lambda: linear_lr(LR), 12),
    (
        "LinearLR-warmup",
        lambda o: L.LinearLR(o, 0.2, 1.0, 10),
        lambda: linear_lr(LR, 0.2, 1.0, 10),
        20,
    ),
    (
        "LinearLR-to-zero",
        lambda o: L.LinearLR(o, 1.0, 0.0, 50),
        lambda: linear_lr(LR, 1.0, 0.0, 50),
        60,
    ),
    ("ExponentialLR", lambda o: L.ExponentialLR(o, 0.97), lambda: exponential_lr(LR, 0.97), 200),
    ("PolynomialLR", lambda o: L.PolynomialLR(o, 30, 2.0), lambda: polynomial_lr(LR, 30, 2.0), 40),
    (
        "PolynomialLR-sqrt",
        lambda o: L.PolynomialLR(o, 30, 0.5),
        lambda: polynomial_lr(LR, 30, 0.5),
        40,
    ),
    (
        "CosineAnnealingLR",
        lambda o: L.CosineAnnealingLR(o, 25),
        lambda: cosine_annealing_lr(LR, 25),
        130,
    ),
    (
        "CosineAnnealingLR-eta_min",
        lambda o: L.CosineAnnealingLR(o, 25, 1e-3),
        lambda: cosine_annealing_lr(LR, 25, 1e-3),
        130,
    ),
    (
        "CosineAnnealingLR-recursive",
        lambda o: L.CosineAnnealingLR(o, 25, 1e-3),
        lambda: cosine_annealing_lr(LR, 25, 1e-3, form="recursive"),
        130,
    ),
    (
        "CosineAnnealingWarmRestarts",
        lambda o: L.CosineAnnealingWarmRestarts(o, 10, 1, 1e-3),
        lambda: cosine_annealing_warm_restarts(LR, 10, 1, 1e-3),
        45,
    ),
    (
        "CosineAnnealingWarmRestarts-T_mult2",
        lambda o: L.CosineAnnealingWarmRestarts(o, 5, 2, 1e-3),
        lambda: cosine_annealing_warm_restarts(LR, 5, 2, 1e-3),
        80,
    ),
    (
        "CosineAnnealingWarmRestarts-T_mult3",
        lambda o: L.CosineAnnealingWarmRestarts(o, 3, 3),
        lambda: cosine_annealing_warm_restarts(LR, 3, 3),
        130,
    ),
    (
        "LambdaLR",
        lambda o: L.LambdaLR(o, lambda e: 1 / (1 + e)),
        lambda: lambda_lr(LR, lambda e: 1 / (1 + e)),
        30,
    ),
    (
        "MultiplicativeLR",
        lambda o: L.MultiplicativeLR(o, lambda e: 0.95 if e % 2 else 0.99),
        lambda: multiplicative_lr(LR, odd_even),
        30,
    ),
    (
        "OneCycleLR-cos",
        lambda o: L.OneCycleLR(o, 1.0, total_steps=100),
        lambda: one_cycle_lr(1.0, total_steps=100),
        100,
    ),
    (
        "OneCycleLR-linear",
        lambda o: L.OneCycleLR(o, 1.0, total_steps=100, anneal_strategy="linear"),
        lambda: one_cycle_lr(1.0, total_steps=100, anneal_strategy="linear"),
        100,
    ),
    (
        "OneCycleLR-cos-three-phase",
        lambda o: L.OneCycleLR(
            o, 1.0, epochs=7, steps_per_epoch=13, pct_start=0.25, three_phase=True
        ),
        lambda: one_cycle_lr(1.0, epochs=7, steps_per_epoch=13, pct_start=0.25, three_phase=True),
        91,
    ),
    (
        "OneCycleLR-linear-three-phase",
        lambda o: L.OneCycleLR(
            o, 0.5, 90, anneal_strategy="linear", three_phase=True, div_factor=10.0
        ),
        lambda: one_cycle_lr(0.5, 90, anneal_strategy="linear", three_phase=True, div_factor=10.0),
        90,
    ),
    (
        "CyclicLR-triangular",
        lambda o: L.CyclicLR(o, 0.01, 0.1, 5, 3),
        lambda: cyclic_lr(0.01, 0.1, 5, 3),
        40,
    ),
    (
        "CyclicLR-triangular2",
        lambda o: L.CyclicLR(o, 0.01, 0.1, 4, mode="triangular2"),
        lambda: cyclic_lr(0.01, 0.1, 4, mode="triangular2"),
        40,
    ),
    (
        "CyclicLR-exp_range",
        lambda o: L.CyclicLR(o, 0.01, 0.1, 5, mode="exp_range", gamma=0.97),
        lambda: cyclic_lr(0.01, 0.1, 5, mode="exp_range", gamma=0.97),
        40,
    ),
    (
        "CyclicLR-scale_fn-cycle",
        lambda o: L.CyclicLR(o, 0.01, 0.1, 3, 6, scale_fn=lambda x: 1 / x),
        lambda: cyclic_lr(0.01, 0.1, 3, 6, scale_fn=lambda x: 1 / x),
        40,
    ),
    (
        "CyclicLR-scale_fn-iterations",
        lambda o: L.CyclicLR(o, 0.01, 0.1, 4, scale_fn=lambda x: 0.99**x, scale_mode="iterations"),
        lambda: cyclic_lr(
            0.01, 0.1, 4, scale_fn=lambda x: 0.99 ** x.astype(float), scale_mode="iterations"
        ),
        40,
    ),
    (
        "SequentialLR-warmup-cosine-exponential",
        lambda o: L.SequentialLR(
            o,
            [L.LinearLR(o, 0.1, 1.0, 5), L.CosineAnnealingLR(o, 20, 1e-3), L.ExponentialLR(o, 0.9)],
            [5, 30],
        ),
        lambda: sequential_lr(
            [
                linear_lr(LR, 0.1, 1.0, 5),
                cosine_annealing_lr(LR, 20, 1e-3),
                exponential_lr(LR, 0.9),
            ],
            [5, 30],
        ),
        50,
    ),
    (
        "SequentialLR-restarts-constant-lambda",
        lambda o: L.SequentialLR(
            o,
            [
                L.CosineAnnealingWarmRestarts(o, 4, 2),
                L.ConstantLR(o, 0.5, 3),
                L.LambdaLR(o, lambda e: 0.9**e),
            ],
            [12, 20],
        ),
        lambda: sequential_lr(
            [
                cosine_annealing_warm_restarts(LR, 4, 2),
                constant_lr(LR, 0.5, 3),
                lambda_lr(LR, lambda e: 0.9 ** e.astype(float)),
            ],
            [12, 20],
        ),
        35,
    ),
    (
        "SequentialLR-multiplicative-resumes",
        lambda o: L.SequentialLR(
            o,
            [L.ExponentialLR(o, 0.9), L.MultiplicativeLR(o, lambda e: 0.5 if e == 0 else 0.97)],
            [6],
        ),
        lambda: sequential_lr(
            [
                exponential_lr(LR, 0.9),
                multiplicative_lr(LR, lambda e: jnp.where(e == 0, 0.5, 0.97)),
            ],
            [6],
        ),
        20,
    ),
    (
        "ChainedScheduler-product",
        lambda o: L.ChainedScheduler(
            [
                L.ConstantLR(o, 0.1, 2),
                L.ExponentialLR(o, 0.9),
                L.MultiStepLR(o, [4, 9]),
                L.LinearLR(o, 0.5, 1.0, 6),
            ]
        ),
        lambda: chained_scheduler(
            [
                constant_lr(LR, 0.1, 2),
                exponential_lr(LR, 0.9),
                multi_step_lr(LR, [4, 9]),
                linear_lr(LR, 0.5, 1.0, 6),
            ]
        ),
        20,
    ),
    (
        "ChainedScheduler-absolute-member",
        lambda o: L.ChainedScheduler(
            [L.ExponentialLR(o, 0.95), L.LambdaLR(o, lambda e: 1 / (1 + e)), L.StepLR(o, 3, 0.5)]
        ),
        lambda: chained_scheduler(
            [exponential_lr(LR, 0.95), lambda_lr(LR, lambda e: 1 / (1 + e)), step_lr(LR, 3, 0.5)]
        ),
        20,
    ),
    (
        "ChainedScheduler-cosine-recursion",
        lambda o: L.ChainedScheduler([L.ExponentialLR(o, 0.95), L.CosineAnnealingLR(o, 10, 1e-3)]),
        lambda: chained_scheduler([exponential_lr(LR, 0.95), cosine_annealing_lr(LR, 10, 1e-3)]),
        45,
    ),
]
# optix in float32 against torch's float64, where 1e-6 is not reachable: these run torch's
# recursion itself in float32 (its ratio of 1 + cos terms cancels near the minimum).
F32_RTOL_OF = {"ChainedScheduler-cosine-recursion": 2e-6, "CosineAnnealingLR-recursive": 1e-5}


@pytest.mark.parametrize(
    ("name", "make_torch", "make_optix", "steps"), CASES, ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_lr_matches_torch_at_every_step(name, make_torch, make_optix, steps, dtype):
    expected, _ = torch_lrs(make_torch, steps)
    actual = run64(make_optix(), steps) if dtype == "f64" else run(make_optix(), steps)
    rtol = F64_RTOL if dtype == "f64" else F32_RTOL_OF.get(name, F32_RTOL)
    error = relative_error(actual, expected)
    assert error <= rtol, f"{name} {dtype}: {error:.3g} > {rtol:.0e}"


def test_one_schedule_object_is_a_plain_learning_rate():
    schedule = step_lr(LR, 3)
    assert callable(schedule) and schedule.name == "StepLR" and schedule.momentum is None
    np.testing.assert_allclose(run64(schedule, 7), [LR] * 3 + [LR * 0.1] * 3 + [LR * 0.01])
    # Python ints and float counts work outside jit too.
    assert float(schedule(4)) == pytest.approx(LR * 0.1) == float(schedule(4.0))


# --- CosineAnnealingLR: where the recursive and the closed forms differ ---------------------


def test_cosine_closed_form_drifts_from_torch_where_the_recursive_form_does_not():
    """torch's recursion cancels near eta_min and carries that error up the next rise:
    with T_max = 1e4 its values leave the closed form by 7.6e-12 (relative). The
    recursive form repeats torch's arithmetic and stays within 1.3e-13 (XLA's cos and
    libm's differ in the last bit, and the recursion amplifies both alike)."""
    t_max, eta_min, steps = 10_000, 1e-3, 20_002
    expected, _ = torch_lrs(lambda o: L.CosineAnnealingLR(o, t_max, eta_min), steps)
    closed = run64(cosine_annealing_lr(LR, t_max, eta_min), steps)
    drift = np.abs(closed - expected) / expected
    assert 1e-12 < drift.max() < 1e-10
    worst = np.argsort(drift)[-30:]
    counts = np.unique(np.concatenate([worst, [0, 1, t_max, t_max + 1, 2 * t_max + 1]]))
    with jax.enable_x64(True):
        recursive = jax.jit(cosine_annealing_lr(LR, t_max, eta_min, form="recursive"))
        values = np.asarray([recursive(jnp.asarray(c, jnp.int32)) for c in counts])
    assert np.max(np.abs(values - expected[counts]) / expected[counts]) < F64_RTOL


def test_cosine_rises_again_past_t_max_with_period_two_t_max():
    values = run64(cosine_annealing_lr(LR, 10, 1e-3), 41)
    np.testing.assert_allclose(values[[0, 20, 40]], LR, rtol=1e-15)
    np.testing.assert_allclose(values[[10, 30]], 1e-3, rtol=1e-15)
    np.testing.assert_allclose(values[11:20], values[9:0:-1], rtol=1e-14)


def test_in_a_chain_torch_follows_the_recursion_not_a_product_of_closed_forms():
    """Past T_max torch's cosine step adds a fixed amount to whatever lr the other
    schedulers left, so the chain is not exponential * cosine; chained_scheduler
    follows torch."""
    expected, _ = torch_lrs(
        lambda o: L.ChainedScheduler([L.ExponentialLR(o, 0.9), L.CosineAnnealingLR(o, 10)]), 30
    )
    product = run64(exponential_lr(LR, 0.9), 30) * run64(cosine_annealing_lr(LR, 10), 30) / LR
    chained = run64(chained_scheduler([exponential_lr(LR, 0.9), cosine_annealing_lr(LR, 10)]), 30)
    assert relative_error(product[:11], expected[:11]) < 1e-12
    assert relative_error(product, expected) > 0.5
    assert relative_error(chained, expected) < 1e-12


# --- momentum cycling ------------------------------------------------------------------------

MOMENTUM_CASES = [
    (
        "OneCycleLR",
        lambda o: L.OneCycleLR(o, 1.0, total_steps=60, pct_start=0.4),
        lambda: one_cycle_lr(1.0, total_steps=60, pct_start=0.4),
        60,
    ),
    (
        "OneCycleLR-linear-three-phase",
        lambda o: L.OneCycleLR(o, 1.0, 60, anneal_strategy="linear", three_phase=True),
        lambda: one_cycle_lr(1.0, 60, anneal_strategy="linear", three_phase=True),
        60,
    ),
    (
        "CyclicLR-triangular2",
        lambda o: L.CyclicLR(o, 0.01, 0.1, 4, 2, mode="triangular2"),
        lambda: cyclic_lr(0.01, 0.1, 4, 2, mode="triangular2"),
        30,
    ),
    (
        "CyclicLR-exp_range",
        lambda o: L.CyclicLR(o, 0.01, 0.1, 4, mode="exp_range", gamma=0.95),
        lambda: cyclic_lr(0.01, 0.1, 4, mode="exp_range", gamma=0.95),
        30,
    ),
]


@pytest.mark.parametrize(
    ("name", "make_torch", "make_optix", "steps"),
    MOMENTUM_CASES,
    ids=[c[0] for c in MOMENTUM_CASES],
)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_momentum_or_beta1_matches_torch_at_every_step(
    name, make_torch, make_optix, steps, optimizer
):
    _, expected = torch_lrs(make_torch, steps, optimizer)
    schedule = make_optix()
    assert relative_error(run64(schedule.momentum, steps), expected) < 1e-15
    assert relative_error(run(schedule.momentum, steps), expected) < F32_RTOL


def test_without_cycle_momentum_there_is_no_momentum_schedule():
    assert one_cycle_lr(1.0, 10, cycle_momentum=False).momentum is None
    assert cyclic_lr(0.01, 0.1, cycle_momentum=False).momentum is None


def run_torch_with_scheduler(make_optimizer, make_scheduler, steps=20):
    torch.set_default_dtype(torch.float64)
    try:
        tensors = {k: torch.tensor(v, requires_grad=True) for k, v in initial_params().items()}
        opt = make_optimizer(list(tensors.values()))
        scheduler = make_scheduler(opt)
        trajectory = []
        for g in gradient_sequence(steps):
            for k, t in tensors.items():
                t.grad = torch.tensor(g[k])
            opt.step()
            scheduler.step()
            trajectory.append({k: t.detach().numpy().copy() for k, t in tensors.items()})
        return trajectory
    finally:
        torch.set_default_dtype(torch.float32)


def run_optix_rebuilt(make_tx, steps=20):
    """Rebuild the transformation each step with that step's hyperparameters (what
    inject_hyperparams does); the state carries over because its structure is fixed."""
    with jax.enable_x64(True):
        params = jax.tree.map(jnp.asarray, initial_params())
        state = make_tx(0).init(params)
        trajectory = []
        for count, g in enumerate(gradient_sequence(steps)):
            updates, state = make_tx(count).update(jax.tree.map(jnp.asarray, g), state, params)
            params = optix.apply_updates(params, updates)
            trajectory.append(jax.tree.map(np.asarray, params))
        return trajectory


def test_one_cycle_momentum_drives_sgd_momentum_like_torch():
    schedule = one_cycle_lr(0.5, total_steps=20, pct_start=0.4)
    expected = run_torch_with_scheduler(
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda o: L.OneCycleLR(o, 0.5, total_steps=20, pct_start=0.4),
    )
    actual = run_optix_rebuilt(
        lambda k: optix.torch.sgd(schedule(k), momentum=schedule.momentum(k))
    )
    assert max_relative_difference(actual, expected) < 1e-10


def test_cyclic_momentum_drives_adam_beta1_like_torch():
    schedule = cyclic_lr(0.01, 0.1, 3, 2)
    expected = run_torch_with_scheduler(
        lambda ps: torch.optim.Adam(ps, lr=0.1), lambda o: L.CyclicLR(o, 0.01, 0.1, 3, 2)
    )
    actual = run_optix_rebuilt(
        lambda k: optix.torch.adam(schedule(k), betas=(schedule.momentum(k), 0.999))
    )
    assert max_relative_difference(actual, expected) < 1e-10


@pytest.mark.parametrize(
    ("make_torch", "make_optix"),
    [
        (
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
            lambda s: inject_hyperparams(optix.sgd)(learning_rate=s, momentum=s.momentum),
        ),
        (
            lambda ps: torch.optim.Adam(ps, lr=0.1),
            lambda s: inject_hyperparams(optix.adam)(learning_rate=s, b1=s.momentum),
        ),
    ],
    ids=["sgd-momentum", "adam-b1"],
)
def test_one_cycle_lr_and_momentum_through_inject_hyperparams_like_torch(make_torch, make_optix):
    """Both schedules in the state of a jitted optimizer, as torch's scheduler sets both."""
    expected = run_torch_with_scheduler(
        make_torch, lambda o: L.OneCycleLR(o, 0.5, total_steps=20, pct_start=0.4)
    )
    with jax.enable_x64(True):
        actual = run_jax(make_optix(one_cycle_lr(0.5, total_steps=20, pct_start=0.4)), np.float64)
    assert max_relative_difference(actual, expected) < 1e-10


def test_a_schedule_is_the_lr_of_a_jitted_optimizer_like_torch():
    """SequentialLR warmup then cosine, as optix.torch.adam's lr, compiled once."""
    expected = run_torch_with_scheduler(
        lambda ps: torch.optim.Adam(ps, lr=0.05),
        lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 5), L.CosineAnnealingLR(o, 15)], [5]),
    )
    schedule = sequential_lr([linear_lr(0.05, 0.1, 1.0, 5), cosine_annealing_lr(0.05, 15)], [5])
    with jax.enable_x64(True):
        actual = run_jax(optix.torch.adam(schedule), np.float64)
    assert max_relative_difference(actual, expected) < 1e-10


def test_one_cycle_holds_its_last_value_past_total_steps():
    schedule = one_cycle_lr(1.0, total_steps=30, anneal_strategy="linear")
    values = run64(schedule, 40)
    np.testing.assert_array_equal(values[29:], values[29])
    assert values[29] == pytest.approx(1.0 / 25 / 1e4, rel=1e-12)


# --- arguments -------------------------------------------------------------------------------

SIGNATURES = [
    (step_lr, L.StepLR, True),
    (multi_step_lr, L.MultiStepLR, True),
    (constant_lr, L.ConstantLR, True),
    (linear_lr, L.LinearLR, True),
    (exponential_lr, L.ExponentialLR, True),
    (polynomial_lr, L.PolynomialLR, True),
    (cosine_annealing_lr, L.CosineAnnealingLR, True),
    (cosine_annealing_warm_restarts, L.CosineAnnealingWarmRestarts, True),
    (lambda_lr, L.LambdaLR, True),
    (multiplicative_lr, L.MultiplicativeLR, True),
    (one_cycle_lr, L.OneCycleLR, False),
    (cyclic_lr, L.CyclicLR, False),
    (sequential_lr, L.SequentialLR, False),
    (chained_scheduler, L.ChainedScheduler, False),
]


@pytest.mark.parametrize(
    ("ours", "theirs", "takes_lr"), SIGNATURES, ids=[t.__name__ for _, t, _ in SIGNATURES]
)
def test_arguments_and_defaults_are_torchs(ours, theirs, takes_lr):
    """torch's arguments in torch's order with torch's defaults, without optimizer and
    last_epoch; ``lr`` first where torch reads the optimizer's lr; keyword-only extras."""
    expected = [
        (p.name, p.default)
        for p in inspect.signature(theirs).parameters.values()
        if p.name not in ("optimizer", "last_epoch")
    ]
    if takes_lr:
        expected.insert(0, ("lr", inspect.Parameter.empty))
    params = list(inspect.signature(ours).parameters.values())
    positional = [(p.name, p.default) for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == expected
    assert all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)


def snake_case(name):
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=LR)(?=[A-Z][a-z])", "_", name).lower()


def test_every_torch_scheduler_has_its_snake_case_function():
    from optix.torch import lr_scheduler

    names = [n for n in L.__all__ if n != "LRScheduler"]
    assert sorted(snake_case(n) for n in names) == sorted(
        n for n in lr_scheduler.__all__ if n != "TorchLRSchedule"
    )
    for name in names:
        doc = inspect.getdoc(getattr(lr_scheduler, snake_case(name)))
        assert f"torch.optim.lr_scheduler.{name}" in doc and "Checked against" in doc


def f(e):
    return 1.0 / (1 + e)


BAD = [
    (
        lambda: step_lr(0.1, 0),
        ValueError,
        "optix.torch.step_lr: step_size must be >= 1, got step_size=0",
    ),
    (
        lambda: step_lr(-0.1, 3),
        ValueError,
        "optix.torch.step_lr: lr must be finite and >= 0, got lr=-0.1",
    ),
    (lambda: step_lr(0.1, 2.5), TypeError, "optix.torch.step_lr: step_size must be an int"),
    (lambda: multi_step_lr(0.1, [5, 3]), ValueError, "non-decreasing order, got milestones=[5, 3]"),
    (lambda: multi_step_lr(0.1, [-1]), ValueError, "milestones must be >= 0, got milestones=-1"),
    (
        lambda: constant_lr(0.1, 1.5),
        ValueError,
        "optix.torch.constant_lr: factor must be in [0, 1], got factor=1.5",
    ),
    (lambda: constant_lr(0.1, 0.5, 0), ValueError, "total_iters must be >= 1, got total_iters=0"),
    (lambda: linear_lr(0.1, 0.0), ValueError, "optix.torch.linear_lr: start_factor must be > 0"),
    (
        lambda: linear_lr(0.1, 0.5, 1.5),
        ValueError,
        "end_factor must be in [0, 1], got end_factor=1.5",
    ),
    (
        lambda: exponential_lr(0.1, -0.5),
        ValueError,
        "gamma must be finite and >= 0, got gamma=-0.5",
    ),
    (
        lambda: polynomial_lr(0.1, 5, -1.0),
        ValueError,
        "power must be finite and >= 0, got power=-1.0",
    ),
    (lambda: cosine_annealing_lr(0.1, 0), ValueError, "T_max must be >= 1, got T_max=0"),
    (
        lambda: cosine_annealing_lr(0.1, 5, form="exact"),
        ValueError,
        "form must be one of ('closed', 'recursive')",
    ),
    (lambda: cosine_annealing_warm_restarts(0.1, 0), ValueError, "T_0 must be >= 1, got T_0=0"),
    (
        lambda: cosine_annealing_warm_restarts(0.1, 5, 0),
        ValueError,
        "T_mult must be >= 1, got T_mult=0",
    ),
    (lambda: cosine_annealing_warm_restarts(0.1, 5, 1.5), TypeError, "T_mult must be an int"),
    (lambda: one_cycle_lr(1.0), ValueError, "give total_steps, or both epochs and steps_per_epoch"),
    (lambda: one_cycle_lr(1.0, 0), ValueError, "total_steps must be >= 1, got total_steps=0"),
    (
        lambda: one_cycle_lr(1.0, 10, pct_start=1.5),
        ValueError,
        "pct_start must be in [0, 1], got pct_start=1.5",
    ),
    (
        lambda: one_cycle_lr(1.0, 10, anneal_strategy="cosine"),
        ValueError,
        "anneal_strategy must be one of",
    ),
    (
        lambda: one_cycle_lr(1.0, 10, pct_start=0.1),
        ValueError,
        "pct_start * total_steps must not be 1",
    ),
    (lambda: one_cycle_lr(1.0, 10, div_factor=0.0), ValueError, "div_factor must be > 0"),
    (lambda: cyclic_lr(0.01, 0.1, 0), ValueError, "step_size_up must be >= 1, got step_size_up=0"),
    (lambda: cyclic_lr(0.01, 0.1, mode="sawtooth"), ValueError, "mode must be one of"),
    (
        lambda: cyclic_lr(0.01, 0.1, scale_fn=f, scale_mode="epoch"),
        ValueError,
        "scale_mode must be one of",
    ),
    (lambda: lambda_lr(0.1, [f]), TypeError, "optix.torch.lambda_lr: lr_lambda must be a function"),
    (lambda: multiplicative_lr(0.1, 0.9), TypeError, "lr_lambda must be a function"),
    (lambda: sequential_lr([], []), ValueError, "schedulers must hold at least one scheduler"),
    (
        lambda: sequential_lr([step_lr(0.1, 2)] * 2, []),
        ValueError,
        "milestones must hold len(schedulers) - 1 = 1",
    ),
    (
        lambda: sequential_lr([step_lr(0.1, 2)] * 2, [0]),
        ValueError,
        "milestones must be >= 1, got milestones=0",
    ),
    (
        lambda: sequential_lr([step_lr(0.1, 2)] * 3, [4, 4]),
        ValueError,
        "milestones must increase strictly",
    ),
    (
        lambda: sequential_lr([f], []),
        TypeError,
        "schedulers[0] must be an optix.torch learning-rate scheduler",
    ),
    (
        lambda: chained_scheduler([chained_scheduler([step_lr(0.1, 2)])]),
        TypeError,
        "(not sequential_lr or chained_scheduler)",
    ),
    (
        lambda: chained_scheduler([step_lr(0.1, 2), step_lr(0.2, 2)]),
        ValueError,
        "must share one base lr",
    ),
    (
        lambda: chained_scheduler([]),
        ValueError,
        "optix.torch.chained_scheduler: schedulers must hold",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), BAD)
def test_bad_arguments_raise_clear_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


# --- laws (hypothesis) -----------------------------------------------------------------------


LAW_STEPS = 400  # one length for every example, so eager ops compile once


def values_of(schedule, steps):
    with jax.enable_x64(True):
        return np.asarray(jax.vmap(schedule)(jnp.arange(LAW_STEPS)))[:steps]


@settings(max_examples=40, deadline=None)
@given(
    lr=st.floats(1e-4, 1.0),
    eta_fraction=st.floats(0.0, 1.0),
    t_max=st.integers(1, 60),
)
def test_cosine_stays_between_eta_min_and_lr_and_falls_then_rises(lr, eta_fraction, t_max):
    eta_min = lr * eta_fraction
    values = values_of(cosine_annealing_lr(lr, t_max, eta_min), 3 * t_max + 1)
    tol = 1e-14 * lr
    assert np.all(values >= eta_min - tol) and np.all(values <= lr + tol)
    assert values[0] == pytest.approx(lr, rel=1e-14) and values[t_max] == pytest.approx(
        eta_min, abs=tol
    )
    assert np.all(np.diff(values[: t_max + 1]) <= tol) and np.all(
        np.diff(values[t_max : 2 * t_max + 1]) >= -tol
    )


@settings(max_examples=40, deadline=None)
@given(
    t_0=st.integers(1, 12),
    t_mult=st.integers(1, 3),
    eta_fraction=st.floats(0.0, 0.9),
)
def test_warm_restarts_restart_at_lr_and_decay_within_each_cycle(t_0, t_mult, eta_fraction):
    eta_min = LR * eta_fraction
    values = values_of(cosine_annealing_warm_restarts(LR, t_0, t_mult, eta_min), 200)
    starts = [0]
    while starts[-1] < 200:
        starts.append(starts[-1] + t_0 * t_mult ** (len(starts) - 1))
    for begin, end in itertools.pairwise(starts):
        cycle = values[begin:end]
        assert cycle[0] == pytest.approx(LR, rel=1e-14)
        assert np.all(np.diff(cycle) <= 1e-16) and np.all(cycle >= eta_min * (1 - 1e-14))


@settings(max_examples=40, deadline=None)
@given(
    total=st.integers(12, LAW_STEPS),
    pct_start=st.floats(0.05, 0.95),
    three_phase=st.booleans(),
    linear=st.booleans(),
)
def test_one_cycle_stays_in_its_bounds_rising_then_falling(total, pct_start, three_phase, linear):
    assume(pct_start * total >= 2)  # below, torch skips the rise: the first phase ends before 0
    assume(not three_phase or 2 * pct_start * total < total)  # else the third phase never starts
    schedule = one_cycle_lr(
        1.0,
        total,
        pct_start=pct_start,
        three_phase=three_phase,
        anneal_strategy="linear" if linear else "cos",
    )
    values, momenta = values_of(schedule, total), values_of(schedule.momentum, total)
    assert np.all(values <= 1.0 + 1e-12) and np.all(values >= 1.0 / 25 / 1e4 * (1 - 1e-9))
    assert np.all(momenta >= 0.85 - 1e-12) and np.all(momenta <= 0.95 + 1e-12)
    assert values[0] == pytest.approx(1.0 / 25) and values[-1] == pytest.approx(1.0 / 25 / 1e4)
    if not three_phase:
        peak = int(np.argmax(values))
        assert np.all(np.diff(values[: peak + 1]) >= -1e-15) and np.all(
            np.diff(values[peak:]) <= 1e-15
        )
        assert np.all(np.diff(momenta[: peak + 1]) <= 1e-15)


@settings(max_examples=40, deadline=None)
@given(
    up=st.integers(1, 10),
    down=st.integers(1, 10),
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
)
def test_cyclic_stays_between_base_and_max_and_starts_each_cycle_at_base(up, down, mode):
    schedule = cyclic_lr(0.01, 0.1, up, down, mode=mode, gamma=0.99)
    values, momenta = (
        values_of(schedule, 5 * (up + down)),
        values_of(schedule.momentum, 5 * (up + down)),
    )
    assert np.all(values >= 0.01 - 1e-15) and np.all(values <= 0.1 + 1e-15)
    assert np.all(momenta >= 0.8 - 1e-15) and np.all(momenta <= 0.9 + 1e-15)
    np.testing.assert_allclose(values[:: up + down], 0.01, rtol=1e-14)
    if mode == "triangular":
        np.testing.assert_allclose(values[up :: up + down], 0.1, rtol=1e-14)


@settings(max_examples=40, deadline=None)
@given(
    gamma=st.floats(0.0, 1.0),
    size=st.integers(1, 10),
    total_iters=st.integers(1, 30),
    power=st.floats(0.0, 3.0),
    factors=st.tuples(st.floats(0.01, 1.0), st.floats(0.0, 1.0)),
)
def test_decays_are_monotone_and_reach_their_endpoints(gamma, size, total_iters, power, factors):
    steps = 2 * total_iters + 10
    for schedule in (
        step_lr(LR, size, gamma),
        exponential_lr(LR, gamma),
        multi_step_lr(LR, [size, 2 * size], gamma),
    ):
        values = values_of(schedule, steps)
        assert values[0] == pytest.approx(LR) and np.all(np.diff(values) <= 1e-17)
    values = values_of(polynomial_lr(LR, total_iters, power), steps)
    assert np.all(np.diff(values) <= 1e-17) and np.all(values[total_iters:] == (power == 0) * LR)
    start, end = factors
    values = values_of(linear_lr(LR, start, end, total_iters), steps)
    assert values[0] == pytest.approx(LR * start) and values[total_iters] == pytest.approx(LR * end)
    assert np.all(np.sign(end - start) * np.diff(values) >= -1e-17)
    np.testing.assert_array_equal(values[total_iters:], values[total_iters])
