"""ZeRO stages: where params, gradients and optimizer state live."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
from jax.sharding import NamedSharding

from optix.core import GradientTransformation
from optix.sharding.specs import param_table, state_shardings
from optix.sharding.zero import add_data_axis


class ZeroShardings(NamedTuple):
    """Where params, gradients and optimizer state live under a ZeRO stage."""

    params: Any
    grads: Any
    state: Any


def zero_shardings(
    tx: GradientTransformation,
    params: Any,
    param_shardings: Any = None,
    *,
    axis: Any = "data",
    stage: int = 1,
) -> ZeroShardings:
    """The shardings of params, gradients and state of ``tx`` under ZeRO ``stage``.

    Stage 1 splits the optimizer state along ``axis``; stage 2 also the gradients
    (constrain them with ``jax.lax.with_sharding_constraint(grads, plan.grads)`` in the
    step, so XLA reduce-scatters them); stage 3 also the params (FSDP). Leaves with
    no dim divisible by the axis size stay replicated along it.

    Args:
        tx: The transformation.
        params: Params or their ``jax.ShapeDtypeStruct``s.
        param_shardings: Tree of ``NamedSharding``s of the params (or one for all);
            ``None`` reads the params' own shardings.
        axis: The data axis of the mesh (or a tuple of axes).
        stage: 1, 2 or 3.

    Returns:
        ``ZeroShardings(params, grads, state)``: trees of ``NamedSharding``s, the first
        two shaped like ``params``, the last like ``tx.init(params)``.
    """
    if stage not in (1, 2, 3):
        raise ValueError(f"zero_shardings: stage must be 1, 2 or 3, got stage={stage!r}")
    param_table(params, param_shardings)  # every param has a NamedSharding, or it says which not
    if param_shardings is None:
        param_shardings = jax.tree.map(lambda x: x.sharding, params)
    elif isinstance(param_shardings, NamedSharding):
        param_shardings = jax.tree.map(lambda _: param_shardings, params)
    split = add_data_axis(param_shardings, params, axis)
    params_sh = split if stage == 3 else param_shardings
    grads_sh = split if stage >= 2 else param_shardings
    state_sh = state_shardings(tx, params, params_sh, zero_axis=axis)
    return ZeroShardings(params_sh, grads_sh, state_sh)
