"""The layout of a state, to compare optix's with Optax's, and the shared names to compare.

A layout is the state's nesting with the class name and field names of every NamedTuple
(classes live in different modules in the two libraries, so names are compared), the
keys of every dict, and the shape and dtype of every leaf. Two states with the same
layout restore into each other's ``init`` target with ``flax.serialization`` and Orbax.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import jax.numpy as jnp
import optax
import pytest

import optix


def layout(tree: Any, dtypes: bool = True) -> Any:
    """A hashable description of ``tree``: classes, fields, keys, leaf shapes and dtypes
    (without ``dtypes``, shapes only)."""
    if tree is None:
        return None
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        fields = tuple((name, layout(getattr(tree, name), dtypes)) for name in tree._fields)
        return (type(tree).__name__, fields)
    if isinstance(tree, tuple | list):
        return (type(tree).__name__, tuple(layout(x, dtypes) for x in tree))
    if isinstance(tree, dict):
        return ("dict", tuple((key, layout(tree[key], dtypes)) for key in sorted(tree)))
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return ("leaf", tuple(tree.shape), str(tree.dtype) if dtypes else "")
    return ("python", type(tree).__name__)


def first_difference(ours: Any, theirs: Any, path: str = "state") -> str | None:
    """Where two layouts first differ, as ``path: optix ... / Optax ...``; None if equal."""
    if ours == theirs:
        return None
    same_kind = isinstance(ours, tuple) and isinstance(theirs, tuple) and len(ours) == 2
    if same_kind and len(theirs) == 2 and ours[0] == theirs[0] and ours[0] != "leaf":
        children_ours, children_theirs = ours[1], theirs[1]
        if len(children_ours) == len(children_theirs):
            for i, (a, b) in enumerate(zip(children_ours, children_theirs, strict=True)):
                named = ours[0] not in ("tuple", "list")
                if named and a[0] != b[0]:
                    break
                step = f".{a[0]}" if named else f"[{i}]"
                found = first_difference(a[1] if named else a, b[1] if named else b, path + step)
                if found is not None:
                    return found
    return f"{path}: optix {_short(ours)} / Optax {_short(theirs)}"


def _short(node: Any) -> str:
    if node is None or node[0] in ("leaf", "python"):
        return repr(node)
    if node[0] in ("tuple", "list"):
        return f"{node[0]} of {len(node[1])}"
    return f"{node[0]}({', '.join(str(child[0]) for child in node[1])})"


def count_lookup(get, state):
    """What ``get(state, "count")`` gives: a value, nothing, or the error it raises."""
    try:
        found = get(state, "count")
    except (KeyError, ValueError) as error:
        return ("error", type(error).__name__)
    return ("none",) if found is None else ("value", layout(found))


def assert_same_layout(ours: Any, theirs: Any, dtypes: bool = True) -> None:
    """optix's state ``ours`` has the layout of Optax's ``theirs``."""
    difference = first_difference(layout(ours, dtypes), layout(theirs, dtypes))
    assert difference is None, difference


# The transformations both libraries have, and arguments to build each with.

PARAMS = {"w": jnp.zeros((3, 4)), "b": jnp.zeros((4,)), "s": jnp.zeros(())}
MASK = {"w": True, "b": False, "s": True}


def const(value):
    return lambda m: value


def schedule(m):
    return m.linear_schedule(0.1, 0.01, 10)


# Test values of required parameters, by parameter name. Each is a function of the
# library (optax or optix), so nested transformations come from the same one.
REQUIRED = {
    "learning_rate": const(0.1),
    "step_size": const(0.1),
    "step_size_fn": schedule,
    "clipping": const(0.1),
    "eta": const(0.01),
    "gamma": const(0.55),
    "max_consecutive_errors": const(3),
    "max_delta": const(1.0),
    "threshold": const(1.0),
    "max_norm": const(1.0),
    "decay": const(0.9),
    "mask": const(MASK),
    "freeze_mask": const({"w": False, "b": True, "s": False}),
    "param_labels": const({"w": "a", "b": "b", "s": "a"}),
    "transforms": lambda m: {"a": m.adam(0.1), "b": m.sgd(0.1, momentum=0.9)},
    "inner": lambda m: m.adam(0.1),
    "optimizer": lambda m: m.adam(0.1),
    "fast_optimizer": lambda m: m.adam(0.1),
    "base_optimizer": lambda m: m.adam(0.1),
    "adv_optimizer": lambda m: m.sgd(0.1),
    "tx": lambda m: m.adam(0.1),
    "should_transform_fn": const(lambda step: step % 2 == 0),
    "sync_period": const(2),
    "slow_step_size": const(0.5),
    "measure": lambda m: m.tree.norm,
    "measure_name": const("norm"),
    "measures": lambda m: {"norm": m.tree.norm, "ema": m.measure_with_ema(m.tree.norm, 0.9)},
    "f": const(lambda updates, params=None: updates),
    "max_backtracking_steps": const(5),
    "max_linesearch_steps": const(5),
    "l2_norm_clip": const(1.0),
    "noise_multiplier": const(0.1),
    "seed": const(0),
}
# Given although optional: Optax warns when add_noise has no key.
ALWAYS = {"key": const(0)}

# Arguments that change Optax's layout (or could change optix's), each applied alone on
# top of the required ones. An override applies where its first key is a parameter;
# its other keys go along where they are parameters too.
SCHEDULED_WEIGHT_DECAY = {"weight_decay": lambda m: m.linear_schedule(1e-2, 0.0, 10)}
# Their weight decay enters the step's own math: Optax builds them with a schedule there
# but fails at the first update, so optix refuses one at construction.
CONSTANT_WEIGHT_DECAY = {"momo", "momo_adam", "mechanize"}
VARIANTS = [
    {"learning_rate": schedule},
    {"weight_decay": const(0.0)},
    {"weight_decay": const(1e-2)},
    SCHEDULED_WEIGHT_DECAY,
    {"weight_decay_rate": const(1e-2)},
    {"weight_decay": const(1e-2), "mask": const(MASK)},
    {"weight_decay": const(1e-2), "mask": const(lambda params: MASK)},
    {"weight_decay_mask": const(MASK)},
    {"trust_ratio_mask": const(MASK)},
    {"momentum": const(0.9)},
    {"nesterov": const(True), "momentum": const(0.9)},
    {"bias_correction": const(True)},
    {"bias_correction": const(True), "centered": const(True), "momentum": const(0.9)},
    {"bias_correction_mu": const(True)},
    {"bias_correction_nu": const(True)},
    {"centered": const(True)},
    {"eps_in_sqrt": const(False)},
    {"mu_dtype": const(jnp.bfloat16)},
    {"accumulator_dtype": const(jnp.bfloat16)},
    {"dtype_momentum": const(jnp.bfloat16), "momentum": const(0.9)},
    {"factored": const(False)},
    {"min_dim_size_to_factor": const(2)},
    {"multiply_by_parameter_scale": const(False)},
    {"clipping_threshold": const(None)},
    {"debias": const(False)},
    {"k": const(3)},
    {"reset_state": const(True)},
    {"store_grad": const(True)},
    {"memory_size": const(3)},
    {"linesearch": const(None)},
    {"linesearch": lambda m: m.scale_by_backtracking_linesearch(5, store_grad=True)},
    {"accumulation_size": const(3)},
    {"forward_extra_args": const(True)},
    {"step_size_fn": const(lambda count: 0.1)},
]

# Transformations whose arguments the tables above cannot give.
SPECIAL = {
    "chain": [
        lambda m: m.chain(m.sgd(0.1)),
        lambda m: m.chain(m.clip_by_global_norm(1.0), m.adamw(schedule(m), weight_decay=0.1)),
    ],
    "named_chain": [
        lambda m: m.named_chain(("clip", m.clip(1.0)), ("opt", m.sgd(0.1, momentum=0.9))),
    ],
    "inject_hyperparams": [
        lambda m: m.inject_hyperparams(m.adam)(learning_rate=0.1),
        lambda m: m.inject_hyperparams(m.adamw)(
            learning_rate=schedule(m), weight_decay=1e-2, mask=MASK
        ),
        lambda m: m.inject_hyperparams(m.sgd, static_args="momentum")(
            learning_rate=0.1, momentum=0.9
        ),
        lambda m: m.inject_hyperparams(m.rmsprop, hyperparam_dtype=jnp.bfloat16)(
            learning_rate=0.1, bias_correction=True
        ),
        lambda m: m.inject_hyperparams(m.scale_by_rms)(decay=0.9),
    ],
    "inject_stateful_hyperparams": [
        lambda m: m.inject_stateful_hyperparams(m.adam)(learning_rate=0.1),
        lambda m: m.inject_stateful_hyperparams(m.sgd)(
            learning_rate=m.WrappedSchedule(schedule(m))
        ),
    ],
    "MultiSteps": [
        lambda m: m.MultiSteps(m.adam(0.1), every_k_schedule=3),
        lambda m: m.MultiSteps(m.adamw(schedule(m)), 2, use_grad_mean=False),
        lambda m: m.MultiSteps(m.sgd(0.1), 2, should_skip_update_fn=m.skip_not_finite),
        lambda m: m.MultiSteps(m.lion(0.1), lambda step: 2).gradient_transformation(),
    ],
}

# Deprecated names (Optax's dpsgd passing `seed` on, inject_stateful_hyperparams,
# optimistic_adam) warn when built; they still must build Optax's layout.
ignore_optax_deprecations = pytest.mark.filterwarnings("ignore::DeprecationWarning")
# Optax 0.2.8 functions that return a transformation without saying so in their annotation.
UNANNOTATED = {"scale_by_factored_rms", "monitor", "dog", "dowg"}
# Optax's monitor leaves `measurements` empty at init and fills it at the first update (its
# state changes structure); optix's init holds zeros shaped like the measurements, the
# layout of every Optax state after a step, which is what a checkpoint holds.
COMPARE_AFTER_ONE_UPDATE = {"monitor"}
# Optax's SM3 keeps no accumulator for a scalar leaf and fails at its first update;
# optix keeps one scalar. The layouts are compared on params without scalar leaves.
NO_SCALAR_LEAVES = {"sm3", "scale_by_sm3"}


def _returns_transformation(obj) -> bool:
    if inspect.isclass(obj):
        return hasattr(obj, "gradient_transformation")
    if not (inspect.isfunction(obj) or isinstance(obj, functools.partial)):
        return False
    return "GradientTransformation" in str(inspect.signature(obj).return_annotation)


def shared_transformations() -> list[str]:
    """``module.name`` of every constructor of transformations in both libraries."""
    found = []
    modules = [""] + [
        n for n in dir(optax) if inspect.ismodule(getattr(optax, n)) and not n.startswith("_")
    ]
    for module in modules:
        theirs = getattr(optax, module) if module else optax
        ours = getattr(optix, module, None) if module else optix
        if ours is None:
            continue
        for name in sorted(set(dir(theirs)) & set(dir(ours))):
            obj = getattr(theirs, name)
            if not name.startswith("_") and (_returns_transformation(obj) or name in UNANNOTATED):
                found.append(f"{module}.{name}" if module else name)
    return found


SHARED = shared_transformations()


def resolve(library, qualified: str):
    *module, name = qualified.split(".")
    return getattr(getattr(library, module[0]) if module else library, name)


def builders(qualified: str, **arguments: Any) -> list:
    """Functions ``library -> transformation``: the required arguments (and ``arguments``),
    then each variant on top."""
    name = qualified.split(".")[-1]
    if name in SPECIAL:
        return SPECIAL[name]
    parameters = inspect.signature(resolve(optax, qualified)).parameters
    missing = [
        p
        for p, v in parameters.items()
        if v.default is inspect.Parameter.empty
        and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
        and p not in REQUIRED
    ]
    assert not missing, f"give {qualified}'s required {missing} test values in REQUIRED"
    base = {
        p: (REQUIRED | ALWAYS)[p]
        for p, v in parameters.items()
        if p in ALWAYS or (v.default is inspect.Parameter.empty and p in REQUIRED)
    }
    base |= {k: const(v) for k, v in arguments.items()}
    overrides = [{}] + [
        {k: v for k, v in variant.items() if k in parameters}
        for variant in VARIANTS
        if next(iter(variant)) in parameters
        and not (name in CONSTANT_WEIGHT_DECAY and variant is SCHEDULED_WEIGHT_DECAY)
    ]

    def build(arguments):
        return lambda m: resolve(m, qualified)(**{k: v(m) for k, v in arguments.items()})

    return [build(base | override) for override in overrides]
