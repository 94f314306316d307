"""Transformations whose global reductions span the devices of a ``shard_map``."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from optix.core import GradientTransformation, with_extra_args_support
from optix.tree.shards import reduce_over


def with_axis_name(
    tx: GradientTransformation, axis_name: Hashable | Sequence[Hashable]
) -> GradientTransformation:
    """``tx`` with its global reductions taken over the mesh axes ``axis_name``.

    Inside ``jax.shard_map`` each device sees only its blocks; the global norm of
    ``clip_by_global_norm``, the trust ratios of LAMB and LARS, Adafactor's row and
    column statistics, the norms of ``monitored`` and the finite check of
    ``apply_if_finite`` would then be per device. This runs ``tx.init`` and
    ``tx.update`` inside ``optix.sharding.reduce_over(axis_name)``, so they are taken
    over every device and all devices agree (on the clipping factor, on skipping a
    step). Outside ``shard_map`` it is ``tx`` unchanged. The state is ``tx``'s.

    Args:
        tx: The transformation.
        axis_name: A mesh axis name of the enclosing ``shard_map``, or several.

    Returns:
        A GradientTransformation with ``tx``'s state.
    """
    tx = with_extra_args_support(tx)

    def init(params):
        with reduce_over(axis_name):
            return tx.init(params)

    def update(updates, state, params=None, **extra_args):
        with reduce_over(axis_name):
            return tx.update(updates, state, params, **extra_args)

    return GradientTransformation(init, update)
