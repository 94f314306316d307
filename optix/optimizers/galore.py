"""GaLore: an optimizer run on low-rank projections of the gradients of weight matrices."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    MaskOrFn,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.optimizers.adam import scale_by_adam
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import compute_dtype
from optix.tree.structure import check_same_structure

ProjType = Literal["reverse_std", "std", "left", "right"]
PROJ_TYPES = ("reverse_std", "std", "left", "right")


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a leaf form the rows (``reduction_axis``) and the columns
    (``output_axis``) of the matrix GaLore projects; each an int or a sequence of ints."""

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class GaLoreState(NamedTuple):
    """State of ``scale_by_galore``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    base_optimizer_state: Any  # the base optimizer's state over the low-rank shapes
    projector: Any  # per leaf: (m, r) left or (n, r) right projector; (0, 0) if unprojected


def _is_spec(x) -> bool:
    return x is None or isinstance(x, GaLoreDimensionNumbers)


def _axes(axis, ndim) -> tuple[int, ...]:
    return (axis % ndim,) if isinstance(axis, int) else tuple(a % ndim for a in axis)


def _matrix_view(shape: tuple[int, ...], spec: GaLoreDimensionNumbers):
    """(to_matrix, from_matrix, (m, n)) for a leaf of ``shape`` read as ``spec`` says."""
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"galore: projected leaves need rank >= 2, got shape {shape}")
    rows, cols = _axes(spec.reduction_axis, ndim), _axes(spec.output_axis, ndim)
    if set(rows) & set(cols) or len(set(rows) | set(cols)) != ndim:
        raise ValueError(
            f"galore: reduction axes {rows} and output axes {cols} must split the "
            f"{ndim} axes of shape {shape} into two disjoint groups"
        )
    order = rows + cols
    m, n = math.prod(shape[a] for a in rows), math.prod(shape[a] for a in cols)
    permuted = tuple(shape[a] for a in order)
    inverse = tuple(order.index(a) for a in range(ndim))
    to_matrix = lambda x: x.transpose(order).reshape(m, n)
    from_matrix = lambda y: y.reshape(permuted).transpose(inverse)
    return to_matrix, from_matrix, (m, n)


def _left(m: int, n: int, proj_type: str) -> bool:
    """Whether the projector multiplies from the left (P.T @ G, shape (r, n))."""
    if proj_type in ("left", "right"):
        return proj_type == "left"
    return m >= n if proj_type == "reverse_std" else m < n


def scale_by_galore(
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: GradientTransformation | None = None,
    weight_dimension_numbers: Any = None,
    *,
    proj_type: ProjType = "reverse_std",
) -> GradientTransformation:
    """Run ``base_optimizer`` on low-rank projections of the gradients of matrices.

    For each projected leaf, read as an (m, n) matrix G, with r = min(rank, m, n),
    t = count and U, S, Vh = svd(G) (reduced):

        if t % update_proj_gap == 0:   P = U[:, :r]   (left)   or   P = Vh[:r, :].T   (right)
        R = P.T @ G   (left, shape (r, n))   or   R = G @ P   (right, shape (m, r))
        N = base_optimizer(R)              (its state lives in the low-rank shape)
        u = scale * (P @ N   (left)   or   N @ P.T   (right))

    Other leaves go through ``base_optimizer`` unprojected. The side: ``proj_type``
    "reverse_std" (Optax's ``scale_by_galore``) projects with U when m >= n, i.e. it
    shrinks the larger dimension; "std" (the default of the official galore-torch and
    the paper's Algorithm 2) uses U when m < n, shrinking the smaller one; "left" and
    "right" fix the side. The SVD runs in at least float32 (float64 for float64
    gradients; Optax and galore-torch always use float32) and P is stored in the
    params' dtype. Singular vectors are defined up to sign; the update of a fixed P
    does not depend on the signs.

    Args:
        rank: Rank of the projection, an int >= 1 (capped at min(m, n)).
        update_proj_gap: Steps between SVDs, an int >= 1 (the first step computes one).
        scale: Factor on the projected-back updates (galore-torch's ``scale``; 0.25 in
            its examples).
        base_optimizer: A transformation that needs no params (``scale_by_adam``,
            ``scale_by_lion``...); default ``scale_by_adam()``.
        weight_dimension_numbers: Which leaves are projected and how they read as
            matrices: None (every 2-D leaf, rows = axis 0), one ``GaLoreDimensionNumbers``
            (every leaf of rank >= 2), a tree of them (None: not projected) or a
            function of the params returning such a tree.
        proj_type: "reverse_std" (Optax), "std" (galore-torch), "left" or "right".

    Returns:
        A GradientTransformation whose state is ``GaLoreState``.

    References:
        Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
        Projection", ICML 2024, arXiv:2403.03507.
        Checked against optax.contrib.scale_by_galore and a NumPy transliteration of
        galore-torch's GaLoreProjector (tests/references/galore_reference.py) in
        tests/optimizers/test_galore.py.
    """
    fn = "scale_by_galore"
    _checks.integer_at_least(fn, "rank", rank, 1)
    _checks.integer_at_least(fn, "update_proj_gap", update_proj_gap, 1)
    _checks.finite(fn, scale=scale)
    _checks.one_of(fn, "proj_type", proj_type, PROJ_TYPES)
    base = scale_by_adam() if base_optimizer is None else base_optimizer

    def specs(tree):
        spec = weight_dimension_numbers
        if spec is None:
            return jax.tree.map(lambda p: GaLoreDimensionNumbers() if p.ndim == 2 else None, tree)
        if isinstance(spec, GaLoreDimensionNumbers):
            return jax.tree.map(lambda p: spec if p.ndim >= 2 else None, tree)
        return spec(tree) if callable(spec) else spec

    def shapes(p, spec):
        """(projector, low-rank proxy) zeros for leaf p."""
        if spec is None:
            return jnp.zeros((0, 0), p.dtype), jnp.zeros(p.shape, p.dtype)
        m, n = _matrix_view(p.shape, spec)[2]
        r = min(rank, m, n)
        if _left(m, n, proj_type):
            return jnp.zeros((m, r), p.dtype), jnp.zeros((r, n), p.dtype)
        return jnp.zeros((n, r), p.dtype), jnp.zeros((m, r), p.dtype)

    def split(pairs, tree):
        return jax.tree.transpose(jax.tree.structure(tree), jax.tree.structure((0, 0)), pairs)

    def init(params):
        _checks.real_params("scale_by_galore", params, "the projection is a real SVD")
        if not jax.tree.leaves(params):
            return GaLoreState(zero_count(), base.init(params), params)
        pairs = jax.tree.map(shapes, params, specs(params))
        projectors, proxies = split(pairs, params)
        return GaLoreState(zero_count(), base.init(proxies), projectors)

    def update(updates, state, params=None, **extra_args):
        del params
        check_same_structure("scale_by_galore", updates=updates, projector=state.projector)
        refresh = state.count % update_proj_gap == 0
        spec_tree = specs(updates)

        def project(g, projector, spec):
            if spec is None:
                return g, projector
            to_matrix, _, (m, n) = _matrix_view(g.shape, spec)
            dt = compute_dtype(g)
            g2 = to_matrix(g).astype(dt)
            r, left = projector.shape[1], _left(m, n, proj_type)

            def fresh():
                u, _, vh = jnp.linalg.svd(g2, full_matrices=False)
                return (u[:, :r] if left else vh[:r, :].T).astype(projector.dtype)

            projector = jax.lax.cond(refresh, fresh, lambda: projector)
            p = projector.astype(dt)
            low = p.T @ g2 if left else g2 @ p
            return low.astype(g.dtype), projector

        def project_back(low, projector, g, spec):
            if spec is None:
                return low
            _, from_matrix, (m, n) = _matrix_view(g.shape, spec)
            dt = compute_dtype(low, g)
            p, low_ = projector.astype(dt), low.astype(dt)
            full = p @ low_ if _left(m, n, proj_type) else low_ @ p.T
            return (jnp.asarray(scale, dt) * from_matrix(full)).astype(g.dtype)

        pairs = jax.tree.map(project, updates, state.projector, spec_tree)
        low_rank, projectors = split(pairs, updates)
        low_updates, base_state = base.update(low_rank, state.base_optimizer_state, None)
        full = jax.tree.map(project_back, low_updates, projectors, updates, spec_tree)
        return full, GaLoreState(safe_increment(state.count), base_state, projectors)

    return GradientTransformation(init, update)


def galore(
    learning_rate: ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: GradientTransformation | None = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    weight_dimension_numbers: Any = None,
    *,
    proj_type: ProjType = "reverse_std",
) -> GradientTransformation:
    """GaLore as Optax builds it: ``scale_by_galore``, decoupled weight decay, learning rate.

    ``chain(scale_by_galore(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``: each step is
    ``p -= learning_rate * (u + weight_decay * p)`` with u from ``scale_by_galore``
    (Adam in the low-rank space by default). ``galore_adamw`` is galore-torch's AdamW.
    Update rule and arguments: see ``scale_by_galore``.
    """
    _checks.finite("galore", allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative("galore", allow_schedule=True, weight_decay=weight_decay)
    return chain(
        scale_by_galore(
            rank,
            update_proj_gap,
            scale,
            base_optimizer,
            weight_dimension_numbers,
            proj_type=proj_type,
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
