"""project_params: lands on the projection of the step, keeps params in the set, and
converges to constrained optima known from their KKT conditions."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.core import EmptyState
from optix.projections import projection_box, projection_l2_ball, projection_simplex
from optix.transforms.projection import project_params
from tests.transforms.basics import check_basics, make_grads, make_params

BOX = functools.partial(projection_box, lower=-0.5, upper=0.75)


def run(tx, loss, params, steps):
    """``steps`` jitted steps of ``tx`` on ``loss``; yields the params after each step."""

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optix.apply_updates(params, updates), state

    state = tx.init(params)
    for _ in range(steps):
        params, state = step(params, state)
        yield params


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(
    "projection", [projection_simplex, projection_l2_ball, BOX], ids=["simplex", "l2_ball", "box"]
)
def test_applied_step_lands_on_the_projection(projection, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        params = make_params(dtype)
        updates = make_grads(params, 0)
        tx = project_params(projection)
        step, state = tx.update(updates, tx.init(params), params)
        assert state == EmptyState()
        landed = optix.apply_updates(params, step)
        target = projection(optix.apply_updates(params, updates))
        for x, y in zip(jax.tree.leaves(landed), jax.tree.leaves(target), strict=True):
            assert x.dtype == dtype
            ulp = np.finfo(dtype).eps * np.maximum(np.abs(np.asarray(y)), 1.0)
            assert np.all(np.abs(np.asarray(x) - np.asarray(y)) <= ulp)


def test_adam_keeps_params_on_the_simplex_and_in_the_box():
    target = {"w": jnp.asarray([[2.0, -1.0], [0.3, 0.9]]), "b": jnp.asarray([-3.0, 5.0])}
    loss = lambda p: optix.tree.norm(optix.tree.sub(p, target), squared=True)
    params = {"w": jnp.full((2, 2), 1 / 6), "b": jnp.full((2,), 1 / 6)}
    simplex = optix.chain(optix.adam(1e-2), project_params(projection_simplex))
    for p in run(simplex, loss, params, 300):
        entries = jnp.concatenate([x.ravel() for x in jax.tree.leaves(p)])
        assert float(jnp.min(entries)) >= 0.0  # zeros land exactly: p + (0 - p) == 0
        assert abs(float(jnp.sum(entries)) - 1.0) <= 6 * np.finfo(np.float32).eps
    box = optix.chain(optix.adam(1e-1), project_params(BOX))
    for p in run(box, loss, params, 100):
        for x in jax.tree.leaves(p):
            assert float(jnp.min(x)) >= -0.5 and float(jnp.max(x)) <= 0.75
    np.testing.assert_array_equal(p["b"], [-0.5, 0.75])


def test_bf16_params_stay_on_the_simplex():
    params = {"w": jnp.full((3, 4), 1 / 12, jnp.bfloat16)}
    target = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)}
    loss = lambda p: jnp.sum((p["w"].astype(jnp.float32) - target["w"]) ** 2)
    tx = optix.chain(optix.adam(1e-2), project_params(projection_simplex))
    for p in run(tx, loss, params, 100):
        assert p["w"].dtype == jnp.bfloat16
        assert float(jnp.min(p["w"])) >= 0.0
        assert abs(float(jnp.sum(p["w"].astype(jnp.float32))) - 1.0) <= 12 * 2.0**-8
    assert int(jnp.count_nonzero(p["w"])) < 12


def water_filling(weights, center, scale=1.0):
    """argmin 0.5 * sum(w * (x - c)**2) over the simplex: by the KKT conditions
    x = max(c - nu / w, 0) with nu making the sum equal scale (found by bisection)."""
    low, high = -1e3, 1e3
    for _ in range(200):
        nu = (low + high) / 2
        low, high = (nu, high) if np.maximum(center - nu / weights, 0).sum() > scale else (low, nu)
    return np.maximum(center - nu / weights, 0)


def test_sgd_converges_to_the_water_filling_optimum_on_the_simplex(x64):
    weights = np.asarray([1.0, 2.0, 4.0, 0.5, 3.0])
    center = np.asarray([0.9, 0.4, -0.2, 0.1, 0.3])
    optimum = water_filling(weights, center)
    assert 0 < np.count_nonzero(optimum) < 5 and abs(optimum.sum() - 1) < 1e-14
    loss = lambda x: 0.5 * jnp.sum(weights * (x - center) ** 2)
    tx = optix.chain(optix.sgd(1 / weights.max()), project_params(projection_simplex))
    *_, x = run(tx, loss, jnp.full(5, 0.2), 500)
    np.testing.assert_allclose(x, optimum, rtol=0, atol=1e-12)


def box_optimum(q, center, lower, upper):
    """argmin 0.5 * (x - c)' Q (x - c) over the box, by the KKT conditions: for each
    split of the coordinates into free / at lower / at upper, set the free gradient to
    zero; the optimum is the split whose point is feasible with g >= 0 at lower bounds
    and g <= 0 at upper bounds."""
    n = len(center)
    for split in itertools.product((0, -1, 1), repeat=n):
        split = np.asarray(split)
        x = np.where(split < 0, lower, np.where(split > 0, upper, 0.0))
        free = split == 0
        fixed = x - center
        fixed[free] = 0.0
        x[free] = center[free] - np.linalg.solve(q[np.ix_(free, free)], (q @ fixed)[free])
        g = q @ (x - center)
        if (
            np.all((lower - 1e-12 <= x) & (x <= upper + 1e-12))
            and np.all(g[split < 0] >= 0)
            and np.all(g[split > 0] <= 0)
        ):
            return x, split
    raise AssertionError("no KKT point")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_converges_to_the_kkt_optimum_on_a_box(optimizer, x64):
    rng = np.random.default_rng(1)
    m = rng.normal(size=(6, 6))
    q = m @ m.T / 6 + 0.5 * np.eye(6)
    center = rng.normal(size=6) * 1.5
    lower, upper = -np.ones(6), np.full(6, 0.8)
    optimum, split = box_optimum(q, center, lower, upper)
    assert 0 < np.count_nonzero(split) < 6  # some bounds active, some free
    loss = lambda x: 0.5 * (x - center) @ (q @ (x - center))
    step = optix.sgd(1 / np.linalg.eigvalsh(q).max()) if optimizer == "sgd" else optix.adam(1e-2)
    tx = optix.chain(
        step, project_params(functools.partial(projection_box, lower=lower, upper=upper))
    )
    *_, x = run(tx, loss, jnp.zeros(6), 2000)
    np.testing.assert_allclose(x, optimum, rtol=0, atol=1e-10)


def test_shared_building_block_checks():
    check_basics(project_params(projection_l2_ball))
    check_basics(project_params(BOX))


def test_errors_say_what_is_missing():
    params = make_params()
    tx = project_params(projection_simplex)
    with pytest.raises(ValueError, match="project_params needs the current params"):
        tx.update(params, tx.init(params))
    with pytest.raises(TypeError, match="project_params: projection must be callable"):
        project_params("simplex")
    bad = project_params(lambda tree: jax.tree.leaves(tree))
    with pytest.raises(ValueError, match=r"project_params: params and projection\(params \+ "):
        bad.update(params, bad.init(params), params)
    with pytest.raises(ValueError, match="project_params: updates and params must have the same"):
        tx.update({"w": params["w"]}, tx.init(params), params)
