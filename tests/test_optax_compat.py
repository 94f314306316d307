"""Names optix shares with Optax have Optax's signatures, defaults and state fields."""

import inspect

import jax.numpy as jnp
import optax
import pytest

import optix

SHARED = sorted(name for name in optix.__all__ if hasattr(optax, name) and not name.startswith("_"))


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

    A function default (Adafactor's decay_rate_fn) is compared by name and a transformation
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
    return default.__name__ if callable(default) else default


@pytest.mark.parametrize("name", [n for n in SHARED if inspect.isfunction(getattr(optix, n))])
def test_signature_matches_optax(name):
    ours = positional_and_defaults(getattr(optix, name))
    theirs = positional_and_defaults(getattr(optax, name))
    # optix may add keyword-only arguments at the end; everything Optax has must match.
    assert ours[: len(theirs)] == theirs, name
    assert all(kind is inspect.Parameter.KEYWORD_ONLY for _, kind, _ in ours[len(theirs) :])


@pytest.mark.parametrize(
    "name", [n for n in SHARED if n.endswith("State") and hasattr(getattr(optax, n), "_fields")]
)
def test_state_fields_match_optax(name):
    assert getattr(optix, name)._fields == getattr(optax, name)._fields


def test_tree_utils_names_match_optax():
    theirs = {n for n in dir(optax.tree_utils) if n.startswith("tree_") or n == "NamedTupleKey"}
    assert theirs <= set(dir(optix.tree_utils))


def test_adam_state_layout_matches_optax():
    params = {"w": jnp.zeros(3)}
    ours, theirs = optix.adam(1e-3).init(params), optax.adam(1e-3).init(params)
    assert type(ours[0]).__name__ == type(theirs[0]).__name__
    assert ours[0]._fields == theirs[0]._fields
