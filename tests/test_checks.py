"""Construction-time checks: one message format, types refused early, every optimizer covered.

A learning rate read from a config file as the string "1e-3" used to construct and fail
deep inside the first update; now every numeric hyperparameter of every public optimizer
(the registry) is refused at construction with a TypeError naming the function and the
argument. Ranges keep their ValueError. Boundary values Optax accepts are checked against
Optax in tests/test_optax_boundaries.py.
"""

import inspect
import numbers
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix import _checks
from tests.registry import ENTRIES


def test_type_errors_name_the_function_the_argument_and_the_type():
    with pytest.raises(TypeError) as info:
        optix.adam("1e-3")
    assert str(info.value) == (
        "adam: learning_rate must be a number, an array or a schedule, got '1e-3' (str)"
    )
    with pytest.raises(TypeError, match=re.escape("adam: b1 must be a number or an array, got")):
        optix.adam(0.1, b1="0.9")


@pytest.mark.parametrize(
    "bad", ["0.1", True, np.bool_(True), None, [0.1], 1 + 2j, jnp.asarray(True)]
)
def test_non_numbers_are_refused(bad):
    with pytest.raises(TypeError, match=r"^f: x must be a number or an array, got .* \(\w+\)$"):
        _checks.non_negative("f", x=bad)


@pytest.mark.parametrize(
    "good", [0.1, 3, np.float32(0.1), np.int64(2), jnp.asarray(0.1), np.ones(3), jnp.ones(3)]
)
def test_numbers_and_arrays_pass(good):
    _checks.non_negative("f", x=good)
    _checks.finite("f", allow_schedule=True, x=good)


def test_schedules_and_none_pass_only_where_allowed():
    schedule = optix.schedules.constant_schedule(0.1)
    _checks.finite("f", allow_schedule=True, lr=schedule)
    _checks.finite("f", allow_none=True, lr=None)
    with pytest.raises(TypeError, match="must be a number or an array, got <function"):
        _checks.finite("f", lr=schedule)
    with pytest.raises(TypeError, match=r"must be a number or an array \(or None\), got 'x'"):
        _checks.finite("f", allow_none=True, lr="x")


def test_tracers_pass_the_range_checks():
    @jax.jit
    def build(rate):
        _checks.in_interval("f", "[0, 1)", b1=rate)
        return rate

    assert float(build(2.0)) == 2.0


@pytest.mark.parametrize(
    ("interval", "inside", "outside"),
    [
        ("[0, 1)", [0.0, 0.5], [1.0, -0.1, float("nan")]),
        ("(-1, 1]", [-0.5, 1.0], [-1.0, 1.01]),
        ("(1, inf]", [1.2, float("inf")], [1.0]),
        ("(-inf, 0]", [-3.0, 0.0], [0.5]),
    ],
)
def test_intervals(interval, inside, outside):
    for x in inside:
        _checks.in_interval("f", interval, b=x)
    for x in outside:
        with pytest.raises(ValueError, match=re.escape(f"f: b must be in {interval}, got b=")):
            _checks.in_interval("f", interval, b=x)


def test_range_messages_keep_the_format():
    with pytest.raises(ValueError, match=re.escape("adam: b1 must be in (-1, 1), got b1=1.2")):
        optix.adam(0.1, b1=1.2)
    with pytest.raises(ValueError, match=re.escape("f: x must be finite, got x=nan")):
        _checks.finite("f", x=float("nan"))
    with pytest.raises(ValueError, match=re.escape("f: x must be >= 0, got x=-1.0")):
        _checks.at_least("f", 0, x=-1.0)


def test_complex_dtypes_are_state_dtypes():
    _checks.floating_dtype("f", mu_dtype=jnp.complex64, nu_dtype="float32")
    with pytest.raises(TypeError, match="must be a floating or complex dtype or None"):
        _checks.floating_dtype("f", mu_dtype=jnp.int32)


# ---------------------------------------------------------------- every registry optimizer

_REQUIRED = {"learning_rate": 0.1, "lr": 0.1, "weight_decay": 0.1, "max_norm": 1.0}
_REQUIRED["base_optimizer"] = optix.sgd(0.1)  # wrappers (mechanize)
_REQUIRED["optimizer"] = _REQUIRED["adv_optimizer"] = optix.sgd(0.1)  # sam
_NUMERIC = ("float", "int", "ArrayLike", "ScalarOrSchedule", "Array")
_OTHER = ("bool", "str", "Callable", "DTypeLike", "Literal", "Mask", "Sequence", "dict", "tuple")


def constructor(name):
    return getattr(optix.torch, name[6:]) if name.startswith("torch.") else getattr(optix, name)


def numeric_parameters(fn):
    """The hyperparameters of ``fn`` that take numbers, read from its signature."""
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in ("key", "seed"):
            continue
        if isinstance(p.default, bool):
            continue
        annotation = str(p.annotation)
        if "str" in annotation:  # torch's norm_type takes "inf"
            continue
        typed = any(s in annotation for s in _NUMERIC) and not any(s in annotation for s in _OTHER)
        if isinstance(p.default, numbers.Number) or typed:
            yield p


def construct(fn, **kwargs):
    required = {
        p.name: _REQUIRED[p.name]
        for p in inspect.signature(fn).parameters.values()
        if p.default is inspect.Parameter.empty and p.name in _REQUIRED
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optimistic_adam warns
        return fn(**(required | kwargs))


def _cases():
    for name in sorted(ENTRIES):
        for p in numeric_parameters(constructor(name)):
            yield name, p


CASES = list(_cases())


def test_every_optimizer_has_numeric_hyperparameters_under_test():
    assert {name for name, _ in CASES} == set(ENTRIES)
    assert len(CASES) > 200


@pytest.mark.parametrize(("name", "parameter"), CASES, ids=[f"{n}-{p.name}" for n, p in CASES])
def test_strings_booleans_and_stray_none_are_refused_at_construction(name, parameter):
    fn = constructor(name)
    what = r"a number(, an array or a schedule| or an array)( \(or None\))?"
    short, arg = name.removeprefix("torch."), parameter.name
    for bad in ("1e-3", True):
        number = rf"{what}, got {bad!r} \((str|bool)\)"
        integer = rf"an int, got {arg}={bad!r}"  # iteration counts
        pattern = rf"^[\w.]*{short}: {arg} must be ({number}|{integer})$"
        with pytest.raises(TypeError, match=pattern):
            construct(fn, **{parameter.name: bad})
    none_allowed = parameter.default is None or "None" in str(parameter.annotation)
    if none_allowed:
        construct(fn, **{parameter.name: None})
    else:
        with pytest.raises(TypeError, match=rf"{arg} must be .*, got ({arg}=)?None"):
            construct(fn, **{parameter.name: None})
    if "Schedule" in str(parameter.annotation) and name not in ("rprop", "torch.rprop"):
        construct(fn, **{parameter.name: optix.schedules.constant_schedule(0.01)})
