"""Softmax cross entropies and PolyLoss against Optax, PyTorch, SciPy and float64 formulas."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.special
import torch
import torch.nn.functional as F

from optix import losses
from optix.losses import cross_entropy

NAMES = [
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "safe_softmax_cross_entropy",
    "poly_loss_cross_entropy",
]
# Optax's cases: two examples, three classes, the loss of each.
YS = np.array([[10.0, 1.0, -2.0], [1.0, 4.0, 0.2]], np.float32)
TS = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
EXPECTED = np.array([9.00013, 3.0696733], np.float32)


def jit(fn):
    """The loss compiled once per input signature (eager dispatch compiles every
    primitive for every new shape: five times the CPU)."""
    static = "axis" if "axis" in inspect.signature(fn).parameters else ()
    return jax.jit(fn, static_argnames=static)


def jit_grad(fn, argnums=0):
    return jax.jit(jax.grad(lambda *a, **k: fn(*a, **k).sum(), argnums))


CE = jit(losses.softmax_cross_entropy)
SAFE = jit(losses.safe_softmax_cross_entropy)
INT = jit(losses.softmax_cross_entropy_with_integer_labels)
POLY = jit(losses.poly_loss_cross_entropy)


def optax_call(name, *args, **kwargs):
    static = ("axis",) if "axis" in kwargs or len(args) > 2 else ()
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        return jax.jit(getattr(optax.losses, name), static_argnames=static)(*args, **kwargs)


def test_signatures_and_exports_match_optax():
    for name in NAMES:
        ours = inspect.signature(getattr(cross_entropy, name)).parameters
        theirs = inspect.signature(getattr(optax.losses, name)).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in theirs.values()
        ], name
        assert getattr(losses, name) is getattr(cross_entropy, name)
        assert name in losses.__all__


# Optax's own cases.


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "safe_softmax_cross_entropy"])
def test_optax_values(name):
    fn = {"softmax_cross_entropy": CE, "safe_softmax_cross_entropy": SAFE}[name]
    np.testing.assert_allclose(fn(YS[0], TS[0]), EXPECTED[0], atol=1e-4)
    np.testing.assert_allclose(fn(YS, TS), EXPECTED, atol=1e-4)
    np.testing.assert_allclose(INT(YS, np.array([1, 0])), EXPECTED, rtol=1e-6)
    np.testing.assert_allclose(INT(YS[0], np.array(1)), EXPECTED[0], rtol=1e-6)


def test_safe_optax_cases_with_infinite_logits():
    ys = np.array(
        [[10, 1, -2], [1, 4, 0.2], [-np.inf, 0, 0], [-np.inf, 0, 0], [-np.inf, 0, -np.inf]],
        np.float32,
    )
    ts = np.array([[0, 1, 0], [1, 0, 0], [0, 0.5, 0.5], [0.4, 0.3, 0.3], [0, 1, 0]], np.float32)
    expected = [9.00013, 3.0696733, np.log(2.0), np.inf, 0.0]
    for fn in (SAFE, CE):
        np.testing.assert_allclose(fn(ys, ts), expected, atol=1e-4)
    # Where the logits are finite, the safe loss is Optax's plain one, value and gradient.
    np.testing.assert_allclose(SAFE(YS, TS), optax_call("softmax_cross_entropy", YS, TS), rtol=1e-6)
    theirs = jit_grad(optax.losses.softmax_cross_entropy)(YS, TS)
    np.testing.assert_allclose(jit_grad(SAFE)(YS, TS), theirs, rtol=1e-5, atol=1e-7)


def test_gradients_are_softmax_minus_labels(x64):
    """d loss / d logits = softmax(logits) * sum(labels) - labels, exactly (float64)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 5)) * 3, rng.dirichlet(np.ones(5), size=3)
    p = scipy.special.softmax(x, -1)
    for fn in (CE, SAFE):
        np.testing.assert_allclose(jit_grad(fn)(x, y), p - y, rtol=1e-12)
    labels = np.array([4, 0, 2])
    np.testing.assert_allclose(jit_grad(INT)(x, labels), p - np.eye(5)[labels], rtol=1e-12)
    # Ties for the largest logit share it, and the gradient stays the softmax one.
    tied = np.array([[2.0, 2.0, -1.0, 2.0, 2.0]] * 3)
    p = scipy.special.softmax(tied, -1)
    np.testing.assert_allclose(jit_grad(INT)(tied, labels), p - np.eye(5)[labels], rtol=1e-12)
    np.testing.assert_allclose(jit_grad(CE)(tied, y), p - y, rtol=1e-12)
    # Forward mode too (custom JVPs): directional derivatives, and the Hessian is
    # diag(p) - p p^T per example.
    v = np.random.default_rng(1).normal(size=x.shape)
    p = scipy.special.softmax(x, -1)
    _, tangent = jax.jvp(lambda a: INT(a, labels), (x,), (v,))
    np.testing.assert_allclose(tangent, ((p - np.eye(5)[labels]) * v).sum(-1), rtol=1e-12)
    _, tangent = jax.jvp(lambda a, b: CE(a, b), (x, y), (v, v))
    expected = ((p - y) * v).sum(-1) - (scipy.special.log_softmax(x, -1) * v).sum(-1)
    np.testing.assert_allclose(tangent, expected, rtol=1e-12)
    p = scipy.special.softmax(x[0], -1)
    hessian = jax.jit(jax.hessian(lambda v: CE(v, y[0])))(x[0])
    np.testing.assert_allclose(hessian, np.diag(p) - np.outer(p, p), rtol=1e-10, atol=1e-16)


def test_ties_at_the_maximum_and_confident_predictions():
    """Tied maxima count once each; a confident prediction's loss is within the float32
    rounding of log_z near 0 (a few 1e-7 absolute)."""
    x = np.float32([[5, 5, -20], [5, 5, 5], [30, 5, -20], [0, 0, 0]])
    expected = [np.log(2 + np.exp(-25.0)), np.log(3.0), np.exp(-25.0), np.log(3.0)]
    onehot = np.eye(3, dtype=np.float32)[[0, 2, 0, 1]]
    for ours in (INT(x, np.array([0, 2, 0, 1])), CE(x, onehot)):
        np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=5e-7)
        assert np.all(ours >= 0)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "poly_loss_cross_entropy"])
def test_where_equals_dropping_entries(name):
    rng = np.random.default_rng(1)
    for size in (5, 10):
        x = rng.normal(size=size).astype(np.float32)
        y = rng.dirichlet(np.ones(size)).astype(np.float32)
        keep = rng.integers(2, size=size).astype(bool)
        keep[0] = True
        fn = {"softmax_cross_entropy": CE, "poly_loss_cross_entropy": POLY}[name]
        np.testing.assert_allclose(fn(x, y, where=keep), fn(x[keep], y[keep]), rtol=1e-6)


def test_where_per_example_and_per_logit():
    ts_int = np.array([1, 0])
    per_example = np.array([True, False])
    per_logit = np.array([[1, 0, 0], [0, 0, 0]], bool)
    for name, fn, labels in (
        ("softmax_cross_entropy", CE, TS),
        ("softmax_cross_entropy_with_integer_labels", INT, ts_int),
    ):
        np.testing.assert_allclose(fn(YS, labels, where=per_example), [EXPECTED[0], 0], atol=1e-4)
        assert fn(YS, labels, where=per_logit)[1] == 0
        np.testing.assert_allclose(
            fn(YS, labels, where=per_logit),
            optax_call(name, YS, labels, where=per_logit),
            rtol=1e-6,
        )
        grad = jit_grad(fn)(YS, labels, where=per_example)
        assert np.all(np.isfinite(grad)) and np.all(grad[1] == 0)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_axis_equals_moving_it_last(axis):
    rng = np.random.default_rng(axis)
    shape = (4, 5, 6)
    x = rng.normal(size=shape).astype(np.float32)
    y = rng.dirichlet(np.ones(shape[axis]), size=shape[:axis] + shape[axis + 1 :])
    y = np.moveaxis(y, -1, axis).astype(np.float32)
    for fn in (CE, POLY):
        expected = fn(np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1))
        np.testing.assert_allclose(fn(x, y, axis=axis), expected, rtol=1e-6)
    labels = rng.integers(shape[axis], size=shape[:axis] + shape[axis + 1 :])
    np.testing.assert_allclose(
        INT(x, labels, axis=axis), INT(np.moveaxis(x, axis, -1), labels), rtol=1e-6
    )


@pytest.mark.parametrize(
    "axis", [(1, 3), (3, 2), (2, 3), (-3, -1), (-1, -2), (-2, -1), (0, 1, 3), (-4, -3, -1)]
)
def test_integer_labels_over_several_axes(axis):
    """A tuple of axes is one flat class axis (row-major in the order given)."""
    shape = (2, 3, 4, 5)
    classes = tuple(a % 4 for a in axis)
    batch = tuple(i for i in range(4) if i not in classes)
    n = int(np.prod([shape[a] for a in classes]))
    rng = np.random.default_rng(len(axis))
    flat = rng.uniform(size=[shape[b] for b in batch] + [n]).astype(np.float32)
    labels = rng.integers(n, size=[shape[b] for b in batch])
    order = batch + classes
    x = flat.reshape([shape[a] for a in order]).transpose(np.argsort(order))
    name = "softmax_cross_entropy_with_integer_labels"
    np.testing.assert_allclose(INT(x, labels, axis), INT(flat, labels), rtol=1e-6)
    np.testing.assert_allclose(INT(x, labels, axis), optax_call(name, x, labels, axis), rtol=1e-6)


# PolyLoss: Optax's values (computed by the paper's TensorFlow code).
POLY_X = np.array([0.14, 1.456, 2.356, -0.124, -2.47], np.float32)
POLY_Y = np.array([0.1, 0.15, 0.2, 0.25, 0.3], np.float32)
POLY_BX = np.array([[4.0, 2.0, 1.0], [0.0, 5.0, 1.0]], np.float32)
POLY_BY = np.array([[1.0, 0.0, 0.0], [0.0, 0.8, 0.2]], np.float32)
POLY_CASES = [  # epsilon, vector loss, batched losses
    (2, 4.5317, [0.4823, 1.2567]),
    (1, 3.7153, [0.3261, 1.0407]),
    (0, 2.8990, [0.1698, 0.8247]),
    (-0.5, 2.4908, [0.0917, 0.7168]),
    (1.15, 3.8378, [0.3495, 1.0731]),
    (1.214, 3.8900, [0.3595, 1.0870]),
    (5.45, 7.3480, [1.0211, 2.0018]),
]


def test_poly_loss_optax_values():
    fn = POLY
    np.testing.assert_allclose(fn(POLY_X, POLY_Y, epsilon=-1.0), 2.0827, atol=1e-4)
    for epsilon, vector, batched in POLY_CASES:
        np.testing.assert_allclose(fn(POLY_X, POLY_Y, epsilon=epsilon), vector, atol=1e-4)
        np.testing.assert_allclose(fn(POLY_BX, POLY_BY, epsilon=epsilon), batched, atol=1e-4)
    for x, y in [(POLY_X, POLY_Y), (POLY_BX, POLY_BY), (np.float32([0.314]), np.float32([1.0]))]:
        np.testing.assert_allclose(fn(x, y, epsilon=0.0), CE(x, y), rtol=1e-6)


def test_poly_loss_float64_formula(x64):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 6)) * 4, rng.dirichlet(np.ones(6), size=4)
    p = scipy.special.softmax(x, -1)
    for epsilon in (-1.0, 2.0, 5.45):
        expected = -(y * np.log(p)).sum(-1) + epsilon * (y * (1 - p)).sum(-1)
        ours = POLY(x, y, epsilon=epsilon)
        np.testing.assert_allclose(ours, expected, rtol=1e-12)
        theirs = optax_call("poly_loss_cross_entropy", x, y, epsilon=epsilon)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


# Independent references, float64.


def test_float64_matches_torch_and_scipy(x64):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 7)) * 5
    y = rng.dirichlet(np.ones(7), size=8)
    labels = rng.integers(7, size=8)
    tx = torch.from_numpy(x)
    soft = F.cross_entropy(tx, torch.from_numpy(y), reduction="none").numpy()
    hard = F.cross_entropy(tx, torch.from_numpy(labels), reduction="none").numpy()
    smooth = F.cross_entropy(tx, torch.from_numpy(labels), reduction="none", label_smoothing=0.1)
    np.testing.assert_allclose(CE(x, y), soft, rtol=1e-12)
    np.testing.assert_allclose(
        CE(x, y),
        -(y * scipy.special.log_softmax(x, -1)).sum(-1),
        rtol=1e-12,
    )
    np.testing.assert_allclose(INT(x, labels), hard, rtol=1e-12)
    smoothed = losses.smooth_labels(np.eye(7)[labels], 0.1)
    np.testing.assert_allclose(CE(x, smoothed), smooth, rtol=1e-12)
    # Classes along axis 1 of a (batch, classes, length) array, as torch takes them.
    z = rng.normal(size=(2, 7, 3))
    t = rng.integers(7, size=(2, 3))
    np.testing.assert_allclose(
        INT(z, t, axis=1),
        F.cross_entropy(torch.from_numpy(z), torch.from_numpy(t), reduction="none").numpy(),
        rtol=1e-12,
    )


def test_matches_optax_float64_with_axes_and_masks(x64):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4, 5)) * 3
    y = rng.dirichlet(np.ones(20), size=3).reshape(3, 4, 5)
    keep = rng.random((3, 4, 5)) < 0.7
    for kwargs in (
        {"axis": (1, 2)},
        {"axis": (1, 2), "where": keep},
        {"axis": None},
        {"axis": 1, "where": keep},
    ):
        for name, fn in (("softmax_cross_entropy", CE), ("poly_loss_cross_entropy", POLY)):
            theirs = optax_call(name, x, y, **kwargs)
            np.testing.assert_allclose(fn(x, y, **kwargs), theirs, rtol=1e-12)


# Accuracy: float32 within 1e-6 relative of float64 for losses of ordinary size.


def _float64(fn, *args, **kwargs):
    with jax.enable_x64(True):
        args = [
            np.asarray(a, np.float64) if np.issubdtype(np.asarray(a).dtype, np.floating) else a
            for a in args
        ]
        return np.asarray(fn(*args, **kwargs))


def test_float32_within_1e6_of_float64():
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(64, 1000)) * 8).astype(np.float32)
    labels = rng.integers(1000, size=64)
    y = rng.dirichlet(np.ones(1000) * 0.1, size=64).astype(np.float32)
    cases = [
        (INT, (x, labels)),
        (CE, (x, np.eye(1000, dtype=np.float32)[labels])),
        (CE, (x, y)),
        (POLY, (x, y)),
    ]
    for fn, args in cases:
        np.testing.assert_allclose(fn(*args), _float64(fn, *args), rtol=1e-6)
    # Confident predictions (losses down to 1e-11): within a few 1e-7 absolute, where
    # Optax's logsumexp(x) - x[label] rounds at 1e-7 * |x| (1e-6 here).
    x = (rng.normal(size=(64, 10)) * 16).astype(np.float32)
    top = np.argmax(x, -1)
    for fn, args in ((INT, (x, top)), (CE, (x, np.eye(10, dtype=np.float32)[top]))):
        exact = _float64(fn, *args)
        assert exact.min() < 1e-9
        np.testing.assert_allclose(fn(*args), exact, rtol=1e-6, atol=5e-7)


# Masked classes (-inf logits), extreme logits, dtypes.

MASKED_X = np.array([[-np.inf, 0.0, 1.0], [1e4, -1e4, 0.0], [-1e4, 1e4, -np.inf]], np.float32)
MASKED_Y = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.8, 0.0]], np.float32)


def test_masked_classes_and_extreme_logits_give_finite_losses_and_gradients():
    labels = np.array([1, 0, 1])
    for fn, args in (
        (CE, (MASKED_X, MASKED_Y)),
        (SAFE, (MASKED_X, MASKED_Y)),
        (POLY, (MASKED_X, MASKED_Y)),
        (INT, (MASKED_X, labels)),
    ):
        value = fn(*args)
        assert np.all(np.isfinite(value)), value
        grads = jit_grad(fn, (0, 1) if fn is not INT else 0)(*args)
        for grad in grads if fn is not INT else [grads]:
            assert np.all(np.isfinite(grad)), grad
        assert np.all((grads[0] if fn is not INT else grads)[~np.isfinite(MASKED_X)] == 0)
    keep = np.isfinite(MASKED_X)
    np.testing.assert_allclose(CE(MASKED_X, MASKED_Y, where=keep), CE(MASKED_X, MASKED_Y))
    grads = jit_grad(CE, (0, 1))(MASKED_X, MASKED_Y, where=keep)
    assert all(np.all(np.isfinite(grad)) for grad in grads)
    np.testing.assert_allclose(CE(MASKED_X, MASKED_Y), [1.3132616 - 0.5, 0.0, 4e3], rtol=1e-6)
    # A masked class with a positive label: the loss is +inf, not NaN.
    assert CE(MASKED_X[:1], np.float32([[0.5, 0.5, 0]]))[0] == np.inf
    assert INT(MASKED_X[:1], np.array([0]))[0] == np.inf


def test_label_gradients_are_minus_log_probabilities(x64):
    """d loss / d labels = -log_softmax(logits), as Optax's; 0 on classes of logit -inf."""
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(3, 5)) * 3, rng.dirichlet(np.ones(5), size=3)
    ours = jit_grad(CE, 1)(x, y)
    np.testing.assert_allclose(ours, -scipy.special.log_softmax(x, -1), rtol=1e-12)
    theirs = jit_grad(optax.losses.softmax_cross_entropy, 1)(x, y)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    x[0, 2], y[0] = -np.inf, [0.5, 0.5, 0.0, 0.0, 0.0]
    expected = -scipy.special.log_softmax(x, -1)
    expected[0, 2] = 0.0
    np.testing.assert_allclose(jit_grad(CE, 1)(x, y), expected, rtol=1e-12)


def test_infinite_and_nan_logits():
    """Any positive label on a class of logit -inf gives +inf; NaN logits give NaN;
    a slice of -inf logits with zero labels gives 0 and zero gradients."""
    x = np.float32([[-np.inf, 0.0, 1.0]])
    assert CE(x, np.float32([[1e-10, 0.5, 0.5]]))[0] == np.inf
    nan = np.float32([[np.nan, 0.0, 1.0]])
    assert np.isnan(CE(nan, np.float32([[0.0, 0.5, 0.5]]))[0])
    assert np.isnan(INT(nan, np.array([1]))[0])
    empty = np.full((2, 3), -np.inf, np.float32)
    zeros = np.zeros((2, 3), np.float32)
    np.testing.assert_array_equal(CE(empty, zeros), 0.0)
    np.testing.assert_array_equal(jit_grad(CE)(empty, zeros), 0.0)
    np.testing.assert_array_equal(INT(empty, np.array([0, 1])), np.inf)


@pytest.mark.parametrize("dtype", [np.float32, jnp.bfloat16])
def test_negative_and_out_of_range_labels_as_optax(dtype):
    """A negative label counts from the end (as NumPy indexes); beyond that, NaN."""
    x = jnp.asarray(YS, dtype)
    name = "softmax_cross_entropy_with_integer_labels"
    for labels in (np.array([-1, -3]), np.array([-4, 3])):
        np.testing.assert_allclose(INT(x, labels), optax_call(name, x, labels), rtol=1e-6)
    grad = jit_grad(INT)(x, np.array([-1, -3]))
    np.testing.assert_array_equal(grad, jit_grad(INT)(x, np.array([2, 0])))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_reduced_in_float32(dtype):
    """The result is the float32 loss of the half-precision values, rounded once."""
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.normal(size=(4, 300)) * 3, dtype)
    y = jnp.asarray(rng.dirichlet(np.ones(300), size=4), dtype)
    labels = rng.integers(300, size=4)
    for fn, args in (
        (CE, (x, y)),
        (POLY, (x, y)),
        (INT, (x, labels)),
    ):
        out = fn(*args)
        wide = [a.astype(jnp.float32) if a.dtype == dtype else a for a in args]
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, fn(*wide).astype(dtype))
    # Gradients too: the float32 ones, rounded once (to within one rounding step).
    keep = rng.random((4, 300)) < 0.9
    cases = [(CE, (x, y), {}), (INT, (x, labels), {}), (INT, (x, labels), {"where": keep})]
    for fn, args, kwargs in cases:
        grad = jit_grad(fn)(*args, **kwargs)
        wide = [a.astype(jnp.float32) if a.dtype == dtype else a for a in args]
        expected = jit_grad(fn)(*wide, **kwargs)
        assert grad.dtype == dtype
        np.testing.assert_allclose(
            np.float32(grad), np.float32(expected.astype(dtype)), rtol=2**-7, atol=1e-7
        )


def test_result_dtypes_match_optax():
    x16 = jnp.asarray(YS, jnp.bfloat16)
    for name in NAMES:
        for x, y in ((x16, TS), (YS, TS.astype(jnp.bfloat16)), (x16, TS.astype(jnp.bfloat16))):
            if name.endswith("integer_labels"):
                y = np.array([1, 0])
            ours = jax.eval_shape(getattr(losses, name), x, y)
            with jax.numpy_dtype_promotion("standard"):
                theirs = jax.eval_shape(getattr(optax.losses, name), x, y)
            assert ours.dtype == theirs.dtype, name
    assert jax.eval_shape(CE, YS, TS.astype(np.int32)).dtype == jnp.float32


def test_argument_errors():
    with pytest.raises(TypeError, match=r"softmax_cross_entropy: logits must have a floating"):
        losses.softmax_cross_entropy(np.array([1, 2]), np.array([0.0, 1.0]))
    fn = losses.softmax_cross_entropy_with_integer_labels
    with pytest.raises(TypeError, match=r"integer_labels: labels must have an integer dtype"):
        fn(YS, np.array([1.0, 0.0]))
    with pytest.raises(TypeError, match=r"axis must be an int or a tuple of ints, got axis="):
        fn(YS, np.array([1, 0]), axis=1.0)
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\), got axis=2"):
        fn(YS, np.array([1, 0]), axis=2)
    with pytest.raises(TypeError, match=r"poly_loss_cross_entropy: labels must have a floating"):
        losses.poly_loss_cross_entropy(YS, np.array([[0, 1, 0], [1, 0, 0]]))
