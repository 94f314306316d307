"""Recording what the optimizer did, in the state, ready to log: Optax's ``snapshot``,
``monitor`` and ``measure_with_ema``, and ``monitored`` for the usual training stats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    chain,
    safe_increment,
    stateless,
    with_extra_args_support,
    zero_count,
)
from optix.transforms.clipping import wide_global_norm
from optix.transforms.hyperparams import hyperparam_float_dtype
from optix.transforms.momentum import ema
from optix.tree.state import format_path, get_all_with_path

Measure = Callable[[Any], Any]


class SnapshotState(NamedTuple):
    """State of ``snapshot``."""

    measurement: dict[str, Any]  # {measure_name: measure(updates)}


def snapshot(measure_name: str, measure: Measure) -> GradientTransformation:
    """Store ``measure(updates)`` in the state under ``measure_name``; updates pass unchanged.

    In a chain, the updates measured are those transformed up to this point. Read the
    value with ``optix.tree.get(state, measure_name)``; after ``init`` it holds
    ``measure(params)``.

    References:
        Checked against optax.snapshot in tests/transforms/test_monitor.py.
    """

    def init(params):
        return SnapshotState({measure_name: measure(params)})

    def update(updates, state, params=None, **extra_args):
        del state, params, extra_args
        return updates, SnapshotState({measure_name: measure(updates)})

    return GradientTransformation(init, update)


class MonitorState(NamedTuple):
    """State of ``monitor``."""

    measurements: dict[str, Any]  # {name: latest measurement}
    measure_states: tuple[Any, ...]  # the state of each measure, in the order given


def _as_measure(measure: Measure | GradientTransformation) -> GradientTransformation:
    """A measure as a transformation whose "updates" output is the measurement."""
    if isinstance(measure, GradientTransformation) or not callable(measure):
        return with_extra_args_support(measure)
    return stateless(lambda updates, params: measure(updates))


def monitor(measures: dict[str, Measure | GradientTransformation]) -> GradientTransformation:
    """Record several measurements of the updates, some with a state (``measure_with_ema``).

    Each measure is a function of the updates, or a transformation whose ``update``
    returns the measurement in place of the updates (and sees params and extra
    arguments). Updates pass unchanged. Optax's ``init`` leaves ``measurements`` empty,
    so its state changes structure at the first update; here ``init`` fills it with
    zeros shaped like the measurements, and the structure never changes.

    Args:
        measures: Measurement names mapped to measures.

    Returns:
        A GradientTransformation whose state is ``MonitorState``; read a measurement with
        ``optix.tree.get(state, name)``.

    References:
        Checked against optax.monitor in tests/transforms/test_monitor.py.
    """
    transforms = {name: _as_measure(measure) for name, measure in measures.items()}

    def measure_all(updates, states, params, extra_args):
        results = {
            name: tx.update(updates, state, params, **extra_args)
            for (name, tx), state in zip(transforms.items(), states, strict=True)
        }
        measurements = {name: value for name, (value, _) in results.items()}
        return measurements, tuple(state for _, state in results.values())

    def init(params):
        states = tuple(tx.init(params) for tx in transforms.values())
        shapes = jax.eval_shape(lambda: measure_all(params, states, params, {})[0])
        return MonitorState(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes), states)

    def update(updates, state, params=None, **extra_args):
        measurements, states = measure_all(updates, state.measure_states, params, extra_args)
        return updates, MonitorState(measurements, states)

    return GradientTransformation(init, update)


def _floats(tree: Any) -> Any:
    """Integer and boolean leaves as default floats, so an average of them is a fraction."""

    def cast(x):
        x = jnp.asarray(x)
        return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.result_type(float))

    return jax.tree.map(cast, tree)


def measure_with_ema(
    measure: Measure,
    decay: jax.typing.ArrayLike,
    debias: bool = True,
    accumulator_dtype: Any | None = None,
) -> GradientTransformation:
    """A measure for ``monitor``: the (debiased) exponential moving average of
    ``measure(updates)``, as ``optix.ema(decay, debias, accumulator_dtype)`` computes it.

    Boolean and integer measurements are averaged as floats (the fraction of steps where
    a condition held), as in Optax.

    References:
        Checked against optax.measure_with_ema in tests/transforms/test_monitor.py.
    """
    average = ema(decay, debias, accumulator_dtype)
    # The average is shaped like the measurement, not like the params.
    of_measurement = average._replace(init=lambda params: average.init(_floats(measure(params))))
    return chain(stateless(lambda updates, params: _floats(measure(updates))), of_measurement)


class MonitoredState(NamedTuple):
    """State of ``monitored``: the stats of the last update, and the inner state."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    grad_norm: jax.Array  # global L2 norm of the incoming updates
    update_norm: jax.Array  # global L2 norm of the outgoing updates
    param_norm: jax.Array  # global L2 norm of the params passed in (NaN without params)
    lr: jax.Array  # learning rate used by the update (NaN if unknown)
    inner_state: Any


def _held_learning_rate(inner_state: Any) -> jax.Array | None:
    """The one scalar ``learning_rate`` in a state (``inject_hyperparams``), or None.

    Raises:
        ValueError: if the state holds several.
    """
    found = [
        (path, value)
        for path, value in get_all_with_path(inner_state, "learning_rate")
        if jnp.ndim(value) == 0
    ]
    if len(found) > 1:
        paths = ", ".join(format_path(path) for path, _ in found)
        raise ValueError(
            f"monitored: the inner state holds {len(found)} learning rates, at {paths}; "
            "pass learning_rate= to say which one to record."
        )
    return found[0][1] if found else None


def monitored(
    inner: GradientTransformation, learning_rate: ScalarOrSchedule | None = None
) -> GradientTransformation:
    """Run ``inner`` and record, each step, the norms and learning rate of its update.

    The state records the global L2 norm of the incoming updates (``grad_norm``), of
    the outgoing ones (``update_norm``), of the params (``param_norm``), and the
    learning rate of the step (``lr``), each read with ``optix.tree.get(state, name)``.
    The updates pass unchanged. Norms are summed in at least float32, over every
    device inside ``optix.sharding.reduce_over`` (``shard_map``).

    The learning rate is ``learning_rate`` evaluated at ``count`` (the number of earlier
    updates, as ``scale_by_learning_rate`` evaluates it) when given; pass the number or
    schedule given to the optimizer. Otherwise it is the one ``learning_rate`` that
    ``inner``'s state holds (``inject_hyperparams`` stores the value each update uses,
    so values set between steps are reported); with neither, ``lr`` is NaN. Optax's
    ``ScaleByScheduleState`` holds only a count, so the learning rate cannot be read
    from it. Put step-skipping wrappers (``MultiSteps``, ``apply_if_finite``) outside,
    so that ``count`` advances with the optimizer's own count.

    Args:
        inner: The transformation to monitor.
        learning_rate: The learning rate of ``inner``: a number or a schedule of the step.

    Returns:
        A GradientTransformation whose state is ``MonitoredState``.

    Raises:
        ValueError: at ``init``, if ``learning_rate`` is None and ``inner``'s state
            holds several learning rates.

    References:
        Checked against NumPy float64 norms in tests/transforms/test_monitor.py.
    """
    inner = with_extra_args_support(inner)

    def read_lr(count, inner_state, dtype):
        value: Any
        if learning_rate is None:
            held = _held_learning_rate(inner_state)
            value = jnp.nan if held is None else held
        else:
            value = learning_rate(count) if callable(learning_rate) else learning_rate
        return jnp.asarray(value).astype(dtype)

    def init(params):
        inner_state = inner.init(params)
        if learning_rate is None:
            _held_learning_rate(inner_state)  # several learning rates fail here, not later
        nan = jnp.asarray(jnp.nan, hyperparam_float_dtype(params))
        return MonitoredState(zero_count(), nan, nan, nan, nan, inner_state)

    def update(updates, state, params=None, **extra_args):
        new_updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
        dtype = state.grad_norm.dtype
        param_norm = jnp.nan if params is None else wide_global_norm(params)
        stats = MonitoredState(
            count=safe_increment(state.count),
            grad_norm=wide_global_norm(updates).astype(dtype),
            update_norm=wide_global_norm(new_updates).astype(dtype),
            param_norm=jnp.asarray(param_norm).astype(dtype),
            lr=read_lr(state.count, inner_state, dtype),
            inner_state=inner_state,
        )
        return new_updates, stats

    return GradientTransformation(init, update)
