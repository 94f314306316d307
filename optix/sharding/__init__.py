"""Sharded optimizer state: layouts from the params', ZeRO stages, sharded init and steps.

Under ``jax.jit`` with shardings (GSPMD) every optix transformation computes the same
numbers on many devices as on one; what this package adds is where the state lives:

- ``state_specs`` / ``state_shardings``: the layout of any transformation's state,
  derived from the params' shardings (factored and per-dim statistics included);
- ``add_data_axis`` / ``zero_shardings``: ZeRO stages 1-3 along the data axis;
- ``init``: the state created straight into its sharded buffers, from params or
  from ``jax.ShapeDtypeStruct``s;
- ``jit_step``: a jitted step that reuses donated buffers, checked for it;
- ``device_bytes``: the bytes each device holds.

Inside ``jax.shard_map``, wrap the transformation with ``with_axis_name`` (or trace
its update under ``reduce_over``) so its global reductions span every device.
"""

from optix.sharding.initialization import init
from optix.sharding.memory import device_bytes
from optix.sharding.reduction import with_axis_name
from optix.sharding.specs import register_state_rule, state_shardings, state_specs
from optix.sharding.stages import ZeroShardings, zero_shardings
from optix.sharding.step import jit_step
from optix.sharding.zero import add_data_axis, data_axis_spec
from optix.tree.shards import reduce_over

__all__ = [
    "ZeroShardings",
    "add_data_axis",
    "data_axis_spec",
    "device_bytes",
    "init",
    "jit_step",
    "reduce_over",
    "register_state_rule",
    "state_shardings",
    "state_specs",
    "with_axis_name",
    "zero_shardings",
]
