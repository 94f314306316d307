"""Optax's own clipping cases (optax/transforms/_clipping_test.py), run on optix: repeated
clipping is stable, adaptive clipping with explicit and default axes, unitwise norms of
each rank, and the per-example clips with the numbers Optax asserts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.transforms.clipping import unitwise_norm

INIT = (jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
GRADS = (jnp.array([500.0, 5.0]), jnp.array([300.0, 3.0]))


def rms(x):
    return float(jnp.sqrt(jnp.mean(x**2)))


def test_clip_leaves_small_entries_and_clips_large_ones_to_the_bound():
    out, _ = optix.clip(1e6).update(GRADS, optix.EmptyState())
    jax.tree.map(np.testing.assert_array_equal, out, GRADS)
    out, _ = optix.clip(1.0).update(GRADS, optix.EmptyState())
    jax.tree.map(lambda x: np.testing.assert_array_equal(x, 1.0), out)


@pytest.mark.parametrize("kind", ["block_rms", "global_norm"])
def test_clipping_again_and_again_is_stable(kind):
    build = {"block_rms": optix.clip_by_block_rms, "global_norm": optix.clip_by_global_norm}[kind]
    update = jax.jit(lambda bound, g: build(bound).update(g, optix.EmptyState())[0])
    updates = GRADS
    for i in range(1, 51):
        updates = update(1.0 / i, updates)
        if kind == "block_rms":
            assert rms(updates[0]) == pytest.approx(1.0 / i, rel=1e-6)
            assert rms(updates[1]) == pytest.approx(1.0 / i, rel=1e-6)
        else:
            assert float(optix.tree.norm(updates)) == pytest.approx(1.0 / i, rel=1e-6)
        once = update(1.0 / i, GRADS)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), updates, once)


def test_adaptive_grad_clip_again_and_again_is_stable():
    update = jax.jit(
        lambda c, g: optix.adaptive_grad_clip(c).update(g, optix.EmptyState(), INIT)[0]
    )
    updates = GRADS
    for i in range(1, 51):
        updates = update(1.0 / i, updates)
        for u, p in zip(updates, INIT, strict=True):
            assert bool(jnp.all(unitwise_norm(u) - unitwise_norm(p) / i < 1e-6))
        once = update(1.0 / i, GRADS)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), updates, once)
    small = [jnp.array([[1.0, 2.0], [3.0, 4.0]])]
    out, _ = optix.adaptive_grad_clip(1.0).update(small, None, [jnp.ones((2, 2))])
    assert bool(jnp.all(unitwise_norm(out[0]) <= unitwise_norm(jnp.ones((2, 2))) + 1e-6))


def test_adaptive_grad_clip_with_an_axis_for_conv3d_kernels():
    kernel = jnp.ones((2, 2, 2, 3, 4))
    clipped, _ = optix.adaptive_grad_clip(0.5, axis=(0, 1, 2)).update(
        [2.0 * kernel], None, [kernel]
    )
    linear, _ = optix.adaptive_grad_clip(0.5).update(
        [jnp.full((5, 6), 3.0)], None, [jnp.ones((5, 6))]
    )
    assert clipped[0].shape == kernel.shape and linear[0].shape == (5, 6)
    bound = 0.5 * unitwise_norm(kernel, axis=(0, 1, 2)) + 1e-6
    assert bool(jnp.all(unitwise_norm(clipped[0], axis=(0, 1, 2)) <= bound))
    # Each unit of 8 ones has norm sqrt(8): the gradient (2 sqrt 8) is scaled to 0.5 sqrt 8.
    np.testing.assert_allclose(clipped[0], 0.5, rtol=1e-5)
    assert bool(jnp.all(unitwise_norm(linear[0]) <= 0.5 * unitwise_norm(jnp.ones((5, 6))) + 1e-6))
    # No clipping needed: unchanged.
    out, _ = optix.adaptive_grad_clip(2.0, axis=(0, 1, 2)).update([0.1 * kernel], None, [kernel])
    np.testing.assert_allclose(out[0], 0.1 * kernel, rtol=1e-6)
    # The default units of a 5-d kernel are its last axis.
    default, _ = optix.adaptive_grad_clip(0.5).update([2.0 * kernel], None, [kernel])
    np.testing.assert_allclose(
        unitwise_norm(default[0]), unitwise_norm(default[0], axis=(0, 1, 2, 3)), rtol=1e-6
    )
    assert bool(jnp.all(unitwise_norm(default[0]) <= 0.5 * unitwise_norm(kernel) + 1e-6))


def test_unitwise_norm_with_an_axis_keeps_the_shape():
    x = jnp.arange(2 * 2 * 2 * 3 * 4, dtype=jnp.float32).reshape(2, 2, 2, 3, 4)
    for axis in [(0, 1, 2), (3, 4), -1, None, (0, 1, 2, 3)]:
        assert unitwise_norm(x, axis=axis).shape == x.shape
    np.testing.assert_array_equal(unitwise_norm(x), unitwise_norm(x, axis=(0, 1, 2, 3)))
    x_2d = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(unitwise_norm(x_2d), unitwise_norm(x_2d, axis=None))
    with pytest.raises(ValueError):
        unitwise_norm(jnp.ones((2,) * 6))
    assert unitwise_norm(jnp.ones((2,) * 6), axis=(0, 1, 2)).shape == (2,) * 6
    np.testing.assert_allclose(unitwise_norm(jnp.ones((2,) * 6), axis=(0, 1, 2)), np.sqrt(8.0))


def test_per_example_global_norm_clip():
    grads = [
        jnp.array([[0.0, -0.5], [3.0, 4.0], [5.0, 6.0], [0.0, 0.0]]),
        jnp.array([[0.0], [5.0], [-3.0], [0.0]]),
    ]
    expected = [
        jnp.array([0.0, -0.5])
        + jnp.array([3.0, 4.0]) / jnp.sqrt(50)
        + jnp.array([5.0, 6.0]) / jnp.sqrt(70),
        jnp.array([5.0]) / jnp.sqrt(50) + jnp.array([-3.0]) / jnp.sqrt(70),
    ]
    summed, num_clipped = optix.per_example_global_norm_clip(grads, l2_norm_clip=1.0)
    for actual, want in zip(summed, expected, strict=True):
        np.testing.assert_allclose(actual, want, atol=1e-6)
    assert int(num_clipped) == 2


def test_per_example_layer_norm_clip_uniform_and_scaled():
    grads = [jnp.array([[0.5], [1.5], [-2.0], [3.0]]), jnp.ones([4, 3, 3, 2])]
    # Uniform: each of the two layers gets sqrt(2) / sqrt(2) = 1.
    summed, num_clipped = optix.per_example_layer_norm_clip(grads, jnp.sqrt(2.0), uniform=True)
    np.testing.assert_allclose(summed[0], [1.5], rtol=1e-6)
    np.testing.assert_allclose(summed[1], np.full((3, 3, 2), 4 / np.sqrt(18)), rtol=1e-5)
    assert [int(n) for n in num_clipped] == [3, 4]
    # Scaled by size: 1 for the first layer, sqrt(18) for the second (not clipped).
    summed, num_clipped = optix.per_example_layer_norm_clip(grads, jnp.sqrt(19.0), uniform=False)
    np.testing.assert_allclose(summed[0], [1.5], rtol=1e-6)
    np.testing.assert_allclose(summed[1], np.full((3, 3, 2), 4.0), rtol=1e-5)
    assert [int(n) for n in num_clipped] == [3, 0]
