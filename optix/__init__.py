"""optix: composable gradient transformations for JAX.

The top level mirrors Optax's, so ``import optix as optax`` works in existing code.
"""

from optix import (
    contrib,
    optimizers,
    precision,
    projections,
    schedules,
    serialization,
    sharding,
    torch,
    transforms,
    tree,
    tree_utils,
)
from optix.core import (
    ArrayTree,
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    MaskOrFn,
    OptState,
    Params,
    PyTree,
    ScalarOrSchedule,
    Schedule,
    TransformInitFn,
    TransformUpdateExtraArgsFn,
    TransformUpdateFn,
    Updates,
    apply_updates,
    chain,
    identity,
    incremental_update,
    init_empty_state,
    named_chain,
    periodic_update,
    safe_increment,
    safe_int32_increment,
    set_to_zero,
    stateless,
    stateless_with_tree_map,
    with_extra_args_support,
)

# Every optimizer and building block, by the names listed in each subpackage's __all__.
from optix.interop import to_optax
from optix.minimization import MinimizeStats, MinimizeStatus, minimize
from optix.optimizers import *
from optix.optimizers.adan import restart_adan
from optix.optimizers.asgd import asgd_averaged_params
from optix.optimizers.lazy_adam import SparseRows, apply_sparse_updates, with_sparse_rows
from optix.schedules import *
from optix.serialization import abstract_state
from optix.transforms import *
from optix.tree import (
    bias_correction,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)
from optix.tree import map_params as tree_map_params
from optix.tree.math import global_norm

__version__ = "0.1.0"

__all__ = [name for name in dir() if not name.startswith("_")]
