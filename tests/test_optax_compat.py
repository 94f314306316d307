"""optix has every public name of Optax, in the same module, with Optax's signatures and states.

The names are read from Optax itself at test time: the top level and each public submodule.
"""

import importlib
import inspect
import types

import jax.numpy as jnp
import optax
import pytest

import optix

SUBMODULES = [
    "transforms",
    "schedules",
    "tree",
    "tree_utils",
    "contrib",
    "projections",
    "losses",
    "assignment",
    "perturbations",
    "second_order",
    "microbatching",
    "experimental",
]

def public_names(module):
    """The names a user reaches in an Optax module: no private names, no imported stdlib."""
    return {
        name
        for name in dir(module)
        if not name.startswith("_")
        and not (
            isinstance(getattr(module, name), types.ModuleType)
            and not getattr(module, name).__name__.startswith("optax")
        )
    }


def module_pairs():
    yield "", optax, optix
    for sub in SUBMODULES:
        yield sub, importlib.import_module(f"optax.{sub}"), importlib.import_module(f"optix.{sub}")


def shared_names():
    """(module path, name) of every public Optax name that optix has at the same place."""
    return sorted(
        (sub, name)
        for sub, theirs, ours in module_pairs()
        for name in public_names(theirs)
        if hasattr(ours, name)
    )


SHARED_PAIRS = shared_names()
SHARED = sorted(name for sub, name in SHARED_PAIRS if sub == "")


def pair(sub, name):
    theirs = importlib.import_module(f"optax.{sub}" if sub else "optax")
    ours = importlib.import_module(f"optix.{sub}" if sub else "optix")
    return getattr(ours, name), getattr(theirs, name)


@pytest.mark.parametrize("sub", ["", *SUBMODULES])
def test_every_public_optax_name_is_in_optix(sub):
    theirs = importlib.import_module(f"optax.{sub}" if sub else "optax")
    ours = importlib.import_module(f"optix.{sub}" if sub else "optix")
    missing = {name for name in public_names(theirs) if not hasattr(ours, name)}
    assert not missing, f"optix.{sub or ''} lacks {sorted(missing)}"


@pytest.mark.parametrize("sub", SUBMODULES)
def test_submodules_are_reached_as_attributes(sub):
    assert getattr(optix, sub) is importlib.import_module(f"optix.{sub}")


def test_the_shared_surface_covers_the_foundation():
    expected = {
        "GradientTransformation",
        "GradientTransformationExtraArgs",
        "chain",
        "named_chain",
        "apply_updates",
        "incremental_update",
        "periodic_update",
        "identity",
        "set_to_zero",
        "stateless",
        "stateless_with_tree_map",
        "EmptyState",
        "Params",
        "Updates",
        "OptState",
        "Schedule",
        "ScalarOrSchedule",
        "scale",
        "scale_by_learning_rate",
        "scale_by_schedule",
        "trace",
        "ema",
        "scale_by_adam",
        "scale_by_amsgrad",
        "scale_by_adamax",
        "add_decayed_weights",
        "sgd",
        "adam",
        "adamw",
        "nadam",
        "nadamw",
        "amsgrad",
        "adamax",
        "adamaxw",
        "tree",
        "tree_utils",
    }
    assert expected <= set(SHARED)


def positional_and_defaults(fn):
    """Parameters Optax code can pass: everything except optix's extra keyword-only ones.

    A one-argument function default (ADOPT's clip_value_fn) is compared by its values, another
    function default (Adafactor's decay_rate_fn) by name, and a transformation
    default (lbfgs's line search) by kind: optix has its own of each.
    """
    return [
        (p.name, p.kind, comparable_default(p.default))
        for p in inspect.signature(fn).parameters.values()
        if p.kind is not p.VAR_KEYWORD
    ]


def comparable_default(default):
    if hasattr(default, "init") and hasattr(default, "update"):
        return "a transformation"
    if not callable(default):
        return default
    try:  # a one-argument function (ADOPT's clip_value_fn, a lambda in Optax) by its values
        return ("a function of x", default(16.0), default(0.5))
    except TypeError:
        return default.__name__


@pytest.mark.parametrize(
    ("sub", "name"),
    [(s, n) for s, n in SHARED_PAIRS if inspect.isfunction(pair(s, n)[0])],
)
def test_signature_matches_optax(sub, name):
    ours, theirs = (positional_and_defaults(fn) for fn in pair(sub, name))
    # optix may add keyword-only arguments at the end; everything Optax has must match.
    assert ours[: len(theirs)] == theirs, name
    assert all(kind is inspect.Parameter.KEYWORD_ONLY for _, kind, _ in ours[len(theirs) :])


@pytest.mark.parametrize(
    ("sub", "name"),
    [(s, n) for s, n in SHARED_PAIRS if hasattr(pair(s, n)[1], "_fields")],
)
def test_state_fields_match_optax(sub, name):
    ours, theirs = pair(sub, name)
    assert ours._fields == theirs._fields


def test_tree_utils_names_match_optax():
    theirs = {n for n in dir(optax.tree_utils) if n.startswith("tree_") or n == "NamedTupleKey"}
    assert theirs <= set(dir(optix.tree_utils))


def test_adam_state_layout_matches_optax():
    params = {"w": jnp.zeros(3)}
    ours, theirs = optix.adam(1e-3).init(params), optax.adam(1e-3).init(params)
    assert type(ours[0]).__name__ == type(theirs[0]).__name__
    assert ours[0]._fields == theirs[0]._fields
