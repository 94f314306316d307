"""make_perturbed_fun: Optax's numbers for the same key, and the smoothed function's laws.

The statistical checks use 10**5 samples; their tolerances are about five standard
errors of the estimate, so they fail on a wrong estimator, not by chance.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from optix.perturbations import Gumbel, Normal, make_perturbed_fun

OPTAX_NOISE = {Gumbel: optax.perturbations.Gumbel, Normal: optax.perturbations.Normal}


def one_hot_argmax(x):
    flat = jnp.ravel(x)
    return jnp.reshape(jax.nn.one_hot(jnp.argmax(flat), flat.size, dtype=x.dtype), x.shape)


def argmax_tree(tree):
    return jax.tree.map(one_hot_argmax, tree)


def softmax_tree(tree, sigma):
    return jax.tree.map(lambda z: jnp.reshape(jax.nn.softmax(jnp.ravel(z) / sigma), z.shape), tree)


def tree_input():
    rng = np.random.default_rng(1)
    normal = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
    return normal(4), {"k1": normal(3), "k2": normal(2, 2)}


def assert_trees_close(got, expected, **tolerance):
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **tolerance), got, expected)


def value_and_loss_grad(perturbed):
    """The perturbed value and the gradient of a weighted sum of it, jitted."""

    def loss(key, x):
        leaves = jax.tree.leaves(perturbed(key, x))
        return sum(jnp.sum(y * jnp.arange(1.0, y.size + 1).reshape(y.shape)) for y in leaves)

    return jax.jit(lambda key, x: (perturbed(key, x), jax.grad(loss, 1)(key, x)))


@pytest.mark.parametrize("noise, use_baseline", [(Gumbel, True), (Normal, False)])
def test_same_key_gives_optax_values_and_gradients(noise, use_baseline):
    x, key = tree_input()[0], jax.random.key(0)
    ours = make_perturbed_fun(one_hot_argmax, 200, 0.5, noise(), use_baseline)
    theirs = optax.perturbations.make_perturbed_fun(
        one_hot_argmax, 200, 0.5, OPTAX_NOISE[noise](), use_baseline
    )
    ours_all = value_and_loss_grad(ours)(key, x)
    with jax.numpy_dtype_promotion("standard"):
        theirs_all = value_and_loss_grad(theirs)(key, x)
    # The same samples: equal values; the gradient's float32 sums may be ordered differently.
    jax.tree.map(np.testing.assert_array_equal, ours_all[0], theirs_all[0])
    assert_trees_close(ours_all[1], theirs_all[1], rtol=1e-5, atol=1e-6)


def test_perturbed_argmax_is_softmax_with_its_gradient():
    """With Gumbel noise, E[one_hot(argmax(x + sigma z))] = softmax(x / sigma) exactly."""
    sigma, x, key = 0.5, tree_input(), jax.random.key(0)
    perturbed = make_perturbed_fun(argmax_tree, 100_000, sigma)

    def loss(f, x):
        return sum(jnp.sum(y**2 + jnp.cos(y)) for y in jax.tree.leaves(f(x)))

    got = jax.jit(
        lambda k, x: (perturbed(k, x), jax.grad(lambda x: loss(lambda x: perturbed(k, x), x))(x))
    )(key, x)
    softmax = lambda x: softmax_tree(x, sigma)
    expected = jax.jit(lambda x: (softmax(x), jax.grad(lambda x: loss(softmax, x))(x)))(x)
    assert_trees_close(got, expected, atol=0.03)


def test_linear_function_keeps_its_value_and_jacobian():
    """A linear map is its own smoothing (zero-mean Normal noise): f_sigma = f."""
    rng = np.random.default_rng(2)
    a, b, x = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in [(3, 2), (3,), (2,)])
    perturbed = make_perturbed_fun(lambda x: a @ x + b, 100_000, 1.0, Normal())
    value, jac = jax.jit(lambda k, x: (perturbed(k, x), jax.jacobian(perturbed, 1)(k, x)))(
        jax.random.key(0), x
    )
    np.testing.assert_allclose(value, a @ x + b, atol=0.02)
    np.testing.assert_allclose(jac, a, atol=0.06)


def test_jacobian_of_a_smooth_function_is_the_mean_jacobian():
    """For differentiable f, d/dx E[f(x + sigma z)] = E[f'(x + sigma z)] (same samples)."""

    def f(x):
        x0, x1, x2 = x
        y0 = x0 * x1**2 * jnp.sin(x2 * x1 - x0) + jnp.cos(x0**3)
        return jnp.stack([y0, x2 + x0 * jnp.sin(x1)])

    noise, sigma, n, key = Normal(), 0.5, 100_000, jax.random.key(0)
    x = jnp.array([0.3, 0.4, 0.5])
    perturbed = make_perturbed_fun(f, n, sigma, noise)
    got = jax.jit(jax.jacobian(perturbed, 1))(key, x)

    @jax.jit
    def mean_jacobian(key, x):
        # The same draws as the estimator: the key split per sample, then per leaf.
        z = jax.vmap(lambda k: noise.sample(jax.random.split(k, 1)[0], x.shape, x.dtype))(
            jax.random.split(key, n)
        )
        return jnp.mean(jax.vmap(jax.jacobian(f))(x[None] + sigma * z), axis=0)

    np.testing.assert_allclose(got, mean_jacobian(key, x), atol=0.1)


def test_hessian_of_a_quadratic_is_the_identity():
    perturbed = make_perturbed_fun(lambda x: 0.5 * jnp.sum(x**2), 100_000, 1.0, Gumbel())
    got = jax.jit(jax.hessian(perturbed, 1))(jax.random.key(0), jnp.zeros(2))
    np.testing.assert_allclose(got, np.eye(2), atol=0.1)


def test_fun_is_never_differentiated_and_matrix_inputs_work():
    @jax.custom_jvp
    def f(x):
        return x

    @f.defjvp
    def _(primals, tangents):
        raise AssertionError("the derivative of fun was used")

    # A scalar read from a matrix input (Optax issue 1309).
    perturbed = make_perturbed_fun(lambda x: f(x)[0, 0], 10)
    grad = jax.jit(jax.grad(perturbed, 1))(jax.random.key(0), jnp.ones((1, 2)))
    assert grad.shape == (1, 2) and np.all(np.isfinite(grad))


def test_float64_inputs_give_float64_outputs(x64):
    x = jnp.arange(3.0, dtype=jnp.float64)
    out = jax.jit(make_perturbed_fun(one_hot_argmax, 10))(jax.random.key(0), x)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(jnp.sum(out), 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_samples": 0}, "num_samples must be >= 1"),
        ({"sigma": 0.0}, "sigma must be > 0"),
    ],
)
def test_bad_hyperparameters_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=f"make_perturbed_fun: {message}"):
        make_perturbed_fun(jnp.sum, **kwargs)


def test_noise_without_log_prob_is_refused():
    with pytest.raises(TypeError, match="make_perturbed_fun: noise must have"):
        make_perturbed_fun(jnp.sum, noise=jax.random.normal)


@pytest.mark.parametrize(
    "noise, reference",
    [(Gumbel(), scipy.stats.gumbel_r), (Normal(), scipy.stats.norm)],
)
def test_noise_samples_and_log_prob_match_scipy(noise, reference):
    z = noise.sample(jax.random.key(0), (200_000,))
    assert z.dtype == jnp.float32
    np.testing.assert_allclose(np.mean(z), reference.mean(), atol=0.01)
    np.testing.assert_allclose(np.var(z), reference.var(), rtol=0.02)
    grid = np.linspace(-2.0, 3.0, 11)
    # log_prob may drop a constant; its differences are the log-density's.
    ours = np.asarray(noise.log_prob(jnp.asarray(grid)))
    expected = reference.logpdf(grid) - reference.logpdf(grid[0])
    np.testing.assert_allclose(ours - ours[0], expected, rtol=1e-5, atol=1e-5)


def test_names_and_signatures_are_optax_s():
    import inspect

    import optix.perturbations as ours

    theirs = optax.perturbations
    assert set(ours.__all__) == {n for n in dir(theirs) if not n.startswith("_")}
    pairs = [
        (ours.make_perturbed_fun, theirs.make_perturbed_fun),
        (ours.Gumbel.sample, theirs.Gumbel.sample),
        (ours.Normal.log_prob, theirs.Normal.log_prob),
    ]
    for a, b in pairs:
        names = lambda f: list(inspect.signature(f).parameters)
        assert names(a) == names(b)
    defaults = inspect.signature(ours.make_perturbed_fun).parameters
    keys = ("num_samples", "sigma", "use_baseline")
    assert [defaults[k].default for k in keys] == [1000, 0.1, True]
    assert isinstance(defaults["noise"].default, Gumbel)
    # Parameter-free distributions: equal by kind, to Optax's too.
    assert Gumbel() == Gumbel() == optax.perturbations.Gumbel() != Normal()
    assert Normal() == optax.perturbations.Normal() and hash(Normal()) == hash(Normal())
