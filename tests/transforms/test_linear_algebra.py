"""power_iteration, matrix_inverse_pth_root, nnls and multi_normal against NumPy, SciPy
and Optax."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
import scipy.optimize
import scipy.stats

from optix.transforms import linear_algebra
from optix.transforms.linear_algebra import (
    MultiNormalDiagFromLogScale,
    matrix_inverse_pth_root,
    multi_normal,
    nnls,
    power_iteration,
)

NAMES = ["power_iteration", "matrix_inverse_pth_root", "multi_normal", "nnls"]


def spd(n, condition, seed):
    """A symmetric positive definite matrix with eigenvalues log-spaced in [1, condition]."""
    q = scipy.stats.ortho_group.rvs(dim=n, random_state=seed)
    return q @ np.diag(np.geomspace(condition, 1.0, n)) @ q.T


def aligned(v, reference):
    """``v`` with the sign that points it along ``reference``."""
    return v * np.sign(np.vdot(v, reference))


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_optax(name):
    ours = inspect.signature(getattr(linear_algebra, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]


# power_iteration


@pytest.mark.parametrize("symmetric", [True, False])
def test_power_iteration_float64_matches_numpy_eig(symmetric, x64):
    """A symmetric PSD matrix, and a non-symmetric one whose dominant eigenvalue is -5."""
    rng = np.random.default_rng(0)
    if symmetric:
        matrix = spd(8, 50.0, seed=1)
    else:
        basis = rng.normal(size=(6, 6))
        matrix = basis @ np.diag([-5.0, 3.0, 2.0, 1.0, 0.5, -0.2]) @ np.linalg.inv(basis)
    values, vectors = np.linalg.eig(matrix)
    top = np.argmax(np.abs(values))
    run = jax.jit(lambda m: power_iteration(m, num_iters=5000, error_tolerance=1e-13))
    eig, vec = run(matrix)
    np.testing.assert_allclose(eig, values[top].real, rtol=1e-11)
    reference = vectors[:, top].real / np.linalg.norm(vectors[:, top].real)
    np.testing.assert_allclose(aligned(vec, reference), reference, atol=1e-10)
    assert vec.dtype == eig.dtype == jnp.float64


def test_power_iteration_float32_equals_optax_and_is_near_float64():
    """The default start (uniform in [-1, 1] from PRNGKey(0)) is Optax's: same numbers."""
    matrix = spd(8, 50.0, seed=2)
    ours = jax.jit(power_iteration)(jnp.asarray(matrix, jnp.float32))
    theirs = jax.jit(optax.power_iteration)(jnp.asarray(matrix, jnp.float32))
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6)
    np.testing.assert_allclose(ours[1], theirs[1], atol=1e-6)
    top = np.linalg.eigvalsh(matrix)[-1]
    # float32 against the float64 eigenvalue: measured 2e-7 relative.
    np.testing.assert_allclose(ours[0], top, rtol=2e-6)


def test_power_iteration_on_a_function_of_pytrees():
    """Optax's case: a block-diagonal operator on {"a", "b"} with blocks 2 I and I."""

    def product(x):
        return {"a": 2 * x["a"], "b": x["b"]}

    v0 = {"a": jnp.ones(6), "b": jnp.ones(6)}
    eig, vec = jax.jit(lambda v: power_iteration(product, v0=v, num_iters=200))(v0)
    np.testing.assert_allclose(eig, 2.0, rtol=1e-5)
    np.testing.assert_allclose(vec["a"], np.full(6, 6**-0.5), atol=1e-5)
    np.testing.assert_allclose(vec["b"], 0.0, atol=1e-5)


def test_power_iteration_on_a_network_hessian(x64):
    """Optax's case: the Hessian of a small tanh network's squared error, through
    Hessian-vector products, against the dense Hessian's eigen-decomposition."""
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {
        "w1": jax.random.normal(keys[0], (4, 6), jnp.float64),
        "w2": jax.random.normal(keys[1], (6, 2), jnp.float64),
    }
    x = jax.random.normal(keys[2], (5, 4), jnp.float64)
    y = jax.random.normal(keys[3], (5, 2), jnp.float64)

    def loss(p):
        return jnp.sum((jnp.tanh(x @ p["w1"]) @ p["w2"] - y) ** 2)

    def hvp(v):
        return jax.jvp(jax.grad(loss), (params,), (v,))[1]

    run = jax.jit(lambda v: power_iteration(hvp, v0=v, num_iters=5000, error_tolerance=1e-12))
    eig, vec = run(jax.tree.map(jnp.ones_like, params))
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    values, vectors = np.linalg.eigh(jax.jit(jax.hessian(lambda f: loss(unravel(f))))(flat))
    top = np.argmax(np.abs(values))
    np.testing.assert_allclose(eig, values[top], rtol=1e-9)
    flat_vec = jax.flatten_util.ravel_pytree(vec)[0]
    np.testing.assert_allclose(aligned(flat_vec, vectors[:, top]), vectors[:, top], atol=1e-6)


def test_power_iteration_arguments():
    matrix = jnp.asarray(spd(5, 10.0, seed=3), jnp.float32)
    with pytest.raises(ValueError, match="power_iteration: v0 must be given"):
        power_iteration(lambda v: v)
    with pytest.raises(ValueError, match="power_iteration: error_tolerance must be"):
        power_iteration(matrix, error_tolerance=-1.0)
    # Another key starts elsewhere and ends at the same eigenvalue; no iterations keeps
    # the start (normalized) and the eigenvalue 0.
    run = jax.jit(power_iteration, static_argnames="num_iters")
    a, b = run(matrix), run(matrix, key=jax.random.PRNGKey(7))
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5)
    eig, vec = run(matrix, v0=jnp.ones(5), num_iters=0)
    assert eig == 0
    np.testing.assert_allclose(
        vec, matrix @ np.ones(5) / np.linalg.norm(matrix @ np.ones(5)), rtol=1e-6
    )


# matrix_inverse_pth_root


def test_inverse_pth_root_float64_matches_scipy_for_any_p(x64):
    """p traced (one compilation for all p): every positive integer, not only 1, 2, 4, 8."""
    matrix = spd(8, 100.0, seed=4)
    run = jax.jit(lambda m, p: matrix_inverse_pth_root(m, p, error_tolerance=1e-12))
    ridge = 1e-6 * np.linalg.eigvalsh(matrix)[-1]
    for p in [1, 2, 3, 4, 5, 8, 16]:
        root, error = run(matrix, p)
        expected = scipy.linalg.fractional_matrix_power(matrix + ridge * np.eye(8), -1.0 / p)
        np.testing.assert_allclose(root, expected, rtol=1e-9, atol=1e-12, err_msg=f"p={p}")
        assert error <= 1e-12 and root.dtype == jnp.float64


def test_inverse_pth_root_float32_equals_optax_and_is_near_float64():
    matrix, p = spd(8, 100.0, seed=5), 4
    ours, error = jax.jit(matrix_inverse_pth_root, static_argnums=1)(
        jnp.asarray(matrix, jnp.float32), p
    )
    theirs, _ = jax.jit(optax.matrix_inverse_pth_root, static_argnums=1)(
        jnp.asarray(matrix, jnp.float32), p
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    ridge = 1e-6 * np.linalg.eigvalsh(matrix)[-1]
    expected = scipy.linalg.fractional_matrix_power(matrix + ridge * np.eye(8), -1.0 / p)
    # float32 against float64: measured 2e-6 relative to the largest entry.
    np.testing.assert_allclose(ours, expected, atol=1e-5 * np.abs(expected).max())
    assert ours.dtype == jnp.float32 and error <= 1e-6


def test_inverse_pth_root_converges_up_to_condition_1e6():
    """Optax's case: float32, p = 4, ridge 1e-12, condition numbers 1e2 to 1e6."""
    run = jax.jit(lambda m: matrix_inverse_pth_root(m, 4, ridge_epsilon=1e-12))
    for exponent in range(2, 7):
        matrix = spd(16, 10.0**exponent, seed=exponent)
        assert abs(np.linalg.cond(matrix) / 10.0**exponent - 1) < 0.01
        _, error = run(jnp.asarray(matrix, jnp.float32))
        assert error < 0.1, exponent


def test_inverse_pth_root_of_a_scalar_matrix_and_bad_p():
    root, error = matrix_inverse_pth_root(jnp.array([[16.0]]), 4, ridge_epsilon=0.0)
    np.testing.assert_allclose(root, [[0.5]], rtol=1e-6)
    assert error == 0
    for p in [0, 2.5, -1]:
        with pytest.raises(ValueError, match="matrix_inverse_pth_root: p must be a positive"):
            matrix_inverse_pth_root(jnp.eye(3), p)


# nnls


@pytest.mark.parametrize("columns", [None, 3])
def test_nnls_float64_matches_scipy(columns, x64):
    """An over-determined full-rank A has one solution; about half its entries are 0."""
    rng = np.random.default_rng(6)
    a = rng.normal(size=(30, 12))
    b = rng.normal(size=(30,) if columns is None else (30, columns))
    x = jax.jit(nnls, static_argnums=2)(a, b, 3000)
    for k in range(1 if columns is None else columns):
        expected = scipy.optimize.nnls(a, b if columns is None else b[:, k])[0]
        got = x if columns is None else x[:, k]
        assert 0 < (expected == 0).sum() < 12
        np.testing.assert_allclose(got, expected, atol=1e-10)
    assert x.shape == (12,) if columns is None else (12, columns)


@pytest.mark.parametrize(
    "m, n, k, dtype", [(10, 11, (), jnp.float32), (20, 21, (5,), jnp.bfloat16)]
)
def test_nnls_equals_optax_and_decreases(m, n, k, dtype):
    """Optax's cases: x >= 0 in b's dtype and shape, and the objective never rises over
    the first iterations; Optax's numbers."""
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    a = jax.random.normal(keys[0], (m, n), dtype)
    b = jax.random.normal(keys[1], (m, *k), dtype)
    solutions = jax.jit(lambda a, b: [nnls(a, b, iters) for iters in range(5)])(a, b)
    objectives = []
    for x in solutions:
        assert x.dtype == dtype and x.shape == (n, *k) and (x >= 0).all()
        objectives.append(jnp.square(a @ x - b).sum(0))
    assert (jnp.diff(jnp.stack(objectives), axis=0) <= 0).all()
    np.testing.assert_array_equal(x, jax.jit(optax.nnls, static_argnums=2)(a, b, 4))


def test_nnls_bound_and_arguments():
    a = jnp.asarray(np.random.default_rng(8).normal(size=(6, 4)), jnp.float32)
    b = jnp.arange(6.0)
    bound = jnp.linalg.eigvalsh(a.T @ a)[-1]
    np.testing.assert_allclose(nnls(a, b, 500, L=bound), nnls(a, b, 500), atol=1e-5)
    np.testing.assert_array_equal(nnls(jnp.zeros((3, 2)), jnp.ones(3), 10), [0.0, 0.0])
    with pytest.raises(ValueError, match=r"nnls: b must have shape \(6,\)"):
        nnls(a, jnp.ones(5), 10)
    with pytest.raises(ValueError, match="nnls: A must be a matrix"):
        nnls(jnp.ones(6), b, 10)


# multi_normal


@pytest.mark.parametrize("shape", [(1,), (2, 3), (1, 2, 3, 4)])
def test_multi_normal_log_prob_matches_scipy(shape, x64):
    rng = np.random.default_rng(len(shape))
    loc, log_scale = rng.normal(size=shape), 0.3 * rng.normal(size=shape)
    x = rng.normal(size=(4, *shape))
    ours = multi_normal(loc, log_scale).log_prob(x)
    expected = scipy.stats.multivariate_normal(loc.ravel(), np.diag(np.exp(2 * log_scale.ravel())))
    np.testing.assert_allclose(ours, expected.logpdf(x.reshape(4, -1)), rtol=1e-12)
    with jax.numpy_rank_promotion("allow"):
        theirs = optax.multi_normal(loc, log_scale).log_prob(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


BROADCASTS = [
    ((), (), ()),
    (5, 5, (5,)),
    ((1, 4), (3, 4), (3, 4)),
    ((1, 2, 1, 3), (2, 1, 4, 3), (2, 2, 4, 3)),
]


def test_multi_normal_broadcasts_and_samples_like_optax():
    """Optax's cases: parameters broadcast, samples of shape (*shape, *param_shape) from a
    list or a tuple, Optax's samples for the same key."""
    for loc_shape, scale_shape, shape in BROADCASTS:
        loc, log_scale = 1.5 * jnp.ones(loc_shape), 0.5 * jnp.ones(scale_shape)
        dist = multi_normal(loc, log_scale)
        assert isinstance(dist, MultiNormalDiagFromLogScale)
        assert dist._param_shape == shape
        assert dist.params[0] is dist._mean and dist.params[1] is dist.log_scale
    key = jax.random.PRNGKey(239)
    with jax.numpy_rank_promotion("allow"):
        theirs = optax.multi_normal(loc, log_scale).sample((4, 5), key)
    for sample_shape in ([4, 5], (4, 5)):
        samples = dist.sample(sample_shape, key)
        assert samples.shape == (4, 5, *shape)
        np.testing.assert_array_equal(samples, theirs)
    assert dist.log_prob(jnp.ones(shape)).shape == ()


def test_multi_normal_samples_have_its_moments_and_bad_shapes_fail():
    dist = multi_normal(jnp.array([1.0, -2.0]), jnp.log(jnp.array([0.5, 3.0])))
    samples = np.asarray(dist.sample((40000,), jax.random.PRNGKey(0)), np.float64)
    # 5 standard errors of the mean and of the standard deviation.
    np.testing.assert_allclose(samples.mean(0), [1.0, -2.0], atol=5 * 3.0 / 200)
    np.testing.assert_allclose(samples.std(0), [0.5, 3.0], rtol=5 / np.sqrt(80000))
    for loc_shape, scale_shape in [(2, 3), ((2, 3), (3, 2)), ((2, 4), (3, 4))]:
        with pytest.raises(ValueError, match="Incompatible shapes for broadcasting"):
            multi_normal(jnp.ones(loc_shape), jnp.ones(scale_shape))
