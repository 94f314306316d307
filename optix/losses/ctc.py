"""Connectionist temporal classification (CTC): the forward algorithm in log space.

One ``lax.scan`` over time carries two rows of log forward probabilities per
sequence: ``phi[n]`` (the first n labels emitted, the current frame a blank or the
start) and ``emit[n]`` (the current frame emitting label n, 0-based). The scan is
jit-able and differentiable; its derivative is reverse-mode through the scan.
"""

from __future__ import annotations

import operator

import jax
import jax.core
import jax.numpy as jnp
import numpy as np


@jax.custom_jvp
def _log_add(a: jax.Array, b: jax.Array) -> jax.Array:
    """log(exp(a) + exp(b)), -inf where both are -inf.

    Its derivative (below) is zero at (-inf, -inf), the value of every unreachable
    state once ``log_epsilon`` is -inf, where ``jnp.logaddexp``'s is NaN, and
    splits evenly at ties (a lattice of +-1e4 logits has many).
    """
    both = (a == -jnp.inf) & (b == -jnp.inf)
    out = jnp.maximum(a, b) + jnp.log1p(jnp.exp(-jnp.abs(a - b)))
    return jnp.where(both, -jnp.inf, out)


@_log_add.defjvp
def _log_add_jvp(primals, tangents):
    """d out = exp(a - out) * da + exp(b - out) * db, with the weights written as

        exp(a - out) = sigmoid(a - b),  exp(b - out) = sigmoid(b - a)

    exact even where out is large (a - out would carry out's rounding, 1e-3 at 1e4);
    1/2 each at a tie, 0 for a -inf input, and 0 for both at (-inf, -inf).
    """
    a, b = primals
    da, db = tangents
    both = (a == -jnp.inf) & (b == -jnp.inf)
    gap = jnp.where(both, 0, a - b)
    wa = jnp.where(both, 0, jax.nn.sigmoid(gap))
    wb = jnp.where(both, 0, jax.nn.sigmoid(-gap))
    return _log_add(a, b), wa * da + wb * db


def _shift_add(phi: jax.Array, x: jax.Array) -> jax.Array:
    """phi with x log-added into phi[:, 1:] (a transition from emit[n] to phi[n + 1])."""
    return jnp.concatenate([phi[:, :1], _log_add(phi[:, 1:], x)], axis=1)


def _check(fn, logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon):
    if logits.ndim != 3:
        raise ValueError(f"{fn}: logits must have shape (B, T, K), got shape {logits.shape}")
    if labels.ndim != 2:
        raise ValueError(f"{fn}: labels must have shape (B, N), got shape {labels.shape}")
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"{fn}: labels must have logits' batch size {logits.shape[0]}, "
            f"got labels.shape={labels.shape}"
        )
    if logit_paddings.shape != logits.shape[:2]:
        raise ValueError(
            f"{fn}: logit_paddings must have shape {logits.shape[:2]}, "
            f"got logit_paddings.shape={logit_paddings.shape}"
        )
    if label_paddings.shape != labels.shape:
        raise ValueError(
            f"{fn}: label_paddings must have shape {labels.shape}, "
            f"got label_paddings.shape={label_paddings.shape}"
        )
    num_classes = logits.shape[2]
    if not 0 <= operator.index(blank_id) < num_classes:
        raise ValueError(f"{fn}: blank_id must be in [0, {num_classes}), got blank_id={blank_id}")
    concrete = not isinstance(log_epsilon, jax.core.Tracer) and np.ndim(log_epsilon) == 0
    if concrete and not float(log_epsilon) <= 0:  # NaN fails too
        raise ValueError(
            f"{fn}: log_epsilon must be <= 0 (-inf allowed), got log_epsilon={log_epsilon}"
        )


def _forward(fn, logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon, keep):
    """Loss and (when ``keep``, else None) the stacked forward rows (phi, emit); see
    ctc_loss_with_forward_probs."""
    logits, logit_paddings, labels, label_paddings = (
        jnp.asarray(v) for v in (logits, logit_paddings, labels, label_paddings)
    )
    _check(fn, logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon)
    batch, _, num_classes = logits.shape
    num_labels = labels.shape[1]
    with jax.numpy_dtype_promotion("standard"):
        wide = jnp.result_type(jnp.float32, logits.dtype)
    labels = labels if jnp.issubdtype(labels.dtype, jnp.integer) else labels.astype(jnp.int32)
    padded = logit_paddings != 0  # [B, T]
    # Padded frames are never read; zeroing them keeps a fully masked (-inf) padded
    # frame from putting NaN into the derivatives.
    x = jnp.where(padded[..., None], 0, logits.astype(wide))
    logprobs = jax.nn.log_softmax(x, axis=-1)  # [B, T, K]
    lp_blank = logprobs[:, :, operator.index(blank_id)]  # [B, T]
    in_range = (labels >= 0) & (labels < num_classes)  # out of range: log-prob 0, as Optax
    index = jnp.clip(labels, 0, num_classes - 1)[:, None, :]
    lp_label = jnp.take_along_axis(logprobs, index, axis=2)  # [B, T, N]
    lp_label = jnp.where(in_range[:, None, :], lp_label, 0)

    eps = jnp.asarray(log_epsilon).astype(wide)
    # repeat[n]: label n + 1 equals label n, so a blank must separate them.
    repeat = jnp.concatenate(
        [labels[:, 1:] == labels[:, :-1], jnp.zeros((batch, min(num_labels, 1)), bool)], axis=1
    )
    skip_penalty = jnp.where(repeat, eps, 0)  # emit[n] -> emit[n + 1], no blank between
    blank_penalty = jnp.where(repeat, 0, eps)  # second copy of emit[n] -> phi[n + 1]

    phi0 = jnp.concatenate([jnp.zeros((batch, 1), wide), jnp.full((batch, num_labels), eps)], 1)
    emit0 = jnp.full((batch, num_labels), eps)

    def step(carry, frame):
        phi, emit = carry
        lpl, lpb, pad = frame
        ready = _shift_add(phi, emit + skip_penalty)  # may emit label n next
        new_emit = _log_add(ready[:, :-1], emit) + lpl
        new_phi = _shift_add(ready + lpb[:, None], emit + lpb[:, None] + blank_penalty)
        new_phi = jnp.where(pad[:, None], phi, new_phi)
        new_emit = jnp.where(pad[:, None], emit, new_emit)
        return (new_phi, new_emit), ((new_phi, new_emit) if keep else None)

    frames = (jnp.moveaxis(lp_label, 1, 0), lp_blank.T, padded.T)
    (phi, emit), rows = jax.lax.scan(step, (phi0, emit0), frames)
    phi_end = _shift_add(phi, emit)  # the last label may end the sequence
    lengths = num_labels - jnp.sum(label_paddings != 0, axis=1)
    loss = -jnp.take_along_axis(phi_end, lengths[:, None].astype(jnp.int32), axis=1)[:, 0]
    if rows is None:
        return loss, None
    phi_rows, emit_rows = rows
    return loss, (phi_rows.at[-1].set(phi_end), emit_rows)


def ctc_loss_with_forward_probs(
    logits: jax.typing.ArrayLike,
    logit_paddings: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    label_paddings: jax.typing.ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: jax.typing.ArrayLike = -1e5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """CTC loss and the log forward probabilities of the CTC lattice.

    With lp = log_softmax(logits) over classes, lb = lp[:, t, blank_id] and ll[n] =
    lp[:, t, labels[:, n]], rows start at phi = [0, e, ..., e] (N + 1 entries) and
    emit = [e, ..., e] (N entries), e = log_epsilon standing for log 0, and each
    unpadded frame t updates (with (+) = log-add and rep[n] = labels[n + 1] == labels[n])

        ready[0] = phi[0];  ready[n + 1] = phi[n + 1] (+) (emit[n] + e * rep[n])
        emit'[n] = (ready[n] (+) emit[n]) + ll[n]
        phi'[0] = ready[0] + lb
        phi'[n + 1] = (ready[n + 1] + lb) (+) (emit[n] + lb + e * (1 - rep[n]))

    so a repeated label needs a blank in between. A padded frame keeps both rows.
    After the last frame phi[n + 1] (+)= emit[n], and with L the label count

        loss = -phi[L]

    the negative log-likelihood of the labels summed over all alignments. A path
    whose log-probability is below about ``log_epsilon`` is not told apart from an
    impossible one: an impossible labelling (too few frames) gets a large finite loss
    (about -log_epsilon) with finite derivatives. ``log_epsilon=-inf`` makes log 0
    exact (then the loss is inf there, as in ``torch.nn.functional.ctc_loss``).

    Args:
        logits: [B, T, K] unnormalised log-probabilities, blank class included;
            ``-inf`` masks a class.
        logit_paddings: [B, T], 1 where a frame is padding, 0 where it is real.
        labels: [B, N] integer labels (not the blank), right-padded.
        label_paddings: [B, N], 1 where a label is padding: each row zeros, then ones.
        blank_id: Class index of the blank.
        log_epsilon: Stand-in for log(0), <= 0 (default -1e5; -inf allowed).

    Returns:
        ``(loss, logalpha_blank, logalpha_emit)``: the [B] losses, and the rows
        ``phi`` ([T, B, N + 1]) and ``emit`` ([T, B, N]) after each frame, the last
        ``phi`` row after the final update. All in ``logits``' dtype widened to at
        least float32.

    References:
        Graves, Fernandez, Gomez & Schmidhuber, "Connectionist temporal
        classification: labelling unsegmented sequence data with recurrent neural
        networks", ICML 2006.
        Checked against optax.losses.ctc_loss_with_forward_probs and
        torch.nn.functional.ctc_loss in tests/losses/test_ctc.py.
    """
    loss, rows = _forward(
        "ctc_loss_with_forward_probs",
        logits,
        logit_paddings,
        labels,
        label_paddings,
        blank_id,
        log_epsilon,
        keep=True,
    )
    assert rows is not None
    return loss, rows[0], rows[1]


def ctc_loss(
    logits: jax.typing.ArrayLike,
    logit_paddings: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    label_paddings: jax.typing.ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: jax.typing.ArrayLike = -1e5,
) -> jax.Array:
    """CTC loss: the negative log-likelihood of each label sequence.

    The forward algorithm of ``ctc_loss_with_forward_probs``, without stacking the
    per-frame rows.

    Args:
        logits: [B, T, K] unnormalised log-probabilities, blank class included.
        logit_paddings: [B, T], 1 where a frame is padding, 0 where it is real.
        labels: [B, N] integer labels, right-padded.
        label_paddings: [B, N], 1 where a label is padding.
        blank_id: Class index of the blank.
        log_epsilon: Stand-in for log(0), <= 0 (default -1e5; -inf allowed).

    Returns:
        The [B] losses, in ``logits``' dtype widened to at least float32.

    References:
        Graves et al., ICML 2006 (see ``ctc_loss_with_forward_probs``).
        Checked against optax.losses.ctc_loss and torch.nn.functional.ctc_loss in
        tests/losses/test_ctc.py.
    """
    return _forward(
        "ctc_loss",
        logits,
        logit_paddings,
        labels,
        label_paddings,
        blank_id,
        log_epsilon,
        keep=False,
    )[0]
