"""Per-example gradients, transformed and combined one microbatch at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix.microbatching.accumulators import AccumulationType, Accumulator
from optix.microbatching.sequential import micro_vmap


class IndividualOutputs(NamedTuple):
    """The per-example outputs of a ``micro_grad`` function, each with a batch axis."""

    values: Any
    """The value of ``fun`` for each example."""
    metrics: Any
    """``metrics_fn`` of each example's gradient."""
    aux: Any
    """The auxiliary output of ``fun`` for each example (``None`` without ``has_aux``)."""


def micro_grad(
    fun: Callable[..., Any],
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator: Accumulator | AccumulationType | Any = AccumulationType.SUM,
    transform_fn: Callable[[Any], Any] = lambda x: x,
    metrics_fn: Callable[[Any], Any] = lambda x: None,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., tuple[Any, IndividualOutputs]]:
    """Per-example gradients, each transformed, then combined over the batch.

    For each example j of the batch (the rows of the ``batch_argnums`` arguments),
    with g_j the gradient of ``fun`` on that example alone:

        result = accumulate_j transform_fn(g_j)     (SUM by default: sum over j)
        aux = IndividualOutputs(values=[fun_j], metrics=[metrics_fn(g_j)], aux=[aux_j])

    computed under ``micro_vmap``: vmapped within a microbatch, looped over microbatches.
    ``transform_fn`` is where per-example clipping (DP-SGD) or moments (``g**2``) go;
    ``metrics_fn`` returns small per-example diagnostics (a norm).

    Args:
        fun: ``fun(params, batch, ...) -> value`` (or ``(value, aux)`` with
            ``has_aux``), written for one example.
        has_aux: Whether ``fun`` returns ``(value, aux)``.
        argnums: The argument(s) to differentiate, as in ``jax.grad``.
        batch_argnums: The argument(s) that carry the batch on axis 0.
        keep_batch_dim: Give ``fun`` each example with a batch axis of size 1 (True),
            or without a batch axis (False).
        microbatch_size: Examples per microbatch (``None``: all at once).
        accumulator: How the transformed gradients combine over examples.
        transform_fn: Applied to each example's gradient before combining.
        metrics_fn: Applied to each example's gradient; returned per example.
        num_real_microbatches: Stop after this many microbatches (may be traced).

    Returns:
        ``grad_fn(*args, **kwargs) -> (result, IndividualOutputs)``.

    References:
        Checked against optax.microbatching.micro_grad in
        tests/microbatching/test_gradients.py.
    """
    batch_argnums = (batch_argnums,) if isinstance(batch_argnums, int) else tuple(batch_argnums)
    with_aux = fun if has_aux else (lambda *a, **kw: (fun(*a, **kw), None))
    value_and_grad = jax.value_and_grad(with_aux, argnums, has_aux=True)

    def one_example(*args, **kwargs):
        (value, aux), grad = value_and_grad(*args, **kwargs)
        outputs = IndividualOutputs(values=value, metrics=metrics_fn(grad), aux=aux)
        return transform_fn(grad), outputs

    def grad_fn(*args, **kwargs):
        in_axes = [0 if i in batch_argnums else None for i in range(len(args))]
        if keep_batch_dim:
            args = tuple(
                jax.tree.map(lambda x: jnp.expand_dims(x, 1), a) if i in batch_argnums else a
                for i, a in enumerate(args)
            )
        mapped = micro_vmap(
            one_example,
            in_axes=in_axes,
            accumulator=(accumulator, AccumulationType.CONCAT),
            microbatch_size=microbatch_size,
            num_real_microbatches=num_real_microbatches,
        )
        return mapped(*args, **kwargs)

    return grad_fn
