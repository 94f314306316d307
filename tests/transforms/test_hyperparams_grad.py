"""Differentiating through inject_hyperparams: derivatives with respect to the state's
hyperparameters (meta-learning) are Optax's and a central finite difference's, while the
values stay bit for bit those of the unwrapped optimizer."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.transforms.hyperparams import inject_hyperparams

K = 5  # inner steps of the meta-learning problem
RNG = np.random.default_rng(7)
X_TRAIN, X_VAL = RNG.normal(size=(12, 4)), RNG.normal(size=(9, 4))
TRUE_W = RNG.normal(size=4)
Y_TRAIN = X_TRAIN @ TRUE_W + 0.3 * RNG.normal(size=12)
Y_VAL = X_VAL @ TRUE_W + 0.3 * RNG.normal(size=9)
W0 = {"w": RNG.normal(size=4), "b": np.asarray(0.5)}


def _loss(params, x, y):
    """Mean log-cosh of the residuals of a linear model: smooth, not quadratic."""
    residual = x @ params["w"] + params["b"] - y
    return jnp.mean(jnp.log(jnp.cosh(residual)))


def _clipped_adamw(m):
    """A chain with one hyperparameter per block, as a factory of named arguments."""

    def factory(learning_rate, max_norm, weight_decay, b1):
        return m.chain(
            m.scale_by_adam(b1=b1),
            m.clip_by_global_norm(max_norm),
            m.add_decayed_weights(weight_decay),
            m.scale_by_learning_rate(learning_rate),
        )

    return factory


# Optimizer, construction values, and the hyperparameters differentiated.
CASES = {
    "sgd": (lambda m: m.sgd, {"learning_rate": 0.3, "momentum": 0.8}, ["learning_rate"]),
    "adam": (lambda m: m.adam, {"learning_rate": 0.1, "b1": 0.8}, ["learning_rate", "b1"]),
    "chain": (
        _clipped_adamw,
        {"learning_rate": 0.1, "max_norm": 1.0, "weight_decay": 0.05, "b1": 0.9},
        ["learning_rate", "max_norm", "weight_decay", "b1"],
    ),
}


def _meta_loss(m, name, inject=None):
    """Validation loss after K steps, as a function of the differentiated hyperparameters
    (written into the state, which holds the construction values after init)."""
    make, constants, _ = CASES[name]
    tx = (inject or m.inject_hyperparams)(make(m))(**constants)

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(_loss)(params, X_TRAIN, Y_TRAIN), state, params)
        return (m.apply_updates(params, updates), state), None

    def meta_loss(hyper):
        params = jax.tree.map(jnp.asarray, W0)
        state = tx.init(params)
        state = state._replace(hyperparams={**state.hyperparams, **hyper})
        (params, _), _ = jax.lax.scan(step, (params, state), length=K)
        return _loss(params, X_VAL, Y_VAL)

    return meta_loss


def _plain_meta_loss(name):
    """The same validation loss with the unwrapped optimizer."""
    make, constants, _ = CASES[name]
    tx = make(optix)(**constants)

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(_loss)(params, X_TRAIN, Y_TRAIN), state, params)
        return (optix.apply_updates(params, updates), state), None

    params = jax.tree.map(jnp.asarray, W0)
    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), length=K)
    return _loss(params, X_VAL, Y_VAL)


def _hyper(name, shift=None):
    _, constants, names = CASES[name]
    values = {k: jnp.asarray(constants[k], jnp.float64) for k in names}
    if shift is not None:
        values[shift[0]] = values[shift[0]] + shift[1]
    return values


@pytest.mark.parametrize("name", sorted(CASES))
def test_meta_gradient_matches_optax_and_finite_differences(name, x64):
    value_and_grad = jax.jit(jax.value_and_grad(_meta_loss(optix, name)))
    value, grads = value_and_grad(_hyper(name))
    # The value is the unwrapped optimizer's, bit for bit: the constants ran.
    np.testing.assert_array_equal(value, jax.jit(lambda: _plain_meta_loss(name))())
    with jax.numpy_dtype_promotion("standard"):
        theirs = jax.jit(jax.grad(_meta_loss(optax, name)))(_hyper(name))
    for key in CASES[name][2]:
        assert grads[key] != 0.0
        np.testing.assert_allclose(grads[key], theirs[key], rtol=1e-10)
        h = 1e-5 * abs(CASES[name][1][key])
        up, down = (value_and_grad(_hyper(name, (key, d)))[0] for d in (h, -h))
        np.testing.assert_allclose(grads[key], (up - down) / (2 * h), rtol=1e-6)


def test_meta_hessian_matches_optax(x64):
    hessian = jax.jit(jax.hessian(_meta_loss(optix, "sgd")))(_hyper("sgd"))
    with jax.numpy_dtype_promotion("standard"):
        theirs = jax.jit(jax.hessian(_meta_loss(optax, "sgd")))(_hyper("sgd"))
    lr = "learning_rate"
    assert hessian[lr][lr] != 0.0
    np.testing.assert_allclose(hessian[lr][lr], theirs[lr][lr], rtol=1e-10)


PARAMS = {"w": np.asarray([1.0, -2.0, 0.5])}  # float32 arrays unless x64 is on
GRADS = {"w": np.asarray([0.3, 1.0, -2.0])}


def _one_update(m, factory, hyper_name, **constants):
    """The third update as a function of one hyperparameter in the state (the first two
    ran with the construction values), and the state before it."""
    tx = m.inject_hyperparams(factory)(**constants)
    params, grads = jax.tree.map(jnp.asarray, (PARAMS, GRADS))
    state = tx.init(params)
    with jax.numpy_dtype_promotion("standard"):
        for scale in (2.0, -0.5):
            _, state = tx.update({"w": scale * grads["w"][::-1]}, state, params)

    def third_update(value, state=state, grads=grads):
        hyper = {**state.hyperparams, hyper_name: value}
        updates, _ = tx.update(grads, state._replace(hyperparams=hyper), params)
        return updates["w"]

    return third_update, state


def _rebuilt(factory, hyper_name, state):
    """The third update of ``factory`` built from the state's arrays, run on its own."""

    params = {"w": jnp.asarray(PARAMS["w"])}

    def third_update(value, state=state, grads=None):
        tx = factory(**{**state.hyperparams, hyper_name: value})
        grads = {"w": jnp.asarray(GRADS["w"])} if grads is None else grads
        return tx.update(grads, state.inner_state, params)[0]["w"]

    return third_update


def _summed(fn):
    return lambda value: jnp.sum(fn(value))


def test_gradient_of_one_update_wrt_the_learning_rate():
    """d(-lr * g)/d(lr) = -g: -1.0 for g = 1 (the constant branch alone would give 0)."""
    for m in (optix, optax):
        tx = m.inject_hyperparams(m.sgd)(learning_rate=0.1)
        params = jnp.ones(())
        state = tx.init(params)

        def update(lr, tx=tx, state=state, params=params):
            hyper = {**state.hyperparams, "learning_rate": lr}
            return tx.update(jnp.ones(()), state._replace(hyperparams=hyper), params)[0]

        for derivative in (jax.grad, jax.jacfwd, lambda f: jax.jit(jax.grad(f))):
            np.testing.assert_array_equal(derivative(update)(jnp.float32(0.1)), -1.0)


@pytest.mark.parametrize(
    ("factory", "hyper_name", "constants"),
    [
        ("adam", "b1", {"learning_rate": 0.1}),
        ("adam", "b2", {"learning_rate": 0.1}),
        ("adam", "eps", {"learning_rate": 0.1, "eps": 0.5}),
        ("sgd", "momentum", {"learning_rate": 0.1, "momentum": 0.9}),
        ("rmsprop", "decay", {"learning_rate": 0.1}),
        ("lion", "learning_rate", {"learning_rate": 0.1}),
    ],
)
def test_gradient_of_one_update_matches_optax(factory, hyper_name, constants, x64):
    ours, state = _one_update(optix, getattr(optix, factory), hyper_name, **constants)
    theirs, _ = _one_update(optax, getattr(optax, factory), hyper_name, **constants)
    value = state.hyperparams[hyper_name]
    with jax.numpy_dtype_promotion("standard"):
        expected = jax.jacfwd(theirs)(value)
    assert value.dtype == jnp.float64 and np.all(np.abs(expected) > 1e-3)
    np.testing.assert_allclose(jax.jacrev(ours)(value), expected, rtol=1e-10)
    np.testing.assert_allclose(jax.jacfwd(ours)(value), expected, rtol=1e-10)


@pytest.mark.parametrize("changed", [False, True], ids=["construction_value", "changed"])
def test_value_and_gradient_are_the_rebuilt_optimizers(changed):
    """The derivative is the optimizer's built from the state's arrays; the value is too
    at a changed value, and the unwrapped optimizer's at the construction value."""
    ours, state = _one_update(optix, optix.adam, "b1", learning_rate=0.1)
    rebuilt = _rebuilt(optix.adam, "b1", state)
    b1 = jnp.float32(0.7) if changed else state.hyperparams["b1"]
    # Arrays held as constants would let XLA fold them with other rounding: pass them.
    grads = jnp.asarray(GRADS["w"])

    @jax.jit
    def value_and_jvp(b1, state, grads):
        return jax.jvp(lambda b1: ours(b1, state, {"w": grads}), (b1,), (jnp.ones_like(b1),))

    value, jvp = value_and_jvp(b1, state, grads)
    # Derivatives: one program's against another's, so XLA may round differently.
    close = functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-8)
    close(jvp, jax.jit(jax.jacfwd(rebuilt))(b1))
    close(jax.jit(jax.grad(_summed(ours)))(b1), jax.jit(jax.grad(_summed(rebuilt)))(b1))
    if changed:
        rebuilt_value = jax.jit(lambda b1, s, g: rebuilt(b1, s, {"w": g}))(b1, state, grads)
        np.testing.assert_array_equal(value, rebuilt_value)
    else:
        params = {"w": jnp.asarray(PARAMS["w"])}
        update = jax.jit(lambda g, s: optix.adam(0.1).update({"w": g}, s, params)[0]["w"])
        np.testing.assert_array_equal(value, update(grads, state.inner_state))


def test_gradient_wrt_params_is_the_plain_optimizers(x64):
    """Differentiating through the update with respect to the params (unrolled
    differentiation) gives the unwrapped optimizer's derivatives."""

    def final_loss(make, w0):
        tx = make()

        def step(carry, _):
            params, state = carry
            updates, state = tx.update(jax.grad(_loss)(params, X_TRAIN, Y_TRAIN), state, params)
            return (optix.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (w0, tx.init(w0)), length=K)
        return _loss(params, X_VAL, Y_VAL)

    w0 = jax.tree.map(jnp.asarray, W0)
    make_wrapped = lambda: inject_hyperparams(optix.adam)(0.1)
    wrapped = jax.jit(jax.grad(functools.partial(final_loss, make_wrapped)))
    plain = jax.jit(jax.grad(functools.partial(final_loss, lambda: optix.adam(0.1))))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), wrapped(w0), plain(w0))


def test_derivatives_reach_values_closed_over_by_extra_args():
    """An extra argument that depends on the differentiated value (Polyak's loss value)
    is closed over by the inner update; its derivative still flows."""
    params = {"w": jnp.asarray([1.0, 2.0])}
    grads = {"w": jnp.asarray([0.5, 1.0])}

    def step(make, scale):
        tx = make()
        value = scale * jnp.asarray(1.25)
        return jnp.sum(tx.update(grads, tx.init(params), params, value=value)[0]["w"])

    wrapped = functools.partial(step, lambda: inject_hyperparams(optix.polyak_sgd)(10.0))
    plain = functools.partial(step, lambda: optix.polyak_sgd(10.0))
    scale = jnp.float32(1.5)
    np.testing.assert_array_equal(wrapped(scale), plain(scale))
    np.testing.assert_allclose(jax.grad(wrapped)(scale), jax.grad(plain)(scale), rtol=1e-6)
    assert jax.grad(wrapped)(scale) != 0.0


def test_gradient_through_a_random_key_in_the_state():
    """noisy_sgd keeps a PRNG key in its state: its tangent is float0 and passes."""
    ours, state = _one_update(optix, optix.noisy_sgd, "learning_rate", learning_rate=0.1, key=3)
    rebuilt = _rebuilt(optix.noisy_sgd, "learning_rate", state)
    lr = state.hyperparams["learning_rate"]
    jacobian = jax.jit(jax.jacrev(ours))(lr)
    np.testing.assert_allclose(jacobian, jax.jit(jax.jacrev(rebuilt))(lr), rtol=1e-6)
    assert np.all(jacobian != 0.0)


def test_per_learning_rate_gradients_under_vmap():
    ours, _ = _one_update(optix, optix.adam, "learning_rate", learning_rate=0.1)
    lrs = jnp.asarray([0.1, 0.01, 0.3], jnp.float32)
    batched = jax.jit(jax.vmap(jax.jacrev(ours)))(lrs)
    one = jax.jit(jax.jacrev(ours))
    for i, lr in enumerate(lrs):
        np.testing.assert_allclose(batched[i], one(lr), rtol=1e-6)
    assert np.all(batched != 0.0)
