"""MultiSteps and apply_every: Optax's numbers and state layout, the mean law over the
registry, bf16 accumulation, skipped micro-steps, and the inner update running once per k."""

import functools

import flax.serialization
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optix
from optix.transforms.accumulation import ApplyEvery, MultiSteps, MultiStepsState, apply_every
from optix.transforms.finite import skip_large_updates, skip_not_finite
from tests.registry import ENTRIES
from tests.transforms.wrapper_helpers import (
    PARAMS,
    assert_signature_matches_optax,
    assert_trees_equal,
    counting,
    grads,
    run,
    same_layout,
)


def test_signatures_and_state_fields_match_optax():
    assert_signature_matches_optax(MultiSteps, optax.MultiSteps)
    assert_signature_matches_optax(MultiSteps.update, optax.MultiSteps.update)
    assert_signature_matches_optax(apply_every, optax.apply_every)
    assert MultiStepsState._fields == optax.MultiStepsState._fields
    assert ApplyEvery._fields == optax.ApplyEvery._fields


def with_nans(t):
    g = grads(t)
    return {**g, "b": g["b"].at[0].set(jnp.nan)} if t in (2, 7) else g


RTOL = {jnp.float32: 1e-6, jnp.float64: 1e-14}  # measured 7.3e-7 and 2.4e-15
BF16_ACC_RTOL = 1e-2
CASES = {
    "k3": dict(every_k_schedule=3),
    "k1": dict(every_k_schedule=1),
    "schedule": dict(every_k_schedule=lambda step: jnp.where(step < 2, 2, 3)),
    "sum": dict(every_k_schedule=3, use_grad_mean=False),
    "acc_bf16": dict(every_k_schedule=3, accumulator_dtype=jnp.bfloat16),
    "acc_none": dict(every_k_schedule=3, accumulator_dtype=None),
    "skip_not_finite": dict(every_k_schedule=2, should_skip_update_fn=skip_not_finite),
    "skip_large": dict(
        every_k_schedule=2,
        should_skip_update_fn=functools.partial(skip_large_updates, max_squared_norm=4.0),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_same_numbers_and_state_layout_as_optax_around_the_same_inner(case, dtype):
    """Both wrappers around the same Optax Adam: the wrapper logic alone is compared.

    Not bitwise: XLA fuses the inner update differently inside a lax.cond branch than
    in Optax's always-computed graph, which moves the last bit (ours equals the plain
    jitted inner step bitwise, see the k=1 test). After an emitting step Optax zeroes
    the accumulator and ours keeps the window's mean, which the next micro-step
    overwrites. With a bf16 accumulator ours hands Adam the stored (rounded) mean."""
    with jax.enable_x64(dtype == jnp.float64):
        params = jax.tree.map(lambda p: p.astype(dtype), PARAMS)
        skips = "should_skip_update_fn" in CASES[case]
        grad_list = [with_nans(t) if skips else grads(t) for t in range(12)]
        grad_list = [jax.tree.map(lambda g: g.astype(dtype), g) for g in grad_list]
        inner = optax.adam(0.1)
        kwargs = {"accumulator_dtype": dtype, **CASES[case]}
        ours = run(MultiSteps(inner, **kwargs), grad_list, params, standard=True)
        theirs = run(optax.MultiSteps(inner, **kwargs), grad_list, params, standard=True)
    rtol = BF16_ACC_RTOL if case == "acc_bf16" else RTOL[dtype]
    for (u, s), (u_ref, s_ref) in zip(ours, theirs, strict=True):
        assert same_layout(s, s_ref)
        assert_trees_equal(u, u_ref, rtol=rtol)
        assert_trees_equal(s._replace(acc_grads=()), s_ref._replace(acc_grads=()), rtol=rtol)
        if int(s.mini_step) or not int(s.gradient_step):
            assert_trees_equal(s.acc_grads, s_ref.acc_grads, rtol=RTOL[dtype])


def test_one_micro_step_per_window_is_the_inner_step_bit_for_bit():
    grad_list = [grads(t) for t in range(5)]
    for (u, s), (u_ref, s_ref) in zip(
        run(MultiSteps(optix.adam(0.1), 1), grad_list), run(optix.adam(0.1), grad_list), strict=True
    ):
        assert_trees_equal(u, u_ref)
        assert_trees_equal(s.inner_opt_state, s_ref)


def test_a_non_finite_window_does_not_poison_the_next_ones():
    """Optax resets its accumulator as ``(1 - emit) * acc``, which keeps a NaN forever
    (and returns NaN even on non-emitting steps); here the next window starts clean."""
    grad_list = [jnp.asarray([1.0, 1.0]), jnp.asarray([jnp.nan, 1.0])] + [jnp.ones(2)] * 4
    ours = run(MultiSteps(optix.sgd(1.0), 2), grad_list, jnp.zeros(2))
    theirs = run(optax.MultiSteps(optax.sgd(1.0), 2), grad_list, jnp.zeros(2), standard=True)
    assert np.isnan(ours[1][0][0]) and np.isnan(theirs[1][0][0])
    np.testing.assert_array_equal([u for u, _ in ours[2:]], [[0, 0], [-1, -1]] * 2)
    assert np.isnan(theirs[5][0][0]) and np.isnan(theirs[4][0][0])


def test_optix_adam_inside_matches_optax_adam_inside_in_float64(x64):
    params = jax.tree.map(lambda p: p.astype(jnp.float64), PARAMS)
    grad_list = [jax.tree.map(lambda g: g.astype(jnp.float64), grads(t)) for t in range(12)]
    ours = run(MultiSteps(optix.adam(0.1), 3, accumulator_dtype=jnp.float64), grad_list, params)
    theirs = run(
        optax.MultiSteps(optax.adam(0.1), 3, accumulator_dtype=jnp.float64),
        grad_list,
        params,
        standard=True,
    )
    for (u, s), (u_ref, s_ref) in zip(ours, theirs, strict=True):
        assert_trees_equal(u, u_ref, rtol=1e-12)
        assert_trees_equal(s.inner_opt_state[0], s_ref.inner_opt_state[0], rtol=1e-12)
        assert_trees_equal(s[:2], s_ref[:2])


def registry_params():
    return {"kernel": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "bias": jnp.full((4,), 0.5)}


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_k_micro_steps_equal_one_step_on_the_mean_for_every_registry_optimizer(name, x64):
    k, windows = 3, 4
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda p: p.astype(jnp.float64), registry_params())
    micro = [
        jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
        for _ in range(k * windows)
    ]
    if ENTRIES[name].objective:
        # Line searches evaluate the objective itself: full-batch micro-steps, where every
        # micro-gradient is the gradient of the one objective of the window.
        micro = [micro[w * k] for w in range(windows) for _ in range(k)]
    value = jnp.asarray(1.0)  # Polyak's step size reads the loss value; the rest ignore it
    tx = ENTRIES[name].make()
    plain_update = ENTRIES[name].updater(tx, value=value)
    plain_step = jax.jit(lambda p, s, g: plain_update(g, s, p))
    multi = MultiSteps(ENTRIES[name].make(), k, accumulator_dtype=jnp.float64)
    multi_update = ENTRIES[name].updater(multi, value=value)
    multi_step = jax.jit(lambda p, s, g: multi_update(g, s, p))

    p_multi, s_multi, p_plain, s_plain = params, multi.init(params), params, tx.init(params)
    for w in range(windows):
        window = micro[w * k : (w + 1) * k]
        for g in window:
            u, s_multi = multi_step(p_multi, s_multi, g)
            p_multi = optix.apply_updates(p_multi, u)
        mean = jax.tree.map(lambda *gs: sum(gs) / k, *window)
        u, s_plain = plain_step(p_plain, s_plain, mean)
        p_plain = optix.apply_updates(p_plain, u)
        assert bool(multi.has_updated(s_multi))
        assert_trees_equal(p_multi, p_plain, rtol=1e-12)  # measured 8.7e-15
        # Line-search and Newton states also hold residuals near zero (decrease errors,
        # gradients at an exact minimum, around 1e-16) that only an absolute tolerance compares.
        # Eigendecompositions (shampoo, soap) leave near-zero state entries at rounding level.
        atol = 1e-12 if ENTRIES[name].objective or name in ("shampoo", "soap") else 0.0
        assert_trees_equal(s_multi.inner_opt_state, s_plain, rtol=1e-12, atol=atol)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)


@functools.cache
def sgd_multi_steps(k, use_grad_mean):
    """One compiled update per configuration, shared by the hypothesis examples."""
    multi = MultiSteps(optix.sgd(0.5), k, use_grad_mean=use_grad_mean, accumulator_dtype=None)
    return multi, jax.jit(multi.update)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 5),
    st.booleans(),
    hnp.arrays(np.float64, st.tuples(st.integers(1, 10), st.just(3)), elements=finite),
)
def test_sgd_moves_by_the_mean_or_sum_of_each_window(k, use_grad_mean, micro):
    """A law over any k and gradient sequence: each emission is -lr * mean (or sum)."""
    with jax.enable_x64(True):
        multi, update = sgd_multi_steps(k, use_grad_mean)
        state = multi.init(jnp.zeros(3))
        for t, g in enumerate(micro):
            u, state = update(jnp.asarray(g), state)
            window = micro[t + 1 - k : t + 1]
            if (t + 1) % k:
                np.testing.assert_array_equal(u, np.zeros(3))
            else:
                combined = window.mean(0) if use_grad_mean else window.sum(0)
                np.testing.assert_allclose(u, -0.5 * combined, rtol=1e-12, atol=1e-12)


def test_inner_update_runs_only_on_emitting_micro_steps():
    """jax.debug.callback inside the inner update fires only when it runs on the device.

    optax.MultiSteps runs its inner update on every micro-step (k calls per window);
    ours runs it once per window, inside the taken branch of a lax.cond.
    """
    ours_calls, optax_calls = [], []
    ours = MultiSteps(counting(optix.adam(0.1), ours_calls), 4)
    theirs = optax.MultiSteps(counting(optix.adam(0.1), optax_calls), 4)
    run(ours, [grads(t) for t in range(8)])
    run(theirs, [grads(t) for t in range(8)], standard=True)
    jax.effects_barrier()
    assert len(ours_calls) == 2
    assert len(optax_calls) == 8


def test_an_optax_checkpoint_taken_mid_window_resumes_here():
    """Same layout, so Flax's msgpack restores an Optax MultiSteps state into ours."""
    theirs_tx = optax.MultiSteps(optax.adam(0.1), 3)
    with jax.numpy_dtype_promotion("standard"):
        state = theirs_tx.init(PARAMS)
        for t in range(4):  # one emission, then one micro-step into the next window
            _, state = theirs_tx.update(grads(t), state, PARAMS)
    ours_tx = MultiSteps(optax.adam(0.1), 3)
    restored = flax.serialization.from_bytes(
        ours_tx.init(PARAMS), flax.serialization.to_bytes(state)
    )
    assert int(restored.mini_step) == 1 and int(restored.gradient_step) == 1
    with jax.numpy_dtype_promotion("standard"):
        for t in range(4, 6):
            ours, restored = ours_tx.update(grads(t), restored, PARAMS)
            expected, state = theirs_tx.update(grads(t), state, PARAMS)
    assert bool(ours_tx.has_updated(restored))
    assert_trees_equal(ours, expected, rtol=1e-6)


def test_a_donated_micro_step_needs_no_param_sized_scratch_buffer():
    """XLA's buffer assignment: the accumulator is updated in place and the inner state
    passes the lax.cond untouched, so no temporary as large as a leaf is needed
    (Optax's always-computed inner step needs several)."""
    params = {f"w{i}": jnp.zeros((256, 256)) for i in range(2)}
    leaf_bytes = 256 * 256 * 4
    temps = {}
    for name, tx in (
        ("optix", MultiSteps(optix.adam(0.1), 4)),
        ("optax", optax.MultiSteps(optax.adam(0.1), 4)),
    ):
        state = tx.init(params)
        # State first in and out, as a training loop donates it.
        step = jax.jit(lambda s, g, tx=tx: tx.update(g, s, params)[::-1], donate_argnums=0)
        with jax.numpy_dtype_promotion("standard"):
            compiled = step.lower(state, params).compile()
        temps[name] = compiled.memory_analysis().temp_size_in_bytes
    assert temps["optix"] < leaf_bytes
    assert temps["optax"] >= 2 * leaf_bytes


def test_jit_compiles_once_and_the_state_keeps_its_structure():
    multi = MultiSteps(optix.adamw(0.1), 3, should_skip_update_fn=skip_not_finite)
    traces = []

    @jax.jit
    def step(params, state, g):
        traces.append(1)
        return multi.update(g, state, params)

    state = multi.init(PARAMS)
    for t in range(7):
        _, new_state = step(PARAMS, state, with_nans(t))
        assert jax.tree.structure(new_state) == jax.tree.structure(state)
        assert [x.dtype for x in jax.tree.leaves(new_state)] == [
            x.dtype for x in jax.tree.leaves(state)
        ]
        state = new_state
    assert len(traces) == 1


def test_a_skipped_micro_step_changes_nothing_but_the_skip_state():
    multi = MultiSteps(optix.adam(0.1), 3, should_skip_update_fn=skip_not_finite)
    state = multi.init(PARAMS)
    _, state = multi.update(grads(0), state, PARAMS)
    bad = {**grads(1), "w": jnp.full((2, 2), jnp.inf)}
    u, skipped = multi.update(bad, state, PARAMS)
    assert_trees_equal(u, jax.tree.map(jnp.zeros_like, PARAMS))
    assert_trees_equal(skipped._replace(skip_state=()), state._replace(skip_state=()))
    assert (
        bool(skipped.skip_state["should_skip"]) and int(skipped.skip_state["num_not_finite"]) == 4
    )


def test_extra_args_reach_the_inner_optimizer_on_the_emitting_step():
    seen = []

    def update(updates, state, params=None, **extra_args):
        seen.append(sorted(extra_args))
        return updates, state

    inner = optix.GradientTransformation(optix.init_empty_state, update)
    tx = optix.chain(MultiSteps(inner, 2).gradient_transformation(), optix.scale(1.0))
    state = tx.init(PARAMS)
    for t in range(2):
        u, state = tx.update(grads(t), state, PARAMS, value=jnp.asarray(1.0), flag=3)
    assert seen and all(names == ["flag", "value"] for names in seen)
    mean = jax.tree.map(lambda a, b: (a + b) / 2, grads(0), grads(1))
    assert_trees_equal(u, mean, rtol=1e-6)


def test_bf16_gradients_accumulate_in_float32():
    """bf16 keeps 8 bits: 1 + 2**-9 rounds to 1, so a bf16 accumulator loses the small ones."""
    params = {"w": jnp.zeros(2, jnp.bfloat16), "frozen": None}
    micro = [1.0, 2.0**-9, 2.0**-9, 2.0**-9]
    grad_list = [{"w": jnp.full(2, g, jnp.bfloat16), "frozen": None} for g in micro]
    out = {}
    for acc in (jnp.float32, jnp.bfloat16):
        multi = MultiSteps(optix.identity(), 4, use_grad_mean=False, accumulator_dtype=acc)
        (*_, (u, state)) = run(multi, grad_list, params)
        assert state.acc_grads["w"].dtype == acc and state.acc_grads["frozen"] is None
        assert u["w"].dtype == jnp.bfloat16 and u["frozen"] is None
        out[acc] = float(u["w"][0])
    assert out[jnp.float32] == float(jnp.bfloat16(1.0 + 3 * 2.0**-9))  # 1.0078125
    assert out[jnp.bfloat16] == 1.0


def test_init_from_shape_dtype_structs_and_has_updated():
    multi = MultiSteps(optix.adam(0.1), 2)
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), PARAMS)
    shapes = jax.eval_shape(multi.init, abstract)
    assert jax.tree.structure(shapes) == jax.tree.structure(multi.init(PARAMS))
    state, flags = multi.init(PARAMS), []
    for t in range(4):
        _, state = multi.update(grads(t), state, PARAMS)
        flags.append(bool(multi.has_updated(state)))
    assert flags == [False, True, False, True]
    assert multi.inner_opt.init(PARAMS)[0].count.dtype == jnp.int32


def test_apply_every_matches_optax_and_sgd_on_the_sum():
    ours = run(apply_every(3), [grads(t) for t in range(7)])
    theirs = run(optax.apply_every(3), [grads(t) for t in range(7)], standard=True)
    for (u, s), (u_ref, s_ref) in zip(ours, theirs, strict=True):
        assert same_layout(s, s_ref)
        assert_trees_equal(u, u_ref)
        assert_trees_equal(s, s_ref)
    chained = run(optix.chain(apply_every(3), optix.sgd(0.1)), [grads(t) for t in range(6)])
    total = jax.tree.map(lambda *g: sum(g), *[grads(t) for t in range(3, 6)])
    assert_trees_equal(chained[-1][0], jax.tree.map(lambda g: -0.1 * g, total), rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: MultiSteps(optix.sgd(0.1), 0),
            ValueError,
            "MultiSteps: every_k_schedule must be >= 1, got every_k_schedule=0",
        ),
        (
            lambda: MultiSteps(optix.sgd(0.1), 2.0),
            TypeError,
            "MultiSteps: every_k_schedule must be an int, got every_k_schedule=2.0",
        ),
        (lambda: apply_every(0), ValueError, "apply_every: k must be >= 1, got k=0"),
        (
            lambda: MultiSteps(
                optix.sgd(0.1), 2, should_skip_update_fn=lambda u, s, p: (jnp.int32(0), ())
            ).update(PARAMS, MultiSteps(optix.sgd(0.1), 2).init(PARAMS)),
            ValueError,
            "MultiSteps: should_skip_update_fn must return a bool scalar first, got dtype int32",
        ),
    ],
)
def test_bad_arguments_raise(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
