"""optix.torch.sparse_adam against torch.optim.SparseAdam fed sparse COO gradients."""

import inspect

import jax
import numpy as np
import pytest
import torch

from optix.torch.sparse_adam import sparse_adam
from tests.reference import CONSTANT_LR, DTYPES, SCHEDULES, STEPS, learning_rates, lr_schedule
from tests.registry import ENTRIES
from tests.sparse_reference import assert_close, gradient_sequence, run_optix, run_torch_sparse

CASES = {
    "default": {},
    "betas_eps": {"betas": (0.8, 0.9), "eps": 1e-3},
    "maximize": {"betas": (0.5, 0.99), "maximize": True},
}


def torch_trajectory(kwargs, dtype, mode, grads, lrs):
    make = lambda params, lr: torch.optim.SparseAdam(params, lr=lr, **kwargs)
    return run_torch_sparse(make, dtype, mode, grads, lrs)


@SCHEDULES
@DTYPES
@pytest.mark.parametrize("mode", ["sparse", "dense"])
@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_matches_torch(case, mode, dtype, schedule):
    """Uncoalesced COO gradients: absent rows, duplicates, an explicit zero row, no rows."""
    kwargs = CASES[case]
    grads = gradient_sequence()
    lrs = learning_rates() if schedule else [CONSTANT_LR] * STEPS
    tx = sparse_adam(lr_schedule if schedule else CONSTANT_LR, **kwargs)
    expected = torch_trajectory(kwargs, np.float64, mode, grads, lrs)
    if dtype == np.float64:
        with jax.enable_x64(True):
            actual, _ = run_optix(tx, np.float64, mode, grads)
        assert_close(actual, expected, 1e-10)
        return
    actual, _ = run_optix(tx, np.float32, mode, grads)
    rtol = ENTRIES["torch.sparse_adam"].f32_rtol
    assert_close(actual, expected, rtol)
    assert_close(actual, torch_trajectory(kwargs, np.float32, mode, grads, lrs), rtol)


def test_defaults_match_torch():
    ours = inspect.signature(sparse_adam).parameters
    theirs = inspect.signature(torch.optim.SparseAdam).parameters
    torch_names = [name for name in theirs if name != "params"]
    # torch's arguments in torch's order, then optix's keyword-only state dtypes.
    assert list(ours) == [*torch_names, "mu_dtype", "nu_dtype"]
    for name in torch_names:
        assert ours[name].default == theirs[name].default, name
        assert ours[name].kind == theirs[name].kind, name
    assert all(ours[n].kind is inspect.Parameter.KEYWORD_ONLY for n in ("mu_dtype", "nu_dtype"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sparse_adam(lr=0.0), "optix.torch.sparse_adam: lr must be > 0, got lr=0.0"),
        (lambda: sparse_adam(eps=0.0), "optix.torch.sparse_adam: eps must be > 0, got eps=0.0"),
        (
            lambda: sparse_adam(betas=(1.0, 0.999)),
            "optix.torch.sparse_adam: betas[0] must be in [0, 1), got betas[0]=1.0",
        ),
        (
            lambda: sparse_adam(betas=(0.9, -0.1)),
            "optix.torch.sparse_adam: betas[1] must be in [0, 1), got betas[1]=-0.1",
        ),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
