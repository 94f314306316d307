"""Objectives, drivers and comparisons shared by the line-search tests.

A case is ``(objective, start, direction, arguments, status of the first update)``.
``trajectory`` runs a line-search transformation (optix's or Optax's) for a few
updates along a direction computed from the gradient, jitted once, and records what
each update returned; ``assert_same_records`` compares two such runs field by field.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

CURVATURES = [1.0, 10.0, 100.0, 0.5, 3.0]


def rosenbrock_start():
    return jnp.asarray([-1.2, 1.0, -0.5, 0.3, 0.8, -1.0])


def pytree_start():
    return {"a": jnp.asarray([1.0, -2.0, 0.5]), "b": jnp.asarray([3.0, -1.0])}


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def zakharov(x):
    """Steep far from 0 (a quartic of a weighted sum): needs step sizes near 1e-9."""
    weights = jnp.arange(1, x.shape[0] + 1, dtype=x.dtype)
    s = jnp.sum(0.5 * weights * x)
    return jnp.sum(x**2) + s**2 + s**4


def himmelblau(x):
    return (x[0] ** 2 + x[1] - 11.0) ** 2 + (x[0] + x[1] ** 2 - 7.0) ** 2


def quadratic(curvatures):
    """0.5 * sum(curvatures * x**2), on a dict of two leaves (a pytree objective)."""

    def fn(params):
        x = jnp.concatenate([params["a"], params["b"]])
        return 0.5 * jnp.sum(jnp.asarray(curvatures, x.dtype) * x**2)

    return fn


def descent(params, grad):
    return jax.tree.map(jnp.negative, grad)


def ascent(params, grad):
    return grad


def newton_quadratic(curvatures):
    """The exact Newton direction of ``quadratic(curvatures)``: a unit step is optimal."""

    def direction(params, grad):
        n = params["a"].shape[0]
        c = jnp.asarray(curvatures, params["a"].dtype)
        return {"a": -grad["a"] / c[:n], "b": -grad["b"] / c[n:]}

    return direction


def one_update(tx, fn, params, updates, learning_rate=None, **extra_args):
    """``tx.update`` from a fresh state (its learning rate set if given) at ``params``."""
    state = tx.init(params)
    if learning_rate is not None:
        state = state._replace(learning_rate=jnp.asarray(learning_rate, state.value.dtype))
    value, grad = jax.value_and_grad(fn)(params)
    return tx.update(updates, state, params, value=value, grad=grad, value_fn=fn, **extra_args)


def first_update(case, tx):
    """One update of ``tx`` on a case, from its start along its direction."""
    fn, start, direction, _, _ = case
    params = start()
    return one_update(tx, fn, params, direction(params, jax.grad(fn)(params)))


def all_finite(tree) -> bool:
    leaves = jax.tree.leaves(tree)
    return all(
        bool(jnp.all(jnp.isfinite(x))) for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)
    )


def verbose_output(case, tx, capsys) -> str:
    """What one update of ``tx`` (built with verbose=True) on a case prints."""
    first_update(case, tx)
    jax.effects_barrier()
    return capsys.readouterr().out


def low_precision_update(tx, dtype):
    """One jitted update on a quadratic in ``dtype``: (fn, params, value, updates, state)."""
    params = {"w": jnp.asarray([1.0, -2.0, 0.5], dtype)}

    def fn(p):
        return jnp.sum(jnp.asarray([1.0, 4.0, 9.0], dtype) * p["w"] ** 2)

    value, grad = jax.value_and_grad(fn)(params)
    update = jax.jit(functools.partial(tx.update, value_fn=fn))
    updates, state = update(
        jax.tree.map(jnp.negative, grad), tx.init(params), params, value=value, grad=grad
    )
    assert updates["w"].dtype == dtype and state.grad["w"].dtype == dtype
    assert state.learning_rate.dtype == state.value.dtype == jnp.float32
    return fn, params, value, updates, state


def trajectory(tx, fn, params, direction=descent, steps=12, **extra_args):
    """``steps`` updates of ``tx`` from ``params``; a list of records, one per update.

    A record holds the updates and the state's learning_rate, value, grad and info.
    """

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(fn)(params)
        updates, state = tx.update(
            direction(params, grad),
            state,
            params,
            value=value,
            grad=grad,
            value_fn=fn,
            **extra_args,
        )
        return jax.tree.map(jnp.add, params, updates), updates, state

    state = tx.init(params)
    records = []
    for _ in range(steps):
        params, updates, state = step(params, state)
        records.append(
            {
                "updates": updates,
                "learning_rate": state.learning_rate,
                "value": state.value,
                "grad": state.grad,
                "num_linesearch_steps": state.info.num_linesearch_steps,
                "decrease_error": state.info.decrease_error,
                **(
                    {"curvature_error": state.info.curvature_error}
                    if hasattr(state.info, "curvature_error")
                    else {}
                ),
            }
        )
    return records


def worst_relative_difference(actual, expected) -> float:
    """Largest |actual - expected| / |expected| over every record, field and element.

    Equal entries (infinities included) count 0, any other difference at a non-finite
    entry counts inf. The denominator is floored at 1e-3 of the leaf's largest finite
    magnitude, so entries that are rounding noise around 0 do not dominate.
    """
    worst = 0.0
    for a, e in zip(actual, expected, strict=True):
        assert set(a) == set(e)
        for key in e:
            for x, y in zip(jax.tree.leaves(a[key]), jax.tree.leaves(e[key]), strict=True):
                x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
                same = (x == y) | (np.isnan(x) & np.isnan(y))
                finite = np.abs(y[np.isfinite(y)])
                floor = 1e-3 * np.max(finite, initial=0.0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    diff = np.abs(x - y) / np.maximum(np.abs(y), floor)
                diff = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
                worst = max(worst, float(np.max(diff, initial=0.0)))
    return worst


def assert_same_records(actual, expected, rtol=1e-10) -> float:
    """Every field of every record agrees to ``rtol``; step counts exactly. Returns the worst."""
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(a["num_linesearch_steps"], e["num_linesearch_steps"])
    worst = worst_relative_difference(actual, expected)
    assert worst <= rtol, f"records differ by {worst:.3g} > rtol={rtol:.3g}"
    return worst


def assert_case_matches(case, make_ours, make_theirs, rtol=1e-10):
    """Trajectories of both transforms (``make_*(arguments)``) on a case agree to ``rtol``."""
    fn, start, direction, args, _ = case
    ours = trajectory(make_ours(args), fn, start(), direction)
    theirs = trajectory(make_theirs(args), fn, start(), direction)
    assert_same_records(ours, theirs, rtol)
    return ours
