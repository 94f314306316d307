"""Projected steps: keep the parameters in a set by projecting where the step lands."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

from optix.core import GradientTransformation, Params, init_empty_state
from optix.transforms.weight_decay import NO_PARAMS
from optix.tree.leafwise import compute_dtype, map_leaves
from optix.tree.structure import check_same_structure


def _landing(u, p):
    u, p = jnp.asarray(u), jnp.asarray(p)
    dt = compute_dtype(u, p)
    return (p.astype(dt) + u.astype(dt),)


def _projected_step(u, p, q):
    u, p, q = jnp.asarray(u), jnp.asarray(p), jnp.asarray(q)
    dt = compute_dtype(u, p, q)
    return ((q.astype(dt) - p.astype(dt)).astype(u.dtype),)


def project_params(projection: Callable[[Params], Params]) -> GradientTransformation:
    """Replace the step by the one that lands the params on ``projection(params + step)``.

    For the whole tree, with u the incoming update and p the params:

        u = projection(p + u) - p

    so that ``apply_updates(p, u)`` equals ``projection(p + u)`` up to one rounding
    per entry. Put it last in a chain, after the learning rate:
    ``chain(sgd(lr), project_params(projection_simplex))`` is projected gradient
    descent, and the params stay in the set at every step. ``p + u`` and the
    difference are formed per leaf in the wider of the two dtypes (at least float32);
    the projection sees that tree, and the result has the update's dtype.

    The projection is Euclidean. For sets that constrain each entry alone (box,
    orthant, hypercube, l-inf ball) it is also the projection in any diagonal metric,
    so after ``adam`` this is the scaled projected method, whose fixed points are the
    constrained optima. For coupled sets (simplex, l1 and l2 balls) an adaptive step
    near the boundary points along sign patterns the projection cancels, and it can
    stop short of the optimum; use ``sgd`` (projected gradient descent, step below
    2 / L on an L-smooth convex problem) there. The params stay in the set either way.

    Args:
        projection: A function from params to params of the same structure returning
            the nearest point of the set, e.g. ``optix.projections.projection_simplex``
            or ``functools.partial(optix.projections.projection_box, lower=0.0,
            upper=1.0)``.

    Returns:
        A GradientTransformation whose state is ``EmptyState``; ``update`` needs params.

    References:
        Levitin & Polyak, "Constrained minimization methods", USSR Comput. Math. Math.
        Phys. 1966. Bertsekas, "Nonlinear Programming", 2nd ed. 1999, Section 2.3.
        Checked against projection_simplex and projection_box optima of quadratics
        (from their KKT conditions) in tests/transforms/test_projection.py.
    """
    if not callable(projection):
        raise TypeError(
            f"project_params: projection must be callable, got projection={projection!r}"
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(NO_PARAMS.format(fn="project_params"))
        check_same_structure("project_params", updates=updates, params=params)
        (landing,) = map_leaves(_landing, updates, params, n_out=1)
        projected = projection(landing)
        check_same_structure(
            "project_params", params=params, **{"projection(params + updates)": projected}
        )
        (updates,) = map_leaves(_projected_step, updates, params, projected, n_out=1)
        return updates, state

    return GradientTransformation(init_empty_state, update)
