"""Hyperparameters held in the state: schedules, and values changed between steps
without recompiling (Optax's ``inject_hyperparams``).

The state classes and ``WrappedSchedule`` are defined in ``optix.schedules.stateful``
and re-exported here.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optix.core import GradientTransformation, safe_increment, with_extra_args_support, zero_count
from optix.schedules.stateful import (
    InjectHyperparamsState as InjectHyperparamsState,
)
from optix.schedules.stateful import (
    InjectStatefulHyperparamsState,
    StatefulSchedule,
    WrappedSchedule,
)
from optix.schedules.stateful import (
    WrappedScheduleState as WrappedScheduleState,
)
from optix.transforms._exact_or_traced import exact_or_traced
from optix.tree.leafwise import compute_dtype


def _is_numeric(value: Any) -> bool:
    """A number or array, or a tuple of numbers with a float (torch's ``betas``)."""
    if isinstance(value, tuple) and not hasattr(value, "_fields") and value:
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        return numbers and any(isinstance(v, float) for v in value)
    return isinstance(value, int | float | jax.Array | np.ndarray)


def _is_static(value: Any) -> bool:
    # A dtype such as ``jnp.float32`` is callable but is not a schedule.
    return isinstance(value, bool | type | np.dtype)


def hyperparam_float_dtype(params: Any) -> jnp.dtype:
    """The dtype of float hyperparameters for ``params``: their widest real float dtype,
    at least float32 (the default float dtype when ``params`` has no float leaves)."""
    dtypes = {
        jax.dtypes.canonicalize_dtype(leaf.dtype)
        for leaf in jax.tree.leaves(params)
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.inexact)
    }
    if not dtypes:
        return jnp.dtype(jnp.result_type(float))
    return jnp.finfo(compute_dtype(*(jax.ShapeDtypeStruct((), d) for d in dtypes))).dtype


def _convert(value: Any, dtype: Any) -> Any:
    """``_convert_leaf`` on a hyperparameter or on each number of a tuple of them."""
    return jax.tree.map(lambda v: _convert_leaf(v, dtype), value)


def _convert_like(value: Any, like: Any) -> Any:
    """``value`` converted to the dtypes of the matching leaves of ``like``."""
    return jax.tree.map(lambda v, other: _convert_leaf(v, other.dtype), value, like)


def _convert_leaf(value: Any, dtype: Any) -> Any:
    """Float values (Python, NumPy, weakly typed) as arrays of ``dtype``; others as arrays.

    A strongly typed JAX array keeps its dtype, and integers, booleans and keys are never
    made floats.
    """
    if isinstance(value, jax.Array) and not jax.typeof(value).weak_type:
        return value
    value = jnp.asarray(value)
    if jnp.issubdtype(value.dtype, jnp.floating):
        return value.astype(jnp.result_type(float) if dtype is None else dtype)
    return value


def _same(value: Any, original: Any) -> jax.Array:
    """Whether a hyperparameter still holds its construction value (False if reshaped)."""
    if jax.tree.structure(value) != jax.tree.structure(original):
        return jnp.asarray(False)
    originals = jax.tree.leaves(_convert_like(original, value))
    pairs = zip(jax.tree.leaves(value), originals, strict=True)
    checks = [jnp.all(v == o) if v.shape == o.shape else jnp.asarray(False) for v, o in pairs]
    return functools.reduce(jnp.logical_and, checks, jnp.asarray(True))


def inject_hyperparams(
    inner_factory: Callable[..., GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: jax.typing.DTypeLike | None = None,
    *,
    exact_constants: bool = True,
) -> Callable[..., GradientTransformation]:
    """Wrap an optimizer factory so its numeric arguments live in the state.

    ``inject_hyperparams(adam)(learning_rate=schedule, b1=0.9)`` builds a transformation
    whose state ``InjectStatefulHyperparamsState(count, hyperparams, hyperparams_states,
    inner_state)`` holds every numeric argument as an array in ``hyperparams``. Change
    one between steps (``optix.tree.set`` or ``optix.tree.assign``) and the next update
    uses it, with no recompilation. An argument may be a schedule of the step count (a
    callable, wrapped in ``WrappedSchedule``) or a ``StatefulSchedule``; its value at
    each step is written to ``hyperparams``. Booleans, names in ``static_args``, types
    and dtypes, and anything else non-numeric are passed to ``inner_factory`` as given;
    a tuple of numbers (torch's ``betas``) becomes a tuple of arrays. Integers stay
    integers; float values get ``hyperparam_dtype``, or by default the
    params' widest float dtype but at least float32 (Optax uses the params' dtype, so
    bf16 params give bf16 learning rates and betas, google-deepmind/optax#1414).

    Wrapping changes no number: while every numeric hyperparameter in the state still
    equals its construction value, the update runs the inner transformation built from
    the exact Python numbers, bit for bit the unwrapped optimizer (Optax's wrapper uses
    the rounded float32 values, so Adam's ``1 - b2`` drifts by 1e-5 relative,
    google-deepmind/optax#1532). Once a value changes, the inner transformation is built
    from the state's arrays. Both are compiled once, into one ``lax.cond`` (under
    ``vmap`` over hyperparameters both run); ``exact_constants=False`` keeps only the
    array-built one, as Optax does. Derivatives (``jax.grad`` of a validation loss
    after some steps with respect to ``hyperparams``, for meta-learning) are always
    those of the array-built transformation, Optax's: the value comes from the
    constants, the JVP from the arrays (``jax.custom_jvp``), so differentiating
    costs that branch's forward pass too. Scheduled values are arrays in both, so a factory
    that derives a constant from a schedule itself (``adabound``'s ``base_lr`` defaults to
    ``learning_rate(0)``) sees each step's value instead: pass such arguments explicitly.

    Args:
        inner_factory: A function returning a GradientTransformation (``optix.adam``).
        static_args: Names of arguments passed as given, never made arrays or
            schedules: callables that are not schedules (a mask function) and integers
            used as sizes (``adafactor``'s ``min_dim_size_to_factor``).
        hyperparam_dtype: Dtype of the float hyperparameters; ``None`` as described.
        exact_constants: Run the inner transformation built from the construction
            values while the state holds them (see above).

    Returns:
        A function taking ``inner_factory``'s arguments and returning a
        GradientTransformation whose state is ``InjectStatefulHyperparamsState``.

    References:
        Checked against optax.inject_hyperparams in tests/transforms/test_hyperparams.py.
    """
    static_args = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    name = getattr(inner_factory, "__name__", repr(inner_factory))
    unknown = static_args - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"inject_hyperparams: static_args must name parameters of {name}, got "
            f"static_args={sorted(static_args)!r}; {sorted(unknown)!r} are not among its "
            f"parameters {list(signature.parameters)!r}"
        )

    @functools.wraps(inner_factory)
    def wrapped(*args: Any, **kwargs: Any) -> GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        static, numeric, schedules = {}, {}, {}
        for arg, value in bound.arguments.items():
            if arg in static_args or _is_static(value):
                static[arg] = value
            elif isinstance(value, StatefulSchedule):
                schedules[arg] = value
            elif callable(value):
                schedules[arg] = WrappedSchedule(value)
            elif _is_numeric(value):
                numeric[arg] = value
            else:
                static[arg] = value
        # Arrays given by the caller are used as they are in both forms.
        exact = {k: v for k, v in numeric.items() if not isinstance(v, jax.Array)}
        use_exact = exact_constants and bool(exact)
        fixed = (
            with_extra_args_support(inner_factory(**static, **numeric)) if not schedules else None
        )

        def build(hparams: dict[str, Any], from_constants: bool) -> GradientTransformation:
            if from_constants and fixed is not None:
                return fixed
            values = {**hparams, **exact} if from_constants else hparams
            return with_extra_args_support(inner_factory(**static, **values))

        def target_dtype(params: Any) -> Any:
            if hyperparam_dtype is not None:
                return hyperparam_dtype
            return None if params is None else hyperparam_float_dtype(params)

        def init(params):
            dtype = target_dtype(params)
            hparams = {k: _convert(v, dtype) for k, v in numeric.items()}
            states = {k: s.init() for k, s in schedules.items()}
            hparams.update({k: _convert(s(states[k]), dtype) for k, s in schedules.items()})
            with _static_args_hint(name):
                inner_state = build(hparams, use_exact).init(params)
            return InjectStatefulHyperparamsState(zero_count(), hparams, states, inner_state)

        def update(updates, state, params=None, **extra_args):
            dtype = target_dtype(params)
            hparams = {k: _convert(v, dtype) for k, v in state.hyperparams.items()}
            for k, s in schedules.items():
                value = s(state.hyperparams_states[k], **extra_args)
                hparams[k] = _convert(value, dtype) if dtype else _convert_like(value, hparams[k])
            states = {
                k: s.update(state.hyperparams_states[k], **extra_args) for k, s in schedules.items()
            }

            def run(from_constants, hparams, updates, inner_state, params):
                with _static_args_hint(name):
                    inner = build(hparams, from_constants)
                    return inner.update(updates, inner_state, params, **extra_args)

            def unchanged(hparams, *_):
                checks = [_same(hparams[k], v) for k, v in exact.items()]
                return functools.reduce(jnp.logical_and, checks)

            args = (hparams, updates, state.inner_state, params)
            if use_exact:
                exact_run, traced_run = (functools.partial(run, b) for b in (True, False))
                new_updates, inner_state = exact_or_traced(unchanged, exact_run, traced_run, *args)
            else:
                new_updates, inner_state = run(False, *args)
            new_state = InjectStatefulHyperparamsState(
                safe_increment(state.count), hparams, states, inner_state
            )
            return new_updates, new_state

        return GradientTransformation(init, update)

    return wrapped


@contextlib.contextmanager
def _static_args_hint(name: str):
    """Add to a type error raised while building or running the inner transformation
    with array hyperparameters the usual cause and its fix."""
    try:
        yield
    except TypeError as error:
        raise TypeError(
            f"{error}\ninject_hyperparams: {name} received its numeric arguments as arrays. "
            "An argument used as a Python number (a size, or a value tested with `if`, such "
            "as momentum=0 meaning no momentum buffer) must be named in static_args."
        ) from error


def inject_stateful_hyperparams(
    inner_factory: Callable[..., GradientTransformation],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: jax.typing.DTypeLike | None = None,
) -> Callable[..., GradientTransformation]:
    """Deprecated name of ``inject_hyperparams`` (as in Optax, it warns)."""
    warnings.warn(
        "inject_stateful_hyperparams is deprecated, use inject_hyperparams instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
