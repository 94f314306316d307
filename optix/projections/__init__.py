"""Euclidean projections onto convex sets (and two spheres), acting on whole pytrees.

Names, signatures and defaults follow ``optax.projections``. Each function returns the
nearest point of its set to the input tree, in the tree's structure and leaf dtypes,
computed in at least float32. Sets defined by a norm, a sum or an inner product
(simplex, l1 and l2 balls and spheres, hyperplane, halfspace, line) treat all entries
of all leaves as one vector. To keep parameters in a set while training, end a chain
with ``optix.project_params(projection)``.
"""

from optix.projections.affine import (
    projection_halfspace,
    projection_hyperplane,
    projection_vector,
)
from optix.projections.l2 import projection_l2_ball, projection_l2_sphere
from optix.projections.orthant_box import (
    projection_box,
    projection_hypercube,
    projection_linf_ball,
    projection_non_negative,
)
from optix.projections.simplex import (
    projection_l1_ball,
    projection_l1_sphere,
    projection_simplex,
)

__all__ = [
    "projection_box",
    "projection_halfspace",
    "projection_hypercube",
    "projection_hyperplane",
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
    "projection_linf_ball",
    "projection_non_negative",
    "projection_simplex",
    "projection_vector",
]
