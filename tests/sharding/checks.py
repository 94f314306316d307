"""The 8-device checks behind tests/sharding/test_eight_devices.py (run by eight_devices.py).

Each check runs an optimizer on one device and on a mesh of 8 and reports the largest
difference, per leaf normwise: ``max|sharded - single| / max|single|``.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import optix
import optix.sharding as osh
from tests.registry import ENTRIES

AXIS = "data"
STEPS = 4
# Entries also run with params and gradients split (ZeRO stage 3, FSDP): the ones whose
# reductions read params (trust ratios, parameter-scaled Adafactor, Lookahead).
STAGE3 = ("adafactor", "adam", "fromage", "lamb", "lars", "ranger", "sm3")


def mesh():
    return jax.make_mesh((8,), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def random_tree(shapes, seed, steps=None):
    rng = np.random.default_rng(seed)
    lead = () if steps is None else (steps,)
    return {k: rng.standard_normal(lead + s).astype(np.float32) for k, s in shapes.items()}


def abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


def _as_numpy(leaf):
    """A leaf as a NumPy array; a typed PRNG key (noise states) as its key data."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(leaf))
    return np.asarray(leaf)


def difference(expected, actual) -> float:
    """Largest normwise relative difference over matching leaves (inf if ints differ)."""
    worst = 0.0
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(actual), strict=True):
        a, b = _as_numpy(a), _as_numpy(b)
        if a.dtype.kind != "f":
            worst = max(worst, 0.0 if np.array_equal(a, b) else np.inf)
        elif a.size:
            scale = max(float(np.max(np.abs(a))), 1e-30)
            worst = max(worst, float(np.max(np.abs(a - b))) / scale)
    return worst


def zero_bytes(tree) -> int:
    """Per-device bytes under ZeRO: a leaf with a dim divisible by 8 is split 8 ways."""
    return sum(
        x.nbytes // 8 if any(n and n % 8 == 0 for n in x.shape) else x.nbytes
        for x in jax.tree.leaves(tree)
    )


def train(update, init):
    """Init and STEPS updates as one program: one compile per run."""

    def run(params, grads):
        def body(carry, g):
            p, s = carry
            u, s = update(g, s, p)
            return (optix.apply_updates(p, u), s), None

        return jax.lax.scan(body, (params, init(params)), grads)[0]

    return run


# ---------------------------------------------------------------------------- registry
SHAPES = {"w": (16, 4), "b": (8,), "odd": (3,), "s": ()}


def registry_run(name, stage, params, grads):
    tx, update = ENTRIES[name].make(), ENTRIES[name].updater()
    run = train(update, tx.init)
    if stage is None:
        return jax.jit(run)(params, grads), tx.init(params)
    m = mesh()
    plan = osh.zero_shardings(tx, abstract(params), NamedSharding(m, P()), stage=stage)
    stacked = jax.tree.map(lambda s: NamedSharding(m, P(None, *s.spec)), plan.grads)
    f = jax.jit(run, in_shardings=(plan.params, stacked), out_shardings=(plan.params, plan.state))
    new_params, state = f(params, grads)
    if stage != 1:
        return new_params, state, None, None
    # The state as osh.init creates it: from abstract params where it needs no values.
    try:
        return new_params, state, osh.init(tx, abstract(params), plan.state), None
    except ValueError as error:
        fresh = osh.init(tx, jax.device_put(params, plan.params), plan.state)
        return new_params, state, fresh, str(error)


def per_device(held):
    """Bytes on each device, sorted; 0 on every device for a state with no arrays (sgd)."""
    return sorted(held.get(device, 0) for device in jax.devices())


def registry(part, parts):
    params, grads = random_tree(SHAPES, 0), random_tree(SHAPES, 1, STEPS)
    names = sorted(ENTRIES)[part::parts]
    results = {}
    for name in names:
        single, single_init = registry_run(name, None, params, grads)
        for stage in (1, 3) if name in STAGE3 else (1,):
            p, s, fresh, init_error = registry_run(name, stage, params, grads)
            key = name if stage == 1 else f"{name}@stage3"
            held = osh.device_bytes(s)
            results[key] = {
                "diff": difference(single, (p, s)),
                "bytes": per_device(held),
                "full": sum(_as_numpy(x).nbytes for x in jax.tree.leaves(single[1])),
                "expected": zero_bytes(single[1]),
            }
            if init_error is not None:
                results[key]["abstract_init_error"] = init_error
            if fresh is not None:
                results[key]["init_bytes"] = per_device(osh.device_bytes(fresh))
                results[key]["init_diff"] = difference(single_init, fresh)
    return results


# -------------------------------------------------------------------------- reductions
REDUCTION_SHAPES = {
    "w": (16, 24),  # factored: rows r=0 (split), cols c=1
    "v": (24, 16),  # factored: rows r=1, cols c=0 (split)
    "k": (8, 32, 24),  # factored over dims 2 and 1; split along dim 0
    "b": (24,),
    "odd": (3, 5),  # no dim divisible by 8: replicated
    "s": (),
}
NAN_AT = ("w", 1, (2, 3))  # leaf, step, index: one entry in device 1's block of "w"


def reduction_cases():
    adam = optix.adam(1e-2)
    return {
        "clip_by_global_norm": optix.chain(
            optix.clip_by_global_norm(1.0), optix.sgd(0.1, momentum=0.9)
        ),
        "lamb": optix.lamb(1e-2, weight_decay=0.01),
        "lars": optix.lars(0.1),
        "adafactor": optix.adafactor(1e-2, min_dim_size_to_factor=8, momentum=0.9),
        "monitored": optix.monitored(adam),
        "apply_if_finite": optix.apply_if_finite(adam, 3),
        "skip_not_finite": optix.MultiSteps(
            adam, 2, should_skip_update_fn=optix.skip_not_finite
        ).gradient_transformation(),
        "novograd": optix.novograd(1e-2, weight_decay=0.01),
        "sm3": optix.sm3(0.1),
        "polyak_sgd": with_loss_value(optix.polyak_sgd(max_learning_rate=0.1), 2.0),
        "zero_nans": optix.chain(optix.zero_nans(), optix.sgd(0.1)),
    }


def with_loss_value(tx, value):
    """``tx`` fed a constant loss ``value`` at every update (Polyak's step reads it)."""

    def update(updates, state, params=None, **extra_args):
        return tx.update(updates, state, params, value=value, **extra_args)

    return optix.GradientTransformation(tx.init, update)


def shard_map_run(tx, params, grads, specs, state_specs, check_vma=True):
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optix.apply_updates(p, u), s

    def run(p, s, gs):
        for g in gs:
            p, s = step(p, s, g)
        return p, s

    m = mesh()
    mapped = jax.shard_map(
        run,
        mesh=m,
        in_specs=(specs, state_specs, [specs] * len(grads)),
        out_specs=(specs, state_specs),
        check_vma=check_vma,
    )
    sharding = jax.tree.map(lambda spec: NamedSharding(m, spec), specs)
    p = jax.device_put(params, sharding)
    s = osh.init(tx, p, jax.tree.map(lambda spec: NamedSharding(m, spec), state_specs))
    gs = [jax.device_put(g, sharding) for g in grads]
    return jax.jit(mapped)(p, s, gs)


def stacked(grads):
    return jax.tree.map(lambda *x: np.stack(x), *grads)


def gspmd_run(tx, params, grads, specs):
    """Params, gradients and state split ZeRO-3 style under jax.jit with shardings."""
    m = mesh()
    plan = osh.zero_shardings(
        tx, abstract(params), jax.tree.map(lambda spec: NamedSharding(m, spec), specs), stage=3
    )
    over_steps = jax.tree.map(lambda s: NamedSharding(m, P(None, *s.spec)), plan.grads)
    return jax.jit(
        train(tx.update, tx.init),
        in_shardings=(plan.params, over_steps),
        out_shardings=(plan.params, plan.state),
    )(params, stacked(grads))


def reductions():
    params = random_tree(REDUCTION_SHAPES, 2)
    grads = [random_tree(REDUCTION_SHAPES, 3 + t) for t in range(3)]
    leaf, step, index = NAN_AT
    with_nan = [dict(g) for g in grads]
    with_nan[step][leaf] = with_nan[step][leaf].copy()
    with_nan[step][leaf][index] = np.nan
    m = mesh()
    specs = osh.add_data_axis(NamedSharding(m, P()), params, AXIS)
    specs = jax.tree.map(lambda s: s.spec, specs)
    results = {}
    for name, tx in reduction_cases().items():
        gs = with_nan if name in ("apply_if_finite", "skip_not_finite", "zero_nans") else grads
        single = jax.jit(train(tx.update, tx.init))(params, stacked(gs))
        state_specs = osh.state_specs(tx, abstract(params), specs, zero_axis=AXIS, mesh=m)
        mapped = shard_map_run(osh.with_axis_name(tx, AXIS), params, gs, specs, state_specs)
        results[name] = {
            "gspmd": difference(single, gspmd_run(tx, params, gs, specs)),
            "shard_map": difference(single, mapped),
        }
        try:
            plain = shard_map_run(tx, params, gs, specs, state_specs)
            results[name]["without_axis_name"] = difference(single, plain)
        except (TypeError, ValueError) as error:
            results[name]["without_axis_name_error"] = f"{type(error).__name__}: {error}"[:300]
    results["donation"] = donation()
    results["explicit_mesh"] = explicit_mesh()
    try:
        tx = osh.with_axis_name(reduction_cases()["clip_by_global_norm"], AXIS)
        state_specs = osh.state_specs(tx, abstract(params), specs, zero_axis=AXIS, mesh=m)
        shard_map_run(tx, params, grads, specs, state_specs, check_vma=False)
        results["check_vma_false"] = "no error"
    except ValueError as error:
        results["check_vma_false"] = str(error)
    return results


def donation():
    """jit_step reuses the donated params and state: the inputs are deleted by the call."""
    m = mesh()
    params = jax.device_put(random_tree(SHAPES, 4), NamedSharding(m, P()))
    tx = optix.adamw(1e-2)
    plan = osh.zero_shardings(tx, params)
    state = osh.init(tx, params, plan.state)

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optix.apply_updates(p, u), s

    train = osh.jit_step(step, (plan.params, plan.state, plan.grads), (plan.params, plan.state))
    new_params, new_state = train(params, state, random_tree(SHAPES, 5))
    inputs = jax.tree.leaves((params, state))
    outputs = jax.tree.leaves((new_params, new_state))
    wanted = jax.tree.leaves((plan.params, plan.state))
    same = all(
        x.sharding.is_equivalent_to(sharding, x.ndim)
        for sharding, x in zip(wanted, outputs, strict=True)
    )
    return {"deleted": all(x.is_deleted() for x in inputs), "shardings_kept": same}


def explicit_mesh():
    """On a mesh with Explicit axes (jax.make_mesh's default) the state's types survive."""
    m = jax.make_mesh((8,), (AXIS,), axis_types=(jax.sharding.AxisType.Explicit,))
    txs = {
        "adam": optix.chain(optix.clip_by_global_norm(1.0), optix.adam(1e-2)),
        "adafactor": optix.adafactor(1e-2, min_dim_size_to_factor=8),
        "lamb": optix.lamb(1e-2),
        "sm3": optix.sm3(0.1),
    }
    stable = {}
    with jax.set_mesh(m):
        for name, tx in txs.items():
            for stage in (1, 3):
                params = jax.device_put(random_tree(REDUCTION_SHAPES, 6), NamedSharding(m, P()))
                plan = osh.zero_shardings(tx, params, stage=stage)
                params = jax.device_put(params, plan.params)
                state = osh.init(tx, params, plan.state)
                before = [jax.typeof(x) for x in jax.tree.leaves(state)]
                grads = jax.device_put(random_tree(REDUCTION_SHAPES, 7), plan.grads)
                _, state = jax.jit(tx.update)(grads, state, params)
                stable[f"{name}@stage{stage}"] = before == [
                    jax.typeof(x) for x in jax.tree.leaves(state)
                ]
    return stable
