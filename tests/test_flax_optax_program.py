"""An Optax program runs unchanged on optix: examples/flax_optax_program.py, both ways.

The example imports ``optix as optax``; the same source with ``import optax`` runs on Optax.
Both runs print the same metrics at the same steps, to float32 rounding of two
implementations of the same arithmetic, and write a checkpoint that reads back exactly.
"""

import re

import pytest

from tests.test_examples import ROOT, run_example

PROGRAM = ROOT / "examples" / "flax_optax_program.py"
METRICS = re.compile(
    r"step +(\d+) \(optimizer count (\d+)\): train loss ([0-9.]+), "
    r"test loss ([0-9.]+), test accuracy ([0-9.]+)"
)
STEPS = 200


def metrics(stdout):
    rows = [tuple(float(v) for v in match) for match in METRICS.findall(stdout)]
    assert rows, stdout
    assert "checkpoint round trip exact: True" in stdout, stdout
    return rows


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("program")
    source = PROGRAM.read_text()
    assert source.count("import optix as optax\n") == 1
    on_optax = tmp / "on_optax.py"
    on_optax.write_text(source.replace("import optix as optax\n", "import optax\n"))
    args = ["--steps", str(STEPS), "--out"]
    ours = run_example(PROGRAM, *args, str(tmp / "optix.png"), cwd=tmp)
    theirs = run_example(on_optax, *args, str(tmp / "optax.png"), cwd=tmp)
    return metrics(ours), metrics(theirs)


def test_the_program_runs_on_optix_as_on_optax(both_runs):
    ours, theirs = both_runs
    assert [row[:2] for row in ours] == [row[:2] for row in theirs]
    assert ours[-1][1] == STEPS  # the step count read with optax.tree.get
    for mine, reference in zip(ours, theirs, strict=True):
        # train loss, test loss: one float32 rounding apart per step, compounded over the run
        assert mine[2:4] == pytest.approx(reference[2:4], rel=2e-2, abs=1e-3)
        assert abs(mine[4] - reference[4]) <= 0.01  # test accuracy, within 4 of 450 digits


def test_the_program_learns(both_runs):
    ours, _ = both_runs
    assert ours[-1][4] >= 0.95
