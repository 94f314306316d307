"""Construction-time argument checks with one message format.

Every message reads ``"<function>: <argument> must be <range>, got <argument>=<value>"``.
Only concrete Python or NumPy numbers are checked: tracers (hyperparameters under
``jit`` or ``inject_hyperparams``) and callables (schedules) pass through untouched.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np


def _concrete(value: Any) -> float | None:
    """The value as a float if it is a concrete real number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray | np.generic) and np.ndim(value) == 0:
        return float(value)
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer) and value.ndim == 0:
        return float(value)
    return None


def _fail(fn: str, name: str, valid: str, value: Any) -> None:
    raise ValueError(f"{fn}: {name} must be {valid}, got {name}={value!r}")


def non_negative(fn: str, **values: Any) -> None:
    """Each value must be finite and >= 0 (NaN and inf fail)."""
    for name, value in values.items():
        x = _concrete(value)
        if x is not None and not 0 <= x < float("inf"):
            _fail(fn, name, "finite and >= 0", value)


def positive(fn: str, **values: Any) -> None:
    """Each value must be > 0."""
    for name, value in values.items():
        x = _concrete(value)
        if x is not None and not x > 0:
            _fail(fn, name, "> 0", value)


def in_unit_interval(fn: str, *, closed_right: bool = False, **values: Any) -> None:
    """Each value must be in [0, 1), or [0, 1] when ``closed_right``."""
    for name, value in values.items():
        x = _concrete(value)
        if x is None:
            continue
        ok = 0 <= x <= 1 if closed_right else 0 <= x < 1
        if not ok:
            _fail(fn, name, "in [0, 1]" if closed_right else "in [0, 1)", value)


def one_of(fn: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """The value must be one of ``choices``."""
    if value not in choices:
        _fail(fn, name, f"one of {choices}", value)


def integer_at_least(fn: str, name: str, value: Any, low: int) -> None:
    """The value must be an int >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an int, got {name}={value!r}")
    if value < low:
        _fail(fn, name, f">= {low}", value)


def floating_dtype(fn: str, **values: Any) -> None:
    """Each value must be ``None`` or a floating dtype (a state slot's dtype)."""
    for name, value in values.items():
        if value is None:
            continue
        try:
            ok = jnp.issubdtype(np.dtype(value), np.floating)
        except TypeError:
            ok = False
        if not ok:
            raise TypeError(f"{fn}: {name} must be a floating dtype or None, got {name}={value!r}")
