"""packed: the numbers of the plain path for every registry optimizer, the proof that
decides when to pack, layouts, jit, checkpoints and donated steps."""

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.transforms.packing import Layout, donating_step, packed, packing_plan
from tests.registry import ENTRIES
from tests.registry.entry import Entry

NAMES = sorted(ENTRIES)
# Plans whose reductions span all leaves (global norms) add their terms in another
# order on the buffers; the largest difference measured over the registry is 4 ulps.
REDUCTION_ULPS = 8


def make_params(mixed=True):
    """float32 and bfloat16 leaves, a scalar and a None leaf."""
    params = {
        "w": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4),
        "b": jnp.full((4,), 0.5, jnp.float32),
        "frozen": None,
        "s": jnp.asarray(2.0, jnp.float32),
    }
    if mixed:
        params["h"] = jnp.linspace(-2.0, 2.0, 6, dtype=jnp.bfloat16).reshape(2, 3)
    return params


def make_grads(params, t):
    """Random gradients; step 2 is all zeros and step 3 a thousand times larger."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(t), len(leaves))
    scale = {2: 0.0, 3: 1000.0}.get(t, 1.0)
    return treedef.unflatten(
        [
            (scale * jax.random.normal(k, x.shape, jnp.float32)).astype(x.dtype)
            for k, x in zip(keys, leaves, strict=True)
        ]
    )


def assert_within_ulps(actual, expected, ulps):
    """Same structure and dtypes; floats within ``ulps`` ulps of each leaf's largest entry.

    XLA:CPU contracts multiply-adds into FMAs differently for different array shapes, so
    even an exact plan can round an entry that results from cancellation differently;
    the error is then below one ulp of the terms, which the leaf's scale bounds.
    """
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert a.shape == e.shape and a.dtype == e.dtype
        if not jnp.issubdtype(e.dtype, jnp.floating) or ulps == 0:
            np.testing.assert_array_equal(a, e)
            continue
        a64, e64 = np.asarray(a, np.float64), np.asarray(e, np.float64)
        scale = np.max(np.abs(e64), initial=0.0)
        spacing = float(jnp.finfo(e.dtype).eps) * (2.0 ** np.floor(np.log2(scale)) if scale else 0)
        np.testing.assert_array_less(np.abs(a64 - e64), ulps * spacing + np.finfo(np.float64).tiny)


@pytest.mark.parametrize("name", NAMES)
def test_packed_steps_match_the_plain_steps(name):
    """Each step from the same state: same updates and same (packed) state."""
    entry = ENTRIES[name]
    params = make_params(mixed=not entry.objective)  # the objective harness is one-dtype
    layout = Layout.of(params)
    plan = packing_plan(entry.make(), params)
    fast = Entry(name, lambda: packed(entry.make()), "", 0.0, entry.objective)
    plain_step = lambda p, s, g: entry.updater()(g, s, p)
    packed_step = lambda p, s, g: fast.updater()(g, s, p)
    state = entry.make().init(params)
    if not plan.packable:
        # The fallback calls the inner transformation unchanged: the same program.
        args = (params, state, make_grads(params, 0))
        assert fast.make().init(params) is not None
        assert str(jax.make_jaxpr(packed_step)(*args)) == str(jax.make_jaxpr(plain_step)(*args))
        return
    ulps = 1 if plan.exact else REDUCTION_ULPS
    plain_step, packed_step = jax.jit(plain_step), jax.jit(packed_step)
    assert_within_ulps(fast.make().init(params), layout.pack_state(state), 0)
    for t in range(5):
        grads = make_grads(params, t)
        updates, new_state = plain_step(params, state, grads)
        fast_updates, fast_state = packed_step(params, layout.pack_state(state), grads)
        assert_within_ulps(fast_updates, updates, ulps)
        assert_within_ulps(fast_state, layout.pack_state(new_state), ulps)
        params, state = optix.apply_updates(params, updates), new_state


def adamw_after_clip():
    return optix.chain(optix.clip_by_global_norm(1.0), optix.adamw(0.1, weight_decay=0.1))


BUFFER_CASES = {
    "adamw": lambda: optix.adamw(0.1, weight_decay=0.1),
    "clip+adamw": adamw_after_clip,
    "lamb": lambda: optix.lamb(0.1),
    "adafactor": lambda: optix.adafactor(0.1),
    "lbfgs": lambda: optix.lbfgs(),
}


@pytest.mark.parametrize("name", sorted(BUFFER_CASES))
def test_buffers_in_and_out_match_the_plain_path(name):
    """``packed(tx, layout)`` on buffers; fallbacks unpack, objectives see the tree."""
    objective = name == "lbfgs"
    params = make_params(mixed=not objective)
    layout = Layout.of(params)
    plain = Entry(name, BUFFER_CASES[name], "", 0.0, objective)
    fast = Entry(name, lambda: packed(BUFFER_CASES[name](), layout), "", 0.0, objective)
    plan = packing_plan(plain.make(), params)
    # A fallback runs inner on slices of the buffers, which XLA fuses (and so reduces over)
    # differently from the leaves themselves.
    ulps = 1 if plan.exact else REDUCTION_ULPS
    state, fast_state = plain.make().init(params), fast.make().init(layout.pack(params))
    plain_step, fast_step = jax.jit(plain.updater()), jax.jit(fast.updater())
    for t in range(4):
        grads = make_grads(params, t)
        updates, state = plain_step(grads, state, params)
        fast_updates, fast_state = fast_step(layout.pack(grads), fast_state, layout.pack(params))
        assert_within_ulps(layout.unpack(fast_updates), updates, ulps)
        params = optix.apply_updates(params, updates)
    assert set(fast_updates) == {"float32"} if objective else {"bfloat16", "float32"}


@pytest.mark.parametrize(
    ("make", "packable", "exact"),
    [
        (lambda: optix.adamw(0.1), True, True),
        (adamw_after_clip, True, False),
        (lambda: optix.lamb(0.1), False, False),
        (lambda: optix.adafactor(0.1), False, False),
        (lambda: optix.noisy_sgd(0.1, key=0), False, False),
        (lambda: optix.lbfgs(), False, False),
    ],
    ids=["adamw", "clip+adamw", "lamb", "adafactor", "noisy_sgd", "lbfgs"],
)
def test_plans_of_known_optimizers(make, packable, exact):
    plan = packing_plan(make(), make_params())
    assert (plan.packable, plan.exact) == (packable, exact)
    assert (plan.reason == "") == packable


def shape_dependent():
    """Doubles the updates of leaves with two or more axes: uniform on 2-D leaves only."""
    return optix.stateless(lambda u, p: jax.tree.map(lambda x: x * 2 if x.ndim > 1 else x, u))


def leaf_mean_centered():
    return optix.stateless(lambda u, p: jax.tree.map(lambda x: x - jnp.mean(x), u))


def global_mean_centered():
    def center(u, p):
        mean = optix.tree.sum(u) / optix.tree.size(u)
        return jax.tree.map(lambda x: x - mean, u)

    return optix.stateless(center)


@pytest.mark.parametrize(
    ("make", "packable", "reason"),
    [
        (shape_dependent, False, "something else on the packed buffers"),
        (leaf_mean_centered, False, "reduction over one leaf"),
        (global_mean_centered, True, ""),
        (lambda: optix.masked(optix.scale(2.0), {"a": True, "b": False}), False, "differently"),
        (lambda: optix.add_decayed_weights(0.1, mask=lambda p: {"a": True, "b": True}), False, ""),
        (lambda: optix.add_noise(0.1, 0.5, 0), False, "random draw"),
    ],
    ids=["shape-dependent", "leaf-mean", "global-mean", "mask", "mask-fn", "noise"],
)
def test_the_proof_rejects_what_packing_would_change(make, packable, reason):
    params = {"a": jnp.ones((2, 3)), "b": jnp.full((3, 2), 2.0)}
    plan = packing_plan(make(), params)
    assert plan.packable == packable
    assert reason in plan.reason
    updates, _ = packed(make()).update(params, packed(make()).init(params), params)
    expected, _ = make().update(params, make().init(params), params)
    assert_within_ulps(updates, expected, 0 if not packable else REDUCTION_ULPS)


def test_layout_round_trips_mixed_dtypes_none_leaves_and_states():
    params = make_params()
    layout = Layout.of(params)
    buffers = layout.pack(params)
    assert {k: (v.shape, v.dtype) for k, v in buffers.items()} == {
        "bfloat16": ((6,), jnp.bfloat16),
        "float32": ((17,), jnp.float32),
    }
    assert_within_ulps(layout.unpack(buffers), params, 0)
    assert layout == Layout.of(
        jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    )
    state = optix.adam(0.1).init(params)
    packed_state = layout.pack_state(state)
    assert packed_state[0].mu["float32"].shape == (17,)
    assert_within_ulps(layout.unpack_state(packed_state), state, 0)
    with pytest.raises(ValueError, match="stands where the layout has"):
        layout.pack({**params, "s": jnp.asarray(1.0, jnp.bfloat16)})


def test_jit_traces_once_and_state_keeps_its_structure():
    tx, params, traces = packed(adamw_after_clip()), make_params(), []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return optix.apply_updates(params, updates), state

    state0 = tx.init(params)
    state = state0
    for t in range(3):
        params, state = step(params, state, make_grads(params, t))
    assert len(traces) == 1
    signature = lambda s: (jax.tree.structure(s), [(x.shape, x.dtype) for x in jax.tree.leaves(s)])
    assert signature(state) == signature(state0)
    assert state[1][0].mu["float32"].shape == (17,)


def test_checkpoint_round_trip_resumes_identically():
    tx, params = packed(optix.adamw(0.1)), make_params()
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    state = tx.init(params)
    for t in range(2):
        _, state = step(params, state, make_grads(params, t))
    restored = flax.serialization.from_bytes(tx.init(params), flax.serialization.to_bytes(state))
    grads = make_grads(params, 2)
    assert_within_ulps(step(params, restored, grads), step(params, state, grads), 0)


def test_extra_args_reach_the_inner_transformation():
    """Polyak step sizes need the loss: with an example of it the proof goes through."""
    params, value = make_params(), jnp.asarray(3.0)
    plain = optix.polyak_sgd(max_learning_rate=1.0)
    assert not packing_plan(plain, params).packable  # cannot trace without a value
    assert packing_plan(plain, params, {"value": value}).packable
    tx = packed(optix.polyak_sgd(max_learning_rate=1.0), extra_args={"value": value})
    grads = make_grads(params, 0)
    expected, _ = plain.update(grads, plain.init(params), params, value=value)
    updates, _ = tx.update(grads, tx.init(params), params, value=value)
    assert_within_ulps(updates, expected, REDUCTION_ULPS)


def test_donated_step_needs_no_memory_beyond_params_grads_and_state():
    params = {"w": jnp.ones((256, 64)), "b": jnp.ones((64,)), "h": jnp.ones((32,), jnp.bfloat16)}
    layout = Layout.of(params)
    flat = layout.pack(params)
    tx = packed(optix.adamw(0.1), layout)
    state = tx.init(flat)
    memory = donating_step(tx).lower(flat, state, flat).compile().memory_analysis()
    nbytes = sum(x.nbytes for x in jax.tree.leaves((flat, state)))
    assert memory.alias_size_in_bytes == nbytes  # new params and state overwrite the old
    assert memory.temp_size_in_bytes < 1024  # no param-sized scratch buffer
    new_flat, _ = donating_step(tx)(flat, state, layout.pack(make_grads(params, 0)))
    assert all(x.is_deleted() for x in jax.tree.leaves(flat))
    assert new_flat["float32"].shape == (256 * 64 + 64,)


def centered_on_request():
    """Elementwise, except that ``center=True`` subtracts each leaf's mean."""

    def update(updates, state, params=None, center=False, **extra_args):
        if center:
            updates = jax.tree.map(lambda x: x - jnp.mean(x), updates)
        return updates, state

    return optix.GradientTransformation(optix.init_empty_state, update)


def test_calls_unlike_the_proof_are_proved_again_or_rejected():
    params = make_params()
    tx = packed(optix.adam(0.1))
    state = tx.init(params)
    expected, _ = optix.adam(0.1).update(params, state=optix.adam(0.1).init(params))
    updates, _ = tx.update(params, state)  # no params: proved again without them
    assert_within_ulps(updates, expected, 1)
    tx = packed(centered_on_request())
    tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match="cannot run packed: a reduction over one leaf"):
        tx.update(params, tx.init(params), params, center=True)


def test_trees_of_large_leaves_run_leaf_by_leaf():
    """Packing a tree pays off only for small leaves; larger ones keep the plain state."""
    params = {"a": jnp.ones((64, 80)), "b": jnp.ones((5000,))}
    assert Layout.of(params).mean_leaf_size == (64 * 80 + 5000) / 2
    state = packed(optix.adam(0.1)).init(params)
    assert jax.tree.structure(state) == jax.tree.structure(optix.adam(0.1).init(params))
    small = packed(optix.adam(0.1), max_mean_leaf=6000).init(params)
    assert small[0].mu["float32"].shape == (64 * 80 + 5000,)
    every = packed(optix.adam(0.1), max_mean_leaf=None).init(params)
    assert jax.tree.structure(every) == jax.tree.structure(small)
    updates, _ = packed(optix.adam(0.1)).update(params, state, params)
    expected, _ = optix.adam(0.1).update(params, state, params)
    assert_within_ulps(updates, expected, 0)
    with pytest.raises(
        ValueError, match=r"packed: max_mean_leaf must be >= 1, got max_mean_leaf=0"
    ):
        packed(optix.adam(0.1), max_mean_leaf=0)
