"""Construction-time argument checks with one message format.

A value of the wrong type raises ``TypeError``:

    adam: learning_rate must be a number, an array or a schedule, got '1e-3' (str)

A number outside its range raises ``ValueError``:

    adam: b1 must be in (-1, 1), got b1=1.2

Numbers are Python or NumPy reals (``bool`` is not one: ``True`` as a learning rate is a
slip, not a value); arrays are NumPy or JAX arrays of a numeric dtype, including tracers
(hyperparameters under ``jit`` or ``inject_hyperparams``). A callable (a schedule) is
accepted only where the hyperparameter may be one (``allow_schedule=True``), ``None``
only where it means "off" (``allow_none=True``). Ranges are checked for concrete numbers
and 0-d arrays only: tracers, larger arrays and schedules pass the range check untouched.

What counts as valid follows what the update rule gives a meaning to, never less than
Optax accepts for such a meaning: a learning rate of any sign (a negative one ascends),
a clipping bound of 0 (clips to zero), a momentum in (-1, 0) (negative momentum),
a decay rate of 0. Values that only produce NaN, a frozen or a sign-flipped update
(a negative ``eps``, a second-moment decay of 1 under bias correction, a negative
clipping bound) are refused.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

NUMBER = "a number or an array"
NUMBER_OR_SCHEDULE = "a number, an array or a schedule"


class MissingExtraArgumentError(TypeError, ValueError):
    """An ``update`` called without an extra argument it needs (``value=``, ``value_fn=``).

    Both a ``TypeError``, what Optax raises there (a missing keyword-only argument), and a
    ``ValueError``, so handlers written for either catch it.
    """


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _is_array(value: Any) -> bool:
    if not isinstance(value, jax.Array | np.ndarray | np.generic):
        return False
    dtype = value.dtype
    return jnp.issubdtype(dtype, jnp.number) and not jnp.issubdtype(dtype, jnp.complexfloating)


def check_type(
    fn: str, name: str, value: Any, *, allow_schedule: bool = False, allow_none: bool = False
) -> None:
    """``value`` must be a real number or a numeric array (or a schedule, or None, if allowed)."""
    if _is_number(value) or _is_array(value):
        return
    if value is None and allow_none:
        return
    if allow_schedule and callable(value) and not isinstance(value, type):
        return
    what = NUMBER_OR_SCHEDULE if allow_schedule else NUMBER
    if allow_none:
        what += " (or None)"
    raise TypeError(f"{fn}: {name} must be {what}, got {value!r} ({type(value).__name__})")


def _concrete(value: Any) -> float | None:
    """The value as a float if it is a concrete real number or 0-d array, else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray | np.generic) and np.ndim(value) == 0:
        return float(value) if _is_array(value) else None
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer) and value.ndim == 0:
        return float(value) if _is_array(value) else None
    return None


def _fail(fn: str, name: str, valid: str, value: Any) -> None:
    raise ValueError(f"{fn}: {name} must be {valid}, got {name}={value!r}")


def _check_all(
    fn: str,
    values: dict[str, Any],
    valid: str,
    ok: Any,
    allow_schedule: bool,
    allow_none: bool,
) -> None:
    for name, value in values.items():
        check_type(fn, name, value, allow_schedule=allow_schedule, allow_none=allow_none)
        x = _concrete(value)
        if x is not None and not ok(x):
            _fail(fn, name, valid, value)


def number(fn: str, /, *, allow_schedule: bool = False, allow_none: bool = False, **values: Any):
    """Each value must be a number or an array (type only: any real, inf and NaN pass)."""
    _check_all(fn, values, "", lambda x: True, allow_schedule, allow_none)


def finite(fn: str, /, *, allow_schedule: bool = False, allow_none: bool = False, **values: Any):
    """Each value must be finite, of either sign (learning rates: a negative one ascends)."""
    _check_all(fn, values, "finite", math.isfinite, allow_schedule, allow_none)


def non_negative(
    fn: str, /, *, allow_schedule: bool = False, allow_none: bool = False, **values: Any
) -> None:
    """Each value must be finite and >= 0 (NaN and inf fail)."""
    ok = lambda x: 0 <= x < math.inf
    _check_all(fn, values, "finite and >= 0", ok, allow_schedule, allow_none)


def positive(
    fn: str, /, *, allow_schedule: bool = False, allow_none: bool = False, **values: Any
) -> None:
    """Each value must be > 0 (inf passes: it disables what it bounds)."""
    _check_all(fn, values, "> 0", lambda x: x > 0, allow_schedule, allow_none)


def at_least(
    fn: str, low: float, /, *, allow_schedule: bool = False, allow_none: bool = False, **values: Any
) -> None:
    """Each value must be >= ``low`` (NaN fails, inf passes: a bound of inf disables a clip)."""
    _check_all(fn, values, f">= {low:g}", lambda x: x >= low, allow_schedule, allow_none)


_INTERVAL = re.compile(r"^([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])$")


def _interval_test(interval: str):
    match = _INTERVAL.match(interval)
    if match is None:
        raise ValueError(f"malformed interval {interval!r}; write it like '[0, 1)'")
    left, low, high, right = match.groups()
    lo, hi = float(low), float(high)
    return lambda x: (lo <= x if left == "[" else lo < x) and (x <= hi if right == "]" else x < hi)


def in_interval(
    fn: str,
    interval: str,
    /,
    *,
    allow_schedule: bool = False,
    allow_none: bool = False,
    **values: Any,
) -> None:
    """Each value must lie in ``interval``, written as in the message (``"(-1, 1]"``)."""
    _check_all(fn, values, f"in {interval}", _interval_test(interval), allow_schedule, allow_none)


def in_unit_interval(
    fn: str,
    /,
    *,
    closed_right: bool = False,
    allow_schedule: bool = False,
    allow_none: bool = False,
    **values: Any,
) -> None:
    """Each value must be in [0, 1), or [0, 1] when ``closed_right``."""
    interval = "[0, 1]" if closed_right else "[0, 1)"
    in_interval(fn, interval, allow_schedule=allow_schedule, allow_none=allow_none, **values)


def momentum(fn: str, /, *, closed_right: bool = True, allow_none: bool = False, **values: Any):
    """A momentum (a decay of a running mean of gradients): in (-1, 1], or (-1, 1).

    A negative momentum is a known tool for games and GANs (Gidel et al., "Negative
    Momentum for Improved Game Dynamics", AISTATS 2019, arXiv:1807.04740); -1 and below
    make the running mean oscillate without decay.
    """
    in_interval(fn, "(-1, 1]" if closed_right else "(-1, 1)", allow_none=allow_none, **values)


def real_params(fn: str, tree: Any, why: str) -> None:
    """Refuse complex leaves in ``tree`` (params or updates) where the math needs reals."""
    if any(jnp.iscomplexobj(leaf) for leaf in jax.tree.leaves(tree)):
        raise TypeError(
            f"{fn}: complex params are not supported ({why}); optimize the real and "
            "imaginary parts as two real parameters instead"
        )


def one_of(fn: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """The value must be one of ``choices``."""
    if value not in choices:
        _fail(fn, name, f"one of {choices}", value)


def integer_at_least(fn: str, name: str, value: Any, low: int) -> None:
    """The value must be an int >= ``low``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an int, got {name}={value!r}")
    if value < low:
        _fail(fn, name, f">= {low}", value)


def floating_dtype(fn: str, **values: Any) -> None:
    """Each value must be ``None`` or a floating or complex dtype (a state slot's dtype)."""
    for name, value in values.items():
        if value is None:
            continue
        try:
            ok = jnp.issubdtype(np.dtype(value), np.inexact)
        except TypeError:
            ok = False
        if not ok:
            raise TypeError(
                f"{fn}: {name} must be a floating or complex dtype or None, got {name}={value!r}"
            )
