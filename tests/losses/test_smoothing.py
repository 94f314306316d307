"""Label smoothing against Optax and PyTorch's label_smoothing."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

from optix import losses
from optix.losses import smoothing

SMOOTH = jax.jit(losses.smooth_labels, static_argnames="axis")
TS = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)


def test_signature_and_export_match_optax():
    ours = inspect.signature(smoothing.smooth_labels).parameters
    theirs = inspect.signature(optax.losses.smooth_labels).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]
    assert losses.smooth_labels is smoothing.smooth_labels
    assert "smooth_labels" in losses.__all__


def test_optax_cases():
    """alpha = 0 keeps the labels, 0.1 mixes in a tenth of uniform, 1 is uniform."""
    for alpha, expected in ((0.0, TS), (0.1, 0.9 * TS + 0.1 / 3), (1.0, np.full_like(TS, 1 / 3))):
        np.testing.assert_allclose(SMOOTH(TS[0], alpha), expected[0], rtol=1e-6)
        np.testing.assert_allclose(SMOOTH(TS, alpha), expected, rtol=1e-6)


def test_axes_and_where_match_optax():
    rng = np.random.default_rng(0)
    labels = np.eye(5, dtype=np.float32)[rng.integers(5, size=(3, 4))]  # (3, 4, 5)
    keep = rng.random((3, 4, 5)) < 0.8
    for kwargs in (
        {"axis": 1},
        {"axis": (1, 2)},
        {"axis": None},
        {"where": keep},
        {"axis": (0, 2), "where": keep},
    ):
        ours = SMOOTH(labels, 0.2, **kwargs)
        with jax.numpy_dtype_promotion("standard"):
            theirs = optax.losses.smooth_labels(labels, 0.2, **kwargs)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, err_msg=str(kwargs))
    # Along several axes the classes are all their entries together.
    np.testing.assert_allclose(SMOOTH(labels, 0.2, axis=(1, 2)), 0.8 * labels + 0.2 / 20, rtol=1e-6)
    counted = keep.sum(-1, keepdims=True)
    np.testing.assert_allclose(
        SMOOTH(labels, 0.2, where=keep), 0.8 * labels + 0.2 / counted, rtol=1e-6
    )


def test_cross_entropy_of_smoothed_labels_is_torch_label_smoothing(x64):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 9)) * 3
    labels = rng.integers(9, size=6)
    for alpha in (0.05, 0.3, 1.0):
        ours = losses.softmax_cross_entropy(logits, SMOOTH(np.eye(9)[labels], alpha))
        theirs = F.cross_entropy(
            torch.from_numpy(logits),
            torch.from_numpy(labels),
            reduction="none",
            label_smoothing=alpha,
        )
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_dtypes(dtype):
    labels = jnp.asarray(TS, dtype)
    out = SMOOTH(labels, 0.1)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, SMOOTH(TS, 0.1).astype(dtype))
    assert SMOOTH(labels, jnp.float32(0.1)).dtype == jnp.float32  # as Optax promotes
    with jax.numpy_dtype_promotion("standard"):
        assert optax.losses.smooth_labels(labels, jnp.float32(0.1)).dtype == jnp.float32


def test_argument_errors():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got alpha=1.5"):
        losses.smooth_labels(TS, 1.5)
    with pytest.raises(TypeError, match=r"smooth_labels: labels must have a floating dtype"):
        losses.smooth_labels(np.eye(3, dtype=np.int32), 0.1)
