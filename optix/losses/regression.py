"""Regression losses: squared, Huber and log-cosh errors, cosine similarity and distance.

Elementwise losses return one value per entry of ``predictions``; ``targets=None``
means targets of zero. All compute in at least float32 and return the inputs' dtype.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from optix import _checks
from optix.losses import _arrays

_LOG_2 = math.log(2.0)


def _errors(fn: str, predictions, targets, *, same_shape: bool) -> tuple[jax.Array, jnp.dtype]:
    """``predictions - targets`` in the compute dtype, and the dtype to return."""
    predictions, targets = _arrays.as_arrays(predictions, targets)
    _arrays.check_floating(fn, predictions=predictions)
    if targets is None:
        out, wide = _arrays.dtypes(predictions)
        return predictions.astype(wide), out
    if same_shape:
        _arrays.check_same_shape(fn, predictions, targets)
    out, wide = _arrays.dtypes(predictions, targets)
    return predictions.astype(wide) - targets.astype(wide), out


def squared_error(
    predictions: jax.typing.ArrayLike, targets: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Elementwise squared error ``(predictions - targets)**2``.

    The mean squared error is ``squared_error(predictions, targets).mean()``.

    Args:
        predictions: Floating array of any shape.
        targets: Array of the same shape as ``predictions`` (a different shape is a
            ``ValueError``), or ``None`` for zeros.

    Returns:
        The squared errors, shaped like ``predictions``.

    References:
        Checked against torch.nn.functional.mse_loss and optax in
        tests/losses/test_regression.py.
    """
    errors, out = _errors("squared_error", predictions, targets, same_shape=True)
    return jnp.square(errors).astype(out)


def l2_loss(
    predictions: jax.typing.ArrayLike, targets: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Elementwise L2 loss ``0.5 * (predictions - targets)**2``.

    Half the squared error, so that its derivative is the error itself (Bishop's
    convention; without the half it is ``squared_error``).

    Args:
        predictions: Floating array of any shape.
        targets: Array of the same shape as ``predictions`` (a different shape is a
            ``ValueError``), or ``None`` for zeros.

    Returns:
        The losses, shaped like ``predictions``.

    References:
        Checked against optax.losses.l2_loss and a NumPy formula in
        tests/losses/test_regression.py.
    """
    errors, out = _errors("l2_loss", predictions, targets, same_shape=True)
    return (0.5 * jnp.square(errors)).astype(out)


def huber_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike | None = None,
    *,
    delta: jax.typing.ArrayLike = 1.0,
) -> jax.Array:
    """Elementwise Huber loss: quadratic near zero, linear beyond ``delta``.

    With e = predictions - targets:

        quadratic = min(|e|, delta)
        loss = 0.5 * quadratic**2 + delta * (|e| - quadratic)

    that is 0.5 * e**2 for |e| <= delta and delta * (|e| - 0.5 * delta) beyond. Its
    derivative is e clipped to [-delta, delta]. ``huber_loss(p, t, delta=b) / b`` is
    PyTorch's ``smooth_l1_loss`` with ``beta=b``.

    Args:
        predictions: Floating array of any shape.
        targets: Array broadcastable with ``predictions``, or ``None`` for zeros.
        delta: Where the loss turns linear, >= 0 (default 1).

    Returns:
        The losses, shaped like ``predictions - targets``.

    References:
        Huber, Robust Estimation of a Location Parameter, Annals of Mathematical
        Statistics 35(1), 1964. Checked against torch.nn.functional.huber_loss,
        smooth_l1_loss and optax in tests/losses/test_regression.py.
    """
    _checks.non_negative("huber_loss", delta=delta)
    errors, out = _errors("huber_loss", predictions, targets, same_shape=False)
    delta = jnp.asarray(delta, errors.dtype)
    size = jnp.abs(errors)
    quadratic = jnp.minimum(size, delta)
    # |e| - quadratic (not max(|e| - delta, 0)) keeps the derivative at |e| = delta single.
    return (0.5 * jnp.square(quadratic) + delta * (size - quadratic)).astype(out)


@jax.custom_jvp
def _log_cosh(x: jax.Array) -> jax.Array:
    """log(cosh(x)) to a few ulps for every x, without overflow."""
    size = jnp.abs(x)
    near = size < 2.0
    # cosh(x) - 1 = 2 * sinh(x / 2)**2 keeps small x exact (log(cosh(x)) ~ x**2 / 2);
    # far out, log(cosh(x)) = |x| - log(2) + log1p(exp(-2 |x|)) cannot overflow.
    half = jnp.where(near, size, 0.0) / 2
    small = jnp.log1p(2 * jnp.square(jnp.sinh(half)))
    large = size - _LOG_2 + jnp.log1p(jnp.exp(-2 * size))
    return jnp.where(near, small, large)


@_log_cosh.defjvp
def _log_cosh_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    # d/dx log(cosh(x)) = tanh(x): bounded, exact at 0, differentiable again.
    return _log_cosh(x), dx * jnp.tanh(x)


def log_cosh(
    predictions: jax.typing.ArrayLike, targets: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Elementwise log-cosh loss ``log(cosh(predictions - targets))``.

    About e**2 / 2 for a small error e and |e| - log(2) for a large one: a smooth
    (twice differentiable) relative of the Huber loss. Computed as
    log1p(2 * sinh(e / 2)**2) for |e| < 2 and |e| - log(2) + log1p(exp(-2 |e|))
    beyond, so float32 keeps full relative precision for tiny errors and errors of
    1e30 neither overflow nor give a NaN gradient; the gradient is tanh(e).

    Args:
        predictions: Floating array of any shape.
        targets: Array broadcastable with ``predictions``, or ``None`` for zeros.

    Returns:
        The losses, shaped like ``predictions - targets``.

    References:
        Chen et al., Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder,
        2019 (https://openreview.net/forum?id=rkglvsC9Ym).

        Checked against np_log_cosh (a float64 NumPy formula) and optax in
        tests/losses/test_regression.py.
    """
    errors, out = _errors("log_cosh", predictions, targets, same_shape=False)
    return _log_cosh(errors).astype(out)


def cosine_similarity(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    epsilon: jax.typing.ArrayLike = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Cosine of the angle between ``predictions`` and ``targets`` along ``axis``.

    With sums over ``axis`` restricted to the entries where ``where`` is true:

        a = predictions / sqrt(max(sum(predictions**2), epsilon))
        b = targets / sqrt(max(sum(targets**2), epsilon))
        similarity = sum(a * b)

    With ``epsilon = 0`` a zero vector gives NaN (its direction is undefined); any
    ``epsilon > 0`` makes it 0 with finite gradients. Norms are computed scaled by the
    largest entry, so they neither overflow nor underflow.

    Args:
        predictions: Floating array ``[..., dim]``.
        targets: Floating array broadcastable with ``predictions``.
        epsilon: Floor on each squared norm, >= 0 (default 0).
        axis: Axis or axes of the vectors (default -1; ``None`` for all).
        where: Optional boolean mask broadcastable with the inputs: entries to use.

    Returns:
        The similarities, in [-1, 1], with ``axis`` removed.

    References:
        Checked against torch.nn.functional.cosine_similarity,
        scipy.spatial.distance.cosine and optax in tests/losses/test_regression.py.
    """
    similarity, out = _similarity("cosine_similarity", predictions, targets, epsilon, axis, where)
    return similarity.astype(out)


def cosine_distance(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    epsilon: jax.typing.ArrayLike = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Cosine distance ``1 - cosine_similarity(predictions, targets)``, in [0, 2].

    Args:
        predictions: Floating array ``[..., dim]``.
        targets: Floating array broadcastable with ``predictions``.
        epsilon: Floor on each squared norm, >= 0 (default 0); see
            ``cosine_similarity``.
        axis: Axis or axes of the vectors (default -1; ``None`` for all).
        where: Optional boolean mask broadcastable with the inputs: entries to use.

    Returns:
        The distances, with ``axis`` removed.

    References:
        Checked against scipy.spatial.distance.cosine and optax in
        tests/losses/test_regression.py.
    """
    similarity, out = _similarity("cosine_distance", predictions, targets, epsilon, axis, where)
    return (1.0 - similarity).astype(out)


def _similarity(fn, predictions, targets, epsilon, axis, where) -> tuple[jax.Array, jnp.dtype]:
    """The cosine similarity in the compute dtype, and the dtype to return."""
    _checks.non_negative(fn, epsilon=epsilon)
    predictions, targets, where = _arrays.as_arrays(predictions, targets, where)
    _arrays.check_floating(fn, predictions=predictions, targets=targets)
    out, wide = _arrays.dtypes(predictions, targets)
    epsilon = jnp.asarray(epsilon, wide)
    a = _arrays.unit_vectors(predictions.astype(wide), epsilon, axis, where)
    b = _arrays.unit_vectors(targets.astype(wide), epsilon, axis, where)
    return jnp.sum(a * b, axis=axis, where=where), out
