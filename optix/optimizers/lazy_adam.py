"""LazyAdam: Adam whose moments and parameters change only in the rows a step touches.

Embedding tables get gradients in a few rows per step. A row is ``x[i]`` for a leaf
``x``: for a table of shape (V, D) a row has D entries, for a 1-D leaf a row is one
element, and a scalar leaf is one row. The gradient of a leaf arrives in one of two
forms:

- a dense array: the rows that are entirely zero are absent;
- ``SparseRows(indices, values, num_rows)``: the rows at ``indices`` are present (even
  where their values are zero) and duplicate indices are summed. Its cost grows with
  the number of rows touched: the touched rows are gathered, updated and scattered
  back into mu, nu and the params (in place when their buffers are donated to
  ``jit``), and nothing else of the table's size is built.

The update has the form of the gradient: a dense update (zero in the absent rows) for a
dense gradient, ``SparseRows`` of the deduplicated rows for ``SparseRows``. Apply both
with ``apply_sparse_updates``; ``apply_updates`` takes dense updates only. Generic
transformations treat ``SparseRows`` as two arrays (its indices would be scaled too):
wrap the ones chained around ``scale_by_lazy_adam`` in ``with_sparse_rows``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    Params,
    ScalarOrSchedule,
    Updates,
    chain,
    safe_increment,
    with_extra_args_support,
    zero_count,
)
from optix.optimizers.adam import check_moment_args, moments
from optix.transforms.scaling import scale_by_learning_rate
from optix.tree.leafwise import bias_correction_factor, compute_dtype, map_leaves
from optix.tree.math import zeros_like


@dataclasses.dataclass(frozen=True)
class SparseRows:
    """The rows ``indices`` of a leaf with ``num_rows`` rows hold ``values``; others are zero.

    ``indices`` is an integer array of shape (K,), ``values`` has shape
    (K, *row_shape), and duplicate indices add up. An index equal to ``num_rows`` is
    padding and is dropped, so a fixed number K of rows can be passed under ``jit``.
    ``num_rows`` is static (part of the tree structure), the arrays are leaves.
    """

    indices: jax.Array
    values: jax.Array
    num_rows: int

    def deduplicated(self) -> SparseRows:
        """The same rows with unique sorted indices (padded with ``num_rows``), values summed."""
        k = self.indices.shape[0]
        unique, slot = jnp.unique(
            self.indices, size=k, fill_value=self.num_rows, return_inverse=True
        )
        values = jax.ops.segment_sum(self.values, slot.reshape(-1), num_segments=k)
        return SparseRows(unique, values, self.num_rows)

    def todense(self) -> jax.Array:
        """The full array, of shape (num_rows, *row_shape): costs the table's size."""
        shape = (self.num_rows, *self.values.shape[1:])
        return jnp.zeros(shape, self.values.dtype).at[self.indices].add(self.values, mode="drop")


jax.tree_util.register_dataclass(
    SparseRows, data_fields=["indices", "values"], meta_fields=["num_rows"]
)


def _is_rows(x: Any) -> bool:
    return isinstance(x, SparseRows)


def apply_sparse_updates(params: Params, updates: Updates) -> Params:
    """``apply_updates`` that also takes ``SparseRows`` leaves in ``updates``.

    A ``SparseRows`` leaf is added to its parameter's rows in place (a scatter-add in
    the parameter's dtype, duplicates summed, padding dropped); dense leaves are added
    as ``apply_updates`` adds them; ``None`` parameters stay ``None``.
    """

    def add(p, u):
        if p is None:
            return None
        if isinstance(u, SparseRows):
            return p.at[u.indices].add(u.values.astype(p.dtype), mode="drop")
        wide = compute_dtype(p, u)
        return (p.astype(wide) + u.astype(wide)).astype(p.dtype)

    # A SparseRows in updates stands where params has an array leaf, so it arrives whole.
    return jax.tree.map(add, params, updates, is_leaf=lambda x: x is None)


def with_sparse_rows(inner: GradientTransformation) -> GradientTransformation:
    """Apply ``inner`` to the ``values`` of ``SparseRows`` updates, keeping their indices.

    For transformations that act on each entry alone and hold no parameter-shaped
    state (``scale``, ``scale_by_schedule``, ``scale_by_learning_rate``): they see the
    values array where a ``SparseRows`` stands. Dense updates pass to ``inner`` as they
    are. The state is ``inner``'s.
    """
    inner = with_extra_args_support(inner)

    def update(updates, state, params=None, **extra_args):
        values = jax.tree.map(lambda u: u.values if _is_rows(u) else u, updates, is_leaf=_is_rows)
        values, state = inner.update(values, state, params, **extra_args)
        merged = jax.tree.map(
            lambda u, v: dataclasses.replace(u, values=v) if _is_rows(u) else v,
            updates,
            values,
            is_leaf=_is_rows,
        )
        return merged, state

    return GradientTransformation(inner.init, update)


class ScaleByLazyAdamState(NamedTuple):
    """State of ``scale_by_lazy_adam``."""

    # int32 scalar: number of updates applied so far (all rows share it)
    count: jax.Array  # type: ignore[assignment]
    mu: Any  # param-shaped: EMA of g over the steps that touched each row (dtype mu_dtype)
    nu: Any  # param-shaped: EMA of g**2 over the same steps (dtype nu_dtype)


def scale_by_lazy_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-7,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by Adam's moments, updated only in the rows present in g.

    For each leaf, with g the incoming update, t = count + 1, c(b, t) = 1 - b**t and,
    for each row present in g (see the module docstring):

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        u = sqrt(c(b2, t)) / c(b1, t) * mu / (sqrt(nu) + eps)

    In the absent rows mu and nu keep their values and u is zero. t counts every
    update of the transformation, not the updates of each row, so a row's first
    update is bias-corrected with the global step, as TF-Addons and torch do. ``eps``
    is added to the root of the raw ``nu`` (the paper's "epsilon hat"), unlike
    ``scale_by_adam``, which adds it to the root of the bias-corrected one.

    A dense g reads as the ``SparseRows`` of its nonzero rows, which is what
    TF-Addons' LazyAdam receives from an embedding lookup; given a dense tensor it
    would run dense Adam instead. torch.optim.SparseAdam counts steps per tensor
    whenever it has a gradient: the same count when every table gets a (possibly
    empty) gradient each step.

    Args:
        b1: Decay of the EMA of g, in (-1, 1).
        b2: Decay of the EMA of g**2, in [0, 1).
        eps: Added to ``sqrt(nu)``, >= 0. The default 1e-7 is TF-Addons';
            torch.optim.SparseAdam's is 1e-8.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.
        nu_dtype: Dtype of ``nu``; ``None`` keeps the params' dtype. The moments are
            updated in at least float32 and stored back in their dtypes.

    Returns:
        A GradientTransformation whose state is ``ScaleByLazyAdamState``.

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
        arXiv:1412.6980 (the update before Section 2.1). TF-Addons
        ``tfa.optimizers.LazyAdam``.
        Checked against TF-Addons LazyAdam (transliterated to NumPy) in
        tests/optimizers/test_lazy_adam.py.
    """
    check_moment_args("scale_by_lazy_adam", b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)

    def rows_update(g, mu, nu, step_size):
        dt = compute_dtype(g, mu, nu)
        _, mu_new, nu_new = moments(g, mu, nu, b1, b2, dt)
        u = step_size.astype(dt) * mu_new / (jnp.sqrt(nu_new) + eps).astype(dt)
        return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def dense_leaf(g, mu, nu, step_size):
        present = jnp.any(g != 0, axis=tuple(range(1, g.ndim)), keepdims=True)
        u, mu_new, nu_new = rows_update(g, mu, nu, step_size)
        return (
            jnp.where(present, u, 0),
            jnp.where(present, mu_new, mu),
            jnp.where(present, nu_new, nu),
        )

    def sparse_leaf(g, mu, nu, step_size):
        _check_rows(g, mu)
        g = g.deduplicated()
        rows = lambda x: x.at[g.indices].get(mode="fill", fill_value=0)
        u, mu_rows, nu_rows = rows_update(g.values, rows(mu), rows(nu), step_size)
        return (
            dataclasses.replace(g, values=u),
            mu.at[g.indices].set(mu_rows, mode="drop"),
            nu.at[g.indices].set(nu_rows, mode="drop"),
        )

    def leaf(g, mu, nu, step_size):
        return (sparse_leaf if _is_rows(g) else dense_leaf)(g, mu, nu, step_size)

    def init(params):
        return ScaleByLazyAdamState(
            count=zero_count(),
            mu=zeros_like(params, dtype=mu_dtype),
            nu=zeros_like(params, dtype=nu_dtype),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        step_size = jnp.sqrt(bias_correction_factor(b2, count)) / bias_correction_factor(b1, count)
        _check_structure(updates, state.mu)
        # mu leads so that a SparseRows in the updates is one leaf, not two.
        updates, mu, nu = map_leaves(
            lambda m, g, v: leaf(g, m, v, step_size), state.mu, updates, state.nu, n_out=3
        )
        return updates, ScaleByLazyAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


def _check_structure(updates: Updates, mu: Any) -> None:
    ours, theirs = jax.tree.structure(updates, is_leaf=_is_rows), jax.tree.structure(mu)
    if ours != theirs:
        raise ValueError(
            "scale_by_lazy_adam: the updates and the state have different tree structures."
            f"\n  updates: {ours}\n  state: {theirs}\nThe state must come from this "
            "transformation's init, called on params shaped like the updates."
        )


def _check_rows(g: SparseRows, table: jax.Array) -> None:
    if table.ndim == 0 or g.num_rows != table.shape[0]:
        raise ValueError(
            f"scale_by_lazy_adam: SparseRows(num_rows={g.num_rows}) was given for a leaf "
            f"of shape {table.shape}; num_rows must be the leaf's leading dimension."
        )
    expected = (g.indices.shape[0], *table.shape[1:])
    if g.indices.ndim != 1 or g.values.shape != expected:
        raise ValueError(
            f"scale_by_lazy_adam: SparseRows for a leaf of shape {table.shape} needs indices "
            f"of shape (K,) and values of shape (K, *{table.shape[1:]}), got indices "
            f"{g.indices.shape} and values {g.values.shape}."
        )


def lazy_adam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-7,
    *,
    mu_dtype: jax.typing.DTypeLike | None = None,
    nu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """LazyAdam: ``chain(scale_by_lazy_adam(...), with_sparse_rows(scale_by_learning_rate(lr)))``.

    TF-Addons' ``LazyAdam(learning_rate, beta_1, beta_2, epsilon)``. Update rule, the
    gradient forms and arguments: see ``scale_by_lazy_adam``; apply the updates with
    ``apply_sparse_updates`` when the gradient holds ``SparseRows``.
    """
    check_moment_args("lazy_adam", b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    _checks.finite("lazy_adam", allow_schedule=True, learning_rate=learning_rate)
    return chain(
        scale_by_lazy_adam(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
        with_sparse_rows(scale_by_learning_rate(learning_rate)),
    )
