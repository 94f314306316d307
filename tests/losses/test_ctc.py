"""CTC loss against torch.nn.functional.ctc_loss (float64, values and gradients) and
Optax (values and forward probabilities), with Optax's own cases."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

from optix import losses
from optix.losses import ctc

FORWARD = jax.jit(losses.ctc_loss_with_forward_probs, static_argnames="blank_id")
# (losses, gradient of their sum in the logits), one compilation for both.
LOSS_GRAD = jax.jit(
    lambda x, *a, **k: jax.grad(
        lambda x: (jnp.sum(loss := losses.ctc_loss(x, *a, **k)), loss), has_aux=True
    )(x)[::-1],
    static_argnames="blank_id",
)


def optax_call(name, *args):
    """Optax's function, compiled (its eager scan would dispatch op by op)."""
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        return jax.jit(getattr(optax.losses, name))(*args)


def paddings(lengths, size):
    return (np.arange(size)[None, :] >= np.asarray(lengths)[:, None]).astype(np.float32)


def torch_ctc(logits, logit_lengths, labels, label_lengths, blank):
    """float64 losses and d(sum of losses)/d logits, through torch's log_softmax."""
    x = torch.tensor(np.asarray(logits, np.float64), requires_grad=True)
    loss = F.ctc_loss(
        torch.log_softmax(x, -1).transpose(0, 1),
        torch.tensor(labels),
        torch.tensor(logit_lengths),
        torch.tensor(label_lengths),
        blank=blank,
        reduction="none",
        zero_infinity=False,
    )
    loss.sum().backward()
    return loss.detach().numpy(), x.grad.numpy()


# Every call uses logits [B, T, K] and labels [B, N]: one shape, few compilations.
B, T, K, N = 8, 12, 6, 12


def random_batch(seed, blank=0, max_length=5, alphabet=3):
    """Label lengths 0..max_length (both ends present), frame lengths leaving room for
    them, labels from a small alphabet (many repeats) that skips the blank; the padded
    labels hold random classes."""
    rng = np.random.default_rng(seed)
    label_lengths = rng.integers(0, max_length + 1, size=B)
    label_lengths[:2] = 0, max_length
    labels = rng.integers(0, alphabet, size=(B, N))
    labels = labels + (labels >= blank)
    repeats = np.array(
        [
            np.sum(r[1:n] == r[: n - 1]) if n else 0
            for r, n in zip(labels, label_lengths, strict=True)
        ]
    )
    logit_lengths = rng.integers(label_lengths + repeats, T + 1)
    logits = rng.normal(size=(B, T, K)) * 2
    return logits, logit_lengths, labels, label_lengths


def test_signatures_and_exports_match_optax():
    for name in ["ctc_loss", "ctc_loss_with_forward_probs"]:
        ours = inspect.signature(getattr(ctc, name)).parameters
        theirs = inspect.signature(getattr(optax.losses, name)).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name
        assert getattr(losses, name) is getattr(ctc, name)
        assert "Checked against" in getattr(ctc, name).__doc__


# Optax's own cases: one-to-one alignments (with and without paddings), repeats.


def one_to_one(seed):
    """Logits and labels that are a permutation of 1..5 repeated cyclically: no two
    neighbours are equal, so T frames and T labels allow one path only."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(B, T, K)).astype(np.float32)
    labels = np.stack([np.resize(rng.permutation(np.arange(1, K)), N) for _ in range(B)])
    return logits, labels, np.asarray(jax.nn.log_softmax(logits.astype(np.float64)))


def test_one_to_one_alignment_from_optax():
    logits, labels, logprobs = one_to_one(1234)
    none = np.zeros((B, T), np.float32)
    loss, blank, emit = FORWARD(logits, none, labels, none)
    path = np.take_along_axis(logprobs, labels[..., None], -1)[..., 0].sum(-1)
    np.testing.assert_allclose(loss, -path, rtol=1e-6)
    np.testing.assert_allclose(blank[-1, :, 0], logprobs[:, :, 0].sum(-1), rtol=1e-6)  # all blank
    np.testing.assert_allclose(emit[-1, :, N - 1], -loss, rtol=1e-6)  # all labels emitted
    np.testing.assert_allclose(blank[-1, :, N], -loss, rtol=1e-6)  # and the sequence ended


def test_one_to_one_alignment_with_paddings_from_optax():
    logits, labels, logprobs = one_to_one(5)
    lengths = np.random.default_rng(5).integers(3, 11, size=B)
    pads = paddings(lengths, T)
    loss, grad = LOSS_GRAD(logits, pads, labels, pads, blank_id=0)
    expected_grad = np.exp(logprobs) * (1 - pads)[..., None]
    for n in range(B):
        t = np.arange(lengths[n])
        np.testing.assert_allclose(loss[n], -logprobs[n, t, labels[n, t]].sum(), rtol=1e-6)
        expected_grad[n, t, labels[n, t]] -= 1
    np.testing.assert_allclose(grad, expected_grad, atol=1e-6)


def test_repeated_labels_need_blanks_from_optax():
    labels = np.array(
        [
            [1, 2, 2, 3],
            [2, 3, 4, 4],
            [1, 1, 1, 1],
            [1, 1, 2, 3],
            [1, 1, 1, 2],
            [1, 2, 3, 4],
            [5, 5, 5, 5],
            [3, 4, 3, 4],
        ]
    )
    alignments = [
        [1, 2, 0, 2, 3],
        [2, 3, 4, 0, 4],
        [1, 0, 1, 0, 1, 0, 1],
        [1, 0, 1, 2, 3],
        [1, 0, 1, 0, 1, 2],
        [1, 2, 3, 4],
        [5, 0, 5, 0, 5, 0, 5],
        [3, 4, 3, 4],
    ]
    labels = np.pad(labels, [(0, 0), (0, N - 4)])  # padded labels: 0, equal to the blank
    frames = np.array([len(a) for a in alignments])  # the only alignment with that many
    logits = np.random.default_rng(7).normal(size=(B, T, K)).astype(np.float32)
    loss = LOSS_GRAD(logits, paddings(frames, T), labels, paddings([4] * B, N), blank_id=0)[0]
    logprobs = np.asarray(jax.nn.log_softmax(logits.astype(np.float64)))
    for n, path in enumerate(alignments):
        np.testing.assert_allclose(
            loss[n], -sum(logprobs[n, t, k] for t, k in enumerate(path)), rtol=1e-6
        )


@pytest.mark.parametrize("blank", [0, 3])  # first and a middle class
def test_matches_torch_in_float64(blank, x64):
    logits, frames, labels, lengths = random_batch(blank, blank)
    loss, grad = LOSS_GRAD(
        logits, paddings(frames, T), labels, paddings(lengths, N), blank_id=blank
    )
    theirs, theirs_grad = torch_ctc(logits, frames, labels, lengths, blank)
    assert loss.dtype == jnp.float64 and np.isfinite(theirs).all()
    np.testing.assert_allclose(loss, theirs, rtol=1e-12)
    np.testing.assert_allclose(grad, theirs_grad, atol=1e-12)


def test_matches_optax_with_forward_probabilities():
    """float32, default log_epsilon: gradients against torch's float64 (Optax's are
    1.1e-6 off here, ours 3e-7); with gaps in the frame paddings, every entry of both
    forward tables (unreachable ones, near -1e5, included)."""
    logits, frames, labels, lengths = random_batch(11)
    logits = logits.astype(np.float32)
    args = (logits, paddings(frames, T), labels, paddings(lengths, N))
    _, grad = LOSS_GRAD(*args, blank_id=0)
    _, torch_grad = torch_ctc(logits, frames, labels, lengths, 0)
    np.testing.assert_allclose(grad, torch_grad, atol=1e-6)
    args[1][::3, 2:4] = 1  # padded frames in the middle keep the forward rows
    ours = FORWARD(*args)
    theirs = optax_call("ctc_loss_with_forward_probs", *args)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-5)
    assert (np.asarray(ours[2]) < -5e4).any()  # unreachable states were compared too


def test_extreme_and_masked_logits():
    """Logits of +-1e4 (many exact ties) and -inf classes: with log_epsilon=-inf the
    loss is torch's (float32 to 1e-6); with the default it is finite; gradients are
    finite either way."""
    _, frames, labels, lengths = random_batch(3)
    rng = np.random.default_rng(3)
    logits = np.where(rng.random((B, T, K)) < 0.5, 1e4, -1e4).astype(np.float32)
    logits[:, :, 5] = -np.inf  # a masked class no label uses
    args = (logits, paddings(frames, T), labels, paddings(lengths, N))
    theirs, _ = torch_ctc(logits, frames, labels, lengths, 0)
    # torch's CTC gradient is NaN at -inf log-probabilities: -1e30 there gives it.
    _, theirs_grad = torch_ctc(np.maximum(logits, -1e30), frames, labels, lengths, 0)
    loss, grad = LOSS_GRAD(*args, blank_id=0, log_epsilon=-np.inf)
    np.testing.assert_allclose(loss, theirs, rtol=1e-6)
    # Forward values near 4e4 carry float32's 4e-3 rounding into the posterior weights.
    np.testing.assert_allclose(grad, theirs_grad, atol=2e-3)
    assert np.isfinite(grad).all() and (grad[..., 5] == 0).all()
    loss, grad = LOSS_GRAD(*args, blank_id=0)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()


def test_impossible_labelling():
    """Too few frames: about -log_epsilon with finite gradients by default (as Optax);
    inf with log_epsilon=-inf (as torch)."""
    logits = np.random.default_rng(4).normal(size=(B, T, K)).astype(np.float32)
    labels = np.ones((B, N), int)  # 1 1 1 1 1 needs 9 frames
    frames = np.array([4, 5, 8, 9, 12, 12, 12, 12])
    args = (logits, paddings(frames, T), labels, paddings([5] * B, N))
    loss, grad = LOSS_GRAD(*args, blank_id=0)
    np.testing.assert_allclose(loss, optax_call("ctc_loss", *args), rtol=1e-6)
    assert (loss[:3] > 1e5).all() and (loss[3:] < 100).all() and np.isfinite(grad).all()
    theirs, _ = torch_ctc(logits, frames, labels, [5] * B, 0)
    loss = LOSS_GRAD(*args, blank_id=0, log_epsilon=-np.inf)[0]
    np.testing.assert_array_equal(loss[:3], np.inf)
    np.testing.assert_allclose(loss, theirs, rtol=1e-6)


def test_half_precision_and_float32_against_float64():
    logits, frames, labels, lengths = random_batch(9)
    args = (paddings(frames, T), labels, paddings(lengths, N))
    half = jnp.asarray(logits, jnp.bfloat16)
    loss = LOSS_GRAD(half, *args, blank_id=0)[0]
    assert loss.dtype == jnp.float32  # widened, as Optax's float32 forward rows make it
    np.testing.assert_array_equal(loss, LOSS_GRAD(half.astype(jnp.float32), *args, blank_id=0)[0])
    x32 = logits.astype(np.float32)
    ours = LOSS_GRAD(x32, *args, blank_id=0)[0]
    with jax.enable_x64(True):
        exact = np.asarray(LOSS_GRAD(x32.astype(np.float64), *args, blank_id=0)[0])
    np.testing.assert_allclose(ours, exact, rtol=1e-6)


def test_argument_checks():
    x, p = np.zeros((2, 4, 3), np.float32), np.zeros((2, 4), np.float32)
    y, q = np.ones((2, 2), int), np.zeros((2, 2), np.float32)
    cases = [
        ((x[0], p, y, q), {}, "ctc_loss: logits must have shape"),
        ((x, p, y[0], q[0]), {}, "ctc_loss: labels must have shape"),
        ((x, p, y[:1], q[:1]), {}, "labels must have logits' batch size 2"),
        ((x, p[:, :3], y, q), {}, "logit_paddings must have shape"),
        ((x, p, y, q[:, :1]), {}, "label_paddings must have shape"),
        ((x, p, y, q), {"blank_id": 3}, r"blank_id must be in \[0, 3\), got blank_id=3"),
        ((x, p, y, q), {"log_epsilon": 1.0}, "log_epsilon must be <= 0"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            losses.ctc_loss(*args, **kwargs)
    with pytest.raises(TypeError):
        losses.ctc_loss(x, p, y, q, blank_id=0.5)
