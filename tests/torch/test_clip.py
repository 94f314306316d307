"""optix.torch.clip_grad_norm / clip_grad_value against torch.nn.utils, and their laws."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.torch.clip import (
    ClipGradNormState,
    clip_grad_norm,
    clip_grad_norm_transform,
    clip_grad_value,
)
from optix.torch.optim import sgd
from tests.reference import DTYPES, SCHEDULES, compare, gradient_sequence, torch_reference
from tests.registry import ENTRIES
from tests.transforms.basics import check_basics

TORCH_DTYPES = {
    np.float32: torch.float32,
    np.float64: torch.float64,
    jnp.bfloat16: torch.bfloat16,
}
NORM_TYPES = [2.0, 1.0, 3.0, 0.5, float("inf"), "inf", 0.0, -1.0, float("-inf")]


def torch_clip_grad_norm(leaves, max_norm, norm_type, dtype):
    """torch's (total_norm, clipped grads) for gradients ``leaves`` (NumPy arrays)."""
    params = [torch.zeros(g.shape, dtype=TORCH_DTYPES[dtype], requires_grad=True) for g in leaves]
    for p, g in zip(params, leaves, strict=True):
        p.grad = torch.tensor(np.asarray(g, np.float64), dtype=TORCH_DTYPES[dtype])
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
    return total.double().numpy(), [p.grad.double().numpy() for p in params]


def many_leaves(dtype, scale=1.0, seed=0, count=40):
    """``count`` leaves of ranks 0 to 3 (sorted keys, so jax and torch see one order)."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(rng.integers(1, 5, size=rng.integers(0, 4))) for _ in range(count)]
    return {f"g{i:02d}": (scale * rng.normal(size=s)).astype(dtype) for i, s in enumerate(shapes)}


def assert_matches_torch(grads, max_norm, norm_type, dtype, rtol):
    leaves = jax.tree.leaves(grads)
    with jax.enable_x64(dtype == np.float64):
        clipped, total = clip_grad_norm(grads, max_norm, norm_type)
    expected_total, expected = torch_clip_grad_norm(leaves, max_norm, norm_type, dtype)
    np.testing.assert_allclose(np.asarray(total, np.float64), expected_total, rtol=rtol, atol=0)
    for ours, theirs, g in zip(jax.tree.leaves(clipped), expected, leaves, strict=True):
        assert ours.dtype == g.dtype
        np.testing.assert_allclose(np.asarray(ours, np.float64), theirs, rtol=rtol, atol=0)


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=str)
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e4, float("inf")])
@pytest.mark.parametrize(
    "dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)], ids=["f64", "f32"]
)
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype, rtol):
    assert_matches_torch(many_leaves(dtype), max_norm, norm_type, dtype, rtol)


@pytest.mark.parametrize(
    "dtype, scale",
    [
        (np.float32, 1e-30),  # squares underflow: torch reports a zero norm, grads unchanged
        (np.float32, 1e-17),
        (np.float32, 1e18),
        (np.float32, 1e30),  # squares overflow: torch's norm is inf, every grad becomes 0
        (np.float64, 1e-200),
        (np.float64, 1e150),
        (np.float64, 1e200),
    ],
)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")], ids=str)
def test_tiny_and_huge_gradients_match_torch(dtype, scale, norm_type):
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert_matches_torch(many_leaves(dtype, scale, count=8), 1.0, norm_type, dtype, rtol)


def test_subnormal_squares_are_flushed_but_the_gradients_still_match_torch():
    """XLA flushes subnormal floats to zero and torch does not.

    Entries near 1e-19 have float32 squares below the smallest normal (1.2e-38): the
    norm optix reports is then smaller than torch's, but a norm that small never
    triggers clipping, so the clipped gradients are torch's exactly.
    """
    grads = many_leaves(np.float32, 1e-19, count=8)
    clipped, total = clip_grad_norm(grads, 1.0)
    expected_total, expected = torch_clip_grad_norm(jax.tree.leaves(grads), 1.0, 2.0, np.float32)
    assert 0.5 * expected_total < total < expected_total
    jax.tree.map(np.testing.assert_array_equal, jax.tree.leaves(clipped), expected)


def test_zero_gradients_and_nonfinite_gradients_match_torch(x64):
    cases = [
        {"a": np.zeros(3), "b": np.zeros(())},
        {"a": np.asarray([1.0, np.nan]), "b": np.asarray(2.0)},
        {"a": np.asarray([1.0, np.inf]), "b": np.asarray(-2.0)},
    ]
    for grads in cases:
        clipped, total = clip_grad_norm(grads, 1.0)
        expected_total, expected = torch_clip_grad_norm(
            jax.tree.leaves(grads), 1.0, 2.0, np.float64
        )
        np.testing.assert_array_equal(total, expected_total)
        jax.tree.map(np.testing.assert_array_equal, jax.tree.leaves(clipped), expected)


def test_mixed_dtypes_and_bf16_match_torch(x64):
    rng = np.random.default_rng(5)
    mixed = {"a": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=5)}
    clipped, total = clip_grad_norm(mixed, 0.5)
    assert total.dtype == np.float64
    ours_dtypes = [clipped["a"].dtype, clipped["b"].dtype]
    assert ours_dtypes == [np.float32, np.float64]
    params = [torch.tensor(mixed[k], requires_grad=True) for k in ("a", "b")]
    for p in params:
        p.grad = p.detach().clone()
    expected_total = torch.nn.utils.clip_grad_norm_(params, 0.5)
    np.testing.assert_allclose(total, expected_total.numpy(), rtol=1e-12)
    np.testing.assert_allclose(clipped["a"], params[0].grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], params[1].grad.numpy(), rtol=1e-12)
    # bf16: torch rounds its norm to bf16 first, optix keeps it in float32.
    low = {k: jnp.asarray(v, jnp.bfloat16) for k, v in many_leaves(np.float32, count=6).items()}
    clipped, total = clip_grad_norm(low, 0.5)
    expected_total, expected = torch_clip_grad_norm(
        [np.asarray(x, np.float32) for x in jax.tree.leaves(low)], 0.5, 2.0, jnp.bfloat16
    )
    assert total.dtype == jnp.float32 and clipped["g00"].dtype == jnp.bfloat16
    np.testing.assert_allclose(total, expected_total, rtol=4e-3)
    for ours, theirs in zip(jax.tree.leaves(clipped), expected, strict=True):
        np.testing.assert_allclose(np.asarray(ours, np.float64), theirs, rtol=8e-3)


def test_error_if_nonfinite_raises_outside_and_inside_jit():
    bad = {"a": jnp.asarray([1.0, jnp.inf])}
    with pytest.raises(RuntimeError, match=r"total norm of order 2.0 of the gradients is inf"):
        clip_grad_norm(bad, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match=r"of order inf .* is nan"):
        clip_grad_norm({"a": jnp.asarray([jnp.nan])}, 1.0, "inf", error_if_nonfinite=True)
    step = jax.jit(lambda g: clip_grad_norm(g, 1.0, error_if_nonfinite=True))
    clipped, total = step({"a": jnp.asarray([3.0, 4.0])})
    np.testing.assert_allclose(total, 5.0)
    with pytest.raises(RuntimeError, match="cannot be clipped"):
        jax.block_until_ready(step(bad))
    tx = clip_grad_norm_transform(1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="cannot be clipped"):
        jax.block_until_ready(jax.jit(tx.update)(bad, tx.init(bad)))
    # Without the flag, torch's numbers: the inf entry becomes NaN, the others 0.
    clipped, total = jax.jit(lambda g: clip_grad_norm(g, 1.0))(bad)
    np.testing.assert_array_equal(clipped["a"], [0.0, np.nan])


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(1)
    grads = many_leaves(np.float32, scale=2.0, count=10)
    grads["g00"] = np.asarray([np.nan, np.inf, -np.inf, 0.5, -3.0], np.float32)
    for clip_value in (0.1, 1.0, 1e3):
        ours = clip_grad_value(grads, clip_value)
        params = [torch.zeros(g.shape, requires_grad=True) for g in jax.tree.leaves(grads)]
        for p, g in zip(params, jax.tree.leaves(grads), strict=True):
            p.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_value_(params, clip_value)
        for a, p in zip(jax.tree.leaves(ours), params, strict=True):
            np.testing.assert_array_equal(a, p.grad.numpy())
    low = clip_grad_value({"x": jnp.asarray(rng.normal(size=4), jnp.bfloat16), "y": None}, 0.1)
    assert low["x"].dtype == jnp.bfloat16 and low["y"] is None


finite = st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False, width=32)
gradient_trees = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), elements=finite),
    min_size=1,
)


@settings(max_examples=200, deadline=None)
@given(gradient_trees, st.floats(1e-3, 1e4), st.sampled_from([2.0, 1.0, float("inf")]))
def test_never_exceeds_the_bound_and_leaves_small_gradients_unchanged(grads, max_norm, p):
    clipped, total = clip_grad_norm(grads, max_norm, p)
    flat = np.concatenate([np.ravel(x).astype(np.float64) for x in jax.tree.leaves(grads)])
    out = np.concatenate([np.ravel(x).astype(np.float64) for x in jax.tree.leaves(clipped)])
    before = np.linalg.norm(flat, ord=p)
    # XLA flushes subnormal float32 squares to zero: a 2-norm below sqrt(tiny) reads as 0.
    np.testing.assert_allclose(total, before, rtol=1e-5, atol=np.sqrt(np.finfo(np.float32).tiny))
    assert np.linalg.norm(out, ord=p) <= max_norm * (1 + 1e-5)
    if (before + 1e-6) * (1 + 1e-5) < max_norm:
        jax.tree.map(np.testing.assert_array_equal, clipped, grads)
    else:
        np.testing.assert_allclose(out, flat * (max_norm / (before + 1e-6)), rtol=2e-5, atol=1e-30)


def test_bad_arguments_raise_with_the_argument_named():
    with pytest.raises(ValueError, match=r"torch\.clip_grad_norm: max_norm must be > 0, got"):
        clip_grad_norm({"a": jnp.ones(2)}, 0.0)
    with pytest.raises(ValueError, match="clip_grad_norm_transform: max_norm must be > 0, got"):
        clip_grad_norm_transform(-1.0)
    with pytest.raises(ValueError, match="clip_grad_value: clip_value must be > 0, got clip"):
        clip_grad_value({"a": jnp.ones(2)}, -0.5)


# The transformation form, in front of torch's SGD, against clip_grad_norm_ + SGD.step().

CASES = {
    "l2": (1.0, 2.0),
    "l2_loose": (5.0, 2.0),
    "inf": (1.0, float("inf")),
    "l1": (3.0, 1.0),
    "p3": (1.0, 3.0),
}


class ClippedSGD:
    """torch.optim.SGD whose step first calls clip_grad_norm_ (and records the norm)."""

    def __init__(self, params, lr, max_norm, norm_type):
        self.params, self.max_norm, self.norm_type = params, max_norm, norm_type
        self.inner = torch.optim.SGD(params, lr=lr, momentum=0.9)
        self.param_groups = self.inner.param_groups
        self.norms = []

    def step(self):
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_norm, self.norm_type)
        self.norms.append(float(norm))
        self.inner.step()


@DTYPES
@SCHEDULES
@pytest.mark.parametrize("case", CASES)
def test_transform_in_a_chain_matches_torch(case, dtype, schedule):
    max_norm, norm_type = CASES[case]
    compare(
        lambda lr: optix.chain(clip_grad_norm_transform(max_norm, norm_type), sgd(lr, 0.9)),
        torch_reference(lambda ps, lr: ClippedSGD(ps, lr, max_norm, norm_type)),
        dtype,
        schedule,
        f32_rtol=ENTRIES["torch.clip_grad_norm_transform"].f32_rtol,
    )


def test_transform_state_holds_torch_total_norm(x64):
    grads = gradient_sequence(6)
    tx = clip_grad_norm_transform(1.0, 3.0)
    params = {k: jnp.zeros(np.shape(v)) for k, v in grads[0].items()}
    state = tx.init(params)
    assert state == ClipGradNormState(total_norm=0.0) and state.total_norm.dtype == np.float64
    reference = ClippedSGD(
        [
            torch.zeros(np.shape(v), dtype=torch.float64, requires_grad=True)
            for v in params.values()
        ],
        0.1,
        1.0,
        3.0,
    )
    norms = []
    for g in grads:
        _, state = jax.jit(tx.update)(g, state)
        norms.append(float(state.total_norm))
        for p, k in zip(reference.params, params, strict=True):
            p.grad = torch.tensor(g[k])
        reference.step()
    np.testing.assert_allclose(norms, reference.norms, rtol=1e-12)
    assert norms[4] == 0.0  # the zero-gradient step


def test_transform_basics():
    check_basics(clip_grad_norm_transform(1.0))
