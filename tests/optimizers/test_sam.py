"""SAM: optax.contrib.sam (transparent and opaque modes) and the two-pass SAM / ASAM of
davda54/sam (NumPy transliteration in tests/references/sam.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.optimizers.sam import SAMState, sam, sam_gradient, sam_sgd, scale_by_sam
from optix.transforms.normalize import normalize
from tests.optax_layout import assert_same_layout
from tests.reference import (
    DTYPES,
    assert_trajectories_close,
    compare,
    initial_params,
    optax_reference,
)
from tests.references.sam import batch_targets, run_davda54_sam
from tests.registry.sharpness_lowrank import F32_RTOL

STEPS = 12


def jax_loss(p, t):
    """tests/references/sam.py's loss; log(cosh(x)) as logaddexp(x, -x) - log(2), whose
    gradient stays finite (tanh) where cosh overflows."""
    return sum(jnp.sum(jnp.logaddexp(p[k] - t[k], t[k] - p[k]) + 0.05 * p[k] ** 2) for k in p)


def run_two_pass(tx, dtype, steps=STEPS, pass_value_fn=False):
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)

    @jax.jit
    def step(params, state, t):
        loss = lambda p: jax_loss(p, t)
        grads = jax.grad(loss)(params)
        extra = {"value_fn": loss} if pass_value_fn else {"grad_fn": jax.grad(loss)}
        updates, state = tx.update(grads, state, params, **extra)
        return optix.apply_updates(params, updates), state

    trajectory = []
    for t in batch_targets(steps, dtype):
        params, state = step(params, state, t)
        trajectory.append(jax.tree.map(np.asarray, params))
    return trajectory


TWO_PASS_CASES = [
    {"lr": 0.05, "rho": 0.05},
    {"lr": 0.05, "rho": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    {"lr": 0.05, "rho": 0.1, "momentum": 0.9, "nesterov": True},
    {"lr": 0.05, "rho": 0.5, "adaptive": True, "momentum": 0.5, "weight_decay": 0.1},
]


@DTYPES
@pytest.mark.parametrize("kwargs", TWO_PASS_CASES, ids=["plain", "momentum_wd", "nesterov", "asam"])
def test_sam_sgd_matches_davda54_sam(kwargs, dtype):
    make = lambda: sam_sgd(kwargs["lr"], **{k: v for k, v in kwargs.items() if k != "lr"})
    expected = run_davda54_sam(np.float64, STEPS, **kwargs)
    if dtype == np.float64:
        with jax.enable_x64(True):
            actual = run_two_pass(make(), np.float64)
        assert_trajectories_close(actual, expected, 1e-10)
        return
    actual = run_two_pass(make(), np.float32)
    assert_trajectories_close(actual, expected, F32_RTOL["sam_sgd"])
    expected32 = run_davda54_sam(np.float32, STEPS, **kwargs)
    assert_trajectories_close(actual, expected32, F32_RTOL["sam_sgd"])


def test_value_fn_stands_for_grad_fn_and_rho_zero_is_plain_sgd(x64):
    a = run_two_pass(sam_sgd(0.05, rho=0.1), np.float64, steps=4)
    b = run_two_pass(sam_sgd(0.05, rho=0.1), np.float64, steps=4, pass_value_fn=True)
    for x, y in zip(a, b, strict=True):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    plain = run_two_pass(optix.chain(scale_by_sam(0.0), optix.sgd(0.05)), np.float64, steps=3)
    expected = run_davda54_sam(np.float64, 3, lr=0.05, rho=0.0)
    assert_trajectories_close(plain, expected, 1e-12)
    assert not np.allclose(plain[-1]["w"], a[2]["w"], rtol=1e-6)  # rho changes the path


def test_sam_gradient_is_the_gradient_at_the_climbed_point(x64):
    params = {"a": jnp.asarray([1.0, -2.0]), "b": jnp.asarray(3.0)}
    grad_fn = jax.grad(lambda p: jnp.sum(p["a"] ** 3) + p["b"] ** 2)
    # the gradient at params: a: [3, 12], b: 6
    n = np.sqrt(9 + 144 + 36)
    e = {"a": 0.2 * np.asarray([3.0, 12.0]) / n, "b": 0.2 * 6.0 / n}
    expected = {"a": 3 * (np.asarray([1.0, -2.0]) + e["a"]) ** 2, "b": 2 * (3.0 + e["b"])}
    actual = sam_gradient(grad_fn, params, rho=0.2)
    np.testing.assert_allclose(actual["a"], expected["a"], rtol=1e-9)
    np.testing.assert_allclose(actual["b"], expected["b"], rtol=1e-9)
    # ASAM: T = |p|
    n = np.sqrt(3.0**2 + 24.0**2 + 18.0**2)
    e = {"a": 0.2 * np.asarray([1.0, 4.0]) * np.asarray([3.0, 12.0]) / n, "b": 0.2 * 54.0 / n}
    actual = sam_gradient(grad_fn, params, rho=0.2, adaptive=True)
    np.testing.assert_allclose(actual["a"], 3 * (np.asarray([1.0, -2.0]) + e["a"]) ** 2)
    np.testing.assert_allclose(actual["b"], 2 * (3.0 + e["b"]), rtol=1e-9)


def _pair(lib, lr, case):
    if case == "adam_outer":
        return lib.adam(lr), lib.chain(lib.normalize_by_update_norm(), lib.sgd(0.1)), {}
    return lib.sgd(lr, momentum=0.9), lib.adam(0.02), {"sync_period": 3, "reset_state": False}


@DTYPES
@pytest.mark.parametrize("case", ["adam_outer", "period3_no_reset"])
def test_transparent_mode_matches_optax_sam(case, dtype):
    def make(lib, sam_fn):
        return lambda lr: sam_fn(*_pair(lib, lr, case)[:2], **_pair(lib, lr, case)[2])

    compare(
        make(optix, sam),
        optax_reference(make(optax, optax.contrib.sam)),
        dtype,
        False,
        F32_RTOL["sam"],
        same_dtype_reference=False,
    )


def _opaque_run(tx, lib, dtype, steps=3):
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)

    @jax.jit
    def step(params, state, t):
        grad_fn = lambda p, i: jax.grad(jax_loss)(p, jax.tree.map(lambda x: x * (1 + i), t))
        updates, state = tx.update(grad_fn(params, -1), state, params, grad_fn=grad_fn)
        return lib.apply_updates(params, updates), state

    out = []
    for t in batch_targets(steps, dtype):
        params, state = step(params, state, t)
        out.append(jax.tree.map(np.asarray, params))
    return out, state


@pytest.mark.parametrize("reset_state", [True, False])
def test_opaque_mode_matches_optax_sam(reset_state, x64):
    def make(lib, sam_fn):
        adv = lib.chain(normalize() if lib is optix else optax.contrib.normalize(), lib.adam(0.1))
        return sam_fn(lib.sgd(0.05), adv, sync_period=3, reset_state=reset_state, opaque_mode=True)

    ours, state = _opaque_run(make(optix, sam), optix, np.float64)
    with jax.numpy_dtype_promotion("standard"):
        theirs, their_state = _opaque_run(make(optax, optax.contrib.sam), optax, np.float64)
    assert_trajectories_close(ours, theirs, 1e-10)
    assert state.cache is None and int(state.steps_since_sync) == 0
    assert_same_layout(state, their_state)
    adv_count = state.adv_state[1][0].count
    assert int(adv_count) == (0 if reset_state else 6)


def test_state_layout_is_optax_s():
    params = {k: jnp.asarray(v, jnp.float32) for k, v in initial_params().items()}
    ours = sam(optix.sgd(0.1), optix.chain(normalize(), optix.sgd(0.05))).init(params)
    theirs = optax.contrib.sam(
        optax.sgd(0.1), optax.chain(optax.contrib.normalize(), optax.sgd(0.05))
    ).init(params)
    assert_same_layout(ours, theirs)
    assert isinstance(ours, SAMState)


def test_sync_period_one_is_the_plain_outer_optimizer(x64):
    ours = compare_runs(sam(optix.adam(0.05), optix.sgd(0.1), sync_period=1))
    plain = compare_runs(optix.adam(0.05))
    assert_trajectories_close(ours, plain, 1e-15)


def compare_runs(tx):
    from tests.reference import run_jax

    return run_jax(tx, np.float64, steps=6)


def test_adversarial_step_climbs_and_outer_step_starts_from_the_cache():
    tx = sam(optix.sgd(1.0), optix.sgd(0.5))
    p0 = jnp.asarray([1.0])
    state = tx.init(p0)
    u, state = tx.update(jnp.asarray([2.0]), state, p0)
    np.testing.assert_allclose(u, [1.0])  # + 0.5 * g: ascent
    p1 = p0 + u
    u, state = tx.update(jnp.asarray([4.0]), state, p1)
    np.testing.assert_allclose(p1 + u, [1.0 - 4.0])  # cache - lr * g(adversarial)
    assert int(state.steps_since_sync) == 0


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: sam(optix.sgd(1.0), optix.sgd(1.0), sync_period=0),
            ValueError,
            "sam: sync_period must be >= 1",
        ),
        (lambda: sam_sgd(0.1, rho=-1.0), ValueError, "sam_sgd: rho must be finite and >= 0"),
        (lambda: sam_sgd("0.1"), TypeError, "sam_sgd: learning_rate must be"),
        (lambda: sam_sgd(0.1, nesterov=True), ValueError, "requires momentum > 0"),
        (lambda: scale_by_sam(rho=-0.1), ValueError, "scale_by_sam: rho must be"),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_missing_grad_fn_is_explained():
    params = jnp.ones(2)
    with pytest.raises(ValueError, match=r"scale_by_sam: update needs params and .*grad_fn"):
        scale_by_sam().update(params, scale_by_sam().init(params), params)
    tx = sam(optix.sgd(1.0), optix.sgd(1.0), opaque_mode=True)
    with pytest.raises(ValueError, match="opaque_mode=True needs the keyword argument grad_fn"):
        tx.update(params, tx.init(params), params)
