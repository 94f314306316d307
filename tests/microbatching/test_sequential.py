"""microbatch and micro_vmap: the full-batch results, Optax's, under jit."""

import dataclasses
import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix.microbatching import AccumulationType, Accumulator, micro_vmap, microbatch

CONCAT, SUM, MEAN, RUNNING_MEAN = (
    AccumulationType.CONCAT,
    AccumulationType.SUM,
    AccumulationType.MEAN,
    AccumulationType.RUNNING_MEAN,
)


def per_example(scale, a, b):
    return a * b, a / b * scale


def summed(scale, a, b):
    return jnp.sum(scale + a + 2 * b, axis=0)


def averaged(scale, a, b):
    return jnp.mean(scale * a), {"key": jnp.mean(b)}


def everything(scale, a, b):
    return {"per_example": per_example(scale, a, b), "sum": summed(scale, a, b),
            "mean": averaged(scale, a, b)}  # fmt: skip


CASES = {
    "per_example": (per_example, CONCAT),
    "sum": (summed, SUM),
    "mean": (averaged, MEAN),
    "everything": (everything, {"per_example": CONCAT, "sum": SUM, "mean": MEAN}),
}


def batch(dtype=np.float32, shape=(10, 3)):
    rng = np.random.default_rng(0)
    scale = jnp.asarray(rng.normal(), dtype)
    a, b = (jnp.asarray(rng.normal(size=shape), dtype) for _ in range(2))
    return scale, a, b


def assert_trees_close(got, expected, **tolerance):
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **tolerance), got, expected)


@pytest.mark.parametrize("name, size", [("everything", 1), ("everything", 5), ("mean", 2)])
def test_decomposable_functions_give_the_full_batch_result(name, size):
    fun, accumulator = CASES[name]
    args = batch()
    got = jax.jit(microbatch(fun, (1, 2), size, accumulator))(*args)
    assert_trees_close(got, fun(*args), rtol=1e-6, atol=1e-6)


def test_matches_optax_microbatch():
    args = batch()
    optax_acc = optax.microbatching.AccumulationType
    theirs_acc = {"per_example": optax_acc.CONCAT, "sum": optax_acc.SUM, "mean": optax_acc.MEAN}
    ours = jax.jit(microbatch(everything, (1, 2), 2, CASES["everything"][1]))(*args)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.microbatch(everything, (1, 2), 2, theirs_acc)(*args)
    assert_trees_close(ours, theirs, rtol=1e-6, atol=0)


def test_microbatch_i_takes_every_nth_row():
    """Rows i, i + n, i + 2n, ... form microbatch i (n microbatches)."""
    x = jnp.arange(6.0)
    got = microbatch(lambda x: x[:-1] @ x[1:], argnums=0, microbatch_size=3)(x)
    # microbatches [0, 2, 4] and [1, 3, 5]
    np.testing.assert_allclose(got, 0 * 2 + 2 * 4 + 1 * 3 + 3 * 5)


def test_keyword_batch_arguments():
    scale, a, b = batch()
    fun = lambda scale, a, *, b: summed(scale, a, b)
    got = microbatch(fun, argnums=1, microbatch_size=2, argnames="b")(scale, a, b=b)
    np.testing.assert_allclose(got, summed(scale, a, b), rtol=1e-6)


def test_argnums_and_argnames_are_interchangeable():
    fun = lambda a, b, c, *, d: jnp.sum(a + b + c + d)
    ones = jnp.ones(16)
    out1 = microbatch(fun, argnums=(0, 1), microbatch_size=2)(ones, ones, 1.0, d=2.0)
    out2 = microbatch(fun, argnums=0, argnames="b", microbatch_size=2)(ones, b=ones, c=1.0, d=2.0)
    out3 = microbatch(fun, argnums=(), argnames=("b", "a"), microbatch_size=2)(
        a=ones, b=ones, c=1.0, d=2.0
    )
    np.testing.assert_array_equal(out1, 16 * 5.0)
    np.testing.assert_array_equal(out2, out1)
    np.testing.assert_array_equal(out3, out1)


@pytest.mark.parametrize("accumulator", [RUNNING_MEAN, CONCAT])
def test_batch_axis_position_does_not_change_the_result(accumulator):
    x0 = jnp.asarray(np.random.default_rng(1).normal(size=(10, 4, 5)), jnp.float32)
    x1 = jnp.transpose(x0, (1, 0, 2))
    f0 = functools.partial(jnp.einsum, "bij,bkj->ik")
    f1 = functools.partial(jnp.einsum, "ibj,kbj->ik")
    mb = functools.partial(microbatch, argnums=(0, 1), microbatch_size=2, accumulator=accumulator)
    r0 = jax.jit(mb(f0, in_axes=0))(x0, x0)
    r1 = jax.jit(mb(f1, in_axes=1))(x1, x1)
    r2 = jax.jit(mb(lambda a, b: jnp.einsum("bij,kbj->ik", a, b), in_axes=(0, 1)))(x0, x1)
    np.testing.assert_allclose(r0, r1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r0, r2, rtol=1e-5, atol=1e-5)
    if accumulator is SUM:
        np.testing.assert_allclose(r0, f0(x0, x0), rtol=1e-5)
    if accumulator in (MEAN, RUNNING_MEAN):
        np.testing.assert_allclose(r0, f0(x0, x0) / 5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_outputs_keep_the_input_dtype(dtype):
    assert microbatch(summed, (1, 2), 2)(*batch(dtype)).dtype == dtype
    assert microbatch(averaged, (1, 2), 2, RUNNING_MEAN)(*batch(dtype))[0].dtype == dtype


def test_early_stop_leaves_the_rest_zero():
    x = jnp.arange(12.0) + 1
    out = microbatch(lambda x: x, 0, 3, CONCAT, num_real_microbatches=2)(x)
    # microbatches 0 and 1 are rows 4k and 4k + 1
    np.testing.assert_array_equal(out, np.where(np.arange(12) % 4 < 2, x, 0))


def test_traced_early_stop_and_running_mean():
    @jax.jit
    def partial_sums(x, steps):
        total = microbatch(jnp.sum, 0, 4, num_real_microbatches=steps)(x)
        mean = microbatch(jnp.mean, 0, 4, RUNNING_MEAN, num_real_microbatches=steps)(x)
        return total, mean

    x = jnp.arange(128.0)
    total, mean = partial_sums(x, 4)
    rows = x.reshape(4, 32).T[:4]  # the first four microbatches, one per row
    np.testing.assert_allclose(total, rows.sum())
    np.testing.assert_allclose(mean, rows.mean(), rtol=1e-6)


def test_custom_accumulator_and_none_size():
    maximum = Accumulator(
        init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        update=lambda carry, value, _: jnp.maximum(carry, value),
        finalize=lambda carry: carry,
        aggregate=functools.partial(jnp.max, axis=0),
    )
    x = jnp.asarray(np.random.default_rng(2).normal(size=12), jnp.float32)
    np.testing.assert_array_equal(microbatch(jnp.max, 0, 3, maximum)(x), jnp.max(x))
    assert microbatch(jnp.max, 0, None) is jnp.max


def test_errors_say_what_is_wrong():
    args = batch()
    with pytest.raises(ValueError, match="divisible by microbatch_size"):
        microbatch(summed, (1, 2), 3)(*args)
    with pytest.raises(ValueError, match="equal-size batch axes"):
        microbatch(summed, (1, 2), 2)(args[0], args[1], args[2][:8])
    with pytest.raises(ValueError, match="need floating-point outputs"):
        microbatch(lambda x: x, 0, 2, MEAN)(jnp.arange(4))
    with pytest.raises(ValueError, match="Unknown accumulator"):
        microbatch(jnp.sum, 0, 2, "sum")(jnp.ones(4))
    with pytest.raises(ValueError, match="microbatch_size must be >= 1"):
        microbatch(jnp.sum, 0, 0)
    with pytest.raises(ValueError, match="in_axes needs one axis per entry"):
        microbatch(jnp.sum, (0, 1), 2, in_axes=(0,))


def test_micro_vmap_is_vmap():
    x = jnp.arange(2 * 4 * 8).reshape(2, 4, 8)
    got = jax.jit(micro_vmap(jnp.sum, in_axes=1, microbatch_size=2))(x)
    np.testing.assert_array_equal(got, jax.vmap(jnp.sum, in_axes=1)(x))
    np.testing.assert_array_equal(micro_vmap(lambda v: v**2)(jnp.arange(8)), jnp.arange(8) ** 2)


def test_micro_vmap_maps_keywords_and_broadcasts_an_int_in_axes():
    x = jnp.arange(32).reshape(4, 8)
    y = jnp.ones((4, 8), jnp.int32)
    fun = lambda x, *, y: jnp.sum(x + y)
    np.testing.assert_array_equal(micro_vmap(fun, microbatch_size=2)(x, y=y), jax.vmap(fun)(x, y=y))
    two = lambda a, b: a @ b
    np.testing.assert_array_equal(micro_vmap(two, microbatch_size=2)(x, x), jax.vmap(two)(x, x))
    mixed = micro_vmap(two, in_axes=(0, None), microbatch_size=2)(x, x[0])
    np.testing.assert_array_equal(mixed, x @ x[0])


def test_micro_vmap_reductions_and_early_stop_match_optax():
    x = jnp.asarray(np.random.default_rng(3).normal(size=(16, 3)), jnp.float32)
    ours = micro_vmap(jnp.sum, microbatch_size=4, num_real_microbatches=3, accumulator=SUM)(x)
    theirs = optax.microbatching.micro_vmap(
        jnp.sum,
        microbatch_size=4,
        num_real_microbatches=3,
        accumulator=optax.microbatching.AccumulationType.SUM,
    )(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    np.testing.assert_allclose(ours, jnp.sum(x.reshape(4, 4, 3)[:, :3]), rtol=1e-5)
    mean = micro_vmap(jnp.sum, microbatch_size=4, accumulator=MEAN)(x)
    np.testing.assert_allclose(mean, jnp.mean(jnp.sum(x, axis=1)), rtol=1e-5)
    with pytest.raises(NotImplementedError, match="out_axes must be 0"):
        micro_vmap(jnp.sum, out_axes=1)


def test_names_and_signatures_are_optax_s():
    import optix.microbatching as ours

    theirs = optax.microbatching
    assert set(ours.__all__) == {n for n in dir(theirs) if not n.startswith("_")}
    for name in ["micro_grad", "micro_vmap", "microbatch", "reshape_batch_axis"]:
        a = inspect.signature(getattr(ours, name)).parameters
        b = inspect.signature(getattr(theirs, name)).parameters
        assert [(p.name, p.kind) for p in a.values()] == [(p.name, p.kind) for p in b.values()]
    assert [m.name for m in ours.AccumulationType] == [m.name for m in theirs.AccumulationType]
    # Members equal Optax's of the same name, and Optax's are accepted.
    assert ours.AccumulationType.SUM == theirs.AccumulationType.SUM != ours.AccumulationType.MEAN
    assert hash(ours.AccumulationType.SUM) == hash(theirs.AccumulationType.SUM)
    got = ours.microbatch(jnp.mean, 0, 2, theirs.AccumulationType.MEAN)(jnp.arange(8.0))
    np.testing.assert_allclose(got, 3.5)
    fields = lambda cls: [f.name for f in dataclasses.fields(cls)]
    assert fields(ours.Accumulator) == fields(theirs.Accumulator)
