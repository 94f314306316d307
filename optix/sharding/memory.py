"""How many bytes of a tree of arrays each device holds."""

from __future__ import annotations

from collections import Counter
from typing import Any

import jax


# jax.Device is an alias of jaxlib's device class, which ships without a stub; pyright
# reads the alias as a variable, though it is the documented type of a device.
def device_bytes(tree: Any) -> dict[jax.Device, int]:  # pyright: ignore[reportInvalidTypeForm]
    """Bytes of ``tree``'s arrays held by each local device (from their addressable shards).

    A replicated leaf counts in full on every device, a split one only its block.
    """
    held: Counter = Counter()
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            held[shard.device] += shard.data.nbytes
    return dict(held)
