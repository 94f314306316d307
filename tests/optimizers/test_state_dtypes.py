"""Per-slot state dtypes: ``mu_dtype`` / ``nu_dtype`` on every registry optimizer with moments.

``CASES`` gives, for each optimizer, its registry hyperparameters as a function of the
dtype arguments and the state fields each argument sets. The tests check that the
requested dtypes land in exactly those fields (and nowhere else), that they survive
jitted updates without recompiling, that bf16 moments follow the float32-state
trajectory within a measured tolerance, that explicit float32 on float32 params is
bit-identical to the default, and that float32 moments work under bf16 params.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optix
from optix.optimizers.adabelief import adabelief
from optix.optimizers.adabound import adabound, amsbound
from optix.optimizers.adadelta import adadelta
from optix.optimizers.adagrad import adagrad
from optix.optimizers.adam_mini import adam_mini
from optix.optimizers.adamax import adamax, adamaxw
from optix.optimizers.adan import adan
from optix.optimizers.ademamix import ademamix
from optix.optimizers.adopt import adopt
from optix.optimizers.amsgrad import amsgrad
from optix.optimizers.asgd import asgd
from optix.optimizers.kron import kron
from optix.optimizers.lamb import lamb
from optix.optimizers.lars import lars
from optix.optimizers.lazy_adam import (
    SparseRows,
    apply_sparse_updates,
    lazy_adam,
    scale_by_lazy_adam,
)
from optix.optimizers.lion import lion
from optix.optimizers.nadam_schedule import scale_by_nadam
from optix.optimizers.novograd import novograd
from optix.optimizers.optimistic import optimistic_adam, optimistic_adam_v2
from optix.optimizers.padam import padam
from optix.optimizers.radam import radam
from optix.optimizers.ranger import ranger
from optix.optimizers.rmsprop import rmsprop
from optix.optimizers.schedule_free_aliases import schedule_free_adamw, schedule_free_sgd
from optix.optimizers.sign import signum
from optix.optimizers.sm3 import sm3
from optix.optimizers.yogi import yogi
from optix.torch import adaptive as torch_adaptive
from optix.torch.adafactor import adafactor as torch_adafactor
from optix.torch.asgd import asgd as torch_asgd
from optix.torch.radam import radam as torch_radam
from optix.torch.sparse_adam import sparse_adam as torch_sparse_adam
from optix.transforms.momentum import momentum_buffer
from tests.reference import gradient_sequence, initial_params
from tests.registry import ENTRIES
from tests.registry.deprecated import built_quietly
from tests.registry.muon import MU_DTYPE_MAKERS as MUON_MU_DTYPE_MAKERS

MU, NU, ACC = "mu_dtype", "nu_dtype", "accumulator_dtype"
ADAM_SLOTS = {MU: ("mu",), NU: ("nu",)}
AMS_SLOTS = {MU: ("mu",), NU: ("nu", "nu_max")}


def case(make, slots, tol):
    """``make(**dtypes)`` with the registry's hyperparameters, the state fields each
    dtype argument sets, and the measured ``drift`` of the bf16-state trajectory from
    the float32-state one over 20 steps, rounded up (0: identical; ASGD never applies
    its average, and the bf16 momentum flipped no sign of Lion's or Signum's step)."""
    return make, slots, tol


# Registry names, plus a few cases for code paths the registry hyperparameters skip.
CASES = {
    "sgd": case(lambda **kw: optix.sgd(0.05, 0.9, True, **kw), {ACC: ("trace",)}, 2e-3),
    "signum": case(lambda **kw: signum(0.01, **kw), {ACC: ("ema",)}, 0.0),
    "adam": case(lambda **kw: optix.adam(0.05, **kw), ADAM_SLOTS, 2e-3),
    "adopt": case(lambda **kw: adopt(0.05, **kw), {MU: ("mu",)}, 2e-3),
    "ademamix": case(
        lambda **kw: ademamix(0.05, b3=0.99, weight_decay=0.1, **kw), {MU: ("m1", "m2", "nu")}, 2e-3
    ),
    "adamw": case(lambda **kw: optix.adamw(0.05, weight_decay=0.1, **kw), ADAM_SLOTS, 2e-3),
    "nadam": case(lambda **kw: optix.nadam(0.05, **kw), ADAM_SLOTS, 2e-3),
    "nadamw": case(lambda **kw: optix.nadamw(0.05, weight_decay=0.1, **kw), ADAM_SLOTS, 2e-3),
    "amsgrad": case(lambda **kw: amsgrad(0.05, b2=0.8, **kw), AMS_SLOTS, 9e-4),
    "adamax": case(lambda **kw: adamax(0.05, **kw), ADAM_SLOTS, 5e-4),
    "adamaxw": case(lambda **kw: adamaxw(0.05, weight_decay=0.1, **kw), ADAM_SLOTS, 5e-4),
    "adabelief": case(
        lambda **kw: adabelief(0.05, rectify=True, weight_decay=1e-3, **kw), ADAM_SLOTS, 3e-4
    ),
    "adabelief(amsgrad)": case(lambda **kw: adabelief(0.05, amsgrad=True, **kw), AMS_SLOTS, 2e-3),
    "adabound": case(
        lambda **kw: adabound(0.05, final_lr=0.02, gamma=0.1, weight_decay=0.1, **kw),
        ADAM_SLOTS,
        4e-3,
    ),
    "amsbound": case(
        lambda **kw: amsbound(0.05, b2=0.8, final_lr=0.02, gamma=0.1, **kw), AMS_SLOTS, 5e-3
    ),
    "adadelta": case(
        lambda **kw: adadelta(2.0, weight_decay=1e-3, **kw), {NU: ("e_g", "e_x")}, 6e-5
    ),
    "adagrad": case(lambda **kw: adagrad(0.5, **kw), {NU: ("sum_of_squares",)}, 5e-4),
    "adan": case(
        lambda **kw: adan(0.05, weight_decay=0.1, max_grad_norm=3.0, **kw),
        {MU: ("m", "v"), NU: ("n",)},
        6e-4,
    ),
    "asgd": case(
        lambda **kw: asgd(0.05, lambd=0.1, t0=5.0, weight_decay=0.1, **kw), {MU: ("ax",)}, 0.0
    ),
    "kron": case(lambda **kw: kron(0.05, weight_decay=1e-3, **kw), {MU: ("mu",)}, 3e-3),
    "adam_mini": case(
        lambda **kw: adam_mini(0.05, weight_decay=1e-3, **kw), {MU: ("mu",)}, 2e-3
    ),
    "torch.adafactor": case(
        lambda **kw: torch_adafactor(0.05, weight_decay=1e-3, **kw),
        {NU: ("row_var", "col_var", "variance")},
        2e-4,
    ),
    "lamb": case(lambda **kw: lamb(0.05, weight_decay=0.1, **kw), ADAM_SLOTS, 2e-3),
    "lamb(uncorrected)": case(
        lambda **kw: lamb(0.05, bias_correction=False, max_param_norm=10.0, **kw),
        ADAM_SLOTS,
        2e-3,
    ),
    "lars": case(
        lambda **kw: lars(1.0, weight_decay=0.01, trust_coefficient=0.02, **kw),
        {MU: ("trace",)},
        2e-3,
    ),
    "lazy_adam": case(lambda **kw: lazy_adam(0.05, **kw), ADAM_SLOTS, 8e-4),
    "lion": case(lambda **kw: lion(0.01, weight_decay=0.1, **kw), {MU: ("mu",)}, 0.0),
    "novograd": case(lambda **kw: novograd(0.05, weight_decay=1e-3, **kw), ADAM_SLOTS, 3e-3),
    # Optax's deprecated first version: a mu_dtype, no nu_dtype.
    "optimistic_adam": case(
        lambda **kw: built_quietly(optimistic_adam, 0.05, **kw), {MU: ("mu",)}, 2e-3
    ),
    "optimistic_adam_v2": case(lambda **kw: optimistic_adam_v2(0.05, **kw), ADAM_SLOTS, 2e-3),
    "padam": case(lambda **kw: padam(0.05, weight_decay=0.1, **kw), AMS_SLOTS, 3e-3),
    "radam": case(lambda **kw: radam(0.05, **kw), ADAM_SLOTS, 3e-4),
    "ranger": case(lambda **kw: ranger(0.05, weight_decay=0.1, **kw), ADAM_SLOTS, 2e-4),
    "rmsprop": case(
        lambda **kw: rmsprop(0.01, centered=True, momentum=0.9, **kw),
        {MU: ("mu", "trace"), NU: ("nu",)},
        5e-3,
    ),
    "rmsprop(plain)": case(lambda **kw: rmsprop(0.01, **kw), {NU: ("nu",)}, 5e-5),
    # SM3 keeps Optax's field names: ``mu`` holds the accumulators, ``nu`` the EMA.
    "sm3": case(lambda **kw: sm3(0.5, **kw), {MU: ("nu",), NU: ("mu",)}, 3e-3),
    "yogi": case(lambda **kw: yogi(0.1, **kw), ADAM_SLOTS, 2e-3),
    # Schedule-Free's state_dtype sets z (its nu has the params' dtype, as in Optax).
    "schedule_free_adamw": case(
        lambda **kw: schedule_free_adamw(
            0.05, 3, weight_decay=0.1, warmup_convention="official", **kw
        ),
        {"state_dtype": ("z",)},
        9e-3,
    ),
    "schedule_free_sgd": case(
        lambda **kw: schedule_free_sgd(
            0.05, 3, weight_decay=0.1, warmup_convention="official", **kw
        ),
        {"state_dtype": ("z",)},
        6e-3,
    ),
    "scale_by_nadam": case(lambda **kw: scale_by_nadam(**kw), ADAM_SLOTS, 3e-3),
    "momentum_buffer": case(
        lambda **kw: momentum_buffer(0.9, 0.1, **kw), {ACC: ("momentum_buffer",)}, 3e-3
    ),
    "torch.adagrad": case(
        lambda **kw: torch_adaptive.adagrad(0.5, lr_decay=1e-3, weight_decay=1e-2, **kw),
        {NU: ("sum_of_squares",)},
        5e-4,
    ),
    "torch.adadelta": case(
        lambda **kw: torch_adaptive.adadelta(2.0, weight_decay=1e-2, **kw),
        {NU: ("e_g", "e_x")},
        5e-5,
    ),
    "torch.rmsprop": case(
        lambda **kw: torch_adaptive.rmsprop(
            0.01, momentum=0.9, centered=True, weight_decay=1e-2, **kw
        ),
        {MU: ("mu", "trace"), NU: ("nu",)},
        6e-3,
    ),
    "torch.radam": case(
        lambda **kw: torch_radam(0.05, betas=(0.9, 0.8), weight_decay=0.1, **kw),
        ADAM_SLOTS,
        8e-4,
    ),
    "torch.asgd": case(
        lambda **kw: torch_asgd(0.05, lambd=0.1, t0=5.0, weight_decay=0.1, **kw),
        {MU: ("ax",)},
        0.0,
    ),
    "torch.sparse_adam": case(
        lambda **kw: torch_sparse_adam(0.05, betas=(0.8, 0.99), **kw), ADAM_SLOTS, 3e-3
    ),
    # optix/torch/optim.py takes mu_dtype / nu_dtype once the integrator wires them in.
    "torch.sgd": case(
        lambda **kw: optix.torch.sgd(0.05, momentum=0.9, dampening=0.1, weight_decay=0.1, **kw),
        {MU: ("momentum_buffer",)},
        6e-3,
    ),
    "torch.adam": case(
        lambda **kw: optix.torch.adam(0.05, betas=(0.9, 0.8), weight_decay=0.1, amsgrad=True, **kw),
        AMS_SLOTS,
        2e-3,
    ),
    "torch.adamw": case(lambda **kw: optix.torch.adamw(0.05, **kw), ADAM_SLOTS, 2e-3),
    "torch.nadam": case(
        lambda **kw: optix.torch.nadam(0.05, weight_decay=0.1, **kw), ADAM_SLOTS, 5e-4
    ),
    "torch.adamax": case(
        lambda **kw: optix.torch.adamax(0.05, weight_decay=0.1, **kw), ADAM_SLOTS, 5e-4
    ),
    # Muon's momentum and AdamW's first moment, both fields named mu; measured 2.6e-3-3.0e-3.
    **{name: case(make, {MU: ("mu",)}, 4e-3) for name, make in MUON_MU_DTYPE_MAKERS.items()},
}

# Registry entries whose state holds no gradient moment, and why.
WITHOUT_MOMENTS = {
    "adafactor": "factored moments with their own dtype_momentum (optix/optimizers/adafactor.py)",
    "fromage": "stateless",
    "shampoo": "moments in the params' dtype, factors in matrix_dtype (no moment dtype args)",
    "soap": "moments in the params' dtype, factors in matrix_dtype (no moment dtype args)",
    # Optax's prodigy and dadapt_adamw take no state dtypes: moments in the params' dtype.
    "prodigy": "moments in the params' dtype, as Optax's (no dtype arguments)",
    "dadapt_adamw": "moments in the params' dtype, as Optax's (no dtype arguments)",
    "dadapt_sgd": "sums of scaled gradients in the params' dtype (official code)",
    "dadapt_adagrad": "sums of gradients and squares in the params' dtype (official code)",
    "lbfgs": "a memory of (s, y) pairs, not moments",
    "newton": "no moments",
    "newton_cg": "no moments",
    "noisy_sgd": "a random key and a count",
    "optimistic_gradient_descent": "the previous gradient, not a moment",
    "polyak_sgd": "stateless",
    "rprop": "step sizes and previous updates, not moments",
    "sign_sgd": "stateless",
    "torch.clip_grad_norm_transform": "a clipping transform; its momentum is torch.sgd's",
    "torch.lbfgs": "a memory of (s, y) pairs, not moments",
    "torch.rprop": "step sizes and previous updates, not moments",
    "sam": "the states of the optimizers it wraps, which take their own dtype arguments",
    "sam_sgd": "torch SGD's momentum buffer, in the params' dtype (no dtype argument)",
    "galore": "the base optimizer's moments in the low-rank shapes (its own dtype arguments)",
    "galore_adamw": "galore-torch's AdamW moments in the low-rank shapes (params' dtype)",
    "sophia": "needs an objective (obj_fn); mu_dtype is tested in tests/optimizers/test_sophia.py",
    "sophia_g": "needs an objective (logits_fn); mu_dtype is tested in tests/optimizers/test_sophia.py",
    # Optax's contrib signatures take no state dtype arguments.
    "cocob": "bets kept in the params' dtype, no dtype argument (Optax's signature)",
    "dog": "scalar distances and the initial params, no moments",
    "dowg": "scalar distances and the initial params, no moments",
    "mechanize": "scalars and the initial params; the base optimizer's own moments",
    "momo": "moments in the params' dtype, no dtype argument (Optax's signature)",
    "momo_adam": "moments in the params' dtype, no dtype argument (Optax's signature)",
    "simplified_ademamix": "moments in the params' dtype, no dtype argument (Optax's signature)",
    "madgrad": "sums in the params' dtype, no dtype argument (Optax's signature)",
    "acprop": "moments in the params' dtype, no dtype argument (Optax's signature)",
}

NAMES = sorted(CASES)
STEPS = 20
# Largest drift of the final bf16 state from the float32-state run's, measured 0.026
# (torch.rmsprop, torch.sparse_adam): a few bf16 roundings (2**-9 each) of the moments.
STATE_TOL = 3e-2


def make(name, **dtypes):
    return CASES[name][0](**dtypes)


def arguments(name):
    return CASES[name][1]


def as_params(tree, dtype):
    return jax.tree.map(lambda x: jnp.asarray(x, dtype), tree)


def dtypes_by_path(tree):
    return {jax.tree_util.keystr(p): x.dtype for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def expected_dtypes(name, default_state, requested):
    """The default state's leaf dtypes, with the leaves of each requested slot replaced.

    A slot is a state field (a NamedTuple attribute on the leaf's path); every requested
    argument must reach at least one leaf.
    """
    expected, reached = {}, set()
    for path, leaf in jax.tree_util.tree_leaves_with_path(default_state):
        on_path = {k.name for k in path if isinstance(k, jax.tree_util.GetAttrKey)}
        dtype = leaf.dtype
        for argument, slot_fields in arguments(name).items():
            if argument in requested and on_path & set(slot_fields):
                dtype, _ = jnp.dtype(requested[argument]), reached.add(argument)
        expected[jax.tree_util.keystr(path)] = dtype
    assert reached == set(requested), f"no state field of {name} is named {arguments(name)}"
    return expected


def drift(actual, expected):
    """max |actual - expected| / max |expected| per leaf (over all steps), the worst leaf."""
    worst = 0.0
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        if e.size:
            worst = max(worst, float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-30)))
    return worst


def float_leaves(state):
    return [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]


def run(name, param_dtype=jnp.float32, steps=STEPS, **dtypes):
    """Params after every jitted step (stacked per leaf), the final state, the initial
    state, and the number of traces of the step function."""
    tx = make(name, **dtypes)
    params = as_params(initial_params(), param_dtype)
    state = init_state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return optix.apply_updates(params, updates), state

    trajectory = []
    for g in gradient_sequence(steps):
        params, state = step(params, state, as_params(g, param_dtype))
        trajectory.append(params)
    stacked = jax.tree.map(
        lambda *xs: np.stack([np.asarray(x, np.float64) for x in xs]), *trajectory
    )
    return stacked, state, init_state, len(traces)


@functools.cache
def default_run(name):
    return run(name)


def test_every_registry_entry_is_classified():
    registry = set(ENTRIES)
    unclassified = registry - set(CASES) - set(WITHOUT_MOMENTS)
    assert not unclassified, (
        f"registry entries {sorted(unclassified)} are neither in CASES (state dtypes tested) "
        "nor in WITHOUT_MOMENTS of tests/optimizers/test_state_dtypes.py"
    )
    stale = set(WITHOUT_MOMENTS) - registry
    assert not stale, f"WITHOUT_MOMENTS names {sorted(stale)}, which the registry lacks"


@pytest.mark.parametrize("name", NAMES)
def test_each_argument_sets_exactly_its_slots(name):
    params = as_params(initial_params(), jnp.float32)
    default = make(name).init(params)
    # Two different narrow dtypes show which argument reached which leaf.
    narrow = dict(zip(arguments(name), (jnp.bfloat16, jnp.float16), strict=False))
    state = make(name, **narrow).init(params)
    assert jax.tree.structure(state) == jax.tree.structure(default)
    assert dtypes_by_path(state) == expected_dtypes(name, default, narrow)
    abstract = jax.eval_shape(make(name, **narrow).init, params)
    assert dtypes_by_path(abstract) == dtypes_by_path(state)


@pytest.mark.parametrize("name", NAMES)
def test_bf16_state_is_kept_by_jitted_updates_and_follows_the_float32_run(name):
    expected, expected_state, default_init, _ = default_run(name)
    bf16 = dict.fromkeys(arguments(name), jnp.bfloat16)
    trajectory, state, init_state, traces = run(name, **bf16)
    assert traces == 1
    assert jax.tree.structure(state) == jax.tree.structure(init_state)
    assert dtypes_by_path(state) == dtypes_by_path(init_state)
    assert dtypes_by_path(init_state) == expected_dtypes(name, default_init, bf16)
    assert drift(trajectory, expected) <= CASES[name][2]
    state_drift = drift(float_leaves(state), float_leaves(expected_state))
    assert 0 < state_drift <= STATE_TOL


@pytest.mark.parametrize("name", NAMES)
def test_explicit_float32_state_is_bit_identical_to_the_default(name):
    """Same initial state bits and the same traced step: every step gives the same bits."""
    params = as_params(initial_params(), jnp.float32)
    grads = as_params(gradient_sequence(1)[0], jnp.float32)
    programs, states = [], []
    for tx in (make(name), make(name, **dict.fromkeys(arguments(name), jnp.float32))):
        states.append(tx.init(params))
        step = lambda p, s, g, tx=tx: tx.update(g, s, p)
        programs.append(str(jax.make_jaxpr(step)(params, states[-1], grads)))
    assert dtypes_by_path(states[1]) == dtypes_by_path(states[0])
    jax.tree.map(np.testing.assert_array_equal, states[1], states[0])
    assert programs[1] == programs[0]


@pytest.mark.parametrize("name", NAMES)
def test_float32_state_under_bf16_params(name):
    float32_state = dict.fromkeys(arguments(name), jnp.float32)
    trajectory, state, init_state, traces = run(name, jnp.bfloat16, steps=3, **float32_state)
    assert traces == 1
    default = make(name).init(as_params(initial_params(), jnp.bfloat16))
    assert dtypes_by_path(init_state) == expected_dtypes(name, default, float32_state)
    assert dtypes_by_path(state) == dtypes_by_path(init_state)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(trajectory))
    assert drift(jax.tree.map(lambda x: x[-1], trajectory), initial_params()) > 1e-3


def test_adam_with_bf16_moments_stores_four_bytes_per_parameter():
    params = {"w": jnp.zeros((64, 32), jnp.float32), "b": jnp.zeros((32,), jnp.float32)}
    n = sum(x.size for x in jax.tree.leaves(params))

    def state_bytes(**dtypes):
        leaves = jax.tree.leaves(optix.adam(1e-3, **dtypes).init(params))
        counts = sum(x.nbytes for x in leaves if x.ndim == 0)
        return sum(x.nbytes for x in leaves) - counts, counts

    # Two float32 moments and Adam's int32 count (a constant learning rate keeps no count).
    assert state_bytes() == (8 * n, 4)
    assert state_bytes(mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16) == (4 * n, 4)
    assert state_bytes(mu_dtype=jnp.bfloat16) == (6 * n, 4)


def test_lazy_adam_sparse_rows_keep_bf16_moments():
    tx = scale_by_lazy_adam(mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)
    params = {"table": jnp.ones((8, 3), jnp.float32)}
    state = tx.init(params)
    rows = SparseRows(jnp.asarray([1, 5, 1]), jnp.full((3, 3), 0.5, jnp.float32), 8)
    updates, new_state = jax.jit(tx.update)({"table": rows}, state)
    assert new_state.mu["table"].dtype == new_state.nu["table"].dtype == jnp.bfloat16
    assert updates["table"].values.dtype == jnp.float32
    touched = np.flatnonzero(np.any(np.asarray(new_state.mu["table"], np.float32) != 0, axis=1))
    np.testing.assert_array_equal(touched, [1, 5])
    new_params = apply_sparse_updates(params, updates)
    assert new_params["table"].dtype == jnp.float32


# Constructors to validate under their own names, with every dtype argument they take.
VALIDATED = [(name, argument) for name in NAMES for argument in arguments(name)] + [
    ("scale_by_adam", MU),
    ("scale_by_adam", NU),
    ("trace", ACC),
    ("ema", ACC),
]
TRANSFORMS = {
    "scale_by_adam": optix.scale_by_adam,
    "trace": lambda **kw: optix.trace(0.9, **kw),
    "ema": lambda **kw: optix.ema(0.9, **kw),
}


def function_name(name):
    """The name in the error: the alias's (without the case label), optix.torch.* for torch."""
    return "optix." + name if name.startswith("torch.") else name.split("(")[0]


# Complex dtypes are valid state dtypes (complex parameters): tests/optimizers/test_complex.py.
@pytest.mark.parametrize("bad", [jnp.int32, "foo"], ids=["int32", "foo"])
@pytest.mark.parametrize(("name", "argument"), VALIDATED)
def test_non_floating_dtypes_are_rejected_with_the_function_and_argument(name, argument, bad):
    build = TRANSFORMS.get(name) or CASES[name][0]
    message = f"{function_name(name)}: {argument} must be a floating or complex dtype or None, got {argument}="
    with pytest.raises(TypeError, match=f"^{message}"):
        build(**{argument: bad})
