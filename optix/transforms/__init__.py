"""Generic building blocks, grouped by role (Optax's ``optax.transforms``)."""

from optix.core import chain, named_chain
from optix.transforms.block_rms import clip_by_block_rms, scale_by_param_block_rms
from optix.transforms.clipping import ClipByGlobalNormState, clip_by_global_norm
from optix.transforms.masking import MaskedNode, MaskedState, masked
from optix.transforms.momentum import (
    EmaState,
    MomentumBufferState,
    TraceState,
    ema,
    momentum_buffer,
    trace,
)
from optix.transforms.noise import AddNoiseState, add_noise
from optix.transforms.proximal import ProximalDecayState, proximal_decay
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

__all__ = [
    "AddDecayedWeightsState",
    "AddNoiseState",
    "ClipByGlobalNormState",
    "EmaState",
    "MaskedNode",
    "MaskedState",
    "MomentumBufferState",
    "ProximalDecayState",
    "ScaleByScheduleState",
    "ScaleByTrustRatioState",
    "ScaleState",
    "TraceState",
    "WeightDecaySchedule",
    "add_decayed_weights",
    "add_noise",
    "chain",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "ema",
    "masked",
    "momentum_buffer",
    "named_chain",
    "proximal_decay",
    "scale",
    "scale_by_learning_rate",
    "scale_by_param_block_rms",
    "scale_by_schedule",
    "scale_by_trust_ratio",
    "trace",
]
