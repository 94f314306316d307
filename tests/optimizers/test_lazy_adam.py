"""LazyAdam against a NumPy transliteration of TF-Addons LazyAdam; the sparse path's cost."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.optimizers.lazy_adam import (
    ScaleByLazyAdamState,
    SparseRows,
    apply_sparse_updates,
    lazy_adam,
    scale_by_lazy_adam,
    with_sparse_rows,
)
from tests.reference import (
    CONSTANT_LR,
    DTYPES,
    SCHEDULES,
    STEPS,
    learning_rates,
    lr_schedule,
    max_relative_difference,
)
from tests.references.lazy_adam import run_lazy_adam
from tests.registry import ENTRIES
from tests.sparse_reference import (
    assert_close,
    gradient_sequence,
    initial_params,
    present_rows,
    run_optix,
)

MODES = pytest.mark.parametrize("mode", ["sparse", "dense"])
CASES = {
    "default": ({}, {}),
    "betas_eps": (
        {"b1": 0.8, "b2": 0.9, "eps": 1e-3},
        {"beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3},
    ),
}


@SCHEDULES
@DTYPES
@MODES
@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_matches_tf_addons_lazy_adam(case, mode, dtype, schedule):
    """Checked against TF-Addons LazyAdam fed the rows optix reads as present."""
    kwargs, tf_kwargs = CASES[case]
    grads = gradient_sequence()
    lrs = learning_rates() if schedule else [CONSTANT_LR] * STEPS
    expected = run_lazy_adam(
        initial_params(), [present_rows(g, mode) for g in grads], lrs, **tf_kwargs
    )
    tx = lazy_adam(lr_schedule if schedule else CONSTANT_LR, **kwargs)
    if dtype == np.float64:
        with jax.enable_x64(True):
            actual, _ = run_optix(tx, np.float64, mode, grads)
        assert_close(actual, expected, 1e-10)
    else:
        actual, _ = run_optix(tx, np.float32, mode, grads)
        assert_close(actual, expected, ENTRIES["lazy_adam"].f32_rtol)


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-14), (np.float32, 5e-6)])
def test_dense_and_sparse_rows_paths_agree(dtype, rtol):
    """Same gradients (no explicitly zero row) as SparseRows or dense: the same results.

    Not always the same bits: XLA's CPU compiler contracts ``b1 * mu + (1 - b1) * g``
    into a fused multiply-add in one program and not in the other, a last-ulp
    difference that the following steps carry (measured: 3.4e-15 in float64, 2.7e-6
    in float32). The rows each step leaves alone are equal bit for bit (see
    test_absent_rows_keep_params_and_moments_bitwise), and an explicitly zero row,
    which only SparseRows reads as present, moves the results by about 0.15.
    """
    with jax.enable_x64(dtype == np.float64):
        for zero_row in (False, True):
            grads = gradient_sequence(zero_row=zero_row)
            sparse, sparse_state = run_optix(lazy_adam(0.05), dtype, "sparse", grads)
            dense, dense_state = run_optix(lazy_adam(0.05), dtype, "dense", grads)
            as_f64 = [{k: np.asarray(v, np.float64) for k, v in p.items()} for p in dense]
            difference = max_relative_difference(sparse, as_f64)
            if zero_row:
                assert difference > 0.1
                continue
            assert difference <= rtol
            moments = lambda state: jax.tree.leaves((state[0].mu, state[0].nu))
            for s, d in zip(moments(sparse_state), moments(dense_state), strict=True):
                np.testing.assert_allclose(s, d, rtol=rtol, atol=0)


def test_explicitly_zero_row_is_present_in_sparse_rows_only():
    """torch and TF update a materialised zero row; a dense zero row is absent."""
    tx = scale_by_lazy_adam(b1=0.5, b2=0.5)
    params = {"emb": jnp.zeros((3, 2))}
    state = tx.init(params)
    _, state = tx.update({"emb": jnp.ones((3, 2))}, state)
    zero_row = SparseRows(jnp.asarray([1]), jnp.zeros((1, 2)), 3)
    sparse_u, sparse_state = tx.update({"emb": zero_row}, state)
    dense_u, dense_state = tx.update({"emb": jnp.zeros((3, 2))}, state)
    np.testing.assert_allclose(sparse_state.mu["emb"], [[0.5, 0.5], [0.25, 0.25], [0.5, 0.5]])
    assert np.all(np.asarray(sparse_u["emb"].values)[0] > 0.1)
    np.testing.assert_array_equal(dense_state.mu["emb"], state.mu["emb"])
    np.testing.assert_array_equal(dense_u["emb"], np.zeros((3, 2)))


@MODES
def test_absent_rows_keep_params_and_moments_bitwise(mode):
    grads = gradient_sequence()
    tx = lazy_adam(0.05)
    before, state_before = run_optix(tx, np.float32, mode, grads[:2])
    after, state_after = run_optix(tx, np.float32, mode, grads[:3])
    touched = {k: present_rows(grads[2], mode)[k][0] for k in ("emb", "vec", "bias")}
    for name, rows in touched.items():
        absent = np.setdiff1d(np.arange(len(before[-1][name])), rows)
        assert len(absent) and len(rows)
        np.testing.assert_array_equal(after[-1][name][absent], before[-1][name][absent])
        assert np.all(after[-1][name][rows] != before[-1][name][rows])
        for field in ("mu", "nu"):
            old = getattr(state_before[0], field)[name]
            new = getattr(state_after[0], field)[name]
            np.testing.assert_array_equal(new[absent], old[absent])
    assert int(state_after[0].count) == 3


TABLE_ROWS = 100_003  # a size no other array in the program has


def lowered_step(table_rows, sparse):
    """A jitted LazyAdam step on an (table_rows, 8) table given 4 rows, with buffer donation."""
    tx = lazy_adam(0.1)
    params = {"emb": jnp.zeros((table_rows, 8))}
    rows = SparseRows(jnp.asarray([3, 1, 3, 7]), jnp.ones((4, 8)), table_rows)
    grads = {"emb": rows if sparse else rows.todense()}

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_sparse_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), grads)


def ops_with_table_rows(lowered):
    """``(op name, first operand)`` of every StableHLO op with a result of TABLE_ROWS rows."""

    def walk(op):
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    yield inner
                    yield from walk(inner.operation)

    found = []
    for op in walk(lowered.compiler_ir("stablehlo").operation):
        if any(str(r.type).startswith(f"tensor<{TABLE_ROWS}") for r in op.results):
            found.append((op.name, op.operands[0].get_name() if op.operands else None))
    return found


def test_sparse_step_does_no_work_of_the_table_size():
    """The only table-sized results are three scatters into the donated mu, nu and params.

    Every op of the lowered program whose result has the table's row count is listed:
    a dense gradient, a zeros table, a full-size row mask or an elementwise op over the
    table would each appear. What is left writes the touched rows into the input
    buffers (%arg), which donation lets XLA update in place. The compiled program's
    flop count is also the same for a table 1000 times larger.
    """
    found = ops_with_table_rows(lowered_step(TABLE_ROWS, sparse=True))
    assert [name for name, _ in found] == ["stablehlo.scatter"] * 3, found
    assert all(operand.startswith("%arg") for _, operand in found), found
    flops = [
        lowered_step(n, sparse=True).compile().cost_analysis()["flops"] for n in (1_000, 1_000_000)
    ]
    assert flops[0] == flops[1] > 0


def test_dense_step_does_work_of_the_table_size():
    """The checks above can fail: the dense path is full of table-sized ops."""
    found = ops_with_table_rows(lowered_step(TABLE_ROWS, sparse=False))
    assert len(found) > 10 and {"stablehlo.select", "stablehlo.multiply"} <= {n for n, _ in found}
    flops = [
        lowered_step(n, sparse=False).compile().cost_analysis()["flops"] for n in (1_000, 1_000_000)
    ]
    assert flops[1] > 100 * flops[0]


def test_duplicates_are_summed_and_padding_is_dropped():
    rows = SparseRows(jnp.asarray([2, 0, 2, 4]), jnp.asarray([[1.0], [2.0], [3.0], [9.0]]), 4)
    deduplicated = rows.deduplicated()
    np.testing.assert_array_equal(deduplicated.indices, [0, 2, 4, 4])
    np.testing.assert_array_equal(deduplicated.values, [[2.0], [4.0], [9.0], [0.0]])
    np.testing.assert_array_equal(rows.todense(), [[2.0], [0.0], [4.0], [0.0]])
    params = {"emb": jnp.zeros((4, 1)), "frozen": None}
    new = apply_sparse_updates(params, {"emb": rows, "frozen": None})
    np.testing.assert_array_equal(new["emb"], [[2.0], [0.0], [4.0], [0.0]])
    assert new["frozen"] is None


def test_with_sparse_rows_scales_values_and_keeps_indices():
    tx = with_sparse_rows(optix.scale(-2.0))
    updates = {"rows": SparseRows(jnp.asarray([3, 1]), jnp.ones((2, 2)), 5), "dense": jnp.ones(2)}
    out, _ = tx.update(updates, tx.init(updates))
    np.testing.assert_array_equal(out["rows"].indices, [3, 1])
    np.testing.assert_array_equal(out["rows"].values, -2.0 * np.ones((2, 2)))
    np.testing.assert_array_equal(out["dense"], [-2.0, -2.0])
    assert out["rows"].num_rows == 5


def test_alias_is_the_transform_then_the_learning_rate():
    params = {"emb": jnp.ones((3, 2))}
    state = lazy_adam(0.1).init(params)
    assert isinstance(state[0], ScaleByLazyAdamState)
    assert isinstance(state[1], optix.EmptyState)  # a constant learning rate, as in Optax
    grads = {"emb": SparseRows(jnp.asarray([1]), jnp.ones((1, 2)), 3)}
    updates, _ = lazy_adam(0.1).update(grads, state, params)
    # The first step is -lr * g / (|g| + eps / sqrt(1 - b2)): eps is added to the raw root.
    expected = -0.1 / (1 + 1e-7 / np.sqrt(1e-3))
    np.testing.assert_allclose(updates["emb"].values, np.full((1, 2), expected), rtol=1e-7)


def test_low_precision_sparse_rows_keep_their_dtype():
    tx = lazy_adam(0.1)
    params = {"emb": jnp.ones((4, 2), jnp.bfloat16)}
    state = tx.init(params)
    grads = {"emb": SparseRows(jnp.asarray([2, 2]), jnp.ones((2, 2), jnp.bfloat16), 4)}
    updates, state = jax.jit(tx.update)(grads, state, params)
    new = apply_sparse_updates(params, updates)
    assert updates["emb"].values.dtype == jnp.bfloat16
    assert new["emb"].dtype == state[0].mu["emb"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(new["emb"], np.float32)[:, 0], [1, 1, 0.9, 1], atol=4e-3)


@pytest.mark.parametrize(
    ("grads", "message"),
    [
        (
            {"emb": SparseRows(jnp.asarray([0]), jnp.ones((1, 2)), 5)},
            "SparseRows(num_rows=5) was given for a leaf of shape (3, 2)",
        ),
        (
            {"emb": SparseRows(jnp.asarray([0]), jnp.ones((1, 3)), 3)},
            "needs indices of shape (K,) and values of shape (K, *(2,))",
        ),
        ({"other": jnp.ones((3, 2))}, "the updates and the state have different tree structures"),
    ],
)
def test_misshapen_sparse_rows_raise(grads, message):
    tx = scale_by_lazy_adam()
    with pytest.raises(ValueError) as info:
        tx.update(grads, tx.init({"emb": jnp.ones((3, 2))}))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: lazy_adam(float("nan")),
            "lazy_adam: learning_rate must be finite",
        ),
        (lambda: lazy_adam(1e-3, b1=1.0), "lazy_adam: b1 must be in (-1, 1), got b1=1.0"),
        (
            lambda: scale_by_lazy_adam(b2=-0.5),
            "scale_by_lazy_adam: b2 must be in [0, 1), got b2=-0.5",
        ),
        (
            lambda: scale_by_lazy_adam(eps=-1.0),
            "scale_by_lazy_adam: eps must be finite and >= 0, got eps=-1.0",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
