"""Registry entry of Ranger (RAdam + Lookahead + gradient centralization).

``lookahead`` and ``lookahead_in_state`` are wrappers in optix.transforms, not
optimizers; Ranger runs both (it is ``lookahead_in_state`` over a chain), and
tests/transforms/test_lookahead.py holds their own checks.
"""

from optix.optimizers.ranger import ranger
from tests.registry.entry import Entry

ENTRIES = [
    Entry(
        "ranger",
        lambda: ranger(0.05, weight_decay=0.1),
        "lessw2020 Ranger (NumPy)",
        2e-5,
    ),
]
