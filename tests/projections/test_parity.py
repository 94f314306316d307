"""optax.projections' numbers and derivatives, dtypes, jit, vmap and argument checks."""

import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix import projections as P

# name -> (arguments after the tree, given the tree, a random tree like it and a scale)
CASES = {
    "projection_non_negative": lambda t, a, s: (),
    "projection_box": lambda t, a, s: (jax.tree.map(lambda v: v - s, a), jax.tree.map(abs, a)),
    "projection_simplex": lambda t, a, s: (s,),
    "projection_l1_sphere": lambda t, a, s: (s,),
    "projection_l1_ball": lambda t, a, s: (s,),
    "projection_l2_sphere": lambda t, a, s: (s,),
    "projection_l2_ball": lambda t, a, s: (s,),
    "projection_linf_ball": lambda t, a, s: (s,),
    "projection_vector": lambda t, a, s: (a,),
    "projection_hyperplane": lambda t, a, s: (a, s - 1.0),
    "projection_halfspace": lambda t, a, s: (a, s - 1.0),
}


def random_tree(rng, spread=1.0):
    rows, cols = [(1, 1), (2, 3), (4, 2)][rng.integers(3)]  # few shapes: few compilations
    return {
        "w": rng.normal(size=(rows, cols)) * spread,
        "b": rng.normal(size=(cols,)),
        "s": np.float64(rng.normal()),
    }


def optax_call(name, *args):
    # Compiled, so eager calls do not retrace Optax's lax.cond at every call.
    with jax.numpy_dtype_promotion("standard"):
        return jax.jit(getattr(optax.projections, name))(*args)


def test_exports_match_optax():
    assert sorted(P.__all__) == sorted(n for n in dir(optax.projections) if n.startswith("proj"))
    for name in P.__all__:
        ours = inspect.signature(getattr(P, name)).parameters
        theirs = inspect.signature(getattr(optax.projections, name)).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name


@pytest.mark.parametrize("name", [*CASES, "projection_hypercube"])
def test_matches_optax_on_random_trees(name, x64):
    """float64, rtol 1e-12 relative to the data's size (entries cancelling to ~0 are
    compared on that absolute scale: a relative test of a rounding residue means nothing)."""
    rng = np.random.default_rng(sum(map(ord, name)))
    for trial in range(24):
        tree = random_tree(rng, spread=[0.1, 1.0, 10.0][trial % 3])
        other = jax.tree.map(lambda v: rng.normal(size=np.shape(v)), tree)
        scale = float(rng.choice([0.3, 1.0, 7.5]))
        if name == "projection_hypercube":  # Optax's hypercube takes only a one-array tree
            tree, args = tree["w"], (scale,)
        else:
            args = CASES[name](tree, other, scale)
        ours = getattr(P, name)(tree, *args)
        theirs = optax_call(name, tree, *args)
        magnitude = 1.0 + max(np.abs(v).max() for v in jax.tree.leaves((tree, other, scale)))
        assert jax.tree.structure(ours) == jax.tree.structure(theirs)
        for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            assert x.dtype == jnp.float64
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12 * magnitude)


@pytest.mark.parametrize("name", CASES)
def test_jacobians_match_optax(name, x64):
    rng = np.random.default_rng(7)
    x, a = rng.normal(size=6) * 2, rng.normal(size=6)
    args = CASES[name](x, a, 1.5)
    for jacobian in (jax.jacfwd, jax.jacrev):
        ours = jacobian(lambda v: getattr(P, name)(v, *args))(x)
        theirs = jacobian(lambda v: optax_call(name, v, *args))(x)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-13)


def test_simplex_jacobian_is_the_support_formula(x64):
    rng = np.random.default_rng(3)
    x, scale = rng.normal(size=7), 3.0
    p = P.projection_simplex(x, scale)
    support = np.asarray(p > 0, np.float64)
    assert 1 < support.sum() < 7
    formula = np.diag(support) - np.outer(support, support) / support.sum()
    for jacobian in (jax.jacfwd, jax.jacrev):
        np.testing.assert_allclose(jacobian(P.projection_simplex)(x, scale), formula, atol=1e-15)
        d_scale = jacobian(P.projection_simplex, argnums=1)(x, scale)
        np.testing.assert_allclose(d_scale, support / support.sum(), atol=1e-15)
    step = 1e-6
    central = (P.projection_simplex(x, scale + step) - P.projection_simplex(x, scale - step)) / (
        2 * step
    )
    np.testing.assert_allclose(central, support / support.sum(), atol=1e-8)


def test_balls_have_identity_gradients_at_zero():
    for fn in (P.projection_l1_ball, P.projection_l2_ball):
        assert float(jax.grad(fn)(0.0)) == 1.0
    assert np.all(np.isfinite(jax.jacrev(P.projection_l2_sphere)(jnp.zeros(3))))


def test_vmap_over_points_and_scales():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 50)), jnp.float32)
    scales = jnp.asarray([1.0, 0.8, 2.5], jnp.float32)
    p = jax.vmap(P.projection_simplex)(x, scales)
    np.testing.assert_allclose(jnp.sum(p, axis=1), scales, rtol=2e-6)
    assert bool(jnp.all(p >= 0))
    for i in range(3):
        np.testing.assert_array_equal(p[i], P.projection_simplex(x[i], scales[i]))
    balls = jax.vmap(P.projection_l1_ball)(x, jnp.asarray([1.0, 1e3, 0.0], jnp.float32))
    np.testing.assert_array_equal(balls[1], x[1])  # inside: unchanged, also when batched
    np.testing.assert_array_equal(balls[2], jnp.zeros(50))


@pytest.mark.parametrize("name", [*CASES, "projection_hypercube"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_low_precision_runs_in_float32_and_keeps_dtypes(name, dtype):
    rng = np.random.default_rng(2)
    wide = {"w": jnp.asarray(rng.normal(size=(3, 4)) * 2, jnp.float32), "b": jnp.ones(4)}
    low = jax.tree.map(lambda v: v.astype(dtype), wide)
    upcast = jax.tree.map(lambda v: v.astype(jnp.float32), low)
    other = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "b": -jnp.ones(4)}
    args = CASES[name](low, other, 1.5) if name in CASES else (1.5,)
    ours = getattr(P, name)(low, *args)
    assert jax.tree.map(lambda v: v.dtype, ours) == {"w": dtype, "b": dtype}
    expected = jax.tree.map(lambda v: v.astype(dtype), getattr(P, name)(upcast, *args))
    jax.tree.map(np.testing.assert_array_equal, ours, expected)


def test_mixed_dtypes_share_the_widest_and_keep_their_own():
    tree = {"a": jnp.asarray([3.0, 0.5], jnp.bfloat16), "b": jnp.asarray([2.5], jnp.float32)}
    out = P.projection_simplex(tree)
    assert out["a"].dtype == jnp.bfloat16 and out["b"].dtype == jnp.float32
    np.testing.assert_array_equal(out["a"], jnp.asarray([0.75, 0.0], jnp.bfloat16))
    np.testing.assert_array_equal(out["b"], [0.25])


def test_jit_compiles_once_and_matches_eager():
    traces = []

    @jax.jit
    def project(tree, scale):
        traces.append(1)
        return P.projection_l1_ball(P.projection_simplex(tree, scale), scale / 2)

    rng = np.random.default_rng(4)
    for _ in range(3):
        tree = {"w": jnp.asarray(rng.normal(size=(2, 3)), jnp.float32), "b": None}
        scale = jnp.asarray(rng.uniform(0.5, 2), jnp.float32)
        eager = P.projection_l1_ball(P.projection_simplex(tree, scale), scale / 2)
        np.testing.assert_allclose(project(tree, scale)["w"], eager["w"], rtol=1e-6, atol=1e-7)
    assert len(traces) == 1


ONES = jnp.ones(3)
RANGE = "scale must be finite and >= 0, got scale="
BAD_ARGUMENTS = [
    ("projection_simplex", (ONES, -1.0), RANGE + "-1.0"),
    ("projection_simplex", (ONES, jnp.ones(2)), "scale must be a scalar, got scale="),
    ("projection_l1_ball", (ONES, float("nan")), RANGE + "nan"),
    ("projection_l1_sphere", (ONES, -2), RANGE + "-2"),
    ("projection_l2_ball", (ONES, float("inf")), RANGE + "inf"),
    ("projection_l2_sphere", (ONES, -0.5), RANGE + "-0.5"),
    ("projection_linf_ball", (ONES, -1), RANGE + "-1"),
    ("projection_hypercube", (ONES, -1.0), RANGE + "-1.0"),
    ("projection_box", (ONES, 1.0, 0.0), "upper must be >= lower=1.0, got upper=0.0"),
    ("projection_box", (ONES, float("nan"), 1.0), "lower must be a number, got lower=nan"),
    ("projection_hyperplane", (ONES, ONES, jnp.ones(2)), "b must be a scalar, got b="),
    ("projection_halfspace", ((1.0, 2.0), [1.0, 2.0], 0.0), "x and a must have the same tree"),
    ("projection_vector", ({"a": 1.0}, {"b": 1.0}), "x and a must have the same tree structure"),
]


@pytest.mark.parametrize("name, args, message", BAD_ARGUMENTS)
def test_arguments_are_checked_with_clear_messages(name, args, message):
    with pytest.raises(ValueError, match=re.escape(f"{name}: {message}")):
        getattr(P, name)(*args)


def test_traced_arguments_pass_the_checks():
    x = jnp.asarray([3.0, -4.0])
    balls = jax.jit(lambda s: P.projection_l2_ball(x, s))(jnp.asarray(2.0))
    np.testing.assert_allclose(balls, [1.2, -1.6], rtol=1e-6)
    boxes = jax.jit(lambda lo, hi: P.projection_box(x, lo, hi))(-1.0, 1.0)
    np.testing.assert_array_equal(boxes, [1.0, -1.0])
