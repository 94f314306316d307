"""optix: composable gradient transformations for JAX.

The top level mirrors Optax's, so ``import optix as optax`` works in existing code.
"""

from optix import (
    assignment,
    contrib,
    experimental,
    losses,
    microbatching,
    optimizers,
    perturbations,
    precision,
    projections,
    schedules,
    second_order,
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
from optix.losses import (
    convex_kl_divergence,
    cosine_distance,
    cosine_similarity,
    ctc_loss,
    ctc_loss_with_forward_probs,
    generalized_kl_divergence,
    hinge_loss,
    huber_loss,
    kl_divergence,
    l2_loss,
    log_cosh,
    ntxent,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
    squared_error,
)
from optix.microbatching import microbatch
from optix.minimization import MinimizeStats, MinimizeStatus, minimize
from optix.optimizers import *
from optix.optimizers.adam_mini import adam_mini_partition
from optix.optimizers.adan import restart_adan
from optix.optimizers.asgd import asgd_averaged_params
from optix.optimizers.kron_factors import precond_update_prob_schedule
from optix.optimizers.lazy_adam import SparseRows, apply_sparse_updates, with_sparse_rows
from optix.optimizers.muon_jordan import is_hidden_matrix
from optix.optimizers.newton_schulz import orthogonalize_via_newton_schulz
from optix.optimizers.sam import sam_gradient
from optix.optimizers.sophia_g import gauss_newton_bartlett_estimator, gnb_hessian_diagonal
from optix.schedules import *
from optix.serialization import abstract_state
from optix.transforms import *
from optix.transforms.block_norm import scale_by_param_block_norm
from optix.transforms.linear_algebra import (
    matrix_inverse_pth_root,
    multi_normal,
    nnls,
    power_iteration,
)
from optix.tree import (
    bias_correction,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)
from optix.tree import map_params as tree_map_params
from optix.tree.math import global_norm
from optix.tree.numerics import safe_norm, safe_root_mean_squares, scale_gradient

__version__ = "0.1.0"

__all__ = [name for name in dir() if not name.startswith("_")]
