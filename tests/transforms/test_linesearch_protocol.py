"""The line-search protocol: value_and_grad_from_state (against optax.value_and_grad_from_state),
the extra arguments passed on to value_fn, the status codes and the shared helpers."""

from __future__ import annotations

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from optix.transforms import linesearch_protocol as protocol
from optix.transforms.backtracking_linesearch import scale_by_backtracking_linesearch
from optix.transforms.zoom_linesearch import scale_by_zoom_linesearch
from tests.transforms.linesearch_problems import rosenbrock


def test_value_fn_gets_the_extra_args_its_signature_accepts():
    def fn(params, x, *, y=0.0):
        return params

    extra = {"x": 1, "y": 2, "params": 3, "unrelated": 4}
    assert protocol.value_fn_kwargs(fn, extra) == {"x": 1, "y": 2}
    everything = {"x": 1, "y": 2, "unrelated": 4, "params": 3}
    assert protocol.value_fn_kwargs(lambda p, **kw: p, extra | {"p": 0}) == everything
    assert protocol.value_fn_kwargs(functools.partial(fn, x=0), extra) == {"x": 1, "y": 2}
    assert protocol.value_fn_kwargs(jax.jit(fn), extra) == {"x": 1, "y": 2}
    assert protocol.value_fn_kwargs(lambda p, /, x: p, {"p": 1, "x": 2}) == {"x": 2}


def test_status_names_follow_the_codes():
    for code, name in enumerate(protocol.STATUS_NAMES):
        assert getattr(protocol, name) == code
    assert protocol.SUCCEEDED == 0


OPTIX = types.SimpleNamespace(
    chain=optix.chain,
    scale=optix.scale,
    scale_by_zoom_linesearch=scale_by_zoom_linesearch,
    value_and_grad_from_state=protocol.value_and_grad_from_state,
)


def gradient_descent(lib, steps, params):
    """Params, values and grads of GD with a zoom search reusing value and grad from the state."""
    tx = lib.chain(lib.scale(-1.0), lib.scale_by_zoom_linesearch(15))
    value_and_grad = jax.jit(lib.value_and_grad_from_state(rosenbrock))
    update = jax.jit(functools.partial(tx.update, value_fn=rosenbrock))
    state = tx.init(params)
    seen = []
    for _ in range(steps):
        value, grad = value_and_grad(params, state=state)
        updates, state = update(grad, state, params, value=value, grad=grad)
        params = jax.tree.map(jnp.add, params, updates)
        seen.append((params, value, grad))
    return seen


def test_value_and_grad_from_state_matches_optax(x64):
    start = jnp.asarray([-1.2, 1.0, 0.4, -0.3])
    ours = gradient_descent(OPTIX, 8, start)
    theirs = gradient_descent(optax, 8, start)
    for a, b in zip(ours, theirs, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-10)
    _, value, grad = ours[0]
    expected_value, expected_grad = jax.value_and_grad(rosenbrock)(start)
    np.testing.assert_allclose(value, expected_value, rtol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-14)


def test_stored_value_and_grad_are_reused_without_calling_value_fn(x64):
    params = jnp.asarray([1.0, 2.0])
    fn = lambda x: jnp.sum(x**2)
    tx = scale_by_backtracking_linesearch(10, store_grad=True)
    value, grad = jax.value_and_grad(fn)(params)
    updates, state = tx.update(-grad, tx.init(params), params, value=value, grad=grad, value_fn=fn)

    def shifted(x):
        return jnp.sum(x**2) + 100.0

    # Params are ignored when the stored value is finite: that is the point of the reuse.
    value, grad = protocol.value_and_grad_from_state(shifted)(jnp.zeros(2), state=state)
    np.testing.assert_array_equal(value, state.value)
    np.testing.assert_array_equal(grad, state.grad)
    np.testing.assert_allclose(value, fn(params + updates), rtol=1e-12)
    # A NaN value (like the inf of a fresh state) is recomputed at params.
    nan_state = state._replace(value=jnp.asarray(jnp.nan))
    value, grad = protocol.value_and_grad_from_state(shifted)(params, state=nan_state)
    assert float(value) == 105.0
    np.testing.assert_array_equal(grad, 2.0 * params)


def test_value_and_grad_from_state_passes_args_and_accepted_kwargs():
    def loss(params, data, scale=1.0):
        return scale * jnp.sum((params["w"] - data) ** 2)

    params = {"w": jnp.asarray([1.0, 2.0], jnp.bfloat16), "frozen": None}
    state = scale_by_zoom_linesearch(5).init(params)
    vg = jax.jit(protocol.value_and_grad_from_state(loss))
    value, grad = vg(params, jnp.zeros(2, jnp.bfloat16), state=state, scale=3.0, unrelated=1)
    assert value.dtype == jnp.float32 and grad["w"].dtype == jnp.bfloat16
    assert float(value) == 15.0 and grad["frozen"] is None
    np.testing.assert_array_equal(grad["w"], jnp.asarray([6.0, 12.0], jnp.bfloat16))


def test_value_and_grad_from_state_says_what_is_missing():
    params = jnp.ones(2)
    vg = protocol.value_and_grad_from_state(jnp.sum)
    for tx in (optix.adam(1e-3), scale_by_backtracking_linesearch(5)):
        with pytest.raises(ValueError, match="store_grad=True"):
            vg(params, state=tx.init(params))
    two = optix.chain(scale_by_zoom_linesearch(5), scale_by_zoom_linesearch(5))
    with pytest.raises(KeyError, match="Found 2 values for 'value'"):
        vg(params, state=two.init(params))


def test_update_checks_name_the_call_to_make():
    with pytest.raises(ValueError, match=r"f needs params, value_fn: call update\("):
        protocol.check_objective("f", None, 1.0, 1.0, None)
    with pytest.raises(TypeError, match="f: value_fn must be a callable"):
        protocol.check_objective("f", 1.0, 1.0, 1.0, "loss")


def test_structure_mismatch_names_both_structures():
    tx = scale_by_zoom_linesearch(5)
    state = tx.init({"a": jnp.ones(3)})
    other = {"b": jnp.ones(3), "c": jnp.ones(2)}
    fn = lambda p: jnp.sum(p["b"] ** 2)
    with pytest.raises(ValueError, match="structure") as info:
        tx.update(other, state, other, value=1.0, grad=other, value_fn=fn)
    assert "'a'" in str(info.value) and "'b'" in str(info.value)


def test_points_and_slopes_are_computed_in_float32_at_least():
    params = {"w": jnp.asarray([1.0, 3.0], jnp.bfloat16), "b": jnp.asarray([0.5]), "n": None}
    updates = {"w": jnp.asarray([0.1, -0.3], jnp.bfloat16), "b": jnp.asarray([2.0]), "n": None}
    eta = jnp.asarray(0.37, jnp.float32)
    point = protocol.point_on_line(params, eta, updates)
    expected = (params["w"].astype(jnp.float32) + eta * updates["w"].astype(jnp.float32)).astype(
        jnp.bfloat16
    )
    np.testing.assert_array_equal(point["w"], expected)
    assert point["n"] is None and point["b"].dtype == jnp.float32
    slope = protocol.slope_along(params, updates, jnp.dtype(jnp.float32))
    assert slope.dtype == jnp.float32
    w, u = params["w"].astype(jnp.float32), updates["w"].astype(jnp.float32)
    np.testing.assert_allclose(slope, jnp.sum(w * u) + 1.0, rtol=1e-6)
    scaled = protocol.scale_updates(eta, updates)
    assert scaled["w"].dtype == jnp.bfloat16 and scaled["n"] is None
