"""The linear assignment problem, solved by shortest augmenting paths (the Hungarian method).

One solver, ``_assign_rows``, serves both public functions; they differ only in the
order in which they list the pairs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def _working_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """The dtype the potentials live in: the cost's own if it is a float of 32 bits or more,
    float32 for narrower floats, the default float (float64 under x64) for integers and bools."""
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.dtype(dtype) if jnp.finfo(dtype).bits >= 32 else jnp.dtype(jnp.float32)
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def _assign_rows(cost: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Optimal ``col4row`` (n,) and ``row4col`` (m,) of an (n, m) float cost, n <= m.

    Rows join the matching one at a time. For row r0, a Dijkstra search over the reduced
    costs C[i, j] - u[i] - v[j] >= 0 grows a tree of alternating paths from r0; with i the
    row reached last and lowest the length of the path to it:

        r = lowest + C[i, :] - u[i] - v            (path lengths through row i)
        d = min(d, r), path[j] = i where r < d     (over columns not yet in the tree)
        j = argmin of d over columns not in the tree, a free column first among ties

    Column j joins the tree; if it is free the search stops with sink = j, else it goes
    on from the row matched to j. The potentials then move once (not at every step):

        u[r0] += lowest
        u[i]  += lowest - d[col4row[i]]     for the other rows in the tree
        v[j]  -= lowest - d[j]              for the columns in the tree

    which keeps every reduced cost >= 0 and makes those along the tree's paths 0. Flipping
    the path from r0 to the sink adds r0 to the matching. Each search takes at most m
    steps of O(m) vector work, so the solve is O(n * m**2) at worst.
    """
    n, m = cost.shape
    dtype = cost.dtype
    inf = jnp.array(jnp.inf, dtype)
    rows = jnp.arange(n)
    cols = jnp.arange(m)

    def add_row(r0, carry):
        u, v, col4row, row4col = carry

        def search_step(state):
            i, lowest, d, path, in_tree, rows_in_tree, sink, steps = state
            r = lowest + lax.dynamic_index_in_dim(cost, i, keepdims=False) - u[i] - v
            shorter = ~in_tree & (r < d)
            path = jnp.where(shorter, i, path)
            d = jnp.where(shorter, r, d)
            open_d = jnp.where(in_tree, inf, d)
            lowest = jnp.min(open_d)
            # The first closest column, a free one before any other: the search ends at once.
            key = jnp.where(open_d == lowest, jnp.where(row4col < 0, cols, cols + m), 2 * m)
            j = jnp.min(key)
            j = jnp.where(j >= m, j - m, j)
            in_tree = in_tree.at[j].set(True)
            free = row4col[j] < 0
            sink = jnp.where(free, j, sink)
            i = jnp.where(free, i, row4col[j])
            rows_in_tree = rows_in_tree.at[i].set(True)
            return i, lowest, d, path, in_tree, rows_in_tree, sink, steps + 1

        def searching(state):
            sink, steps = state[-2:]
            return (sink < 0) & (steps < m)  # the step bound only matters for NaN costs

        start = (
            r0,
            jnp.zeros((), dtype),
            jnp.full(m, inf),
            jnp.full(m, -1, rows.dtype),
            jnp.zeros(m, bool),
            jnp.zeros(n, bool).at[r0].set(True),
            jnp.array(-1, rows.dtype),
            0,
        )
        _, lowest, d, path, in_tree, rows_in_tree, sink, _ = lax.while_loop(
            searching, search_step, start
        )

        others = rows_in_tree & (rows != r0)
        u = jnp.where(others, u + lowest - d[col4row], u).at[r0].add(lowest)
        v = jnp.where(in_tree, v - (lowest - d), v)

        def flip(state):
            j, col4row, row4col, _, steps = state
            i = path[j]
            row4col = row4col.at[j].set(i)
            previous = col4row[i]
            col4row = col4row.at[i].set(j)
            return previous, col4row, row4col, i == r0, steps + 1

        def flipping(state):
            _, _, _, done, steps = state
            return ~done & (steps <= n)

        flipped = (sink, col4row, row4col, sink < 0, 0)
        _, col4row, row4col, _, _ = lax.while_loop(flipping, flip, flipped)
        return u, v, col4row, row4col

    start = (
        jnp.zeros(n, dtype),
        jnp.zeros(m, dtype),
        jnp.full(n, -1, rows.dtype),
        jnp.full(m, -1, rows.dtype),
    )
    _, _, col4row, row4col = lax.fori_loop(0, n, add_row, start)
    return col4row, row4col


def _matrix(fn: str, cost_matrix: jax.typing.ArrayLike) -> jax.Array:
    cost = jnp.asarray(cost_matrix)
    if cost.ndim != 2:
        raise ValueError(
            f"{fn}: cost_matrix must be a 2-D array, got cost_matrix.shape={cost.shape}"
        )
    return cost


def _solve(cost: jax.Array) -> tuple[bool, jax.Array, jax.Array]:
    """(transposed, col4row, row4col) of the problem with at most as many rows as columns."""
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    col4row, row4col = _assign_rows(cost.astype(_working_dtype(cost.dtype)))
    return transposed, col4row, row4col


def _empty() -> tuple[jax.Array, jax.Array]:
    empty = jnp.arange(0)
    return empty, empty


def hungarian_algorithm(cost_matrix: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Solve the linear assignment problem for a cost matrix.
    The problem: given an (n, m) cost matrix C, choose min(n, m) pairs (i, j), no row and
    no column twice, that minimize the sum of C[i, j] over the pairs. With k = min(n, m):

        minimize    sum_ij C[i, j] * X[i, j]
        subject to  X[i, j] in {0, 1},  sum_j X[i, j] <= 1,  sum_i X[i, j] <= 1,
                    sum_ij X[i, j] = k

    Solved exactly by shortest augmenting paths: the rows (or the columns, whichever are
    fewer) join the matching one at a time along a shortest path of reduced costs
    C[i, j] - u[i] - v[j], Dijkstra's search with the dual potentials u, v updated once
    per path (Crouse 2016, section IV; the algorithm of Jonker and Volgenant that
    ``scipy.optimize.linear_sum_assignment`` runs). Each search step is one vector
    operation over a row of C, so the solve runs in ``lax`` loops with static shapes:
    it works under ``jit`` and ``vmap`` (a batch of matrices) and on any device.

    The pairs come in the order Optax's ``hungarian_algorithm`` gives: for a square
    matrix by column (``j`` is ``arange(n)``); for n < m by row, last row first; for
    n > m by column, last column first. ``cost_matrix[i, j].sum()`` is the optimal cost.

    Args:
        cost_matrix: An (n, m) array of finite costs, any real dtype. Integer and
            narrower-than-32-bit costs are solved in float32 (float64 under x64), others
            in their own dtype. ``inf`` marks a forbidden pair if a complete assignment
            avoiding all of them exists; NaN gives an unspecified assignment.

    Returns:
        ``(i, j)``: two integer arrays of length min(n, m), the row and the column of
        each pair. Empty when n or m is 0.

    References:
        Crouse, "On implementing 2D rectangular assignment algorithms", IEEE Transactions
        on Aerospace and Electronic Systems 52(4), 2016.
        Jonker & Volgenant, "A shortest augmenting path algorithm for dense and sparse
        linear assignment problems", Computing 38, 1987.

    Checked against scipy.optimize.linear_sum_assignment and optax.assignment in
    tests/assignment/test_hungarian.py.
    """
    cost = _matrix("hungarian_algorithm", cost_matrix)
    if cost.size == 0:
        return _empty()
    transposed, col4row, row4col = _solve(cost)
    k, m = col4row.shape[0], row4col.shape[0]
    if transposed:
        return col4row[::-1], jnp.arange(k)[::-1]
    if k == m:
        return row4col, jnp.arange(m)
    return jnp.arange(k)[::-1], col4row[::-1]


def base_hungarian_algorithm(cost_matrix: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Solve the linear assignment problem for a cost matrix, pairs listed by row.

    The problem and the solver are those of ``hungarian_algorithm``; only the order of
    the pairs differs. Here they come in increasing row order, as Optax's
    ``base_hungarian_algorithm`` and SciPy's ``linear_sum_assignment`` give them: ``i``
    is ``arange(n)`` when n <= m.

    Args:
        cost_matrix: An (n, m) array of finite costs, any real dtype (see
            ``hungarian_algorithm``).

    Returns:
        ``(i, j)``: two integer arrays of length min(n, m), ``i`` increasing. The optimal
        cost is ``cost_matrix[i, j].sum()``.

    References:
        Crouse, "On implementing 2D rectangular assignment algorithms", IEEE Transactions
        on Aerospace and Electronic Systems 52(4), 2016.

    Checked against scipy.optimize.linear_sum_assignment and optax.assignment in
    tests/assignment/test_hungarian.py.
    """
    cost = _matrix("base_hungarian_algorithm", cost_matrix)
    if cost.size == 0:
        return _empty()
    transposed, col4row, _ = _solve(cost)
    if transposed:
        order = jnp.argsort(col4row)
        return col4row[order], order.astype(col4row.dtype)
    return jnp.arange(col4row.shape[0]), col4row
