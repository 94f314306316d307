"""Keller Jordan's Muon (the official code); Muon for hidden matrices, AdamW for the rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp

from optix import _checks
from optix.core import EmptyState, GradientTransformation, ScalarOrSchedule, chain
from optix.optimizers.adam import adamw
from optix.optimizers.muon import scale_by_muon
from optix.optimizers.muon_axes import DimNumsOrFn, MuonDimensionNumbers
from optix.optimizers.newton_schulz import JORDAN_NS_COEFFS, check_ns_steps
from optix.transforms.partition import partition
from optix.transforms.scaling import scale_by_learning_rate
from optix.transforms.weight_decay import add_decayed_weights

AdjustLr = Literal["original", "match_rms_adamw"] | None


def jordan_dimension_numbers(leaf: Any) -> MuonDimensionNumbers:
    """The reference's view of a leaf as matrices: a 4-D conv filter ``(out, in, kh, kw)``
    is one ``(out, in * kh * kw)`` matrix; otherwise the last two axes form the matrices
    and the leading ones are batch axes."""
    if leaf.ndim == 4:
        return MuonDimensionNumbers(reduction_axis=0, output_axis=(1, 2, 3))
    return MuonDimensionNumbers(reduction_axis=-2, output_axis=-1)


def scale_by_rows_over_cols(adjust_lr_fn: AdjustLr = "original") -> GradientTransformation:
    """Scale each update by a factor of its stored shape, rows = shape[-2], cols = shape[-1].

    For each leaf:

        u = sqrt(max(1, rows / cols)) * g          if adjust_lr_fn is None or "original"
        u = 0.2 * sqrt(max(rows, cols)) * g        if adjust_lr_fn == "match_rms_adamw"

    "original" is Jordan's (and torch.optim.Muon's default) scaling, written for
    torch's ``(out, in)`` weights; for a 4-D conv filter it reads ``kh / kw``, as the
    reference does. "match_rms_adamw" is Liu et al.'s.

    References:
        Jordan, github.com/KellerJordan/Muon (muon.py, muon_update). Liu et al., "Muon
        is Scalable for LLM Training", arXiv:2502.16982.
        Checked against torch.optim.Muon in tests/torch/test_muon.py.
    """
    _checks.one_of("scale_by_rows_over_cols", "adjust_lr_fn", adjust_lr_fn,
                   (None, "original", "match_rms_adamw"))  # fmt: skip

    def factor(shape):
        rows, cols = shape[-2], shape[-1]
        if adjust_lr_fn == "match_rms_adamw":
            return 0.2 * max(rows, cols) ** 0.5
        return max(1.0, rows / cols) ** 0.5

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(lambda u: (factor(u.shape) * u).astype(u.dtype), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def muon_jordan(
    learning_rate: ScalarOrSchedule = 0.02,
    weight_decay: ScalarOrSchedule = 0.0,
    momentum: float = 0.95,
    ns_steps: int = 5,
    nesterov: bool = True,
    *,
    ns_coeffs: tuple[float, float, float] = JORDAN_NS_COEFFS,
    eps: float = 1e-7,
    ns_dtype: jax.typing.DTypeLike | None = jnp.bfloat16,
    mu_dtype: jax.typing.DTypeLike | None = None,
    weight_dimension_numbers: DimNumsOrFn | None = None,
) -> GradientTransformation:
    """Muon as Keller Jordan's reference code (``SingleDeviceMuon``) computes it.

    For each leaf (every leaf must have rank >= 2), with g the incoming gradient:

        mu = momentum * mu + (1 - momentum) * g
        m = (1 - momentum) * g + momentum * mu        if nesterov, else m = mu
        o = NS(m)         (bfloat16, each matrix divided by its Frobenius norm + eps)
        p = p - learning_rate * (sqrt(max(1, rows / cols)) * o + weight_decay * p)

    with rows, cols = p.shape[-2], p.shape[-1]: ``chain(scale_by_muon(...,
    bias_correction=False), scale_by_rows_over_cols(), add_decayed_weights,
    scale_by_learning_rate)``. The decay is ``p *= 1 - lr * weight_decay``.

    How Optax's ``muon`` differs: it divides the momentum by 1 - momentum**t (bias
    correction, which changes the Nesterov mix and the early steps' eps), iterates in
    the params' precision, adds eps 1e-8, and scales by sqrt(max(1, fan_out / fan_in))
    in its (reduction, output) axes: for a Flax ``(in, out)`` kernel that is cols /
    rows, the other axis from the reference's rows / cols (written for torch's
    ``(out, in)`` weights). Optax also routes non-matrix leaves to AdamW; here they are
    an error (use ``muon_with_adamw``).

    Args:
        learning_rate: Step size, in units of spectral norm per step; a number or a
            schedule (the reference's default 0.02).
        weight_decay: Decoupled decay, >= 0, multiplied by the learning rate.
        momentum: Decay of the momentum, in (-1, 1].
        ns_steps: Newton-Schulz steps, an int >= 0.
        nesterov: Orthogonalize the Nesterov mix of gradient and momentum.
        ns_coeffs: The quintic's (c0, c1, c2) (or one triple per step).
        eps: Added to the Frobenius norm before dividing, >= 0.
        ns_dtype: Dtype of the iteration; ``None`` iterates in float32 or wider (the
            exact orthogonalization, for comparisons in float64).
        mu_dtype: Dtype of the momentum; ``None`` keeps the params' dtype.
        weight_dimension_numbers: Which axes form the matrices (``MuonDimensionNumbers``
            for all leaves, a tree of them, or a function of the updates). ``None``:
            the reference's rule, ``jordan_dimension_numbers``, which assumes torch's
            layouts; a Flax conv kernel ``(kh, kw, in, out)`` needs
            ``MuonDimensionNumbers((0, 1, 2), 3)``.

    Returns:
        A GradientTransformation; its state is ``(MuonState, EmptyState, ...)``.

    References:
        Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024,
        https://kellerjordan.github.io/posts/muon/, and github.com/KellerJordan/Muon
        (muon.py).
        Checked against muon_reference (a NumPy transliteration of the official
        muon.py) in tests/optimizers/test_muon_jordan.py.
    """
    fn = "muon_jordan"
    check_ns_steps(fn, ns_steps)
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.non_negative(fn, allow_schedule=True, weight_decay=weight_decay)
    _checks.momentum(fn, momentum=momentum)
    _checks.non_negative(fn, eps=eps)
    _checks.floating_dtype(fn, ns_dtype=ns_dtype, mu_dtype=mu_dtype)

    def jordan_dims(tree):
        return jax.tree.map(jordan_dimension_numbers, tree)

    if weight_dimension_numbers is None:
        weight_dimension_numbers = jordan_dims
    return chain(
        scale_by_muon(
            ns_coeffs,
            ns_steps,
            momentum,
            eps,
            mu_dtype,
            nesterov=nesterov,
            weight_dimension_numbers=weight_dimension_numbers,
            bias_correction=False,
            ns_dtype=ns_dtype,
        ),
        scale_by_rows_over_cols(),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(learning_rate),
    )


def _is_embedding_or_head(key: str) -> bool:
    key = key.lower()
    return "embed" in key or key == "head" or key.endswith("_head") or key.startswith("head_")


def is_hidden_matrix(path: tuple[Any, ...], leaf: Any) -> bool:
    """The default Muon predicate: rank >= 2 and no embedding or output head on the path.

    Embeddings and output heads are matrices that Muon should not train (Jordan's
    example sends them, biases, gains and norms to AdamW). A path key names one if it
    contains "embed" or is "head", "*_head" or "head_*", without regard to case:
    ``Embed_0``, ``token_embedding``, ``lm_head`` and ``Head_0`` are excluded,
    ``MultiHeadDotProductAttention_0`` is not.
    """
    keys = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
    return jnp.ndim(leaf) >= 2 and not any(_is_embedding_or_head(k) for k in keys)


def muon_with_adamw(
    learning_rate: ScalarOrSchedule = 0.02,
    weight_decay: ScalarOrSchedule = 0.0,
    momentum: float = 0.95,
    adam_learning_rate: ScalarOrSchedule = 3e-4,
    adam_b1: float = 0.9,
    adam_b2: float = 0.95,
    adam_eps: float = 1e-10,
    adam_weight_decay: ScalarOrSchedule = 0.0,
    *,
    is_muon_param: Callable[[tuple[Any, ...], Any], bool] | None = None,
    nesterov: bool = True,
    ns_steps: int = 5,
    ns_dtype: jax.typing.DTypeLike | None = jnp.bfloat16,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    """Muon for the hidden matrices, AdamW (own learning rate and decay) for the rest.

    Jordan's ``SingleDeviceMuonWithAuxAdam``, with its defaults: each leaf for which
    ``is_muon_param(path, leaf)`` holds gets ``muon_jordan(learning_rate,
    weight_decay, momentum)``; every other leaf (embeddings, heads, biases, norms,
    scalars) gets ``adamw(adam_learning_rate, adam_b1, adam_b2, adam_eps,
    weight_decay=adam_weight_decay)``, i.e. p -= lr * (m_hat / (sqrt(v_hat) + eps) +
    wd * p). A ``partition`` with labels "muon" and "adam" (either may be empty).

    Args:
        learning_rate: The Muon group's, see ``muon_jordan``.
        weight_decay: The Muon group's, see ``muon_jordan``.
        momentum: The Muon group's, see ``muon_jordan``.
        adam_learning_rate: AdamW's step size, a number or a schedule.
        adam_b1: AdamW's first-moment decay, in (-1, 1).
        adam_b2: AdamW's second-moment decay, in [0, 1).
        adam_eps: Added to AdamW's denominator, >= 0.
        adam_weight_decay: AdamW's decoupled decay, >= 0.
        is_muon_param: ``(key path, leaf) -> bool``; None: ``is_hidden_matrix``. It
            sees the params at init and the updates at each step, so it must depend
            on paths and shapes only.
        nesterov: The Muon group's, see ``muon_jordan``.
        ns_steps: The Muon group's, see ``muon_jordan``.
        ns_dtype: The Muon group's, see ``muon_jordan``.
        mu_dtype: The Muon group's, see ``muon_jordan``; also AdamW's ``mu_dtype``.

    References:
        Jordan, github.com/KellerJordan/Muon (muon.py, SingleDeviceMuonWithAuxAdam).
        Checked against muon_reference (NumPy transliteration) in
        tests/optimizers/test_muon_jordan.py.
    """
    fn = "muon_with_adamw"
    check_ns_steps(fn, ns_steps)
    _checks.finite(fn, allow_schedule=True, learning_rate=learning_rate)
    _checks.finite(fn, allow_schedule=True, adam_learning_rate=adam_learning_rate)
    _checks.non_negative(fn, allow_schedule=True, weight_decay=weight_decay)
    _checks.non_negative(fn, allow_schedule=True, adam_weight_decay=adam_weight_decay)
    _checks.momentum(fn, momentum=momentum)
    _checks.momentum(fn, closed_right=False, adam_b1=adam_b1)
    _checks.in_unit_interval(fn, adam_b2=adam_b2)
    _checks.non_negative(fn, adam_eps=adam_eps)
    _checks.floating_dtype(fn, ns_dtype=ns_dtype, mu_dtype=mu_dtype)
    if is_muon_param is None:
        is_muon_param = is_hidden_matrix
    if not callable(is_muon_param):
        raise TypeError(f"{fn}: is_muon_param must be a function (path, leaf) -> bool")

    def labels(tree):
        return jax.tree_util.tree_map_with_path(
            lambda path, x: "muon" if is_muon_param(path, x) else "adam", tree
        )

    muon_part = muon_jordan(
        learning_rate, weight_decay, momentum, ns_steps, nesterov,
        ns_dtype=ns_dtype, mu_dtype=mu_dtype,
    )  # fmt: skip
    adam_part = adamw(
        adam_learning_rate, adam_b1, adam_b2, adam_eps, mu_dtype=mu_dtype,
        weight_decay=adam_weight_decay,
    )  # fmt: skip
    return partition({"muon": muon_part, "adam": adam_part}, labels, allow_unused=True)
