"""Aggregators: transformations of per-element (per-example) gradients, and ``process``
to chain preprocessing, aggregation (and accumulation over microbatches) and an
optimizer (Optax's ``optax.experimental.aggregating``)."""

from optix.experimental.aggregating.averaging import (
    AccumulateAvgUpdatesState,
    accumulate_avg_updates,
    average_incrementally_updates,
    average_per_element_updates,
)
from optix.experimental.aggregating.pipeline import (
    AggregatedUpdates,
    Aggregator,
    AggregatorUpdateFn,
    MaybeAxis,
    PerElementUpdates,
    process,
)
from optix.experimental.aggregating.variance import (
    PerElementMeanAndSumSqDiffGradsState,
    PerElementMeanAndVarianceEMAState,
    add_mean_variance_to_opt,
    get_batch_size_from_per_elt_updates,
    get_per_element_mean_and_sum_sq_diff_grads,
    get_unbiased_mean_and_variance_ema,
    track_per_element_mean_and_variance_with_ema,
)

__all__ = [
    "AccumulateAvgUpdatesState",
    "AggregatedUpdates",
    "Aggregator",
    "AggregatorUpdateFn",
    "MaybeAxis",
    "PerElementMeanAndSumSqDiffGradsState",
    "PerElementMeanAndVarianceEMAState",
    "PerElementUpdates",
    "accumulate_avg_updates",
    "add_mean_variance_to_opt",
    "average_incrementally_updates",
    "average_per_element_updates",
    "get_batch_size_from_per_elt_updates",
    "get_per_element_mean_and_sum_sq_diff_grads",
    "get_unbiased_mean_and_variance_ema",
    "process",
    "track_per_element_mean_and_variance_with_ema",
]
