"""The API reference builds offline without warnings and documents every public name.

The site is built once, with ``mkdocs build --strict`` in a subprocess whose proxies point
at a closed port, so a theme or plugin that fetched anything at build time would fail it.
A public name is every entry of the ``__all__`` of ``optix`` and of each public submodule
that has one; each needs a docstring of its own and an entry in the built reference.
"""

import functools
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import griffe
import pytest

import optix

ROOT = Path(__file__).resolve().parents[1]
# Port 9 (discard) on the loopback: every proxied request fails at once.
NO_NETWORK = {
    name: "http://127.0.0.1:9"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")
}
ANCHOR = re.compile(r'id="(optix(?:\.\w+)*)"')


def public_modules():
    """``optix`` and every submodule without a private part in its path that has ``__all__``."""
    found = [optix]
    for info in pkgutil.walk_packages(optix.__path__, "optix."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            found.append(module)
    return found


PUBLIC = [
    (f"{module.__name__}.{name}", getattr(module, name))
    for module in public_modules()
    for name in module.__all__
]


def resolve(path):
    """The object at a dotted path: the longest importable module, then attributes.

    Module paths win over package attributes of the same name, so the anchor of a
    function documented at its defining module (``optix.optimizers.adam.adam``)
    resolves to that function.
    """
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(path)


@functools.cache
def static_package():
    """optix as the reference reads it: parsed from the source, not imported."""
    return griffe.load("optix", search_paths=[str(ROOT)])


def has_code(obj):
    return inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isfunction(obj)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, **NO_NETWORK, "NO_PROXY": "", "no_proxy": "", "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return out


def test_the_public_names_are_found():
    # Guards the enumeration itself: a change to it that found nothing would pass below.
    names = {path for path, _ in PUBLIC}
    assert len(names) > 350
    assert {"optix.adam", "optix.torch.adam", "optix.tree_utils.tree_add"} <= names
    assert {"optix.transforms.packing.packed", "optix.torch.lr_scheduler.one_cycle_lr"} <= names


def test_every_public_name_has_a_docstring():
    missing = []
    for path, obj in PUBLIC:
        if has_code(obj):
            # A class's own docstring: NamedTuple writes "Name(field, ...)" when there is none.
            doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
            if inspect.isclass(obj) and doc and doc.startswith(f"{obj.__name__}("):
                doc = None
        else:
            # A type alias: the string literal under its assignment, as the reference reads it.
            doc = static_package()[path.removeprefix("optix.")].docstring
            doc = doc and doc.value
        if not (doc and doc.strip()):
            missing.append(path)
    assert not missing, f"public names without a docstring: {missing}"


def test_every_public_name_is_in_the_reference(site):
    anchors = set()
    for page in site.rglob("*.html"):
        anchors.update(ANCHOR.findall(page.read_text()))
    names_of = {}  # id of each documented object -> the names its entries use
    for anchor in anchors:
        names_of.setdefault(id(resolve(anchor)), set()).add(anchor.rsplit(".", 1)[-1])
    absent = []
    for path, obj in PUBLIC:
        # Another public path of the same class or function counts (optix.transforms.clip
        # is optix.clip); a type alias such as optix.schedules.Schedule needs its own name.
        names = names_of.get(id(obj), set())
        if path not in anchors and not (
            names and (has_code(obj) or path.rsplit(".", 1)[-1] in names)
        ):
            absent.append(path)
    assert not absent, f"public names missing from docs/ (add a ::: directive): {absent}"
