"""The sets behind the projections, described independently of optix: membership and samples.

Each ``Set`` says how to project onto it (the optix function, with its parameters
bound), whether a flat float64 vector belongs to it, and how to draw points of it
without projecting, so the nearest-point and variational-inequality laws can be
checked against points the projection never produced.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from optix import projections as P

TREE_SHAPES = {"w": (2, 3), "b": (3,), "s": ()}


def unflatten(vector: np.ndarray, shapes: dict = TREE_SHAPES) -> dict:
    tree, start = {}, 0
    for key, shape in shapes.items():
        size = int(np.prod(shape))
        tree[key] = np.asarray(vector[start : start + size], np.float64).reshape(shape)
        start += size
    return tree


def flatten(tree: Any, shapes: dict = TREE_SHAPES) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(tree[k], np.float64)) for k in shapes])


def size(shapes: dict = TREE_SHAPES) -> int:
    return sum(int(np.prod(s)) for s in shapes.values())


class Set(NamedTuple):
    project: Callable[[Any], Any]
    contains: Callable[[np.ndarray, float], bool]  # (flat point, tolerance)
    sample: Callable[[np.random.Generator], np.ndarray]  # a flat point of the set
    convex: bool


def _signs(rng, n):
    return rng.choice([-1.0, 1.0], n)


def make_sets(rng: np.random.Generator, scale: float) -> dict[str, Set]:
    """Every projection's set, with random parameters drawn from ``rng``."""
    n = size()
    lower = rng.normal(size=n)
    upper = lower + rng.uniform(0.0, 2.0, n)
    a = rng.normal(size=n)
    b = float(rng.normal())
    side = scale * rng.uniform(0.5, 1.5, n)
    dirichlet = lambda r: scale * r.dirichlet(np.ones(n))
    # A point of the hyperplane by solving for the coordinate with the largest |a|.
    i = int(np.argmax(np.abs(a)))

    def on_hyperplane(r):
        z = r.normal(size=n) * 3
        z[i] = 0.0
        z[i] = (b - a @ z) / a[i]
        return z

    def direction(r):
        d = r.normal(size=n)
        return d / np.linalg.norm(d)

    def parallel(p, tol):
        return np.linalg.norm(p - (p @ a) / (a @ a) * a) <= tol

    return {
        "non_negative": Set(
            P.projection_non_negative,
            lambda p, tol: bool(np.all(p >= -tol)),
            lambda r: np.abs(r.normal(size=n)) * 3,
            True,
        ),
        "box": Set(
            lambda t: P.projection_box(t, unflatten(lower), unflatten(upper)),
            lambda p, tol: bool(np.all((lower - tol <= p) & (p <= upper + tol))),
            lambda r: lower + (upper - lower) * r.uniform(size=n),
            True,
        ),
        "hypercube": Set(
            lambda t: P.projection_hypercube(t, unflatten(side)),
            lambda p, tol: bool(np.all((-tol <= p) & (p <= side + tol))),
            lambda r: side * r.uniform(size=n),
            True,
        ),
        "simplex": Set(
            functools.partial(P.projection_simplex, scale=scale),
            lambda p, tol: bool(np.all(p >= 0) and abs(p.sum() - scale) <= tol),
            dirichlet,
            True,
        ),
        "l1_ball": Set(
            functools.partial(P.projection_l1_ball, scale=scale),
            lambda p, tol: np.abs(p).sum() <= scale + tol,
            lambda r: _signs(r, n) * dirichlet(r) * r.uniform(),
            True,
        ),
        "l1_sphere": Set(
            functools.partial(P.projection_l1_sphere, scale=scale),
            lambda p, tol: abs(np.abs(p).sum() - scale) <= tol,
            lambda r: _signs(r, n) * dirichlet(r),
            False,
        ),
        "l2_ball": Set(
            functools.partial(P.projection_l2_ball, scale=scale),
            lambda p, tol: np.linalg.norm(p) <= scale + tol,
            lambda r: direction(r) * scale * r.uniform() ** (1 / n),
            True,
        ),
        "l2_sphere": Set(
            functools.partial(P.projection_l2_sphere, scale=scale),
            lambda p, tol: abs(np.linalg.norm(p) - scale) <= tol,
            lambda r: direction(r) * scale,
            False,
        ),
        "linf_ball": Set(
            functools.partial(P.projection_linf_ball, scale=scale),
            lambda p, tol: bool(np.all(np.abs(p) <= scale + tol)),
            lambda r: r.uniform(-scale, scale, n),
            True,
        ),
        "vector": Set(
            lambda t: P.projection_vector(t, unflatten(a)),
            parallel,
            lambda r: r.normal() * 3 * a,
            True,
        ),
        "hyperplane": Set(
            lambda t: P.projection_hyperplane(t, unflatten(a), b),
            lambda p, tol: abs(a @ p - b) <= tol * np.linalg.norm(a),
            on_hyperplane,
            True,
        ),
        "halfspace": Set(
            lambda t: P.projection_halfspace(t, unflatten(a), b),
            lambda p, tol: a @ p - b <= tol * np.linalg.norm(a),
            lambda r: on_hyperplane(r) - r.exponential() * a,
            True,
        ),
    }
