"""Registry entries of the Newton methods: they need value_fn, so they run on an objective."""

from optix.optimizers.damped_newton import newton
from optix.optimizers.truncated_newton import newton_cg
from tests.registry.entry import Entry

# Measured float32 trajectory differences against the float64 references
# (tests/optimizers/test_newton.py), rounded up: 1.2e-5 and 1.5e-4. Newton-CG's is larger
# because float32 CG loses conjugacy and can stop one iteration later than float64 CG.
F32_RTOL = {"newton": 2e-5, "newton_cg": 2e-4}

ENTRIES = [
    Entry(
        "newton",
        lambda: newton(),
        "Nocedal & Wright Algorithm 3.3 (NumPy)",
        F32_RTOL["newton"],
        objective=True,
    ),
    Entry(
        "newton_cg",
        lambda: newton_cg(),
        "scipy.optimize Newton-CG (iterates, NumPy CG loop)",
        F32_RTOL["newton_cg"],
        objective=True,
    ),
]
