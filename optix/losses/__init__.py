"""Optax's losses (``optax.losses``): one file per kind, every name also at optix's top level."""

from optix.losses.cross_entropy import (
    poly_loss_cross_entropy,
    safe_softmax_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from optix.losses.ctc import ctc_loss, ctc_loss_with_forward_probs
from optix.losses.divergences import (
    convex_kl_divergence,
    generalized_kl_divergence,
    kl_divergence,
    kl_divergence_with_log_targets,
)
from optix.losses.fenchel_young import make_fenchel_young_loss
from optix.losses.margin import (
    hinge_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    perceptron_loss,
)
from optix.losses.ranking import ranking_softmax_loss
from optix.losses.regression import (
    cosine_distance,
    cosine_similarity,
    huber_loss,
    l2_loss,
    log_cosh,
    squared_error,
)
from optix.losses.segmentation import (
    binary_dice_loss,
    dice_loss,
    multiclass_generalized_dice_loss,
)
from optix.losses.self_supervised import ntxent, triplet_margin_loss
from optix.losses.sigmoid import sigmoid_binary_cross_entropy, sigmoid_focal_loss
from optix.losses.smoothing import smooth_labels
from optix.losses.sparsemax import multiclass_sparsemax_loss, sparsemax_loss

# Last line: every public function imported above (submodules, not callable, stay out).
__all__ = sorted(n for n, v in globals().items() if not n.startswith("_") and callable(v))
