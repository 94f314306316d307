"""Generic building blocks, grouped by role (Optax's ``optax.transforms``)."""

from optix.core import chain, named_chain
from optix.transforms.accumulation import ApplyEvery, MultiSteps, MultiStepsState, apply_every
from optix.transforms.backtracking_linesearch import (
    BacktrackingLinesearchInfo,
    BacktrackingLinesearchInfoWithStatus,
    ScaleByBacktrackingLinesearchState,
    scale_by_backtracking_linesearch,
)
from optix.transforms.block_rms import clip_by_block_rms, scale_by_param_block_rms
from optix.transforms.centralize import centralize
from optix.transforms.clipping import (
    AdaptiveGradClipState,
    ClipByGlobalNormState,
    ClipState,
    adaptive_grad_clip,
    clip,
    clip_by_global_norm,
    unitwise_clip,
    unitwise_norm,
)
from optix.transforms.conditional import (
    ConditionallyMaskState,
    ConditionallyTransformState,
    ConditionFn,
    conditionally_mask,
    conditionally_transform,
)
from optix.transforms.constraints import (
    NonNegativeParamsState,
    ZeroNansState,
    keep_params_nonnegative,
    zero_nans,
)
from optix.transforms.finite import (
    ApplyIfFiniteState,
    ShouldSkipUpdateFunction,
    apply_if_finite,
    skip_large_updates,
    skip_not_finite,
)
from optix.transforms.flatten import flatten
from optix.transforms.freeze import freeze, selective_transform
from optix.transforms.hyperparams import (
    InjectHyperparamsState,
    InjectStatefulHyperparamsState,
    StatefulSchedule,
    WrappedSchedule,
    inject_hyperparams,
    inject_stateful_hyperparams,
)
from optix.transforms.labels import labels_by_path, mask_by_label, ndim_at_least, paths_by_label
from optix.transforms.linesearch_protocol import value_and_grad_from_state
from optix.transforms.lookahead import (
    LookaheadParams,
    LookaheadPullbackState,
    LookaheadState,
    SlowParamsState,
    lookahead,
    lookahead_in_state,
)
from optix.transforms.masking import MaskedNode, MaskedState, masked
from optix.transforms.momentum import (
    EmaState,
    MomentumBufferState,
    TraceState,
    ema,
    momentum_buffer,
    trace,
)
from optix.transforms.monitor import (
    MonitoredState,
    MonitorState,
    SnapshotState,
    measure_with_ema,
    monitor,
    monitored,
    snapshot,
)
from optix.transforms.noise import AddNoiseState, add_noise
from optix.transforms.normalize import normalize_by_update_norm
from optix.transforms.param_averaging import EmaParamsState, ema_params
from optix.transforms.partition import (
    MultiTransformState,
    PartitionState,
    multi_transform,
    partition,
)
from optix.transforms.per_example import per_example_global_norm_clip, per_example_layer_norm_clip
from optix.transforms.projection import project_params
from optix.transforms.proximal import ProximalDecayState, proximal_chain, proximal_decay
from optix.transforms.scaling import (
    ScaleByScheduleState,
    ScaleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
)
from optix.transforms.trust_ratio import ScaleByTrustRatioState, scale_by_trust_ratio
from optix.transforms.weight_decay import (
    AddDecayedWeightsState,
    WeightDecaySchedule,
    add_decayed_weights,
)
from optix.transforms.zoom_linesearch import (
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    ZoomLinesearchInfoWithStatus,
    scale_by_zoom_linesearch,
)

__all__ = [
    "AdaptiveGradClipState",
    "AddDecayedWeightsState",
    "AddNoiseState",
    "ApplyEvery",
    "ApplyIfFiniteState",
    "BacktrackingLinesearchInfo",
    "BacktrackingLinesearchInfoWithStatus",
    "ClipByGlobalNormState",
    "ClipState",
    "ConditionFn",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "EmaParamsState",
    "EmaState",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "LookaheadParams",
    "LookaheadPullbackState",
    "LookaheadState",
    "MaskedNode",
    "MaskedState",
    "MomentumBufferState",
    "MonitorState",
    "MonitoredState",
    "MultiSteps",
    "MultiStepsState",
    "MultiTransformState",
    "NonNegativeParamsState",
    "PartitionState",
    "ProximalDecayState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByScheduleState",
    "ScaleByTrustRatioState",
    "ScaleByZoomLinesearchState",
    "ScaleState",
    "ShouldSkipUpdateFunction",
    "SlowParamsState",
    "SnapshotState",
    "StatefulSchedule",
    "TraceState",
    "WeightDecaySchedule",
    "WrappedSchedule",
    "ZeroNansState",
    "ZoomLinesearchInfo",
    "ZoomLinesearchInfoWithStatus",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_noise",
    "apply_every",
    "apply_if_finite",
    "centralize",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "conditionally_mask",
    "conditionally_transform",
    "ema",
    "ema_params",
    "flatten",
    "freeze",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "keep_params_nonnegative",
    "labels_by_path",
    "lookahead",
    "lookahead_in_state",
    "mask_by_label",
    "masked",
    "measure_with_ema",
    "momentum_buffer",
    "monitor",
    "monitored",
    "multi_transform",
    "named_chain",
    "ndim_at_least",
    "normalize_by_update_norm",
    "partition",
    "paths_by_label",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "project_params",
    "proximal_chain",
    "proximal_decay",
    "scale",
    "scale_by_backtracking_linesearch",
    "scale_by_learning_rate",
    "scale_by_param_block_rms",
    "scale_by_schedule",
    "scale_by_trust_ratio",
    "scale_by_zoom_linesearch",
    "selective_transform",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "trace",
    "unitwise_clip",
    "unitwise_norm",
    "value_and_grad_from_state",
    "zero_nans",
]
