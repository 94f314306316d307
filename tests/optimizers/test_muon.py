"""Optax's Muon: trajectories and state layouts against optax.contrib.muon and
optax.contrib.scale_by_muon, the cases of Optax's _muon_test.py, the compiled loop."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.optimizers.muon import muon, scale_by_muon
from optix.optimizers.muon_axes import MuonDimensionNumbers, to_matrices
from optix.optimizers.newton_schulz import JORDAN_NS_COEFFS, orthogonalize_via_newton_schulz
from optix.transforms.masking import MaskedNode
from tests import reference
from tests.optax_layout import assert_same_layout
from tests.registry.muon import F32_RTOL

OptaxDims = optax.contrib.MuonDimensionNumbers
F64, F32 = np.float64, np.float32


def to_optax(kwargs):
    """The same arguments with Optax's MuonDimensionNumbers."""
    convert = lambda d: OptaxDims(*d) if isinstance(d, MuonDimensionNumbers) else d
    is_dims = lambda x: x is None or isinstance(x, MuonDimensionNumbers)
    return {k: jax.tree.map(convert, v, is_leaf=is_dims) for k, v in kwargs.items()}


WD_PLAIN = {"weight_decay": 0.1, "nesterov": False, "adam_weight_decay": 0.2}


@pytest.mark.parametrize(
    ("kwargs", "dtype", "schedule"),
    [
        ({}, F64, False),
        ({}, F32, False),
        ({**WD_PLAIN, "preconditioning": "spectral"}, F64, True),
        ({"adaptive": True, "preconditioning": "aol", "ns_coeffs": "dion"}, F64, False),
        ({"preconditioning": "schatten", "ns_steps": 7, "beta": 0.8, "consistent_rms": 0.2,
          "adam_learning_rate": 0.01, "adam_b1": 0.5, "adam_eps_root": 1e-8}, F64, True),
    ],
    ids=["default-f64", "default-f32", "wd_plain_spectral", "adaptive_aol_dion", "schatten_adam"],
)  # fmt: skip
def test_trajectory_matches_optax_muon(kwargs, dtype, schedule):
    reference.compare(
        lambda lr: muon(lr, **kwargs),
        reference.optax_reference(lambda lr: optax.contrib.muon(lr, **to_optax(kwargs))),
        dtype,
        schedule,
        F32_RTOL["muon"],
        same_dtype_reference=False,
    )


def test_stacked_and_conv_leaves_follow_optax(monkeypatch):
    """Batch axes (stacked layers) and multi-axis matrices (a Flax conv kernel)."""
    monkeypatch.setattr(reference, "SHAPES", {"stack": (3, 4, 5), "conv": (2, 2, 3, 4), "b": (4,)})
    dims = {
        "stack": MuonDimensionNumbers(1, 2),
        "conv": MuonDimensionNumbers((0, 1, 2), 3),
        "b": None,
    }
    kwargs = {"muon_weight_dimension_numbers": dims, "nesterov": False}
    reference.compare(
        lambda lr: muon(lr, **kwargs),
        reference.optax_reference(lambda lr: optax.contrib.muon(lr, **to_optax(kwargs))),
        F64,
        False,
        F32_RTOL["muon"],
    )


@pytest.mark.parametrize("mu_dtype", [None, jnp.bfloat16])
def test_scale_by_muon_matches_optax(mu_dtype):
    """One leaf per matrix, dims as a tree (Optax's needs one), mu_dtype kept."""
    params = {"a": jnp.ones((4, 3)), "b": jnp.ones((2, 3, 5))}
    dims = {"a": MuonDimensionNumbers(), "b": MuonDimensionNumbers(1, 2)}
    ours = scale_by_muon(mu_dtype=mu_dtype, weight_dimension_numbers=dims)
    theirs = optax.contrib.scale_by_muon(
        mu_dtype=mu_dtype, weight_dimension_numbers=to_optax({"d": dims})["d"]
    )
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    assert_same_layout(s_ours, s_theirs)
    step_ours, step_theirs = jax.jit(ours.update), jax.jit(theirs.update)
    # A bfloat16 momentum may round one ulp (4e-3) apart; the iteration amplifies it.
    rtol = 2e-4 if mu_dtype is None else 3e-2
    for k in range(3):
        g = jax.tree.map(lambda x, k=k: jax.random.normal(jax.random.key(k), x.shape), params)
        u_ours, s_ours = step_ours(g, s_ours)
        with jax.numpy_dtype_promotion("standard"):
            u_theirs, s_theirs = step_theirs(g, s_theirs)
        for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=2e-5)
    assert s_ours.mu["a"].dtype == (mu_dtype or jnp.float32)


def _mu_of_muon_group(state):
    return state.inner_states["muon"].inner_state[0].mu


@pytest.mark.parametrize(
    ("params", "dims", "muon_leaves"),
    [
        ({"w1": (1, 2, 3), "w2": (2, 3, 4)}, "both", {"w1", "w2"}),
        ({"w1": (1, 2, 3), "w2": (3, 4)}, None, {"w2"}),
        ({"w1": (1, 2, 3), "w2": (2, 3, 4)}, {"w1": None, "w2": "d"}, {"w2"}),
        ({"w1": {"a": (2, 3), "b": (2, 3)}, "w2": {"a": (2, 3), "b": (2, 3)}},
         {"w1": None, "w2": {"a": "d", "b": None}}, {"w2.a"}),
        ({"w1": {"a": (2, 3), "b": (2, 3)}, "w2": {"a": (2, 3), "b": (2, 3)}},
         {"w1": "d", "w2": None}, {"w1.a", "w1.b"}),
    ],
    ids=["full", "default", "partial_none", "prefix_none", "prefix_dims"],
)  # fmt: skip
def test_dimension_numbers_choose_the_muon_leaves_with_optax_s_layout(params, dims, muon_leaves):
    params = jax.tree.map(jnp.ones, params, is_leaf=lambda x: isinstance(x, tuple))
    d = MuonDimensionNumbers(1, 2) if dims == "both" else MuonDimensionNumbers()
    if dims == "both":
        dims = {"w1": d, "w2": d}
    elif dims is not None:
        dims = jax.tree.map(lambda x: d if x == "d" else x, dims)
    kwargs = {} if dims is None else {"muon_weight_dimension_numbers": dims}
    tx = muon(1e-3, **kwargs)
    state = tx.init(params)
    assert_same_layout(state, optax.contrib.muon(1e-3, **to_optax(kwargs)).init(params))
    _, state = jax.jit(tx.update)(params, state, params)
    mu = _mu_of_muon_group(state)
    found = {
        jax.tree_util.keystr(path, simple=True, separator=".")
        for path, leaf in jax.tree_util.tree_leaves_with_path(mu)
        if not isinstance(leaf, MaskedNode)
    }
    assert found == muon_leaves


@pytest.mark.parametrize("preconditioning", ["frobenius", "aol"])
def test_callable_dims_and_reshaped_leaves_give_the_2d_update(preconditioning):
    """_muon_test: a callable spec, and (10, 12) seen through 4-D layouts."""
    w = jax.random.normal(jax.random.key(0), (10, 12))

    def first_update(param, dims):
        tx = muon(1e-3, preconditioning=preconditioning, muon_weight_dimension_numbers=dims)
        params = {"w": param, "v": jnp.ones((2, 10))}
        return jax.jit(tx.update)(params, tx.init(params), params)[0]["w"]

    plain = first_update(w, lambda p: jax.tree.map(lambda x: MuonDimensionNumbers(), p))
    tree = first_update(w, {"w": MuonDimensionNumbers(), "v": None})
    np.testing.assert_allclose(tree, plain, rtol=1e-5, atol=1e-8)
    to_4d = lambda x: x.reshape(10, 3, 1, 4).transpose(3, 2, 0, 1)
    u = first_update(to_4d(w), {"w": MuonDimensionNumbers(2, (0, 3)), "v": None})
    np.testing.assert_allclose(u, to_4d(plain), rtol=1e-5, atol=1e-8)
    to_4d = lambda x: x.reshape(2, 1, 5, 12).transpose(2, 3, 1, 0)
    u = first_update(to_4d(w), {"w": MuonDimensionNumbers((0, 3), 1), "v": None})
    np.testing.assert_allclose(u, to_4d(plain), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("shape", "dims", "flat"),
    [
        ((2, 3), MuonDimensionNumbers(0, 1), (1, 2, 3)),
        ((2, 3, 4), MuonDimensionNumbers(0, 2), (3, 2, 4)),
        ((2, 3, 4), MuonDimensionNumbers(-3, -1), (3, 2, 4)),
        ((2, 3, 4, 5), MuonDimensionNumbers(2, 3), (6, 4, 5)),
        ((2, 3, 4, 5), MuonDimensionNumbers(2, (0, 3)), (3, 4, 10)),
    ],
)
def test_to_matrices_and_back(shape, dims, flat):
    x = jnp.arange(math.prod(shape), dtype=jnp.float32).reshape(shape)
    stack, restore = to_matrices(x, dims)
    assert stack.shape == flat
    np.testing.assert_array_equal(restore(stack), x)


def test_batched_iteration_equals_one_matrix_at_a_time():
    x = jax.random.normal(jax.random.key(1), (3, 4, 6))
    coeffs = jnp.asarray(JORDAN_NS_COEFFS)
    stacked = jax.jit(
        lambda x: orthogonalize_via_newton_schulz(
            x, coeffs, dimension_numbers=MuonDimensionNumbers(1, 2)
        )
    )(x)
    one = jax.jit(lambda m: orthogonalize_via_newton_schulz(m, coeffs))
    for i in range(3):
        np.testing.assert_allclose(stacked[i], one(x[i]), rtol=1e-5, atol=1e-6)


def test_newton_schulz_orthogonalizes_real_and_unitarizes_complex():
    """With (2, -1.5, 0.5) the iteration converges to U V^H itself."""
    coeffs = jnp.asarray([2.0, -1.5, 0.5])
    real = jax.random.normal(jax.random.key(0), (4, 3))
    ns = jax.jit(orthogonalize_via_newton_schulz, static_argnames=("ns_steps",))
    q = ns(real, coeffs, ns_steps=20, eps=1e-12)
    np.testing.assert_allclose(q.T @ q, jnp.eye(3), atol=1e-5)
    z = jax.random.normal(jax.random.key(0), (4, 3), jnp.complex64)
    u = ns(z, coeffs, ns_steps=10)
    assert u.shape == z.shape and u.dtype == jnp.complex64
    np.testing.assert_allclose(u.conj().T @ u, jnp.eye(3), atol=1e-5)


def test_complex_params_reach_their_target():
    target = jnp.asarray([[1.0 + 2.0j, 0.0], [-1.0 + 1.0j, 1.0 - 3.0j]], jnp.complex64)
    tx = muon(1e-2, adaptive=True)
    loss = lambda p: jnp.sum(jnp.abs(p - target) ** 2)

    def step(carry, _):
        params, state = carry
        grads = jnp.conj(jax.grad(loss)(params))
        updates, state = tx.update(grads, state, params)
        return (optix.apply_updates(params, updates), state), None

    params = jnp.zeros((2, 2), jnp.complex64)
    (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=1000))(
        (params, tx.init(params))
    )
    np.testing.assert_allclose(params, target, atol=3e-2)


@pytest.mark.parametrize(
    ("preconditioning", "shape"),
    [("frobenius", (20, 10)), ("aol", (10, 20))],
)
def test_updates_are_nearly_orthogonal(preconditioning, shape):
    w = jax.random.normal(jax.random.key(42), shape)
    tx = muon(1.0, preconditioning=preconditioning)
    u = -jax.jit(tx.update)({"w": w}, tx.init({"w": w}), {"w": w})[0]["w"]
    u = u / max(1.0, shape[1] / shape[0]) ** 0.5  # the width factor
    s = jnp.linalg.svd(u, compute_uv=False)
    assert u.shape == shape and s.min() > 0.3 and s.max() < 1.3


def test_preconditionings_differ_and_orthogonalize_a_scaled_identity():
    params = {"w": jnp.eye(8) * 2.0}

    def update(**kwargs):
        tx = muon(0.1, **kwargs)
        return jax.jit(tx.update)(params, tx.init(params), params)[0]["w"]

    frobenius, aol = update(), update(preconditioning="aol", ns_coeffs="dion")
    assert np.max(np.abs(frobenius - aol)) > 1e-3
    for u in (frobenius, aol, update(preconditioning="schatten")):
        gram = u.T @ u
        assert np.linalg.norm(gram / jnp.max(gram) - jnp.eye(8)) < 1e-3


def test_newton_schulz_memory_does_not_grow_with_the_steps():
    """A compiled loop: XLA's temporary buffers are the same for 5 and 50 steps."""
    x = jnp.ones((4, 64, 96))
    dims = MuonDimensionNumbers(1, 2)
    coeffs = jnp.asarray(JORDAN_NS_COEFFS)

    def temp_bytes(steps, coeffs=coeffs):
        f = lambda x: orthogonalize_via_newton_schulz(x, coeffs, steps, dimension_numbers=dims)
        return jax.jit(f).lower(x).compile().memory_analysis().temp_size_in_bytes

    five, fifty = temp_bytes(5), temp_bytes(50)
    assert 0 < fifty <= five
    per_step = jnp.tile(coeffs, (50, 1))  # a schedule of 50 rows runs as a scan
    assert temp_bytes(50, per_step) <= five + per_step.nbytes


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: muon(0.1, beta=1.0), ValueError, "muon: beta must be in (-1, 1), got beta=1.0"),
        (lambda: muon(0.1, ns_coeffs="fast"), ValueError, "muon: ns_coeffs must be one of"),
        (lambda: muon(0.1, ns_coeffs=(1.0, 2.0)), ValueError, "shape (3,) or (n, 3)"),
        (lambda: muon(0.1, ns_coeffs="dion", ns_steps=3), ValueError, "pass ns_steps >= 5"),
        (lambda: muon(0.1, ns_steps=2.5), TypeError, "muon: ns_steps must be an int"),
        (lambda: muon(0.1, preconditioning="svd"), ValueError, "preconditioning must be one of"),
        (lambda: muon(0.1, eps=-1.0), ValueError, "muon: eps must be finite and >= 0"),
        (lambda: scale_by_muon(mu_dtype=jnp.int32), TypeError, "mu_dtype must be a floating"),
    ],
)
def test_bad_hyperparameters_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_a_vector_without_dimension_numbers_is_refused():
    tx = scale_by_muon()
    with pytest.raises(ValueError, match="rank >= 2"):
        tx.update({"b": jnp.ones(3)}, tx.init({"b": jnp.ones(3)}))
