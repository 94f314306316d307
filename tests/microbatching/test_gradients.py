"""micro_grad: per-example gradients against jax.vmap(jax.grad) and Optax, and
reshape_batch_axis's layout."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.microbatching import AccumulationType, micro_grad, reshape_batch_axis


def mean_squared_loss(params, features, targets):
    return 0.5 * jnp.mean((features @ params - targets) ** 2)


@pytest.mark.parametrize("keep_batch_dim", [False, True])
def test_per_example_gradients_transformed_and_summed(keep_batch_dim):
    def loss(params, features, targets):
        assert features.ndim == int(keep_batch_dim) + 1
        return mean_squared_loss(params, features, targets)

    grad_fn = micro_grad(
        loss,
        batch_argnums=(1, 2),
        transform_fn=lambda g: (g, g**2),
        metrics_fn=jnp.linalg.norm,
        keep_batch_dim=keep_batch_dim,
    )
    (grads, squares), aux = grad_fn(jnp.zeros(1), jnp.ones((4, 1)), jnp.arange(4.0))
    # example j's gradient is -j
    np.testing.assert_allclose(grads, [-(0 + 1 + 2 + 3)])
    np.testing.assert_allclose(squares, [0 + 1 + 4 + 9])
    np.testing.assert_allclose(aux.values, [0, 0.5, 2, 4.5])
    np.testing.assert_allclose(aux.metrics, [0, 1, 2, 3])
    assert aux.aux is None


def test_clipped_mean_gradient_matches_vmap_and_optax_under_jit():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), "b": jnp.zeros(2)}
    x = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)

    def loss(p, x, y):
        pred = x @ p["w"] + p["b"][None]
        return jnp.sum((pred - y) ** 2), jnp.sum(pred)

    def clip(g):
        n = optax.tree.norm(g)
        return jax.tree.map(lambda leaf: leaf * jnp.minimum(1.0, 1.0 / n), g)

    kwargs = dict(has_aux=True, batch_argnums=(1, 2), microbatch_size=2, transform_fn=clip)
    ours = jax.jit(micro_grad(loss, accumulator=AccumulationType.MEAN, **kwargs))(params, x, y)
    with jax.numpy_dtype_promotion("standard"):
        theirs = jax.jit(
            optax.microbatching.micro_grad(
                loss, accumulator=optax.microbatching.AccumulationType.MEAN, **kwargs
            )
        )(params, x, y)

    @jax.jit
    def expected_mean(params, x, y):
        one = jax.grad(lambda p, x, y: loss(p, x[None], y[None])[0])
        per_example = jax.vmap(one, (None, 0, 0))(params, x, y)
        return jax.tree.map(lambda g: jnp.mean(g, 0), jax.vmap(clip)(per_example))

    expected = expected_mean(params, x, y)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), ours[0], expected)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6)
    jax.tree.map(close, ours[0], theirs[0])
    for field in ("values", "metrics", "aux"):
        jax.tree.map(close, getattr(ours[1], field), getattr(theirs[1], field))
    np.testing.assert_allclose(ours[1].aux, jnp.sum(x @ params["w"], axis=1), rtol=1e-5)


def test_early_stop_counts_only_the_real_microbatches():
    grad_fn = micro_grad(lambda c, x: c * x.sum(), microbatch_size=4, num_real_microbatches=3)
    result, _ = grad_fn(1.0, jnp.ones(16))
    np.testing.assert_allclose(result, 12.0)


def test_reshape_batch_axis_is_strided():
    x = jnp.arange(2 * 6 * 3).reshape(2, 6, 3)
    out = reshape_batch_axis({"x": x}, microbatch_size=3, axis=1)["x"]
    assert out.shape == (2, 2, 3, 3)
    n = 2
    for i in range(n):
        for k in range(3):
            np.testing.assert_array_equal(out[:, i, k], x[:, i + n * k])


def test_explicit_mesh_keeps_the_batch_sharding_on_the_row_axis():
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
    spec = jax.sharding.PartitionSpec
    with jax.set_mesh(mesh):
        x = jax.device_put(jnp.arange(24.0).reshape(6, 4), jax.NamedSharding(mesh, spec("data")))
        assert jax.typeof(reshape_batch_axis(x, 3)).sharding.spec == spec(None, "data", None)
        grads, aux = jax.jit(micro_grad(lambda p, x: jnp.sum(x @ p), microbatch_size=3))(
            jnp.ones(4), x
        )
        assert jax.typeof(aux.values).sharding.spec == spec("data")
    np.testing.assert_allclose(grads, jnp.sum(x, axis=0))
    np.testing.assert_allclose(aux.values, jnp.sum(x, axis=1))
