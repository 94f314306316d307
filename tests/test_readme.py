"""The README's reference table and test command stay true."""

import pathlib
import re

from tests.registry import ENTRIES, F64_RTOL

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_reference_table_matches_the_registry():
    rows = re.findall(r"^\| `optix\.([\w.]+)` \| (.+?) \| (\S+) \| (\S+) \|$", README, re.M)
    table = {name: (reference, float(f64), float(f32)) for name, reference, f64, f32 in rows}
    expected = {e.name: (e.reference, F64_RTOL, e.f32_rtol) for e in ENTRIES.values()}
    assert table == expected


def test_ci_runs_the_readme_test_command():
    command = re.findall(r"^(pip install -e \"\.\[test\]\" && .+)$", README, re.M)
    assert len(command) == 1
    assert command[0] in (ROOT / ".ci" / "run").read_text()
