"""Checkpoints of optimizer states: restore targets, save and restore, migration.

``abstract_state(tx, params)`` is the target a checkpoint is restored into;
``save_state``/``restore_state`` write and read Orbax checkpoints, ``to_bytes``/
``from_bytes`` Flax's msgpack bytes; both check the checkpoint against the target
before restoring anything. ``migrate_state`` moves a state into a changed optimizer's,
``from_optax`` an Optax state into the same optix optimizer's. Orbax and Flax are
imported only by the functions that use them.
"""

from optix.serialization.abstract import abstract_state, as_abstract
from optix.serialization.layout import CheckpointMismatchError
from optix.serialization.migrate import MigrationError, MigrationReport, migrate_state
from optix.serialization.msgpack_io import from_bytes, to_bytes
from optix.serialization.optax_states import from_optax
from optix.serialization.orbax_io import restore_state, save_state

__all__ = [
    "CheckpointMismatchError",
    "MigrationError",
    "MigrationReport",
    "abstract_state",
    "as_abstract",
    "from_bytes",
    "from_optax",
    "migrate_state",
    "restore_state",
    "save_state",
    "to_bytes",
]
