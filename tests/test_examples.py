"""Every script in examples/ runs end to end, and train_digits reaches its stated accuracy.

Each example accepts ``--steps`` and ``--out``; the scripts run in a subprocess with
``--out`` under ``tmp_path``, so nothing is written into the repository.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Modules whose names start with "_" hold code shared by examples; they are not examples.
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
DIGITS = ROOT / "examples" / "train_digits.py"
ACCURACY = re.compile(r"test accuracy: ([0-9.]+)")

# The conftest's strict settings only reach this process; the quick runs pass them on
# so an example that silently promotes dtypes or ranks fails here too.
STRICT = {"JAX_NUMPY_DTYPE_PROMOTION": "strict", "JAX_NUMPY_RANK_PROMOTION": "raise"}


def run_example(script, *args, cwd, extra_env=None, timeout=300):
    # The checkout's optix comes first, whichever copy is installed.
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath, **(extra_env or {})}
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stderr[-5000:]}"
    return result.stdout


# The quick runs check that a script works; a few of its optimizers show that as well as all.
QUICK_ARGS = {"digits_optimizers.py": ["--optimizers", "sgd,adam,lion"]}


def test_examples_are_discovered():
    assert DIGITS in EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(script, tmp_path):
    out = tmp_path / f"{script.stem}.png"
    args = ["--steps", "5", "--out", str(out), *QUICK_ARGS.get(script.name, [])]
    stdout = run_example(script, *args, cwd=tmp_path, extra_env=STRICT)
    if script == DIGITS:
        assert ACCURACY.search(stdout), stdout
        assert out.is_file() and out.stat().st_size > 0


def test_train_digits_reaches_95_percent(tmp_path):
    out = tmp_path / "digits.png"
    stdout = run_example(DIGITS, "--out", str(out), cwd=tmp_path)
    match = ACCURACY.search(stdout)
    assert match, stdout
    assert float(match.group(1)) >= 0.95, stdout
