"""Every public optimizer, once: test hyperparameters, reference, tolerances.

Each family contributes a module here with a list ``ENTRIES``; this package collects
them. The common suite (tests/optimizers/test_common.py) runs over ``ENTRIES``;
tests/test_architecture.py fails if a public optimizer is missing; the README's
reference table is checked against it (tests/test_readme.py). The float32 tolerances
are the largest relative trajectory differences measured against the reference,
rounded up; float64 runs are held to ``F64_RTOL``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import optix
from tests.registry.entry import F64_RTOL, Entry

__all__ = ["ENTRIES", "F64_RTOL", "Entry", "public_optimizers"]


def _collect() -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "entry":
            continue
        for entry in importlib.import_module(f"{__name__}.{info.name}").ENTRIES:
            if entry.name in entries:
                raise ValueError(f"registry: {entry.name} is listed twice")
            entries[entry.name] = entry
    return dict(sorted(entries.items()))


ENTRIES = _collect()


def public_optimizers() -> set[str]:
    """Names of the public optimizers the registry must cover."""
    aliases = {
        n for n in optix.optimizers.__all__ if n[0].islower() and not n.startswith("scale_by")
    }
    return aliases | {
        f"torch.{n}"
        for n in optix.torch.__all__
        if _returns_transformation(getattr(optix.torch, n)) and n not in _TORCH_TRANSFORMS
    }


# torch-parity transformations that are not optimizers: ReduceLROnPlateau scales updates
# by a factor driven by the `value` extra argument (tests/transforms/test_reduce_on_plateau.py).
_TORCH_TRANSFORMS = {"reduce_lr_on_plateau"}


def _returns_transformation(obj) -> bool:
    """torch-parity constructors return a transformation; clip_grad_norm and friends do not."""
    if not inspect.isfunction(obj):
        return False
    annotation = inspect.signature(obj).return_annotation
    return annotation in ("GradientTransformation", optix.GradientTransformation)
