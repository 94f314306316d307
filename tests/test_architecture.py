"""Keeps the layout true: layering, file sizes, registry completeness, docstring promises."""

import ast
import inspect
import pathlib
import re

import optix
from tests.registry import ENTRIES, public_optimizers

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "optix"

# Each layer may import only from the layers before it.
LAYERS = [
    "optix._checks",
    "optix.tree",
    "optix.projections",
    "optix.schedules",
    "optix.core",
    "optix.losses",
    "optix.assignment",
    "optix.perturbations",
    "optix.second_order",
    "optix.microbatching",
    "optix.interop",
    "optix.transforms",
    "optix.optimizers",
    "optix.precision",
    "optix.minimization",
    "optix.torch",
    "optix.serialization",
    "optix.sharding",
    "optix.experimental",
    "optix.contrib",
]
MAX_LINES = 300


def layer_of(module: str) -> int | None:
    for index, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return index
    return None


def imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "optix":
            found.update(f"optix.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m == "optix" or m.startswith("optix.")}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_layers_import_only_downwards():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        own = layer_of(module_name(path))
        if own is None:
            continue
        for imported in imported_modules(path):
            other = layer_of(imported)
            if other is None or other > own:
                violations.append(f"{module_name(path)} imports {imported}")
    assert not violations, violations


def test_modules_stay_small():
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"split these by role (limit {MAX_LINES} lines): {too_long}"


def test_every_public_optimizer_is_in_the_registry():
    assert public_optimizers() == set(ENTRIES)


def documented_transforms():
    for name in optix.optimizers.__all__:
        obj = getattr(optix.optimizers, name)
        if inspect.isfunction(obj) and name.startswith("scale_by_"):
            yield name, obj
    for name in optix.torch.__all__:
        obj = getattr(optix.torch, name)
        if inspect.isfunction(obj):
            yield f"torch.{name}", obj


def test_update_rules_are_documented_with_references_and_checks():
    for name, fn in documented_transforms():
        doc = inspect.getdoc(fn) or ""
        assert "References:" in doc, f"{name} has no References section"
        assert "Checked against" in doc, f"{name} does not say what it is checked against"


def test_checked_against_lines_point_at_existing_tests():
    pattern = re.compile(r"Checked against (.+?) in\s+(tests/\S+\.py)", re.S)
    claims = 0
    for path in PACKAGE.rglob("*.py"):
        for reference, test_file in pattern.findall(path.read_text()):
            claims += 1
            test_path = ROOT / test_file
            assert test_path.exists(), f"{path.name} cites missing {test_file}"
            first = re.split(r"[ ,(]", reference.split(" and ")[0].strip())[0]
            assert first.split(".")[-1] in test_path.read_text(), (
                f"{path.name}: {test_file} never mentions {first}"
            )
    assert claims >= 8
