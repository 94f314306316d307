"""Optimizers on 8 CPU devices give the numbers they give on one (issue 8, parts 2 and 3).

The device count must be set before JAX starts, and this process may already run JAX
on one device, so the checks run in subprocesses: tests/sharding/eight_devices.py
(the registry in two halves, and the reductions) and two tests/sharding/two_processes.py
joined by ``jax.distributed`` over loopback. They all start at once and the tests read
their results. Under pytest-xdist one worker runs them and the others wait for its
file (the recipe of pytest-xdist's docs for session fixtures), so they run once.

Differences are normwise per leaf, ``max|sharded - single| / max|single|``: the
reductions add the blocks of split leaves in another order than one device does.
"""

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.registry import ENTRIES
from tests.sharding.checks import STAGE3

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RTOL = 1e-6
TIMEOUT = 600
NAMES = sorted(ENTRIES)
CASES = [
    "clip_by_global_norm",
    "lamb",
    "lars",
    "adafactor",
    "monitored",
    "apply_if_finite",
    "skip_not_finite",
    "novograd",
    "sm3",
    "polyak_sgd",
    "zero_nans",
]
# Optimizers whose state copies the params (Lookahead's slow weights, the initial point of
# DoG, Prodigy, MADGRAD, COCOB, D-Adaptation and Mechanic, Schedule-Free's z, SAM's
# cache): they cannot be created from abstract params.
COPIES_PARAMS = {
    *("ranger", "dog", "dowg", "prodigy", "madgrad", "cocob", "mechanize", "sam"),
    *("dadapt_sgd", "dadapt_adagrad", "schedule_free_adamw", "schedule_free_sgd"),
}
# Prodigy's step size sums over every leaf: the blocks of split leaves add in another order.
ZERO1_RTOL = {"prodigy": 2e-6}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_all() -> dict:
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    env.pop("XLA_FLAGS", None)
    port = free_port()
    commands = {
        "registry0": [HERE / "eight_devices.py", "registry", "0", "2"],
        "registry1": [HERE / "eight_devices.py", "registry", "1", "2"],
        "reductions": [HERE / "eight_devices.py", "reductions"],
        "process0": [HERE / "two_processes.py", "0", str(port)],
        "process1": [HERE / "two_processes.py", "1", str(port)],
    }
    start = time.monotonic()
    running = {
        key: subprocess.Popen(
            [sys.executable, *map(str, command)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key, command in commands.items()
    }
    results, seconds = {}, {}
    for key, process in running.items():
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        seconds[key] = round(time.monotonic() - start, 1)
        lines = out.strip().splitlines()
        if process.returncode == 0 and lines:
            results[key] = json.loads(lines[-1])
        else:
            results[key] = {"error": f"exit {process.returncode}:\n{err[-3000:]}"}
    results["seconds"] = seconds
    return results


@pytest.fixture(scope="session")
def eight(tmp_path_factory):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return launch_all()
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "optix-eight-devices.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = shared / "optix-eight-devices.json"
        if not cached.exists():
            cached.write_text(json.dumps(launch_all()))
        return json.loads(cached.read_text())


@pytest.fixture(scope="session")
def registry(eight):
    for part in ("registry0", "registry1"):
        assert "error" not in eight[part], eight[part]["error"]
    return {**eight["registry0"], **eight["registry1"]}


@pytest.fixture(scope="session")
def reductions(eight):
    assert "error" not in eight["reductions"], eight["reductions"]["error"]
    return eight["reductions"]


def test_every_registry_entry_ran_sharded(registry):
    ran = {key for key in registry if "@" not in key}
    assert ran == set(NAMES)
    assert {key.split("@")[0] for key in registry if "@" in key} == set(STAGE3)


@pytest.mark.parametrize("name", NAMES)
def test_zero1_run_equals_single_device(registry, name):
    assert registry[name]["diff"] <= ZERO1_RTOL.get(name, RTOL)


@pytest.mark.parametrize("name", STAGE3)
def test_zero3_run_equals_single_device(registry, name):
    assert registry[f"{name}@stage3"]["diff"] <= RTOL


@pytest.mark.parametrize("name", NAMES)
def test_state_bytes_per_device_are_the_zero_fraction(registry, name):
    result = registry[name]
    # Every device holds the same share; leaves with a dim divisible by 8 hold an
    # eighth (checks.SHAPES make that the whole rule), the others stay whole.
    assert result["bytes"] == [result["expected"]] * 8
    assert result["init_bytes"] == [result["expected"]] * 8


@pytest.mark.parametrize("name", NAMES)
def test_sharded_init_equals_init(registry, name):
    assert registry[name]["init_diff"] == 0.0
    error = registry[name].get("abstract_init_error")
    if name in COPIES_PARAMS:
        assert "copies param values" in error
    else:
        assert error is None


@pytest.mark.parametrize("case", CASES)
def test_reductions_agree_under_jit_with_shardings(reductions, case):
    assert reductions[case]["gspmd"] <= RTOL


@pytest.mark.parametrize("case", CASES)
def test_reductions_agree_under_shard_map_with_axis_name(reductions, case):
    assert reductions[case]["shard_map"] <= RTOL


@pytest.mark.parametrize("case", CASES)
def test_without_axis_name_shard_map_is_wrong_or_refused(reductions, case):
    # Without the axis name each device reduces its own blocks: trust ratios come out
    # silently wrong; the others make replicated outputs differ between devices, which
    # JAX's check of out_specs (or of lax.cond's branches) rejects.
    result = reductions[case]
    if case in ("lamb", "lars"):
        assert result["without_axis_name"] > 1e-3
    else:
        assert "without_axis_name_error" in result, result


def test_check_vma_false_is_refused(reductions):
    assert "check_vma=True" in reductions["check_vma_false"]


def test_jit_step_reuses_donated_buffers(reductions):
    assert reductions["donation"] == {"deleted": True, "shardings_kept": True}


def test_state_types_are_stable_on_an_explicit_mesh(reductions):
    assert reductions["explicit_mesh"] and all(reductions["explicit_mesh"].values())


def test_two_processes_over_loopback(eight):
    results = [eight["process0"], eight["process1"]]
    for result in results:
        assert "error" not in result, result["error"]
    assert [r["process"] for r in results] == [0, 1]
    for result in results:
        assert result["global_devices"] == 8 and result["local_devices"] == 4
        assert result["diff"] <= RTOL
        assert not result["mu_fully_addressable"]
        assert result["mu_block"] == [8, 16]  # (64, 16) split 8 ways along dim 0
        # 4 of the 8 devices, each holding its ZeRO share of the state.
        assert result["state_local_bytes"] == result["state_local_bytes_at_init"]
        assert result["state_local_bytes"] == 4 * result["expected_per_device"]
    with contextlib.suppress(KeyError):
        print("subprocess seconds:", eight["seconds"])
