"""optix type-checks clean with pyright (basic) and mypy, and an optix transformation is
accepted where Flax and Optax code annotates Optax's types.

The settings are the project's (``[tool.pyright]`` and ``[tool.mypy]`` in
pyproject.toml). The snippets in tests/typing_snippets are checked as a user's project
sees optix, installed: pyright in its default ("standard") mode with optix on the
Python path, so only names optix exports count. ``rejected_look_alike.py`` must fail
on each line marked ``# rejected``, which shows that the checkers resolve Optax's real
classes (optax ships no type information) rather than treating them as ``Any``.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT / "tests" / "typing_snippets"
CLEAN = SNIPPETS / "flax_usage.py"
REJECTED = SNIPPETS / "rejected_look_alike.py"
MYPY_ERROR = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): error: (?P<message>.*)$", re.M)


def rejected_lines():
    lines = REJECTED.read_text().splitlines()
    return {number for number, line in enumerate(lines, 1) if line.endswith("# rejected")}


def run(command, cwd, extra_env=None):
    env = {**os.environ, **(extra_env or {})}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def pyright_errors(*args, cwd, extra_env=None):
    """Pyright's error diagnostics as ``(path, 1-based line, message)``."""
    command = [sys.executable, "-m", "pyright", "--outputjson", "--pythonpath", sys.executable]
    result = run([*command, *args], cwd, extra_env)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"pyright did not run:\n{result.stdout}\n{result.stderr}") from None
    return [
        (Path(d["file"]), d["range"]["start"]["line"] + 1, d["message"])
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]


def test_optix_passes_pyright():
    errors = pyright_errors("--project", str(ROOT / "pyproject.toml"), cwd=ROOT)
    assert not errors, "\n".join(f"{path}:{line}: {message}" for path, line, message in errors)


def test_snippets_pass_pyright_as_a_user_project_sees_optix(tmp_path):
    (tmp_path / "pyrightconfig.json").write_text(json.dumps({"pythonVersion": "3.10"}))
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    errors = pyright_errors(
        str(CLEAN), str(REJECTED), cwd=tmp_path, extra_env={"PYTHONPATH": pythonpath}
    )
    assert [e for e in errors if e[0] != REJECTED] == []
    assert {line for path, line, _ in errors if path == REJECTED} == rejected_lines()


def test_optix_and_snippets_pass_mypy(tmp_path):
    result = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "optix",
            str(CLEAN.relative_to(ROOT)),
            str(REJECTED.relative_to(ROOT)),
        ],
        cwd=ROOT,
    )
    output = result.stdout + result.stderr
    errors = [(ROOT / m["path"], int(m["line"])) for m in MYPY_ERROR.finditer(result.stdout)]
    assert [e for e in errors if e[0] != REJECTED] == [], output
    assert {line for path, line in errors if path == REJECTED} == rejected_lines(), output
