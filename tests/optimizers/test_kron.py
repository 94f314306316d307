"""PSGD Kron against a NumPy transliteration of the official kron_torch/kron.py.

Both sides get the same random numbers: the balance draw and probe noise of each step
come from optix's state key (``step_randomness``, ``probe_noise``) and are handed to the
reference, which takes them as arguments.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optix.core import apply_updates
from optix.optimizers.kron import kron, probe_noises, scale_by_kron, step_randomness
from optix.optimizers.kron_factors import diagonal_dims, merged_shape, precond_update_prob_schedule
from tests.reference import learning_rates, lr_schedule
from tests.references.kron_reference import Kron, prob_schedule
from tests.registry.kron_mini import F32_RTOL

SHAPES = {"b": (4,), "s": (), "t": (2, 3, 5), "w": (3, 4)}  # jax.tree.leaves order
STEPS, KEY = 12, 16  # with key 16 the factors are rebalanced at step 2 (asserted)

CASES = {
    "default": ({}, False),
    "decay_modes_schedule": (
        {"b1": 0.5, "weight_decay": 0.1, "memory_save_mode": "smart_one_diag", "precond_lr": 0.3,
         "precond_init_scale": 2.0},
        True,
    ),
    "gradient_fit_unmerged_annealed_one_diag": (
        {"momentum_into_precond_update": False, "merge_dims": False, "memory_save_mode": "one_diag",
         "max_size_triangular": 4, "weight_decay": 0.1},
        False,
    ),
}  # fmt: skip
ANNEALED = {"min_prob": 0.2, "decay": 0.3, "flat_start": 2}


def problem():
    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = [{k: rng.normal(size=s) for k, s in SHAPES.items()} for _ in range(STEPS)]
    grads[4] = {k: np.zeros_like(g) for k, g in grads[4].items()}
    grads[7] = {k: 1e3 * g for k, g in grads[7].items()}
    return params, grads


def optix_kwargs(kwargs):
    if kwargs.get("memory_save_mode") == "one_diag":  # with an annealed update probability
        return {
            **kwargs,
            "preconditioner_update_probability": precond_update_prob_schedule(**ANNEALED),
        }
    return kwargs


def random_numbers(kwargs, dtype):
    """The balance draws and probe noises optix uses at each step, as NumPy arrays."""
    merge = kwargs.get("merge_dims", True)
    like = [jax.ShapeDtypeStruct(merged_shape(s, merge), dtype) for s in SHAPES.values()]

    @jax.jit
    def one_step(key):
        key, draw, noise_key = step_randomness(key)
        return key, draw, probe_noises(noise_key, like)

    key = jax.random.key_data(jax.random.key(KEY))
    draws, noises = [], []
    for _ in range(STEPS):
        key, draw, noise = one_step(key)
        draws.append(float(draw))
        noises.append([np.asarray(v) for v in noise])
    return draws, noises


def run_reference(kwargs, schedule, dtype, draws, noises):
    params, grads = problem()
    ref_kwargs = dict(kwargs)
    if kwargs.get("memory_save_mode") == "one_diag":
        ref_kwargs["preconditioner_update_probability"] = prob_schedule(**ANNEALED)
    ref = Kron(list(SHAPES.values()), dtype, **ref_kwargs)
    p = [np.asarray(params[k], dtype) for k in SHAPES]
    out = []
    for t in range(STEPS):
        lr = learning_rates()[t] if schedule else 0.05
        p = ref.step(p, [grads[t][k] for k in SHAPES], lr, draws[t], noises[t])
        out.append(dict(zip(SHAPES, p, strict=True)))
    return out


def run_optix(kwargs, schedule, dtype):
    params, grads = problem()
    tx = kron(lr_schedule if schedule else 0.05, key=KEY, **optix_kwargs(kwargs))
    p = jax.tree.map(lambda x: jnp.asarray(x, dtype), params)
    state = tx.init(p)

    @jax.jit
    def step(p, state, g):
        updates, state = tx.update(g, state, p)
        return apply_updates(p, updates), state

    out = []
    for g in grads:
        p, state = step(p, state, jax.tree.map(lambda x: jnp.asarray(x, dtype), g))
        out.append(jax.tree.map(np.asarray, p))
    return out


def worst(actual, expected):
    return max(
        float(np.max(np.abs(a[k] - e[k]) / np.maximum(np.abs(e[k]), 1e-3)))
        for a, e in zip(actual, expected, strict=True)
        for k in e
    )


def test_the_chosen_key_rebalances():
    draws, _ = random_numbers({}, np.float32)
    assert [t for t, d in enumerate(draws) if d < 0.01] == [2]


@pytest.mark.parametrize(("kwargs", "schedule"), list(CASES.values()), ids=list(CASES))
def test_trajectory_matches_official_kron_float64(kwargs, schedule):
    with jax.enable_x64(True):
        draws, noises = random_numbers(kwargs, np.float64)
        actual = run_optix(kwargs, schedule, np.float64)
    expected = run_reference(kwargs, schedule, np.float64, draws, noises)
    assert worst(expected[-1:], [problem()[0]]) > 0.1  # the params moved
    assert worst(actual, expected) < 1e-10


F32_CASES = ["default", "decay_modes_schedule"]


@pytest.mark.parametrize(("kwargs", "schedule"), [CASES[c] for c in F32_CASES], ids=F32_CASES)
def test_trajectory_matches_official_kron_float32(kwargs, schedule):
    draws, noises = random_numbers(kwargs, np.float32)
    actual = run_optix(kwargs, schedule, np.float32)
    for dtype in (np.float64, np.float32):  # the exact answer and the reference's float32 run
        expected = run_reference(kwargs, schedule, dtype, draws, noises)
        assert worst(actual, expected) < F32_RTOL["kron"]


def test_update_schedule_counts_steps():
    """prob 1/3: the factors are fitted on steps 3, 6, 9 only (update_counter restarts)."""
    tx = scale_by_kron(preconditioner_update_probability=1 / 3)
    params = {"w": jnp.ones((2, 2))}
    state = tx.init(params)
    update = jax.jit(tx.update)
    fitted = []
    for _ in range(9):
        before = state.Qs["w"][0]
        _, state = update({"w": jnp.asarray([[1.0, -2.0], [0.5, 3.0]])}, state)
        fitted.append(not np.array_equal(before, state.Qs["w"][0]))
    assert fitted == [False, False, True] * 3


def test_layout_of_the_factors():
    assert merged_shape((2, 3, 5), True) == (6, 5)
    assert merged_shape((5, 3, 2), True) == (15, 2)  # the signed difference decides
    assert merged_shape((), True) == (1,)
    assert diagonal_dims((8, 4), 8192, 2, None) == (False, False)
    assert diagonal_dims((8, 4), 8192, 2, "one_diag") == (True, False)
    assert diagonal_dims((4, 4), 8192, 2, "smart_one_diag") == (False, False)
    assert diagonal_dims((4, 8), 8192, 2, "smart_one_diag") == (False, True)
    assert diagonal_dims((4, 8), 8192, 2, "all_diag") == (True, True)
    assert diagonal_dims((4, 8), 5, 2, None) == (False, True)
    assert diagonal_dims((4, 1), 8192, 2, None) == (False, True)
    assert diagonal_dims((4,), 8192, 2, None) == (True,)
    state = scale_by_kron(precond_init_scale=4.0).init({"w": jnp.ones((3, 4)), "b": jnp.ones(5)})
    np.testing.assert_allclose(state.Qs["w"][0], 2.0 * np.eye(3))
    np.testing.assert_allclose(state.Qs["b"][0], np.full(5, 4.0))


def test_same_key_same_run_other_key_other_run():
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)}
    g = {"w": jnp.asarray([[0.3, -1.0, 2.0], [1.0, 0.1, -0.4]])}

    def first_update(key):
        tx = kron(0.1, key=key)
        return tx.update(g, tx.init(params), params)[0]["w"]

    np.testing.assert_array_equal(first_update(3), first_update(3))
    assert not np.array_equal(first_update(3), first_update(4))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: kron(b1=1.0), "kron: b1 must be in [0, 1), got b1=1.0"),
        (
            lambda: kron(preconditioner_update_probability=0.0),
            "kron: preconditioner_update_probability must be in (0, 1]",
        ),
        (lambda: kron(memory_save_mode="two_diag"), "kron: memory_save_mode must be one of"),
        (lambda: kron(precond_init_scale=0.0), "kron: precond_init_scale must be > 0"),
        (lambda: kron(weight_decay=-1.0), "kron: weight_decay must be finite and >= 0"),
        (lambda: scale_by_kron(precond_lr=-0.1), "scale_by_kron: precond_lr must be finite"),
    ],
)  # fmt: skip
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
