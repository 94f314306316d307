"""Dynamic loss scaling: torch.amp.GradScaler's scale sequence and skipped steps,
growth and backoff, and skipped steps that leave params and inner state untouched."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optix
from optix.precision.loss_scaling import (
    DynamicLossScaleState,
    current_loss_scale,
    dynamic_loss_scale,
    scale_loss,
    unscale_grads,
    with_dynamic_loss_scale,
)
from optix.precision.master_weights import with_master_weights
from tests.precision.helpers import check_wrapper_contract
from tests.transforms.wrapper_helpers import assert_trees_equal, counting

# Gradient multipliers: inf and nan overflow, the others are finite.
SEQUENCE = [1.0, np.inf, 1.0, 1.0, 1.0, 0.5, np.nan, np.nan, 2.0, 1.0, -np.inf, 1.0, 1.0, 1.0]


def torch_run(sequence, **scaler_args):
    p = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 4))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", **scaler_args)
    out = []
    for v in sequence:
        scaler.scale(torch.tensor(1.0))
        p.grad = torch.linspace(0.5, 2.0, 4) * v * scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        out.append((p.detach().numpy().copy(), scaler.get_scale(), int(scaler._growth_tracker)))
    return out


def optix_run(sequence, tx):
    params = jnp.linspace(-1.0, 1.0, 4)
    state = tx.init(params)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    out = []
    for v in sequence:
        g = jnp.linspace(0.5, 2.0, 4) * jnp.float32(v) * current_loss_scale(state)
        updates, state = step(g, state, params)
        params = optix.apply_updates(params, updates)
        out.append((np.asarray(params), float(current_loss_scale(state)), int(state[0].good_steps)))
    return out, state


def test_same_scales_skips_and_params_as_torch_grad_scaler():
    args = {"init_scale": 8.0, "growth_interval": 3, "growth_factor": 4.0, "backoff_factor": 0.25}
    theirs = torch_run(SEQUENCE, **args)
    tx = with_dynamic_loss_scale(optix.torch.sgd(0.1, momentum=0.9), **args, min_scale=0.0)
    ours, state = optix_run(SEQUENCE, tx)
    for (p, scale, tracker), (p_ref, scale_ref, tracker_ref) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p, p_ref, rtol=1e-6)
        assert (scale, tracker) == (scale_ref, tracker_ref)
    assert [s for _, s, _ in ours][:5] == [8.0, 2.0, 2.0, 2.0, 8.0]
    assert int(state[1].total_notfinite) == 4


def test_growth_waits_for_the_interval_and_never_overflows():
    tx = dynamic_loss_scale(init_scale=2.0**100, growth_interval=2, growth_factor=2.0**20)
    state, scales = tx.init(None), []
    for _ in range(8):
        _, state = tx.update(jnp.ones(2), state)
        scales.append(float(state.loss_scale))
    # grows every second finite step; 2**140 would overflow float32, so it stays at 2**120
    assert scales == [2.0**e for e in [100, 120, 120, 120, 120, 120, 120, 120]]
    assert int(state.good_steps) == 0


def test_backoff_stops_at_min_scale():
    tx = dynamic_loss_scale(init_scale=16.0, backoff_factor=0.5, min_scale=2.0)
    state, scales = tx.init(None), []
    for _ in range(5):
        _, state = tx.update(jnp.asarray([1.0, np.inf]), state)
        scales.append(float(state.loss_scale))
    assert scales == [8.0, 4.0, 2.0, 2.0, 2.0] and int(state.good_steps) == 0


def test_skipped_steps_leave_params_and_inner_state_bit_for_bit():
    calls = []
    tx = with_dynamic_loss_scale(counting(optix.adamw(0.1), calls), init_scale=4.0)
    params = {"w": jnp.linspace(-1.0, 1.0, 6), "b": jnp.ones(2)}
    state = tx.init(params)
    step = jax.jit(lambda g, s: tx.update(g, s, params, unused=1))
    good = jax.tree.map(jnp.ones_like, params)
    _, state = step(good, state)
    bad = {"w": good["w"].at[2].set(np.inf), "b": good["b"]}
    updates, skipped = step(bad, state)
    jax.block_until_ready(updates)
    assert len(calls) == 1  # the inner update did not run
    assert_trees_equal(skipped[1].inner_state, state[1].inner_state)
    assert_trees_equal(optix.apply_updates(params, updates), params)
    assert float(current_loss_scale(skipped)) == 2.0


def test_unscaled_grads_are_float32_and_underflow_no_more():
    w = jnp.asarray([1e-3, -2e-3, 3e-3, 4e-3], jnp.float16)

    c = jnp.float16(1e-6)

    def loss(w):  # its gradients, near 1e-9, flush to zero in float16
        return jnp.sum(jnp.square(w)) * c

    assert not np.any(np.asarray(jax.grad(loss)(w)))
    scale = jnp.float32(2.0**15)  # 2**16 itself overflows float16 (max 65504)
    grads = jax.grad(lambda w: scale_loss(loss(w), scale))(w)
    unscaled = unscale_grads({"w": grads, "none": None}, scale)
    assert unscaled["none"] is None and unscaled["w"].dtype == jnp.float32
    exact = 2 * float(c) * np.asarray(w, np.float64)
    np.testing.assert_allclose(unscaled["w"], exact, rtol=2e-3)
    assert scale_loss(jnp.float16(3.0), scale).dtype == jnp.float32


def test_float16_training_with_master_weights_backs_off_then_learns():
    c = jnp.float16(1e-6)
    loss = lambda w: jnp.sum(jnp.square(w)) * c  # float16 gradients near 1e-9 flush to zero
    tx = with_dynamic_loss_scale(with_master_weights(optix.sgd(1e3)), init_scale=2.0**17)
    w = jnp.asarray([1e-3, -2e-3, 3e-3, 4e-3], jnp.float16)
    state = tx.init(w)

    @jax.jit
    def step(w, state):
        grads = jax.grad(lambda w: scale_loss(loss(w), current_loss_scale(state)))(w)
        updates, state = tx.update(grads, state, w)
        return optix.apply_updates(w, updates), state

    for _ in range(12):
        w, state = step(w, state)
    # 2**17 and 2**16 overflow float16's backward pass: two skipped steps, then 10 steps
    assert int(state[1].total_notfinite) == 2 and float(current_loss_scale(state)) == 2.0**15
    expected = np.asarray([1e-3, -2e-3, 3e-3, 4e-3], np.float64)
    expected = expected * (1 - 1e3 * 2 * float(c)) ** 10  # float64 gradient descent
    master = state[1].inner_state.master
    np.testing.assert_allclose(master, expected, rtol=2e-3)
    assert np.all(np.abs(master - np.asarray([1e-3, -2e-3, 3e-3, 4e-3])) > 1e-5)
    np.testing.assert_array_equal(w, master.astype(jnp.float16))


def test_wrapper_contract():
    params = {"w": jnp.ones((2, 3), jnp.float16), "frozen": None}
    grads = {"w": jnp.full((2, 3), 2.0**10, jnp.float16), "frozen": None}
    wrap = lambda inner: with_dynamic_loss_scale(inner, init_scale=2.0**10, growth_interval=2)
    new_params, state = check_wrapper_contract(wrap, optix.sgd(0.1), params, grads)
    # unscaled gradients 1, 1, then 0.5 after the scale grew at the second finite step
    np.testing.assert_allclose(np.asarray(new_params["w"], np.float32), 0.75, rtol=1e-3)
    assert float(current_loss_scale(state)) == 2.0**11


def test_current_loss_scale_finds_the_scale_or_explains():
    state = with_dynamic_loss_scale(optix.sgd(0.1), init_scale=32.0).init(jnp.ones(2))
    assert float(current_loss_scale(state)) == 32.0
    assert isinstance(state[0], DynamicLossScaleState) and state[0].loss_scale.dtype == jnp.float32
    with pytest.raises(KeyError, match="current_loss_scale: the state holds no loss_scale"):
        current_loss_scale(optix.sgd(0.1).init(jnp.ones(2)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"init_scale": 0.0}, "init_scale must be > 0, got init_scale=0.0"),
        ({"growth_interval": 0}, "growth_interval must be >= 1, got growth_interval=0"),
        ({"growth_factor": 0.5}, "growth_factor must be finite and >= 1, got growth_factor=0.5"),
        ({"backoff_factor": 1.5}, r"backoff_factor must be in \[0, 1\], got backoff_factor=1.5"),
        ({"backoff_factor": 0.0}, "backoff_factor must be > 0, got backoff_factor=0.0"),
        ({"min_scale": -1.0}, "min_scale must be finite and >= 0, got min_scale=-1.0"),
    ],
)
def test_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=f"dynamic_loss_scale: {message}"):
        dynamic_loss_scale(**kwargs)
