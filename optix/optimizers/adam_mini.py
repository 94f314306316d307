"""Adam-mini: Adam with one second moment per block of parameters (a head, a neuron, a leaf)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import (
    GradientTransformation,
    ScalarOrSchedule,
    chain,
    safe_increment,
    zero_count,
)
from optix.optimizers.adam import check_moment_args
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights
from optix.tree.leafwise import (
    abs_sq,
    bias_correction_factor,
    compute_dtype,
    ema_weights,
    map_leaves,
    real_dtype,
)
from optix.tree.math import zeros_like


class AdamMiniBlocks(NamedTuple):
    """How one leaf is cut into blocks that share a second moment.

    The leaf is viewed as ``shape`` (``None``: its own shape, -1 allowed) and ``|g|**2`` is
    averaged over ``reduce_axes`` of that view: ``()`` keeps one second moment per entry
    (Adam), every axis keeps one for the whole leaf. ``weight_decay`` says whether
    ``adam_mini``'s weight decay applies to the leaf.
    """

    reduce_axes: tuple[int, ...]
    shape: tuple[int, ...] | None = None
    weight_decay: bool = True


Partition = Callable[[tuple[Any, ...], Any], AdamMiniBlocks]

# The official code's name fragments (Adam-mini 1.1.1), matched in the lowercase path name.
EMBEDDING = ("embed", "embd", "wte")
OUTPUT = ("lm_head", "output", "final_layer")
QUERY_KEY = ("k_proj", "q_proj", "wq", "wk", "query", "key")
VALUE = ("v_proj", "wv", "value")
ATTENTION_PROJECTION = ("o_proj", "wo", "attn.proj")
MLP = ("feed_forward", "linear", "mlp")
NO_DECAY = ("norm", "ln", "bias")


def path_name(path: tuple[Any, ...]) -> str:
    """``"layers.0.attn.q_proj.weight"`` for a JAX key path: its keys joined by dots, lowercase."""
    parts = [getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in path]
    return ".".join(str(p) for p in parts).lower()


def _has(name: str, fragments: tuple[str, ...]) -> bool:
    return any(fragment in name for fragment in fragments)


def _check_heads(fn: str, dim: Any, n_heads: Any) -> None:
    _checks.integer_at_least(fn, "dim", dim, 1)
    _checks.integer_at_least(fn, "n_heads", n_heads, 1)


def adam_mini_partition(dim: int = 2048, n_heads: int = 32) -> Partition:
    """The official partition by name, for torch-named and Flax-named trees.

    With ``name = path_name(path)``, ``last`` its last key, a torch layout (out, in) for
    a "weight" and Flax's (in, out) for a "kernel", the first rule that matches wins:

        "bias" in name               one per entry (Adam)
        query or key names           one per head: torch views the leaf as
                                     (-1, dim * dim // n_heads); a Flax kernel (in, out)
                                     as (in, heads, out // heads), heads of the same
                                     dim * dim // n_heads entries; a Flax (in, heads,
                                     head_dim) kernel (DenseGeneral) per heads axis
        embedding, output, value,    one per row of dim 0 (torch averages dim 1 only,
        projection or MLP names      as the official code; an "embedding" too); one per
                                     index of dims 1.. for a Flax kernel (dim 0 averaged)
        anything else                one for the whole leaf (norms, scales)

    Leaves of fewer than two dims outside "bias" get one second moment per leaf, except
    vectors under the neuron rule (one per entry). Weight decay is off where "norm",
    "ln" or "bias" is in the name. The name lists are the module constants ``EMBEDDING``,
    ``OUTPUT``, ``QUERY_KEY``, ``VALUE``, ``ATTENTION_PROJECTION``, ``MLP``.
    """
    _check_heads("adam_mini_partition", dim, n_heads)
    head_numel = dim * dim // n_heads

    def rule(path: tuple[Any, ...], leaf: Any) -> AdamMiniBlocks:
        name = path_name(path)
        decay = not _has(name, NO_DECAY)
        shape = tuple(leaf.shape)
        flax = name.rsplit(".", 1)[-1] == "kernel"
        whole = AdamMiniBlocks(tuple(range(len(shape))), None, decay)
        if "bias" in name:
            return AdamMiniBlocks((), None, decay)
        if _has(name, QUERY_KEY):
            if len(shape) < 2:
                return whole
            if flax and len(shape) == 3:
                return AdamMiniBlocks((0, 2), None, decay)
            if flax:
                rows = max(head_numel // shape[0], 1)
                return AdamMiniBlocks((0, 2), (shape[0], -1, rows), decay)
            return AdamMiniBlocks((1,), (-1, head_numel), decay)
        if _has(name, EMBEDDING + OUTPUT + VALUE + MLP + ATTENTION_PROJECTION):
            if len(shape) < 2:
                return AdamMiniBlocks((), None, decay) if shape else whole
            return AdamMiniBlocks((0,) if flax else (1,), None, decay)
        return whole

    return rule


class ScaleByAdamMiniState(NamedTuple):
    """State of ``scale_by_adam_mini``."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar: number of updates applied so far
    mu: Any  # param-shaped: EMA of g (dtype mu_dtype)
    nu: Any  # per block: EMA of mean(|g|**2) over the block, the leaf's view with reduced dims 1


def _blocks(partition: Partition, tree: Any) -> Any:
    """``partition(path, leaf)`` for every leaf (``None`` leaves stay ``None``)."""
    return jax.tree_util.tree_map_with_path(partition, tree)


def _view(x: jax.Array, blocks: AdamMiniBlocks) -> jax.Array:
    return x if blocks.shape is None else x.reshape(blocks.shape)


def scale_by_adam_mini(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    dim: int = 2048,
    n_heads: int = 32,
    partition: Partition | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Rescale updates by Adam-mini's blockwise second moment.

    For each leaf, with g the incoming update, t = count + 1, and the blocks of
    ``partition(path, leaf)`` (an ``AdamMiniBlocks``; by default
    ``adam_mini_partition(dim, n_heads)``):

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * mean(|g|**2 over each block)
        u = (mu / (1 - b1**t)) / (sqrt(nu) / sqrt(1 - b2**t) + eps)   (nu broadcast over its block)

    Args:
        b1: Decay of the first moment, in (-1, 1).
        b2: Decay of the second moment, in [0, 1).
        eps: Added to the bias-corrected root of nu, >= 0.
        dim: Model width of the default partition (heads of dim * dim // n_heads entries).
        n_heads: Number of attention heads of the default partition, an int >= 1.
        partition: ``(key_path, leaf) -> AdamMiniBlocks``; None uses the default.
        mu_dtype: Dtype of ``mu``; ``None`` keeps the params' dtype.

    Returns:
        A GradientTransformation whose state is ``ScaleByAdamMiniState``.

    References:
        Zhang et al., "Adam-mini: Use Fewer Learning Rates To Gain More", ICLR 2025,
        arXiv:2406.16793.
        Checked against adam_mini.Adam_mini in tests/optimizers/test_adam_mini.py.
    """
    check_moment_args("scale_by_adam_mini", b1, b2, eps, mu_dtype=mu_dtype)
    _check_heads("scale_by_adam_mini", dim, n_heads)
    rule = adam_mini_partition(dim, n_heads) if partition is None else partition

    def init_leaf(p, blocks):
        view_shape = jax.eval_shape(lambda x: _view(x, blocks), p).shape
        shape = tuple(
            1 if i in _axes(blocks, len(view_shape)) else n for i, n in enumerate(view_shape)
        )
        return (jnp.zeros(shape, real_dtype(p.dtype)),)

    def init(params):
        _checks.real_params("scale_by_adam_mini", params, "its blocks share one real second moment")
        (nu,) = map_leaves(init_leaf, params, _blocks(rule, params), n_out=1)
        return ScaleByAdamMiniState(zero_count(), zeros_like(params, dtype=mu_dtype), nu)

    def leaf(g, mu, nu, blocks, c1, c2):
        dt = compute_dtype(g, mu, nu)
        rdt = real_dtype(dt)
        b1_, one_minus_b1 = ema_weights(b1, dt)
        b2_, one_minus_b2 = ema_weights(b2, rdt)
        g_ = g.astype(dt)
        g2 = abs_sq(_view(g_, blocks))
        mean_g2 = jnp.mean(g2, axis=_axes(blocks, g2.ndim), keepdims=True)
        nu_new = b2_ * nu.astype(rdt) + one_minus_b2 * mean_g2
        mu_new = b1_ * mu.astype(dt) + one_minus_b1 * g_
        h = jnp.sqrt(nu_new) / jnp.sqrt(c2.astype(rdt)) + jnp.asarray(eps, rdt)
        u = (_view(mu_new, blocks) / c1.astype(rdt) / h).reshape(g.shape)
        return u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        c1, c2 = bias_correction_factor(b1, count), bias_correction_factor(b2, count)
        updates, mu, nu = map_leaves(
            lambda g, m, v, blocks: leaf(g, m, v, blocks, c1, c2),
            updates,
            state.mu,
            state.nu,
            _blocks(rule, updates),
            n_out=3,
        )
        return updates, ScaleByAdamMiniState(count, mu, nu)

    return GradientTransformation(init, update)


def _axes(blocks: AdamMiniBlocks, ndim: int) -> tuple[int, ...]:
    return tuple(a % ndim for a in blocks.reduce_axes) if ndim else ()


def adam_mini(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    dim: int = 2048,
    n_heads: int = 32,
    n_kv_heads: int | None = None,
    partition: Partition | None = None,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Adam-mini: ``scale_by_adam_mini``, decoupled weight decay, then the learning rate.

    ``chain(scale_by_adam_mini, add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``, where the mask is the partition's
    ``weight_decay`` flags: each step is ``p = p * (1 - lr * wd) - lr * u``, as the
    official ``Adam_mini``. ``n_kv_heads`` (grouped-query attention) is checked to divide
    ``n_heads``; key and value leaves of fewer heads are split in blocks of the same size
    as the query's, as in the official code. Update rule and other arguments: see
    ``scale_by_adam_mini``.

    References:
        Zhang et al., "Adam-mini: Use Fewer Learning Rates To Gain More", ICLR 2025,
        arXiv:2406.16793.
        Checked against adam_mini.Adam_mini in tests/optimizers/test_adam_mini.py.
    """
    fn = "adam_mini"
    check_moment_args(fn, b1, b2, eps, mu_dtype=mu_dtype)
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative(fn, allow_schedule=True, weight_decay=weight_decay)
    _check_heads(fn, dim, n_heads)
    if n_kv_heads is not None:
        _checks.integer_at_least(fn, "n_kv_heads", n_kv_heads, 1)
        if n_heads % n_kv_heads:
            raise ValueError(
                f"{fn}: n_kv_heads must divide n_heads={n_heads}, got n_kv_heads={n_kv_heads}"
            )
    rule = adam_mini_partition(dim, n_heads) if partition is None else partition

    def mask(params):
        return jax.tree.map(lambda b: b.weight_decay, _blocks(rule, params), is_leaf=_is_blocks)

    return chain(
        scale_by_adam_mini(
            b1, b2, eps, dim=dim, n_heads=n_heads, partition=rule, mu_dtype=mu_dtype
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def _is_blocks(x: Any) -> bool:
    return isinstance(x, AdamMiniBlocks)
