"""Adam-mini against the official adam_mini.Adam_mini (1.1.1) on a small transformer-like tree.

The torch side gets parameters named as a torch model would name them; the optix side
gets the same tree (torch names and layouts), or its Flax mirror (Flax names, kernels
transposed to (in, out), a DenseGeneral query kernel (in, heads, head_dim)), whose
trajectory must be the torch trajectory transposed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from adam_mini import Adam_mini

from optix.core import apply_updates
from optix.optimizers.adam_mini import (
    AdamMiniBlocks,
    adam_mini,
    adam_mini_partition,
    scale_by_adam_mini,
)
from tests.reference import DTYPES, learning_rates, lr_schedule
from tests.registry.kron_mini import F32_RTOL

DIM, HEADS, VOCAB, STEPS = 8, 2, 6, 12
SHAPES = {  # torch name -> torch shape; k_proj has one key-value head (GQA)
    "embed.weight": (VOCAB, DIM),
    "layers.0.attn.q_proj.weight": (DIM, DIM),
    "layers.0.attn.k_proj.weight": (DIM // HEADS, DIM),
    "layers.0.attn.v_proj.weight": (DIM // HEADS, DIM),
    "layers.0.attn.o_proj.weight": (DIM, DIM // HEADS),
    "layers.0.mlp.up.weight": (2 * DIM, DIM),
    "layers.0.mlp.up.bias": (2 * DIM,),
    "layers.0.norm.weight": (DIM,),
    "lm_head.weight": (VOCAB, DIM),
    "temperature": (),
}
# The Flax mirror: torch name -> (Flax path, torch array -> Flax array, and back).
T = (lambda w: w.T, lambda w: w.T)
SAME = (lambda w: w, lambda w: w)
QUERY = (lambda w: w.T.reshape(DIM, HEADS, -1), lambda k: k.reshape(DIM, -1).T)
FLAX = {
    "embed.weight": ("Embed_0.embedding", *SAME),
    "layers.0.attn.q_proj.weight": ("layers_0.attn.query.kernel", *QUERY),
    "layers.0.attn.k_proj.weight": ("layers_0.attn.key.kernel", *T),
    "layers.0.attn.v_proj.weight": ("layers_0.attn.value.kernel", *T),
    "layers.0.attn.o_proj.weight": ("layers_0.attn.o_proj.kernel", *T),
    "layers.0.mlp.up.weight": ("layers_0.mlp.up.kernel", *T),
    "layers.0.mlp.up.bias": ("layers_0.mlp.up.bias", *SAME),
    "layers.0.norm.weight": ("layers_0.LayerNorm_0.scale", *SAME),
    "lm_head.weight": ("lm_head.kernel", *T),
    "temperature": ("temperature", *SAME),
}


def nest(flat):
    """{"a.0.b": x} -> {"a": {"0": {"b": x}}}: key paths that name the leaves as torch does."""
    tree = {}
    for name, value in flat.items():
        *parents, last = name.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def flatten(tree):
    return {
        ".".join(k.key for k in path): np.asarray(x)
        for path, x in jax.tree_util.tree_leaves_with_path(tree)
    }


def problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = [{k: rng.normal(size=s) for k, s in SHAPES.items()} for _ in range(STEPS)]
    grads[3] = {k: np.zeros_like(g) for k, g in grads[3].items()}
    grads[6] = {k: 1e3 * g for k, g in grads[6].items()}
    return params, grads


def run_official(dtype, schedule, **kwargs):
    params, grads = problem()
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    tensors = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch_dtype)) for k, v in params.items()}
    opt = Adam_mini(
        list(tensors.items()),
        lr=0.05,
        dim=DIM,
        n_heads=HEADS,
        n_kv_heads=1,
        verbose=False,
        **kwargs,
    )
    out = []
    for t, g in enumerate(grads):
        for group in opt.param_groups:
            group["lr"] = learning_rates()[t] if schedule else 0.05
        for k, v in g.items():
            tensors[k].grad = torch.tensor(v, dtype=torch_dtype)
        opt.step()
        out.append({k: v.detach().numpy().copy() for k, v in tensors.items()})
    return out


def run_optix(dtype, schedule, flax=False, **kwargs):
    params, grads = problem()

    def to_tree(flat):
        if flax:
            flat = {path: to_flax(flat[k]) for k, (path, to_flax, _) in FLAX.items()}
        return jax.tree.map(lambda x: jnp.asarray(x, dtype), nest(flat))

    def from_tree(tree):
        flat = flatten(tree)
        if flax:
            flat = {k: back(flat[path]) for k, (path, _, back) in FLAX.items()}
        return flat

    lr = lr_schedule if schedule else 0.05
    tx = adam_mini(lr, dim=DIM, n_heads=HEADS, n_kv_heads=1, **kwargs)
    p = to_tree(params)
    state = tx.init(p)

    @jax.jit
    def step(p, state, g):
        updates, state = tx.update(g, state, p)
        return apply_updates(p, updates), state

    out = []
    for g in grads:
        p, state = step(p, state, to_tree(g))
        out.append(from_tree(p))
    return out


def worst(actual, expected):
    return max(
        float(np.max(np.abs(a[k] - e[k]) / np.maximum(np.abs(e[k]), 1e-3)))
        for a, e in zip(actual, expected, strict=True)
        for k in e
    )


CASES = [
    ({}, {}, False),
    (
        {"b1": 0.5, "b2": 0.9, "eps": 1e-3, "weight_decay": 0.5},
        {"betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.5},
        True,
    ),
]


@DTYPES
@pytest.mark.parametrize(
    ("kwargs", "torch_kwargs", "schedule"), CASES, ids=["default", "wd_betas_schedule"]
)
def test_trajectory_matches_official_adam_mini(kwargs, torch_kwargs, schedule, dtype):
    expected = run_official(np.float64, schedule, **torch_kwargs)
    moved = worst(expected[-1:], [problem()[0]])
    assert moved > 1e-2
    if dtype == np.float64:
        with jax.enable_x64(True):
            assert worst(run_optix(np.float64, schedule, **kwargs), expected) < 1e-10
        return
    actual = run_optix(np.float32, schedule, **kwargs)
    assert worst(actual, expected) < F32_RTOL["adam_mini"]
    assert worst(actual, run_official(np.float32, schedule, **torch_kwargs)) < F32_RTOL["adam_mini"]


def test_flax_mirror_follows_the_torch_trajectory():
    torch_kwargs = {"weight_decay": 0.5}
    expected = run_official(np.float64, False, **torch_kwargs)
    with jax.enable_x64(True):
        actual = run_optix(np.float64, False, flax=True, weight_decay=0.5)
    assert worst(actual, expected) < 1e-10


def test_default_partition_by_name():
    rule = adam_mini_partition(dim=DIM, n_heads=HEADS)
    path = lambda name: tuple(jax.tree_util.DictKey(k) for k in name.split("."))
    leaf = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
    assert rule(path("h.q_proj.weight"), leaf(8, 8)) == AdamMiniBlocks((1,), (-1, 32), True)
    assert rule(path("h.query.kernel"), leaf(8, 2, 4)) == AdamMiniBlocks((0, 2), None, True)
    assert rule(path("h.key.kernel"), leaf(8, 8)) == AdamMiniBlocks((0, 2), (8, -1, 4), True)
    assert rule(path("h.mlp.fc.weight"), leaf(16, 8)) == AdamMiniBlocks((1,), None, True)
    assert rule(path("h.mlp.fc.kernel"), leaf(8, 16)) == AdamMiniBlocks((0,), None, True)
    assert rule(path("h.mlp.fc.bias"), leaf(16)) == AdamMiniBlocks((), None, False)
    assert rule(path("h.LayerNorm_0.scale"), leaf(8)) == AdamMiniBlocks((0,), None, False)
    assert rule(path("h.Dense_0.kernel"), leaf(3, 4)) == AdamMiniBlocks((0, 1), None, True)


def test_state_holds_one_second_moment_per_block():
    tx = scale_by_adam_mini(dim=DIM, n_heads=HEADS)
    state = tx.init(
        {"q_proj": {"weight": jnp.ones((8, 8))}, "norm": jnp.ones(8), "w": jnp.ones((2, 3))}
    )
    assert state.nu["q_proj"]["weight"].shape == (2, 1)
    assert state.nu["norm"].shape == (1,)
    assert state.nu["w"].shape == (1, 1)


def test_user_partition_overrides_the_default():
    """A rule that keeps one second moment per entry is Adam (optax.adam's numbers)."""
    import optax

    per_entry = lambda path, leaf: AdamMiniBlocks(())
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)}
    ours, theirs = adam_mini(0.1, partition=per_entry), optax.adam(0.1)
    s1, s2 = ours.init(params), theirs.init(params)
    for t in range(3):
        g = {"w": jnp.sin(jnp.arange(6.0) + t).reshape(2, 3)}
        u1, s1 = ours.update(g, s1, params)
        with jax.numpy_dtype_promotion("standard"):  # Optax relies on it
            u2, s2 = theirs.update(g, s2, params)
        np.testing.assert_allclose(u1["w"], u2["w"], rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: adam_mini(b1=1.0), "adam_mini: b1 must be in (-1, 1), got b1=1.0"),
        (lambda: adam_mini(eps=-1.0), "adam_mini: eps must be finite and >= 0"),
        (lambda: adam_mini(weight_decay=-1.0), "adam_mini: weight_decay must be finite and >= 0"),
        (lambda: adam_mini(n_heads=4, n_kv_heads=3), "adam_mini: n_kv_heads must divide n_heads=4"),
        (lambda: adam_mini(dim=0), "adam_mini: dim must be >= 1, got dim=0"),
    ],
)
def test_bad_hyperparameters_raise(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
