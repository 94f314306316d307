"""The laws every projection obeys, on hypothesis-drawn trees (float64).

For x any tree and z any point of the set (drawn without projecting):
the result is in the set, projecting twice changes nothing, no point of the set is
nearer to x, and for convex sets <x - P(x), z - P(x)> <= 0.
"""

import hypothesis.extra.numpy as hnp
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.projections.sets import flatten, make_sets, size, unflatten

NAMES = sorted(make_sets(np.random.default_rng(0), 1.0))
POINTS = hnp.arrays(
    np.float64,
    size(),
    elements=st.floats(-10, 10, allow_subnormal=False)
    | st.sampled_from([0.0, 1.0, -1.0, 0.5]),  # zeros and ties
)
SCALES = st.sampled_from([0.0, 0.25, 1.0, 3.0]) | st.floats(0.01, 20.0)


def draw_set(name, scale, seed):
    rng = np.random.default_rng(seed)
    return rng, make_sets(rng, scale)[name]


def project(the_set, x):
    return flatten(jax.tree.map(np.asarray, the_set.project(unflatten(x))))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None)
@given(x=POINTS, scale=SCALES, seed=st.integers(0, 2**32 - 1))
def test_projection_laws(name, x, scale, seed):
    rng, the_set = draw_set(name, scale, seed)
    with jax.enable_x64(True):
        p = project(the_set, x)
        again = project(the_set, p)
    magnitude = 1.0 + np.abs(x).max() + scale
    tol = 1e-12 * magnitude * size()
    assert the_set.contains(p, tol), (x, p)
    np.testing.assert_allclose(again, p, rtol=0, atol=tol)
    distance = np.linalg.norm(x - p)
    for _ in range(30):
        z = the_set.sample(rng)
        assert the_set.contains(z, tol), z
        assert distance <= np.linalg.norm(x - z) + tol
        if the_set.convex:
            assert (x - p) @ (z - p) <= tol * magnitude * (1.0 + np.abs(z).max())


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=20, deadline=None)
@given(scale=SCALES, seed=st.integers(0, 2**32 - 1))
def test_points_of_the_set_are_their_own_projection(name, scale, seed):
    rng, the_set = draw_set(name, scale, seed)
    z = the_set.sample(rng)
    with jax.enable_x64(True):
        p = project(the_set, z)
    np.testing.assert_allclose(p, z, rtol=0, atol=1e-12 * (1.0 + np.abs(z).max() + scale))
