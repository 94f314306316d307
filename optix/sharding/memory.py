"""How many bytes of a tree of arrays each device holds."""

from __future__ import annotations

from collections import Counter
from typing import Any

import jax


def device_bytes(tree: Any) -> dict[jax.Device, int]:
    """Bytes of ``tree``'s arrays held by each local device (from their addressable shards).

    A replicated leaf counts in full on every device, a split one only its block.
    """
    held: Counter = Counter()
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            held[shard.device] += shard.data.nbytes
    return dict(held)
