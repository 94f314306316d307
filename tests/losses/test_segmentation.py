"""Dice losses against Optax and float64 NumPy formulas, with Optax's own cases."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optix import losses
from optix.losses import segmentation
from tests.losses.compiled import ours, theirs

NAMES = ["dice_loss", "binary_dice_loss", "multiclass_generalized_dice_loss"]


DICE, BINARY = ours("dice_loss"), ours("binary_dice_loss")
GDL = ours("multiclass_generalized_dice_loss")


def np_dice(probs, targets, smooth=1.0, alpha=0.5, beta=0.5, weights=None):
    """float64 per-class Dice/Tversky losses [batch, classes], sums over the middle axes."""
    p, t = np.asarray(probs, np.float64), np.asarray(targets, np.float64)
    axes = tuple(range(1, p.ndim - 1))
    inter, p_sum, t_sum = (p * t).sum(axes), p.sum(axes), t.sum(axes)
    loss = 1 - (inter + smooth) / (
        inter + alpha * (p_sum - inter) + beta * (t_sum - inter) + smooth
    )
    return loss if weights is None else loss * weights


def np_softmax(x):
    x = np.asarray(x, np.float64)
    if x.shape[-1] == 1:
        return 1 / (1 + np.exp(-x))
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def multiclass(seed, shape, classes):
    rng = np.random.default_rng(seed)
    logits = np.float32(rng.normal(size=(*shape, classes)))
    targets = np.float32(np.eye(classes)[rng.integers(0, classes, size=shape)])
    return logits, targets


def binary(seed, shape, p=0.5):
    rng = np.random.default_rng(seed)
    return np.float32(rng.normal(size=shape)), rng.random(shape) < p


def test_signatures_and_exports_match_optax():
    for name in NAMES:
        mine = inspect.signature(getattr(segmentation, name)).parameters
        optaxs = inspect.signature(getattr(optax.losses, name)).parameters
        assert [(p.name, p.kind, p.default) for p in mine.values()] == [
            (p.name, p.kind, p.default) for p in optaxs.values()
        ], name
        assert getattr(losses, name) is getattr(segmentation, name)


@pytest.mark.parametrize(
    "shape, classes", [((2, 8, 8), 1), ((2, 4, 4, 4), 1), ((2, 8, 8), 3), ((1, 16, 16), 5)]
)
def test_shapes_bounds_and_optax_values(shape, classes):
    if classes == 1:
        x, t = binary(0, (*shape, 1))
    else:
        x, t = multiclass(0, shape, classes)
    loss = DICE(x, t)
    assert loss.shape == shape[:1]
    assert np.all((loss >= 0) & (loss <= 1))
    np.testing.assert_allclose(loss, np_dice(np_softmax(x), t).mean(-1), rtol=1e-6)
    np.testing.assert_allclose(loss, theirs("dice_loss", x, t), rtol=1e-5)


def test_perfect_and_wrong_overlap():
    mask = jnp.array([[[1.0, 0, 1], [0, 1, 0], [1, 1, 0]]])[..., None]
    assert float(DICE(jnp.where(mask > 0, 10.0, -10.0), mask).mean()) < 0.01
    assert float(DICE(jnp.where(mask > 0, -10.0, 10.0), mask).mean()) > 0.7
    one_hot = jax.nn.one_hot(jnp.array([[0, 1, 2], [1, 0, 2], [2, 2, 1]]), 3)[None]
    assert float(DICE(jnp.where(one_hot > 0, 10.0, -10.0), one_hot).mean()) < 0.01


def test_near_perfect_masks_keep_precision_in_float32():
    """A loss of 1e-7 keeps 1e-6 relative precision: 1 - p and 1 - ratio would round it away."""
    # Small images: XLA's float32 sum of n entries on CPU drifts by up to ~n * 1e-8.
    _, t = binary(1, (2, 8, 8, 1))
    x, t3 = multiclass(1, (2, 8, 8), 3)
    cases = [(np.float32(np.where(t, 15.0, -15.0)), t), (np.float32(x + 20.0 * t3), t3)]
    for logits, targets in cases:
        reference = np_dice(np_softmax(logits), targets).mean(-1)
        assert np.all(reference < 1e-5)
        np.testing.assert_allclose(DICE(logits, targets), reference, rtol=1e-6)
        with jax.enable_x64(True):
            wide = np.asarray(DICE(np.float64(logits), np.float64(targets)))
        # The reference's own 1 - ratio in float64 keeps ~1e-16 / 3e-7 relative.
        np.testing.assert_allclose(wide, reference, rtol=1e-8)
        assert not np.allclose(theirs("dice_loss", logits, targets), reference, rtol=1e-3)


def test_float32_within_1e6_of_float64_and_optax_in_float64():
    x, t = multiclass(2, (3, 6, 6), 4)
    kwargs = {"alpha": 0.3, "beta": 0.7, "smooth": 0.5, "class_weights": np.arange(1.0, 5.0)}
    reference = np_dice(np_softmax(x), t, 0.5, 0.3, 0.7, np.arange(1.0, 5.0)).sum(-1)
    mine = DICE(x, t, reduction="sum", **kwargs)
    np.testing.assert_allclose(mine, reference, rtol=1e-6)
    with jax.enable_x64(True):
        wide = DICE(np.float64(x), np.float64(t), reduction="sum", **kwargs)
        np.testing.assert_allclose(wide, reference, rtol=1e-12)
        optaxs = theirs("dice_loss", np.float64(x), np.float64(t), reduction="sum", **kwargs)
        np.testing.assert_allclose(wide, optaxs, rtol=1e-12)


@pytest.mark.parametrize("smooth", [0.0, 1.0, 10.0])
def test_smoothing_and_edge_targets(smooth):
    x, t = binary(3, (2, 8, 8, 1))
    loss = DICE(x, t, smooth=smooth)
    assert np.all(np.isfinite(loss)) and np.all((loss >= 0) & (loss <= 1))
    np.testing.assert_allclose(loss, np_dice(np_softmax(x), t, smooth).mean(-1), rtol=1e-6)
    for targets in [np.zeros((2, 8, 8, 1)), np.ones((2, 8, 8, 1))]:
        assert np.all(np.isfinite(DICE(x, targets, smooth=1.0)))
    for logit in [100.0, -100.0]:
        assert np.all(np.isfinite(DICE(jnp.full((1, 4, 4, 1), logit), jnp.ones((1, 4, 4, 1)))))


def test_class_weights_reductions_and_ignore_background():
    x, t = multiclass(4, (2, 8, 8), 3)
    base = DICE(x, t)
    np.testing.assert_allclose(DICE(x, t, class_weights=jnp.ones(3)), base, rtol=1e-6)
    weighted = DICE(x, t, class_weights=jnp.array([1.0, 2.0, 0.5]))
    assert not np.allclose(weighted, base)
    per_class = DICE(x, t, reduction="none")
    assert per_class.shape == (2, 3)
    np.testing.assert_allclose(DICE(x, t, reduction="sum"), per_class.sum(-1), rtol=1e-6)
    np.testing.assert_allclose(base, per_class.mean(-1), rtol=1e-6)
    no_bg = DICE(x, t, ignore_background=True, reduction="none")
    assert no_bg.shape == (2, 2)
    np.testing.assert_allclose(no_bg, per_class[:, 1:], rtol=1e-6)
    xb, tb = binary(4, (2, 8, 8, 1))
    np.testing.assert_array_equal(DICE(xb, tb, ignore_background=True), DICE(xb, tb))
    with pytest.raises(ValueError, match="dice_loss: class_weights must have rank 1"):
        DICE(x, t, class_weights=jnp.ones((1, 3)))


def test_alpha_beta_and_probabilities():
    probs = jnp.array([[[0.1, 0.9], [0.8, 0.2]]])
    targets = jnp.array([[[0.0, 1.0], [1.0, 0.0]]])
    for alpha, beta in [(0.3, 0.7), (0.5, 0.5), (1.0, 0.0)]:
        mine = DICE(probs, targets, alpha=alpha, beta=beta, apply_softmax=False)
        np.testing.assert_allclose(
            mine, np_dice(probs, targets, 1.0, alpha, beta).mean(-1), rtol=1e-6
        )
    x, t = multiclass(5, (1, 8, 8), 3)
    np.testing.assert_allclose(
        DICE(jax.nn.softmax(x), t, apply_softmax=False), DICE(x, t), rtol=1e-6
    )
    with pytest.raises(ValueError, match="valid probability distributions"):
        losses.dice_loss(
            np.float32(np.random.default_rng(0).random(t.shape)), t, apply_softmax=False
        )
    # bf16 softmax outputs sum to 1 only to bf16 precision: accepted.
    bf16_probs = jax.nn.softmax(jnp.bfloat16(x))
    assert losses.dice_loss(bf16_probs, t > 0, apply_softmax=False).dtype == jnp.bfloat16
    # Traced probabilities cannot be checked: no error under jit (Optax fails to trace).
    jitted = jax.jit(lambda p: DICE(p, t, apply_softmax=False))(jax.nn.softmax(x))
    np.testing.assert_allclose(jitted, DICE(x, t), rtol=1e-6)


def test_binary_dice_and_channel_handling():
    x, t = binary(6, (2, 8, 8), 0.3)
    loss_2d = BINARY(x, t)
    assert loss_2d.shape == (2,)
    np.testing.assert_allclose(BINARY(x[..., None], t[..., None]), loss_2d, rtol=1e-6)
    np.testing.assert_allclose(loss_2d, theirs("binary_dice_loss", x, t), rtol=1e-5)
    np.testing.assert_allclose(DICE(x, t[..., None]), loss_2d, rtol=1e-6)
    np.testing.assert_allclose(DICE(x[..., None], t), loss_2d, rtol=1e-6)
    # Probabilities of one channel need only lie in [0, 1] (Optax demands that they sum
    # to 1 over the single channel, i.e. equal 1).
    probs = jax.nn.sigmoid(x)
    np.testing.assert_allclose(
        losses.binary_dice_loss(probs, t, apply_sigmoid=False), loss_2d, rtol=1e-6
    )
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        losses.binary_dice_loss(x, t, apply_sigmoid=False)
    with pytest.raises(ValueError, match="dice_loss: targets must have the shape"):
        DICE(*multiclass(6, (2, 4, 4), 3)[:1], np.ones((2, 4, 4, 2)))


def test_generalized_dice_matches_numpy_and_optax():
    rng = np.random.default_rng(7)
    x = np.float32(rng.normal(size=(4, 16, 16, 3)))
    labels = rng.choice(3, size=(4, 16, 16), p=[0.8, 0.15, 0.05])
    t = np.float32(np.eye(3)[labels])
    counts = t.astype(np.float64).sum((0, 1, 2))
    weights = 1 / (counts**2 + 1e-7)
    weights = weights / weights.sum() * 3
    per_class = np_dice(np_softmax(x), t, weights=weights)
    for ignore in [False, True]:
        mine = GDL(x, t, ignore_background=ignore)
        assert mine.shape == ()
        expected = per_class[:, 1:].mean() if ignore else per_class.mean()
        np.testing.assert_allclose(mine, expected, rtol=1e-6)
        optaxs = theirs("multiclass_generalized_dice_loss", x, t, ignore_background=ignore)
        np.testing.assert_allclose(mine, optaxs, rtol=1e-5)
    assert not np.allclose(GDL(x, t), DICE(x, t).mean())


def test_gradients_jit_vmap_and_low_precision():
    x, t = binary(8, (1, 8, 8, 1), 0.3)
    g = jax.jit(jax.grad(lambda p: losses.dice_loss(p, t).mean()))(x)
    assert g.shape == x.shape and np.all(np.isfinite(g)) and np.any(g != 0)
    x, t = binary(9, (2, 8, 1), 0.3)
    np.testing.assert_allclose(DICE(x, t), DICE(x, t), rtol=1e-6)
    x, t = binary(10, (4, 4, 1), 0.3)
    single = jax.jit(jax.vmap(lambda p, y: DICE(p[None], y[None])))(x, t)
    assert single.shape == (4, 1)
    x, t = multiclass(11, (2, 8, 8), 3)
    low = DICE(jnp.bfloat16(x), t > 0)
    assert low.dtype == jnp.bfloat16
    expected = DICE(jnp.bfloat16(x).astype(jnp.float32), t)
    np.testing.assert_array_equal(low, expected.astype(jnp.bfloat16))
    gdl = GDL(jnp.float16(x), jnp.float16(t))
    assert gdl.dtype == jnp.float16


def test_argument_errors():
    x, t = multiclass(12, (1, 4, 4), 3)
    with pytest.raises(ValueError, match="dice_loss: reduction must be one of"):
        losses.dice_loss(x, t, reduction="max")
    with pytest.raises(ValueError, match="dice_loss: smooth must be finite and >= 0"):
        losses.dice_loss(x, t, smooth=-1.0)
    with pytest.raises(ValueError, match="multiclass_generalized_dice_loss: targets must"):
        losses.multiclass_generalized_dice_loss(x, t[..., :2])
