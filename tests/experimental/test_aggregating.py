"""aggregating: per-example aggregation and accumulation reproduce plain SGD on the mean
gradient; the tracked gradient mean and variance are the true ones; Optax's numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.experimental
import pytest

import optix
from optix.core import GradientTransformation, identity
from optix.experimental import aggregating

NUM_SAMPLES, BATCH, DIM, CLASSES = 16, 4, 4, 2


def data():
    rng = np.random.default_rng(0)
    normal = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
    return normal(NUM_SAMPLES, DIM), normal(NUM_SAMPLES, CLASSES), normal(DIM, CLASSES)


def loss_fun(params, batch):
    inputs, targets = batch
    return jnp.mean(jnp.sum((inputs @ params - targets) ** 2, -1))


def train(opt, per_example, microbatch, module=aggregating, apply=optix.apply_updates):
    """Params and states after each step over the data in microbatches of ``microbatch``.

    Also returns, per step, the true mean and unbiased variance of the per-example
    gradients of that step.
    """
    inputs, targets, params = data()
    per_example_grads = jax.vmap(jax.grad(loss_fun), (None, 0))

    @jax.jit
    def step(params, state, batch):
        grad_fn = per_example_grads if per_example else jax.grad(loss_fun)
        grads = grad_fn(params, batch)
        updates, state = opt.update(grads, state)
        return apply(params, updates), state

    state, history = opt.init(params), []
    for i in range(0, NUM_SAMPLES, microbatch):
        batch = (inputs[i : i + microbatch], targets[i : i + microbatch])
        g = per_example_grads(params, (batch[0][:, None], batch[1][:, None]))
        params, state = step(params, state, batch)
        stats = None
        try:
            stats = module.get_unbiased_mean_and_variance_ema(state)
        except ValueError:
            pass
        history.append((params, state, jnp.mean(g, 0), jnp.var(g, 0, ddof=1), stats))
    return history


def final_params(history):
    return history[-1][0]


@pytest.fixture(scope="module")
def sgd_history():
    return train(optix.sgd(0.1), per_example=False, microbatch=BATCH)


@pytest.mark.parametrize("per_elt_axis, steps", [(0, 1), (None, 2), (0, 2)])
def test_aggregation_and_accumulation_are_sgd_on_the_batch_mean(sgd_history, per_elt_axis, steps):
    opt = aggregating.process(
        identity(),
        aggregating.average_incrementally_updates(per_elt_axis, steps),
        optix.sgd(0.1),
    )
    history = train(opt, per_example=per_elt_axis is not None, microbatch=BATCH // steps)
    # every `steps`-th microbatch completes a batch: the params then match SGD's
    for ours, sgd in zip(history[steps - 1 :: steps], sgd_history, strict=True):
        np.testing.assert_allclose(ours[0], sgd[0], rtol=1e-5, atol=1e-6)
    if steps > 1:  # in between, the params do not move
        np.testing.assert_array_equal(history[0][0], data()[2])


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_tracked_mean_and_variance_are_the_true_ones(sgd_history, ema_decay):
    history = train(aggregating.add_mean_variance_to_opt(optix.sgd(0.1), ema_decay), True, BATCH)
    true_mean = true_var = 0.0
    for t, ((params, _, mean, var, (mean_ema, var_ema)), sgd) in enumerate(
        zip(history, sgd_history, strict=True), start=1
    ):
        np.testing.assert_allclose(params, sgd[0], rtol=1e-5, atol=1e-6)
        true_mean = (1 - ema_decay) * mean + ema_decay * true_mean
        true_var = (1 - ema_decay) * var + ema_decay * true_var
        np.testing.assert_allclose(mean_ema, true_mean / (1 - ema_decay**t), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(var_ema, true_var / (1 - ema_decay**t), rtol=1e-5, atol=1e-6)


def test_pooled_variance_over_microbatches_is_the_batch_variance():
    whole = train(aggregating.add_mean_variance_to_opt(optix.sgd(0.1), 0.9), True, BATCH)
    pooled = train(
        aggregating.add_mean_variance_to_opt(optix.sgd(0.1), 0.9, accumulation_steps=2),
        True,
        BATCH // 2,
    )
    for a, b in zip(whole, pooled[1::2], strict=True):
        np.testing.assert_allclose(b[0], a[0], rtol=1e-5, atol=1e-6)
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5), b[4], a[4])


@pytest.mark.parametrize("steps", [1, 2])
def test_matches_optax(steps):
    ours = train(
        aggregating.add_mean_variance_to_opt(optix.sgd(0.1, 0.9), 0.9, accumulation_steps=steps),
        True,
        BATCH // steps,
    )
    with jax.numpy_dtype_promotion("standard"):
        theirs = train(
            optax.experimental.aggregating.add_mean_variance_to_opt(
                optax.sgd(0.1, 0.9), 0.9, accumulation_steps=steps
            ),
            True,
            BATCH // steps,
            module=optax.experimental.aggregating,
            apply=optax.apply_updates,
        )
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6, atol=1e-7)
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6), a[4], b[4])

    def names(state):
        nodes = jax.tree.leaves(state, is_leaf=lambda x: hasattr(x, "_fields"))
        return [type(x).__name__ for x in nodes]

    assert names(ours[-1][1]) == names(theirs[-1][1])


def test_process_returns_an_aggregator_only_for_an_aggregator():
    agg = aggregating.process(identity(), aggregating.average_per_element_updates(), identity())
    assert isinstance(agg, aggregating.Aggregator)
    plain = aggregating.process(identity(), aggregating.accumulate_avg_updates(2), identity())
    assert isinstance(plain, GradientTransformation)
    assert not isinstance(plain, aggregating.Aggregator)


def test_extra_arguments_reach_the_members_that_take_them():
    seen = {}

    def record(updates, state, params=None, *, tag):
        seen["tag"] = tag
        return updates, state

    post = GradientTransformation(lambda p: (), record)
    opt = aggregating.process(identity(), aggregating.average_incrementally_updates(0, 2), post)
    grads = jnp.ones((3, 2))
    state = opt.init(jnp.zeros(2))
    out, state = opt.update(grads, state, tag=lambda: "a function, not an array")
    np.testing.assert_array_equal(out, 0.0)
    out, state = opt.update(2 * grads, state, tag="second")
    np.testing.assert_array_equal(out, 1.5)
    assert seen["tag"] == "second"


def test_errors_are_explained():
    with pytest.raises(ValueError, match="accumulation_steps must be >= 1"):
        aggregating.accumulate_avg_updates(0)
    with pytest.raises(ValueError, match="holds no PerElementMeanAndVarianceEMAState"):
        aggregating.get_unbiased_mean_and_variance_ema(optix.sgd(0.1).init(jnp.zeros(2)))
    with pytest.raises(ValueError, match="same batch size"):
        aggregating.get_batch_size_from_per_elt_updates([jnp.ones((3, 2)), jnp.ones((4,))], 0)
    assert aggregating.get_batch_size_from_per_elt_updates([jnp.ones((3, 2, 5))], (0, 1)) == 6
    tracker = aggregating.track_per_element_mean_and_variance_with_ema()
    with pytest.raises(ValueError, match="needs the keyword arguments sum_sq_diff_grads"):
        tracker.update(jnp.ones(2), tracker.init(jnp.ones(2)))


def test_names_and_signatures_are_optax_s():
    import inspect

    import optix.experimental

    theirs = optax.experimental.aggregating
    assert optix.experimental.__all__ == ["aggregating"]

    def defined_there(name):
        return getattr(getattr(theirs, name), "__module__", "") == theirs.__name__

    public = {n for n in dir(theirs) if not n.startswith("_") and defined_there(n)}
    assert len(public) >= 14
    assert public <= set(aggregating.__all__)
    for name in public:
        a, b = getattr(aggregating, name), getattr(theirs, name)
        if hasattr(b, "_fields"):
            assert a._fields == b._fields, name
        elif inspect.isfunction(b):
            params = lambda f: list(inspect.signature(f).parameters)
            assert params(a) == params(b), name


def test_bad_hyperparameters_fail_at_construction():
    with pytest.raises(ValueError, match="get_per_element_mean_and_sum_sq_diff_grads: "
                       "accumulation_steps must be >= 1"):  # fmt: skip
        aggregating.get_per_element_mean_and_sum_sq_diff_grads(0, accumulation_steps=0)
    with pytest.raises(TypeError, match="accumulation_steps must be an int"):
        aggregating.accumulate_avg_updates(2.0)
    with pytest.raises(ValueError, match="ema_decay must be in \\[0, 1\\]"):
        aggregating.track_per_element_mean_and_variance_with_ema(1.5)
