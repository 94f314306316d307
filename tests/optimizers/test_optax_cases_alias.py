"""Optax's own optimizer cases (optax/_src/alias_test.py, real dtypes; the complex cases are
in test_complex.py): every optimizer Optax lists, with Optax's hyperparameters, reaches the
minimum of a parabola and of Rosenbrock's function in 10000 steps; explicit state dtypes;
polyak_sgd and lbfgs keep their state's dtypes whatever the dtype of the loss value;
L-BFGS on Optax's hard cases and against scikit-learn.

Optax's other per-optimizer cases run over the whole registry in test_common.py (jit once,
stable state, low precision, extra arguments), test_hyperparams.py (inject_hyperparams
changes no number) and test_accumulation.py (MultiSteps); L-BFGS on pytrees against Optax
and a NumPy two-loop recursion in test_lbfgs.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix

# Optax's list, with its hyperparameters.
OPTIMIZERS = {
    "adabelief": {"learning_rate": 1e-2},
    "adadelta": {"learning_rate": 0.1},
    "adadelta_no_lr": {},
    "adafactor": {"learning_rate": 5e-3},
    "adafactor_no_lr": {},
    "adagrad": {"learning_rate": 1.0},
    "adam": {"learning_rate": 1e-1},
    "adamax": {"learning_rate": 1e-1},
    "adamaxw": {"learning_rate": 1e-1},
    "adamw": {"learning_rate": 1e-1},
    "adan": {"learning_rate": 1e-1},
    "amsgrad": {"learning_rate": 1e-1},
    "fromage": {"learning_rate": 5e-3},
    "lamb": {"learning_rate": 1e-3},
    "lars": {"learning_rate": 1.0},
    "lion": {"learning_rate": 1e-2, "weight_decay": 1e-4},
    "nadam": {"learning_rate": 1e-2},
    "nadamw": {"learning_rate": 1e-2},
    "noisy_sgd": {"learning_rate": 1e-3, "eta": 1e-4, "key": 0},
    "novograd": {"learning_rate": 1e-3},
    "optimistic_adam": {"learning_rate": 2e-3},
    "optimistic_adam_v2": {"learning_rate": 2e-3},
    "optimistic_gradient_descent": {"learning_rate": 2e-3, "alpha": 0.7, "beta": 0.1},
    "polyak_sgd": {"max_learning_rate": 1.0},
    "radam": {"learning_rate": 5e-3},
    "rmsprop": {"learning_rate": 5e-3},
    "rmsprop_momentum": {"learning_rate": 5e-3, "momentum": 0.9},
    "rprop": {"learning_rate": 1e-1},
    "sgd": {"learning_rate": 1e-3, "momentum": 0.9},
    "sign_sgd": {"learning_rate": 1e-1},
    "signum": {"learning_rate": 1e-2},
    "sm3": {"learning_rate": 1.0},
    "yogi": {"learning_rate": 1e-1},
}
# Optax only checks that these run: without a learning rate they are too slow to converge.
NOT_CHECKED = {"adadelta_no_lr", "adafactor_no_lr"}
# Sign methods need a decaying learning rate for Rosenbrock's valley (Optax skips them).
PARABOLA_ONLY = {"sign_sgd", "signum"}


def build(name):
    factory = getattr(optix, name.removesuffix("_no_lr").removesuffix("_momentum"))
    if name == "optimistic_adam":
        with pytest.warns(DeprecationWarning, match="optimistic_adam_v2"):
            return factory(**OPTIMIZERS[name])
    return factory(**OPTIMIZERS[name])


PARABOLA_MIN = jnp.array([1.0, -1.0, 1.0])


def parabola(x):
    return jnp.sum((x - PARABOLA_MIN) ** 2)


def rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


STARTS = {"parabola": jnp.array([-1.0, 10.0, 1.0]), "rosenbrock": jnp.array([0.0, 0.0])}
MINIMA = {"parabola": PARABOLA_MIN, "rosenbrock": jnp.array([1.0, 1.0])}


def minimize(tx, objectives, steps=10000):
    """``steps`` updates on a dict of independent objectives, one leaf each, in one scan.

    The loss value goes along (Polyak step sizes use it) with an argument no optimizer
    expects (Optax's test that extra arguments are accepted).
    """

    def loss(params):
        return sum(objectives[k](params[k]) for k in objectives)

    def step(carry, _):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = tx.update(
            grads, state, params, value=value, unexpected_extra_args_your_optimizer_doesnt_expect=1
        )
        return (optix.apply_updates(params, updates), state), None

    params = {k: STARTS[k] for k in objectives}
    state = optix.tree.map_params(tx, lambda v: v, tx.init(params))  # a no-op map must work
    (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))((params, state))
    return params


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_reaches_the_minimum_of_the_parabola_and_of_rosenbrock(name):
    targets = {"parabola": parabola} if name in PARABOLA_ONLY else {}
    if not targets and name != "polyak_sgd":
        targets = {"parabola": parabola, "rosenbrock": rosenbrock}
    # Polyak's step size uses the total loss: each objective gets its own run.
    runs = [targets] if targets else [{"parabola": parabola}, {"rosenbrock": rosenbrock}]
    for objectives in runs:
        final = minimize(build(name), objectives)
        for k, x in final.items():
            assert bool(jnp.all(jnp.isfinite(x))), (name, k)
            if name not in NOT_CHECKED:
                np.testing.assert_allclose(
                    x, MINIMA[k], rtol=3e-2, atol=3e-2, err_msg=f"{name} {k}"
                )


STATE_DTYPES = [None, jnp.bfloat16, jnp.float32]


@pytest.mark.parametrize("name", ["sgd_mom", "adam", "adamw"])
def test_an_explicit_state_dtype_is_kept_and_none_follows_the_params(name):
    for params_dtype in STATE_DTYPES:
        for state_dtype in STATE_DTYPES:
            if name == "sgd_mom":
                tx, field = optix.sgd(0.1, momentum=0.9, accumulator_dtype=state_dtype), "trace"
            else:
                tx, field = getattr(optix, name)(0.1, mu_dtype=state_dtype), "mu"
            params = jnp.array([0.0, 0.0], dtype=params_dtype)
            expected = jnp.dtype(state_dtype or params.dtype)
            assert optix.tree.get(tx.init(params), field).dtype == expected


# Two of Optax's six dtypes (its complex ones are in test_complex.py), each with
# polyak_sgd and one of L-BFGS's two line searches.
LBFGS_BY_DTYPE = {jnp.float16: "backtracking", jnp.float64: "zoom"}


@pytest.mark.parametrize("dtype", list(LBFGS_BY_DTYPE), ids=lambda d: jnp.dtype(d).name)
def test_polyak_and_lbfgs_states_keep_their_dtypes_whatever_the_loss_dtype(dtype):
    """Optax's stability case: a loss value of another dtype than the params, and the update
    under lax.cond, whose branches must return the same types."""
    linesearch = {
        "backtracking": optix.scale_by_backtracking_linesearch(20),
        "zoom": optix.scale_by_zoom_linesearch(20, initial_guess_strategy="one"),
    }[LBFGS_BY_DTYPE[dtype]]
    with jax.enable_x64(dtype == jnp.float64):
        start = STARTS["parabola"].astype(dtype)
        target = PARABOLA_MIN.astype(dtype)
        objective = lambda x: jnp.sum((x - target) ** 2)
        for tx, needs in [
            (optix.polyak_sgd(max_learning_rate=1.0), ("value",)),
            (optix.lbfgs(0.1, linesearch=linesearch), ("value", "grad", "value_fn")),
        ]:

            @jax.jit
            def step(params, state, tx=tx, needs=needs):
                value, grads = jax.value_and_grad(objective)(params)
                # Confuse the dtypes on purpose, as Optax's test does.
                value = value.astype(jnp.float16 if dtype != jnp.float16 else jnp.bfloat16)
                extra = {"value": value, "grad": grads, "value_fn": objective}
                extra = {k: extra[k] for k in needs}
                cond = jax.random.randint(jax.random.key(0), (), 0, 2) == 0
                updates, state = jax.lax.cond(
                    cond, lambda: tx.update(grads, state, params, **extra), lambda: (params, state)
                )
                return optix.apply_updates(params, updates), state

            params, state = start, tx.init(start)
            dtypes = lambda tree: [x.dtype for x in jax.tree.leaves(tree)]
            for _ in range(2):
                params, new_state = step(params, state)
                assert params.dtype == dtype
                assert dtypes(new_state) == dtypes(state)
                state = new_state


def run_lbfgs(tx, fun, params, maxiter=500, tol=1e-3):
    """Optax's driver: L-BFGS steps in a while loop until the gradient norm is below tol."""

    def keep_going(carry):
        _, _, count, grad = carry
        return (optix.tree.norm(grad) >= tol) & (count < maxiter)

    def step(carry):
        params, state, count, _ = carry
        value, grad = jax.value_and_grad(fun)(params)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=fun)
        return optix.apply_updates(params, updates), state, count + 1, grad

    carry = (params, tx.init(params), 0, jax.grad(fun)(params))
    return jax.jit(lambda c: jax.lax.while_loop(keep_going, step, c))(carry)[0]


def himmelblau(p):
    x, y = p
    return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2


def zakharov(x):
    weights = jnp.arange(1, len(x) + 1, dtype=x.dtype)
    s = jnp.sum(0.5 * weights * x)
    return jnp.sum(x**2) + s**2 + s**4


# Three of Optax's cases (Rosenbrock's is in test_lbfgs.py): a steep quartic far from its
# minimum, Himmelblau from a bad start, and a steep quadratic (jax#4594).
LBFGS_PROBLEMS = {
    "zakharov": (zakharov, np.array([600.0, 700.0, 200.0, 100.0, 90.0, 1e3]), np.zeros(6)),
    "bad_start": (himmelblau, np.array([92.0, 0.001]), None),
    "steep": (lambda x: jnp.mean((1e4 * x) ** 2), np.ones(2), np.zeros(2)),
}


@pytest.mark.parametrize("name", sorted(LBFGS_PROBLEMS))
def test_lbfgs_reaches_the_minimum(name):
    fun, start, minimizer = LBFGS_PROBLEMS[name]
    solution = run_lbfgs(optix.lbfgs(), fun, jnp.asarray(start, jnp.float32), tol=1e-5)
    np.testing.assert_allclose(fun(solution), 0.0, atol=1e-5)
    if minimizer is not None:
        np.testing.assert_allclose(solution, minimizer, atol=1e-5, rtol=1e-5)
        return
    # Himmelblau has four minima: the one SciPy's BFGS reaches from this start too.
    import scipy.optimize

    scipy_solution = scipy.optimize.minimize(himmelblau, start, jac=jax.grad(himmelblau)).x
    np.testing.assert_allclose(himmelblau(scipy_solution), 0.0, atol=1e-5)
    np.testing.assert_allclose(solution, scipy_solution, atol=1e-3)


def test_lbfgs_logistic_regression_matches_scikit_learn():
    from sklearn import datasets, linear_model

    inputs, labels = datasets.make_classification(
        n_samples=10, n_features=5, n_classes=2, n_informative=3, random_state=0
    )
    inputs, labels = jnp.asarray(inputs, jnp.float32), jnp.asarray(labels)

    def fun(weights):
        logits = inputs @ weights
        return jnp.mean(jax.nn.softplus(jnp.where(labels, -logits, logits)))

    solution = run_lbfgs(optix.lbfgs(), fun, jnp.zeros(5), tol=1e-6)
    assert float(optix.tree.norm(jax.grad(fun)(solution))) <= 1e-2
    reference = linear_model.LogisticRegression(
        fit_intercept=False, C=1.0 / (1e-6 * 10), tol=1e-5, solver="liblinear", random_state=0
    ).fit(np.asarray(inputs), np.asarray(labels))
    np.testing.assert_allclose(solution, reference.coef_.ravel(), atol=5e-2)
