"""examples/schedule_free_batchnorm.py trains and evaluates at x with recomputed BatchNorm
statistics (tests/test_examples.py also runs it, for 5 steps)."""

import re

from tests.test_examples import ROOT, STRICT, run_example

SCRIPT = ROOT / "examples" / "schedule_free_batchnorm.py"
NUMBER = r"([0-9.]+)"


def test_schedule_free_batchnorm_example_learns_and_recomputes_statistics(tmp_path):
    out = tmp_path / "schedule_free_batchnorm.png"
    stdout = run_example(SCRIPT, "--steps", "40", "--out", str(out), cwd=tmp_path, extra_env=STRICT)
    accuracy = float(re.search(rf"^test accuracy: {NUMBER}$", stdout, re.M).group(1))
    loss = float(re.search(rf"^test loss: {NUMBER}$", stdout, re.M).group(1))
    stale = re.search(rf"running statistics: test loss {NUMBER}, accuracy {NUMBER}", stdout)
    assert accuracy >= 0.9, stdout
    # The recomputed statistics are not the running ones: the two evaluations differ.
    assert float(stale.group(1)) != loss, stdout
    assert out.is_file() and out.stat().st_size > 0
