"""Mixed precision and lean state: master weights, loss scaling, stochastic rounding, 8-bit moments.

Every name here wraps or feeds an ordinary transformation, so it composes with any
optimizer, with ``chain``, ``apply_if_finite`` and Flax's train states.
"""

from optix.precision.blockwise import (
    QuantizedArray,
    dequantize_blockwise,
    dynamic_quantization_map,
    map_resolution,
    quantize_blockwise,
)
from optix.precision.loss_scaling import (
    DynamicLossScaleState,
    current_loss_scale,
    dynamic_loss_scale,
    scale_loss,
    unscale_grads,
    with_dynamic_loss_scale,
)
from optix.precision.master_weights import MasterWeightsState, with_master_weights
from optix.precision.quantized import QuantizeMomentsState, quantize_moments
from optix.precision.stochastic_rounding import (
    StochasticRoundingState,
    stochastic_round,
    with_stochastic_rounding,
)

__all__ = [
    "DynamicLossScaleState",
    "MasterWeightsState",
    "QuantizeMomentsState",
    "QuantizedArray",
    "StochasticRoundingState",
    "current_loss_scale",
    "dequantize_blockwise",
    "dynamic_loss_scale",
    "dynamic_quantization_map",
    "map_resolution",
    "quantize_blockwise",
    "quantize_moments",
    "scale_loss",
    "stochastic_round",
    "unscale_grads",
    "with_dynamic_loss_scale",
    "with_master_weights",
    "with_stochastic_rounding",
]
