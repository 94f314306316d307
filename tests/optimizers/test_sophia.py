"""Sophia: optax.contrib.sophia (Hutchinson estimates) and the official SophiaG
(sophia_opt.SophiaG, the packaged Liuhong99/Sophia sophia.py) with its GNB estimate."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from sophia_opt import SophiaG

import optix
from optix.core import GradientTransformation
from optix.optimizers.sophia import SophiaState, scale_by_sophia, sophia
from optix.optimizers.sophia_g import (
    gauss_newton_bartlett_estimator,
    gnb_hessian_diagonal,
    scale_by_sophia_g,
    sophia_g,
)
from tests.optax_layout import assert_same_layout
from tests.reference import (
    SHAPES,
    assert_trajectories_close,
    gradient_sequence,
    initial_params,
    learning_rates,
    lr_schedule,
)
from tests.registry.sharpness_lowrank import F32_RTOL

STEPS = 12


def loss(p, t):
    """Separable, convex: log(cosh(p - t)) + 0.05 p**2 per entry (Hessian > 0, diagonal)."""
    return sum(jnp.sum(jnp.logaddexp(p[k] - t[k], t[k] - p[k]) + 0.05 * p[k] ** 2) for k in p)


def targets(dtype):
    return [{k: (0.5 * v).astype(dtype) for k, v in g.items()} for g in gradient_sequence(STEPS)]


def run_optax_style(tx, lib, dtype):
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)

    @jax.jit
    def step(params, state, t):
        obj_fn = lambda p: loss(p, t)
        updates, state = tx.update(jax.grad(obj_fn)(params), state, params, obj_fn=obj_fn)
        return lib.apply_updates(params, updates), state

    out = []
    for t in targets(dtype):
        params, state = step(params, state, t)
        out.append(jax.tree.map(np.asarray, params))
    return out, state


# Without clipping, the first steps are |m| / (gamma * nu) with nu = (1 - b2) * h: steps
# of ~1e2 that amplify float32 rounding; measured 1.4e-4 from Optax's float64 run.
NOCLIP_F32_RTOL = 2e-4
OPTAX_CASES = {
    "default": {},
    "interval3_noclip_wd": {
        "update_interval": 3,
        "clip_threshold": None,
        "gamma": 0.05,
        "weight_decay": 0.1,
    },
}


@pytest.mark.parametrize("case", list(OPTAX_CASES))
def test_sophia_matches_optax_sophia(case):
    kwargs = OPTAX_CASES[case]
    with jax.enable_x64(True):
        ours, state = run_optax_style(sophia(0.05, **kwargs), optix, np.float64)
        with jax.numpy_dtype_promotion("standard"):
            theirs, their_state = run_optax_style(
                optax.contrib.sophia(0.05, **kwargs), optax, np.float64
            )
    assert_trajectories_close(ours, theirs, 1e-10)
    assert_same_layout(state, their_state)
    ours32, _ = run_optax_style(sophia(0.05, **kwargs), optix, np.float32)
    assert_trajectories_close(ours32, theirs, NOCLIP_F32_RTOL if kwargs else F32_RTOL["sophia"])


def explicit_estimator(batch):
    """A test estimator: B * g_s**2 from the extra argument ``sampled_grads`` (g_s),
    as ``SophiaG.update_hessian`` forms it from the gradient of the sampled-label loss."""

    def update(updates, state, params=None, *, sampled_grads=None, **extra_args):
        return jax.tree.map(lambda g: batch * g * g, sampled_grads), state

    return GradientTransformation(lambda params: optix.EmptyState(), update)


BATCH, INTERVAL = 8, 3


def sampled_gradients(dtype):
    return [
        {k: (0.3 * v).astype(dtype) for k, v in g.items()} for g in gradient_sequence(STEPS, seed=7)
    ]


def run_official(dtype, lrs, **kwargs):
    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)
    try:
        tensors = {
            k: torch.tensor(v, dtype=torch_dtype, requires_grad=True)
            for k, v in initial_params().items()
        }
        opt = SophiaG(list(tensors.values()), lr=lrs[0], **kwargs)
        out = []
        for t, (g, gs) in enumerate(
            zip(gradient_sequence(STEPS), sampled_gradients(dtype), strict=True)
        ):
            opt.param_groups[0]["lr"] = lrs[t]
            for k in SHAPES:
                tensors[k].grad = torch.tensor(g[k], dtype=torch_dtype)
            opt.step(bs=BATCH)
            if t % INTERVAL == INTERVAL - 1:  # train_sophiag.py's hessian iterations
                for k in SHAPES:
                    tensors[k].grad = torch.tensor(gs[k], dtype=torch_dtype)
                opt.update_hessian()
            out.append({k: tensors[k].detach().numpy().copy() for k in SHAPES})
        return out
    finally:
        torch.set_default_dtype(previous)


def run_sophia_g(tx, dtype):
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), initial_params())
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)

    @jax.jit
    def step(params, state, g, gs):
        updates, state = tx.update(g, state, params, sampled_grads=gs)
        return optix.apply_updates(params, updates), state

    out, previous = [], zeros
    for g, gs in zip(gradient_sequence(STEPS), sampled_gradients(dtype), strict=True):
        cast = lambda tree: jax.tree.map(lambda x: jnp.asarray(x, dtype), tree)
        params, state = step(params, state, cast(g), previous)  # the estimate after the last step
        previous = cast(gs)
        out.append(jax.tree.map(np.asarray, params))
    return out


G_CASES = {
    "official_defaults": ({}, {}),
    "rho_betas_wd": (
        {"rho": 0.01, "b1": 0.9, "b2": 0.95, "weight_decay": 0.5},
        {"rho": 0.01, "betas": (0.9, 0.95), "weight_decay": 0.5},
    ),
}


@pytest.mark.parametrize("schedule", [False, True], ids=["constant_lr", "lr_every_step"])
@pytest.mark.parametrize("case", list(G_CASES))
def test_sophia_g_matches_official_sophia_g(case, schedule):
    kwargs, torch_kwargs = G_CASES[case]
    lrs = learning_rates(STEPS) if schedule else [0.05] * STEPS
    make = lambda: sophia_g(
        lr_schedule if schedule else 0.05,
        update_interval=INTERVAL,
        hessian_diagonal_fn=explicit_estimator(BATCH),
        **kwargs,
    )
    expected = run_official(np.float64, lrs, **torch_kwargs)
    with jax.enable_x64(True):
        assert_trajectories_close(run_sophia_g(make(), np.float64), expected, 1e-10)
    ours32 = run_sophia_g(make(), np.float32)
    assert_trajectories_close(ours32, expected, F32_RTOL["sophia_g"])
    assert_trajectories_close(
        ours32, run_official(np.float32, lrs, **torch_kwargs), F32_RTOL["sophia_g"]
    )


def test_gnb_estimate_matches_the_official_sampled_label_gradient(x64):
    """B * g**2 of torch's mean cross-entropy at labels drawn as the estimator draws them."""
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)
    params = {"w": jnp.asarray(w), "b": jnp.asarray(b)}
    logits_fn = lambda p: jnp.asarray(x) @ p["w"] + p["b"][None, None, :]
    tx = gauss_newton_bartlett_estimator(3)
    state = tx.init(params)
    h, new_state = tx.update(params, state, params, logits_fn=logits_fn)
    _, sample_key = jax.random.split(state.key)
    labels = np.asarray(jax.random.categorical(sample_key, logits_fn(params), axis=-1))
    tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    logits = torch.tensor(x) @ tw + tb
    torch.nn.functional.cross_entropy(logits.view(-1, 5), torch.tensor(labels).view(-1)).backward()
    np.testing.assert_allclose(h["w"], 6 * tw.grad.numpy() ** 2, rtol=1e-10)
    np.testing.assert_allclose(h["b"], 6 * tb.grad.numpy() ** 2, rtol=1e-10)
    assert not np.array_equal(new_state.key, state.key)
    direct = gnb_hessian_diagonal(logits_fn, params, sample_key)
    np.testing.assert_array_equal(direct["w"], h["w"])


def test_sophia_g_with_gnb_trains_a_softmax_regression():
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.normal(size=(64, 4)), jnp.float32)
    y = jnp.argmax(x @ jnp.asarray(rng.normal(size=(4, 3)), jnp.float32), axis=-1)
    params = {"w": jnp.zeros((4, 3)), "b": jnp.zeros(3)}
    logits_fn = lambda p: x @ p["w"] + p["b"][None, :]
    ce = lambda p: optix.losses.softmax_cross_entropy_with_integer_labels(logits_fn(p), y).mean()
    tx = sophia_g(0.05, update_interval=2, rho=0.05, weight_decay=0.0)
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(ce)(params), state, params, logits_fn=logits_fn)
        return optix.apply_updates(params, updates), state

    start = ce(params)
    for _ in range(30):
        params, state = step(params, state)
    assert float(ce(params)) < 0.9 * float(start)
    nu = state[0].nu
    assert float(jnp.min(nu["w"])) > 0  # the GNB estimate is >= 0 and was taken
    assert isinstance(state[0], SophiaState)


def test_sophia_g_before_the_first_estimate_is_sign_momentum():
    tx = scale_by_sophia_g(b1=0.5, update_interval=5, hessian_diagonal_fn=explicit_estimator(1))
    p = jnp.asarray([1.0, -1.0, 0.0])
    state = tx.init(p)
    u, state = tx.update(jnp.asarray([1e-3, -2.0, 0.0]), state, p, sampled_grads=p)
    np.testing.assert_array_equal(u, [1.0, -1.0, 0.0])
    assert float(jnp.max(state.nu)) == 0.0


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: sophia(0.1, b1=1.0), ValueError, "scale_by_sophia: b1 must be in"),
        (lambda: sophia(0.1, update_interval=0), ValueError, "update_interval must be >= 1"),
        (lambda: sophia(0.1, clip_threshold=0.0), ValueError, "clip_threshold must be > 0"),
        (lambda: sophia(0.1, eps=-1.0), ValueError, "eps must be finite and >= 0"),
        (lambda: sophia_g(0.1, rho=0.0), ValueError, "scale_by_sophia_g: rho must be > 0"),
        (lambda: sophia_g("1e-4"), TypeError, "sophia_g: learning_rate must be"),
        (lambda: gauss_newton_bartlett_estimator("0"), TypeError, "random_seed must be"),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_missing_params_or_logits_fn_is_explained():
    p = jnp.ones(2)
    with pytest.raises(ValueError, match="scale_by_sophia: update needs params"):
        scale_by_sophia().update(p, scale_by_sophia().init(p))
    tx = scale_by_sophia_g()
    with pytest.raises(ValueError, match="needs params and the keyword argument logits_fn"):
        tx.update(p, tx.init(p), p)


@pytest.mark.parametrize("name", ["sophia", "sophia_g"])
def test_mu_dtype_sets_only_mu(name):
    """(The registry's state-dtype suite drives optimizers without an objective.)"""
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    estimator = explicit_estimator(1)
    make = sophia if name == "sophia" else sophia_g
    tx = make(0.1, update_interval=1, hessian_diagonal_fn=estimator, mu_dtype=jnp.bfloat16)
    state = tx.init(params)
    for _ in range(2):
        updates, state = jax.jit(tx.update)(params, state, params, sampled_grads=params)
    assert {x.dtype for x in jax.tree.leaves(state[0].mu)} == {jnp.dtype(jnp.bfloat16)}
    assert {x.dtype for x in jax.tree.leaves(state[0].nu)} == {jnp.dtype(jnp.float32)}
    assert {x.dtype for x in jax.tree.leaves(updates)} == {jnp.dtype(jnp.float32)}
    assert float(jnp.min(state[0].nu["w"])) > 0
