"""Boundary hyperparameters, audited against Optax: accept what Optax gives a meaning to.

For every transformation and schedule that optix shares with Optax, and every numeric
argument of it, the test tries the boundary values 0, -0.5, 1 and 2 (0, -1 and 1 for
counts) in both libraries: construct, then an update (two where the second step has its
own rule) or the schedule at several steps. Where Optax returns finite numbers, optix
must return the same numbers, unless the value is in ``REFUSED`` below: values that only
give NaN later, a frozen or a sign-flipped update, each refused at construction with
optix's message format. Where Optax fails, optix may refuse (in its format) or give
finite numbers.
"""

import inspect
import math
import numbers
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix

# Required arguments, for the transformations and for the schedules.
BASE = {
    "learning_rate": 0.1,
    "max_delta": 1.0,
    "max_norm": 1.0,
    "clipping": 0.1,
    "threshold": 1.0,
    "eta": 0.01,
    "gamma": 0.55,
    "decay": 0.9,
    "step_size": 0.1,
    "max_backtracking_steps": 5,
    "max_linesearch_steps": 5,
}
SCHEDULE_BASE = {
    "init_value": 1.0,
    "end_value": 0.1,
    "transition_steps": 10,
    "decay_rate": 0.5,
    "decay_steps": 10,
    "peak_value": 2.0,
    "warmup_steps": 3,
    "power": 2.0,
    "value": 1.0,
}
OVERRIDES = {"adadelta": {"learning_rate": 0.1}, "noisy_sgd": {"key": 0}}
NEEDS_VALUE = {"polyak_sgd", "scale_by_polyak"}
# Eager line searches compile their loops at every call: these are audited against the
# table alone (their numbers are compared with Optax's in their own tests).
SEARCHES = {"lbfgs", "scale_by_lbfgs", "scale_by_backtracking_linesearch"}
SEARCHES |= {"scale_by_zoom_linesearch"}
NEEDS_OBJECTIVE = SEARCHES
# Updates whose second step follows another rule than the first (the previous gradient).
TWO_STEPS = {"optimistic_gradient_descent", "scale_by_optimistic_gradient", "optimistic_adam"}
TWO_STEPS |= {"optimistic_adam_v2", "novograd", "rprop", "scale_by_rprop"}
NOT_HYPERPARAMETERS = {
    *("mu_dtype", "nu_dtype", "accumulator_dtype", "dtype_momentum", "key", "seed", "mask"),
    *("weight_decay_mask", "nesterov", "factored", "multiply_by_parameter_scale", "axis"),
}

# Where optix follows the reference rather than Optax, with the same hyperparameters.
NUMBERS_DIFFER = {
    "adan": "the official Adan (tests/optimizers/test_adan.py)",
    "scale_by_adan": "the official Adan",
    "rprop": "torch.optim.Rprop (tests/optimizers/test_rprop.py)",
    "scale_by_rprop": "torch.optim.Rprop",
    ("warmup_constant_schedule", "warmup_steps", 0): "peak_value from the start; Optax holds "
    "init_value forever (tests/schedules/test_cosine.py)",
}


def _outside(low, high, *, low_open=False, high_open=False):
    def refused(v):
        return v < low or v > high or (low_open and v == low) or (high_open and v == high)

    return refused


negative = _outside(0, math.inf)
momentum = _outside(-1, 1, low_open=True)  # (-1, 1]: negative momentum is a known tool
momentum_open = _outside(-1, 1, low_open=True, high_open=True)  # a b1 of 1 divides 0 by 0
bias_corrected = _outside(0, 1, high_open=True)  # b2 = 1 leaves 1 - b2**t = 0
unit = _outside(0, 1)
ADAM_LIKE = {
    "b1": momentum_open,
    "b2": bias_corrected,
    "eps": negative,
    "eps_root": negative,
    "weight_decay": negative,
}
# Refused values: argument -> predicate, then per-name predicates that replace them.
REFUSED = {
    **{a: negative for a in ("eps", "eps_root", "weight_decay", "weight_decay_rate")},
    **{a: negative for a in ("initial_accumulator_value", "min_norm", "trust_coefficient")},
    **{a: negative for a in ("gamma", "min_scale", "atol", "rtol", "tol", "scaling")},
    **{a: negative for a in ("stepsize_precision", "approx_dec_rtol", "max_learning_rate")},
    **{a: negative for a in ("max_norm", "max_delta", "clipping", "clipping_threshold")},
    **{a: negative for a in ("decay_rate", "min_dim_size_to_factor", "warmup_steps")},
    "k": lambda v: v < 1,
    "rho": unit,
    "smooth_beta": lambda v: v <= 0,
    "momentum": lambda v: v <= -1,
    "pct_start": _outside(0, 1, high_open=True),
    "pct_final": _outside(0, 1, high_open=True),
    "decay_offset": lambda v: v > 0,  # 1 - (count - offset + 1)**-rate is NaN early on
    "step_offset": lambda v: v > 0,
    "threshold": negative,
    "slope_rtol": _outside(0, 1, high_open=True),
    "decrease_factor": _outside(0, 1, low_open=True, high_open=True),
    "increase_factor": lambda v: v < 1,
    "max_backtracking_steps": lambda v: v < 0,
    "max_linesearch_steps": lambda v: v < 1,
    "memory_size": lambda v: v < 1,
    "curv_rtol": lambda v: v <= 1e-4,  # must exceed slope_rtol (1e-4): Wolfe's c1 < c2
    "beta": momentum,
}
OPTIMISM = {"alpha": negative, "beta": negative}
PER_NAME = {
    **{n: ADAM_LIKE for n in ("adam", "adamw", "nadam", "nadamw", "amsgrad", "lamb", "yogi")},
    **{n: ADAM_LIKE for n in ("adabelief", "optimistic_adam")},
    **{f"scale_by_{n}": ADAM_LIKE for n in ("adam", "amsgrad", "yogi", "belief")},
    **{n: {**ADAM_LIKE, "b2": unit} for n in ("adamax", "adamaxw", "scale_by_adamax")},
    **{n: {"b1": momentum, "b2": unit} for n in ("novograd", "scale_by_novograd")},
    **{n: {"b1": unit, "b2": unit} for n in ("lion", "scale_by_lion")},
    **{n: {"b1": momentum_open, "b2": unit} for n in ("scale_by_sm3",)},
    **{n: {"b1": unit, "b2": unit, "b3": unit} for n in ("adan", "scale_by_adan")},
    **{n: OPTIMISM for n in ("optimistic_gradient_descent", "scale_by_optimistic_gradient")},
    "optimistic_adam_v2": {**ADAM_LIKE, **OPTIMISM},
    "sm3": {"momentum": momentum_open},
    "adafactor": {"momentum": momentum},
    "ema": {"decay": momentum},
    "trace": {"decay": lambda v: v <= -1},
    "scale_by_rms": {"decay": unit},
    "scale_by_stddev": {"decay": unit},
    "rmsprop": {"decay": unit},
    **{n: {**ADAM_LIKE, "threshold": lambda v: v < 4} for n in ("radam", "scale_by_radam")},
    "scale_by_zoom_linesearch": {
        "max_learning_rate": lambda v: v <= 0,
        "increase_factor": lambda v: v <= 1,
    },
    "scale_by_backtracking_linesearch": {"max_learning_rate": lambda v: v <= 0},
    **{
        n: {
            "learning_rate": negative,
            "eta_minus": _outside(0, 1, low_open=True, high_open=True),
            "eta_plus": lambda v: v <= 1,
            "min_step_size": negative,
            "max_step_size": lambda v: v < 1e-6,  # below the default min_step_size
        }
        for n in ("rprop", "scale_by_rprop")
    },
    # Phases that collapse: int(pct_start * 1) == int(pct_final * 1) == 0, or end first.
    "linear_onecycle_schedule": {
        "transition_steps": lambda v: v == 1,
        "pct_final": lambda v: not 0.3 < v < 1,  # after pct_start (0.3)
    },
}
PER_NAME["adan"] = {**PER_NAME["adan"], "learning_rate": negative}


def refused(name, arg, value):
    rule = PER_NAME.get(name, {}).get(arg, REFUSED.get(arg))
    return rule is not None and bool(rule(value))


def _kind(fn):
    annotation = str(inspect.signature(fn).return_annotation)
    if "GradientTransformation" in annotation:
        return "transform"
    if "Schedule" in annotation or "Callable[[" in annotation or "schedule" in fn.__name__:
        return "schedule"
    return None


def _numeric(p):
    if p.name in NOT_HYPERPARAMETERS or isinstance(p.default, bool):
        return False
    if isinstance(p.default, numbers.Number):
        return True
    annotation = str(p.annotation)
    numeric = any(s in annotation for s in ("float", "int", "ArrayLike", "ScalarOrSchedule"))
    other = any(s in annotation for s in ("bool", "Callable[[", "Sequence", "dict", "str"))
    return numeric and not other


def shared_cases():
    """(module, name, base kwargs, kind, numeric args) of every probed shared name."""
    cases = {}
    for module in ("", "schedules", "transforms"):
        theirs = getattr(optax, module) if module else optax
        ours = getattr(optix, module) if module else optix
        for name in sorted(dir(theirs)):
            fn = getattr(theirs, name)
            if name.startswith("_") or not inspect.isfunction(fn) or not hasattr(ours, name):
                continue
            kind = "transform" if name == "scale_by_factored_rms" else _kind(fn)
            if kind is None or name in cases:
                continue
            pool = SCHEDULE_BASE if kind == "schedule" else BASE
            params = inspect.signature(fn).parameters.values()
            required = [p.name for p in params if p.default is inspect.Parameter.empty]
            if not all(r in pool for r in required):
                continue
            base = {r: pool[r] for r in required} | OVERRIDES.get(name, {})
            args = [p for p in params if _numeric(p)]
            cases[name] = (module, base, kind, args)
    return cases


CASES = shared_cases()

PARAMS = {"w": jnp.asarray([[0.5, -1.0], [2.0, 0.25], [-0.3, 0.7]]), "b": jnp.asarray([0.1, -0.2])}
GRADS = {"w": jnp.asarray([[0.3, -0.6], [0.2, 1.5], [-0.9, 0.05]]), "b": jnp.asarray([-0.4, 0.8])}
TARGET = jax.tree.map(jnp.subtract, PARAMS, GRADS)


def _loss(params):
    pairs = zip(jax.tree.leaves(params), jax.tree.leaves(TARGET), strict=True)
    return sum(0.5 * jnp.sum(jnp.square(p - t)) for p, t in pairs)


def _run(lib, name, tx):
    params, out = PARAMS, []
    state = tx.init(params)
    for t in range(2 if name in TWO_STEPS else 1):
        value, grad = jax.value_and_grad(_loss)(params)
        grads = grad if name in NEEDS_OBJECTIVE else jax.tree.map(lambda g: g * (1 + t), GRADS)
        extra = {"value": value} if name in NEEDS_VALUE else {}
        if name in NEEDS_OBJECTIVE:
            extra = {"value": value, "grad": grads, "value_fn": _loss}
        updates, state = tx.update(grads, state, params, **extra)
        params = lib.apply_updates(params, updates)
        out.append(updates)
    return out


def construct(lib, name, kwargs):
    """("refused", error) at construction, or ("built", the transformation or schedule)."""
    module = CASES[name][0]
    fn = getattr(getattr(lib, module) if module else lib, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optimistic_adam warns
        try:
            return "built", fn(**kwargs)
        except (ValueError, TypeError) as error:
            return "refused", error
        except ArithmeticError as error:  # Optax divides by zero for some values
            assert lib is optax, f"optix.{name}({kwargs}) crashed: {error!r}"
            return "refused", error


def outcome(lib, name, kwargs):
    """("refused", error) at construction, ("failed", error) later, or ("ran", leaves)."""
    kind = CASES[name][2]
    status, built = construct(lib, name, kwargs)
    if status == "refused":
        return status, built
    promotion = "standard" if lib is optax else "strict"
    with warnings.catch_warnings(), jax.numpy_dtype_promotion(promotion):
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            if kind == "schedule":
                out = [built(jnp.asarray(c)) for c in (0, 1, 2, 5, 9, 10, 11, 50)]
            else:
                out = _run(lib, name, built)
        except Exception as error:
            return "failed", error
    return "ran", [np.asarray(x, np.float64) for x in jax.tree.leaves(out)]


def probe_values(p, base):
    default = p.default if isinstance(p.default, numbers.Number) else base.get(p.name)
    if isinstance(default, int) and not isinstance(default, bool) and p.name != "learning_rate":
        return [0, -1, 1]
    return [0.0, -0.5, 1.0, 2.0]


def test_the_audit_covers_the_shared_api():
    assert len(CASES) >= 80
    assert {"clip_by_global_norm", "exponential_decay", "adam", "sgd", "trace"} <= set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_boundary_values_optax_accepts_are_accepted_with_its_numbers(name):
    _, base, _, args = CASES[name]
    for p in args:
        for value in probe_values(p, base):
            kwargs = base | {p.name: value}
            where = f"{name}({p.name}={value!r})"
            if name in SEARCHES:
                ours, our_result = construct(optix, name, kwargs)
                assert (ours == "refused") == refused(name, p.name, value), f"{where}: {our_result}"
                continue
            theirs, their_leaves = outcome(optax, name, kwargs)
            ours, our_result = outcome(optix, name, kwargs)
            if ours == "refused":
                message = str(our_result)
                assert re.match(rf"^{name}: \w+ must be ", message), f"{where}: {message}"
                if theirs == "ran" and all(np.all(np.isfinite(x)) for x in their_leaves):
                    assert refused(name, p.name, value), f"{where} is refused: {message}"
                continue
            assert ours == "ran", f"{where} failed after construction: {our_result!r}"
            assert not refused(name, p.name, value), f"{where} should be refused"
            finite = all(np.all(np.isfinite(x)) for x in our_result)
            if theirs != "ran" or not all(np.all(np.isfinite(x)) for x in their_leaves):
                continue  # Optax fails here: any finite answer of optix's is welcome
            assert finite, f"{where}: optix gives non-finite numbers where Optax does not"
            if name in NUMBERS_DIFFER or (name, p.name, value) in NUMBERS_DIFFER:
                continue
            scale = max(float(np.max(np.abs(b), initial=0.0)) for b in their_leaves)
            for a, b in zip(our_result, their_leaves, strict=True):
                np.testing.assert_allclose(a, b, rtol=3e-5, atol=1e-6 * scale + 1e-9, err_msg=where)


@pytest.mark.parametrize("name", sorted(CASES))
def test_string_hyperparameters_are_refused_at_construction(name):
    module, base, _, args = CASES[name]
    fn = getattr(getattr(optix, module) if module else optix, name)
    for p in args:
        with (
            pytest.raises(TypeError, match=rf"^{name}: \w+ must be (a number|an int)"),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", DeprecationWarning)  # optimistic_adam warns
            fn(**(base | {p.name: "1e-3"}))


def test_clip_by_global_norm_zero_clips_to_zero_without_nan():
    """Optax's getting-started notebook reaches max_norm=0 through a decaying schedule."""
    tx = optix.clip_by_global_norm(0.0)
    updates, _ = tx.update(GRADS, tx.init(PARAMS))
    with jax.numpy_dtype_promotion("standard"):
        expected, _ = optax.clip_by_global_norm(0.0).update(GRADS, optax.EmptyState())
    jax.tree.map(np.testing.assert_array_equal, updates, expected)
    assert all(not np.any(x) for x in jax.tree.leaves(updates))
    zeros = jax.tree.map(jnp.zeros_like, GRADS)
    updates, _ = tx.update(zeros, tx.init(PARAMS))
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(updates))  # Optax: NaN
    for limit in (0.0, 1.0):  # meta-gradients at all-zero updates stay finite
        clip = optix.clip_by_global_norm(limit)
        grad = jax.grad(lambda g: optix.tree.sum(clip.update(g, optix.EmptyState())[0]))(zeros)
        assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(grad))


def test_a_negative_learning_rate_ascends_as_in_optax():
    for name in ("sgd", "adam", "lamb", "lion"):
        ours = _run(optix, name, getattr(optix, name)(-0.1))
        with jax.numpy_dtype_promotion("standard"):
            theirs = _run(optax, name, getattr(optax, name)(-0.1))
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_allclose(a, b, rtol=3e-5, atol=1e-7)
    ascent = _run(optix, "sgd", optix.sgd(-0.1))[0]
    assert all(np.all(u * g > 0) for u, g in zip(jax.tree.leaves(ascent), jax.tree.leaves(GRADS)))
