"""Complex parameters: Optax's complex cases, phase equivariance, the transforms, L-BFGS.

Complex gradients follow Optax's convention: the update of a real loss f(z) is driven by
``conj(jax.grad(f)(z))``, which is df/dx + i df/dy. Per-element norms of complex updates
are their moduli (``|g|**2`` is ``g * conj(g)``, never ``g * g``), so every optimizer that
supports complex params is equivariant under a global phase: rotating params and
gradients by ``e^{i theta}`` rotates the updates by the same factor. ``g * g`` would turn
the phase twice, which the equivariance test catches.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optix
from tests.registry import ENTRIES

# Optax's _OPTIMIZERS_UNDER_TEST in alias_test.py, less those it skips on complex targets.
OPTAX_COMPLEX = [
    ("adabelief", {"learning_rate": 1e-2}),
    ("adafactor", {"learning_rate": 5e-3}),
    ("adafactor", {}),
    ("adagrad", {"learning_rate": 1.0}),
    ("adam", {"learning_rate": 1e-1}),
    ("adamax", {"learning_rate": 1e-1}),
    ("adamaxw", {"learning_rate": 1e-1}),
    ("adamw", {"learning_rate": 1e-1}),
    ("amsgrad", {"learning_rate": 1e-1}),
    ("lamb", {"learning_rate": 1e-3}),
    ("lars", {"learning_rate": 1.0}),
    ("nadam", {"learning_rate": 1e-2}),
    ("nadamw", {"learning_rate": 1e-2}),
    ("novograd", {"learning_rate": 1e-3}),
    ("radam", {"learning_rate": 5e-3}),
    ("rmsprop", {"learning_rate": 5e-3}),
    ("rmsprop", {"learning_rate": 5e-3, "momentum": 0.9}),
    ("sgd", {"learning_rate": 1e-3, "momentum": 0.9}),
    ("yogi", {"learning_rate": 1e-1}),
]


def abs_sq(x):
    return jnp.square(x.real) + jnp.square(x.imag)


def parabola():
    start = jnp.asarray([-1.0, 10.0, 1.0], jnp.complex64)
    target = jnp.asarray([1.0, -1.0, 1.0], jnp.complex64) * jnp.complex64(1 + 1j)
    return start, target, lambda z: jnp.sum(abs_sq(z - target))


def rosenbrock():
    a, b = jnp.complex64(1 + 1j), 100.0
    start = jnp.zeros([2], jnp.complex64)
    target = jnp.stack([a, a * a])
    return start, target, lambda z: abs_sq(a - z[0]) + b * abs_sq(z[1] - z[0] ** 2)


def both_targets():
    """Optax's two complex targets as two leaves of one tree, minimized together.

    The optimizers under test act on each leaf alone (per element, or per leaf like LAMB's
    trust ratio), so each leaf follows the run its target alone would give.
    """
    (p0, p1, p_loss), (r0, r1, r_loss) = parabola(), rosenbrock()
    loss = lambda z: p_loss(z["parabola"]) + r_loss(z["rosenbrock"])
    return {"parabola": p0, "rosenbrock": r0}, {"parabola": p1, "rosenbrock": r1}, loss


def trajectory(lib, tx, steps, scanned=True):
    """Params after each of ``steps`` updates, as one scanned program (or eagerly)."""
    start, _, loss = both_targets()

    def body(carry, _):
        z, state = carry
        g = jax.tree.map(jnp.conj, jax.grad(loss)(z))
        u, state = tx.update(g, state, z)
        z = lib.apply_updates(z, u)
        return (z, state), z

    carry = (start, tx.init(start))
    if scanned:
        return jax.jit(lambda c: jax.lax.scan(body, c, None, length=steps)[1])(carry)
    out = []
    for _ in range(steps):
        carry, z = body(carry, None)
        out.append(z)
    return jax.tree.map(lambda *zs: jnp.stack(zs), *out)


@pytest.mark.parametrize(("name", "kwargs"), OPTAX_COMPLEX, ids=lambda x: str(x or ""))
def test_optax_complex_targets(name, kwargs):
    """Optax's test_optimization on its complex parabola and Rosenbrock targets: 10000 steps
    reach the target (as Optax's run does), and the first steps follow Optax's trajectory."""
    ours = trajectory(optix, getattr(optix, name)(**kwargs), 10_000)
    with jax.numpy_dtype_promotion("standard"):
        theirs = trajectory(optax, getattr(optax, name)(**kwargs), 10, scanned=False)
    target = both_targets()[1]
    for key in target:
        # Optax forms 1 - b**t in float32 (off by ~1e-5 relative); optix keeps it accurate.
        np.testing.assert_allclose(ours[key][:10], theirs[key], rtol=2e-4, atol=1e-5)
        if name == "adafactor" and "learning_rate" not in kwargs:
            continue  # Optax skips this check too: no learning rate, no stable descent
        np.testing.assert_allclose(ours[key][-1], target[key], rtol=3e-2, atol=3e-2)


def complex_params(dtype=jnp.complex64):
    k = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    return {
        "kernel": jnp.asarray(k + 1j * k[::-1], dtype),
        "bias": jnp.asarray([0.5 - 0.25j, 1j, -0.3, 0.2 + 0.1j], dtype),
    }


def complex_grads(params, seed):
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noise = [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)]
    return treedef.unflatten(noise)


def distance(target):
    """Half the squared distance to ``target``, a real function of complex params."""
    return lambda p: sum(
        0.5 * jnp.sum(abs_sq(a - b))
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(target), strict=True)
    )


@functools.cache
def complex_step(name):
    """One step of the entry on complex params, its gradients given (eager: the primitives
    compile once for all entries, cheaper than one program per entry)."""
    entry = ENTRIES[name]
    tx = entry.make()

    def step(params, state, grads):
        extra = {}
        if entry.objective:
            value_fn = distance(jax.tree.map(jnp.subtract, params, grads))
            value, grads = jax.value_and_grad(value_fn)(params)
            grads = jax.tree.map(jnp.conj, grads)
            extra = {"value": value, "grad": grads, "value_fn": value_fn}
        updates, state = tx.update(grads, state, params, **extra)
        return optix.apply_updates(params, updates), state, updates

    return tx, step


def run_complex(name, params, phase, steps=3):
    """Updates of ``steps`` steps on params and gradients turned by ``phase``."""
    turn = lambda tree: jax.tree.map(lambda x: x * phase, tree)
    tx, step = complex_step(name)
    params = turn(params)
    state = tx.init(params)
    out = []
    for t in range(steps):
        params, state, updates = step(params, state, turn(complex_grads(params, t)))
        out.append(updates)
    return out, state


# Entries whose math needs real variables: they say so instead of returning wrong numbers.
REAL_ONLY = {
    *("rprop", "torch.rprop", "newton", "newton_cg", "torch.lbfgs", "torch.adafactor"),
    *("shampoo", "soap", "kron", "galore", "galore_adamw", "adam_mini", "cocob", "mechanize"),
    *("momo", "momo_adam", "sam_sgd", "sophia", "sophia_g"),
}


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_complex_updates_turn_with_the_phase(name):
    params = complex_params()
    if name in REAL_ONLY:
        with pytest.raises(TypeError, match="complex params are not supported"):
            run_complex(name, params, jnp.complex64(1))
        return
    plain, state = run_complex(name, params, jnp.complex64(1))
    leaves = jax.tree.leaves((plain, state))
    inexact = [x for x in leaves if jnp.issubdtype(x.dtype, jnp.inexact)]
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in inexact)
    assert all(x.dtype == jnp.complex64 for x in jax.tree.leaves(plain))
    if name == "noisy_sgd":
        return  # its noise is drawn in a fixed frame: not equivariant by design
    phase = jnp.complex64(np.exp(0.7j))
    turned, _ = run_complex(name, params, phase)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(turned), strict=True):
        scale = float(jnp.max(jnp.abs(a)))
        np.testing.assert_allclose(b, a * phase, atol=2e-5 * scale)


@pytest.mark.parametrize("name", ["adam", "adabelief", "rmsprop", "sgd", "adafactor", "lion"])
def test_complex128_state_is_stable_under_jit(name, x64):
    tx, update = ENTRIES[name].make(), ENTRIES[name].updater()
    params = complex_params(jnp.complex128)
    state = tx.init(params)
    step = jax.jit(lambda p, s, g: update(g, s, p))
    updates, new_state = step(params, state, complex_grads(params, 0))
    signature = lambda t: (jax.tree.structure(t), [(x.shape, x.dtype) for x in jax.tree.leaves(t)])
    assert signature(new_state) == signature(state)
    assert all(x.dtype == jnp.complex128 for x in jax.tree.leaves(updates))


# Optax's test_explicit_dtype: the dtype of the first moment follows mu_dtype.
@pytest.mark.parametrize("state_dtype", ["bfloat16", "float32", "complex64", None])
@pytest.mark.parametrize("params_dtype", ["bfloat16", "float32", "complex64"])
@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_explicit_state_dtype(name, params_dtype, state_dtype):
    if name == "sgd":
        tx, field = optix.sgd(0.1, momentum=0.9, accumulator_dtype=state_dtype), "trace"
    else:
        tx, field = getattr(optix, name)(0.1, mu_dtype=state_dtype), "mu"
    params = jnp.zeros([2], params_dtype)
    state = tx.init(params)
    assert optix.tree.get(state, field).dtype == jnp.dtype(state_dtype or params_dtype)
    complex_state = jnp.issubdtype(jnp.dtype(state_dtype or params_dtype), jnp.complexfloating)
    if jnp.iscomplexobj(params) and not complex_state:
        # A real slot cannot hold a complex moment: refused, not silently truncated.
        with pytest.raises(TypeError, match="complex"):
            tx.update(params + 1, state, params)
        return
    if complex_state and not jnp.iscomplexobj(params):
        return  # Optax's test checks the layout only: a complex slot for real params
    updates, _ = tx.update(jnp.ones([2], params_dtype), state, params)
    assert updates.dtype == params.dtype
    assert bool(jnp.all(jnp.isfinite(updates)))


def _transform_cases():
    return {
        "clip_by_global_norm": lambda m: m.clip_by_global_norm(1.0),
        "clip_by_block_rms": lambda m: m.clip_by_block_rms(0.5),
        "adaptive_grad_clip": lambda m: m.adaptive_grad_clip(0.1),
        "scale_by_trust_ratio": lambda m: m.scale_by_trust_ratio(),
        "normalize_by_update_norm": lambda m: m.normalize_by_update_norm(),
        "centralize": lambda m: m.centralize(),
        "add_decayed_weights": lambda m: m.add_decayed_weights(0.1),
        "trace": lambda m: m.trace(0.9, nesterov=True),
        "ema": lambda m: m.ema(0.9),
        "scale_by_rms": lambda m: m.scale_by_rms(),
        "scale_by_stddev": lambda m: m.scale_by_stddev(),
        "scale_by_param_block_rms": lambda m: m.scale_by_param_block_rms(),
        "scale_by_adam": lambda m: m.scale_by_adam(nesterov=True),
        "scale_by_belief": lambda m: m.scale_by_belief(),
        "scale_by_yogi": lambda m: m.scale_by_yogi(),
        "scale_by_radam": lambda m: m.scale_by_radam(threshold=4.0),
        "scale_by_amsgrad": lambda m: m.scale_by_amsgrad(),
        "scale_by_adamax": lambda m: m.scale_by_adamax(),
        "scale_by_novograd": lambda m: m.scale_by_novograd(weight_decay=0.1),
        "scale_by_rss": lambda m: m.scale_by_rss(),
        "scale_by_factored_rms": lambda m: m.scale_by_factored_rms(min_dim_size_to_factor=2),
        "scale_by_lion": lambda m: m.scale_by_lion(),
        "scale_by_sign": lambda m: m.scale_by_sign(),
        "scale_by_optimistic_gradient": lambda m: m.scale_by_optimistic_gradient(),
        "fromage": lambda m: m.fromage(0.1),
        "signum": lambda m: m.signum(0.1),
    }


TRANSFORMS = _transform_cases()


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transforms_match_optax_on_complex_updates(name):
    params = complex_params()

    def run(lib, promotion):
        with jax.numpy_dtype_promotion(promotion):
            tx = TRANSFORMS[name](lib)
            state, out = tx.init(params), []
            for t in range(2):
                updates, state = tx.update(complex_grads(params, t), state, params)
                out.append(updates)
            return out

    ours, theirs = run(optix, "strict"), run(optax, "standard")
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=3e-5, atol=1e-6 * float(jnp.max(jnp.abs(b))))


def test_adadelta_second_moments_are_moduli():
    """Optax's adadelta squares complex g (it skips complex targets); here e_g and e_x
    average |g|**2 and |u|**2, as a NumPy transcription of Zeiler's rule does."""
    rho, eps = 0.9, 1e-6
    params = complex_params()
    tx = optix.scale_by_adadelta(rho, eps)
    state = tx.init(params)
    e_g = {k: np.zeros(v.shape) for k, v in params.items()}
    e_x = {k: np.zeros(v.shape) for k, v in params.items()}
    for t in range(3):
        grads = complex_grads(params, t)
        updates, state = tx.update(grads, state, params)
        for k, g in grads.items():
            g = np.asarray(g, np.complex128)
            e_g[k] = rho * e_g[k] + (1 - rho) * np.abs(g) ** 2
            u = np.sqrt(e_x[k] + eps) / np.sqrt(e_g[k] + eps) * g
            e_x[k] = rho * e_x[k] + (1 - rho) * np.abs(u) ** 2
            np.testing.assert_allclose(updates[k], u, rtol=2e-5)


def test_clip_bounds_the_modulus_of_complex_entries():
    g = jnp.asarray([3 + 4j, 0.1 - 0.2j, -2 + 0.5j, 0j], jnp.complex64)
    updates, _ = optix.clip(1.0).update(g, optix.EmptyState())
    g = np.asarray(g)
    modulus = np.abs(g)
    expected = np.where(modulus > 1, g / np.maximum(modulus, 1), g)
    np.testing.assert_allclose(updates, expected, rtol=1e-6)
    zeros, _ = optix.clip(0.0).update(g, optix.EmptyState())
    np.testing.assert_array_equal(zeros, 0)


@functools.cache
def _lbfgs_solution(linesearch_name, real):
    mat = jnp.asarray([[1, -2], [3, 4], [-4 + 2j, 5 - 3j], [-2 - 2j, 6]], jnp.complex64)
    to_complex = lambda x: jax.lax.complex(x[0], x[1])
    loss = lambda z: jnp.sum(jnp.abs(mat @ z) ** 1.5)
    fun = (lambda x: loss(to_complex(x))) if real else loss
    z0 = jnp.asarray([1 - 1j, 1j], jnp.complex64)
    start = jnp.stack([z0.real, z0.imag]) if real else z0
    linesearch = {
        "backtracking": optix.scale_by_backtracking_linesearch(max_backtracking_steps=20),
        "zoom": optix.scale_by_zoom_linesearch(20, initial_guess_strategy="one"),
    }[linesearch_name]
    tx = optix.lbfgs(linesearch=linesearch)

    def step(carry):
        params, state, count, _ = carry
        value, grad = jax.value_and_grad(fun)(params)
        grad = jnp.conj(grad)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=fun)
        return optix.apply_updates(params, updates), state, count + 1, grad

    def going(carry):
        return (optix.tree.norm(carry[3]) >= 1e-5) & (carry[2] < 500)

    init = (start, tx.init(start), 0, jax.grad(fun)(start))
    final = jax.jit(lambda c: jax.lax.while_loop(going, step, c))(init)[0]
    return to_complex(final) if real else final


@pytest.mark.parametrize("linesearch", ["backtracking", "zoom"])
def test_lbfgs_on_complex_params_matches_the_real_split(linesearch):
    """Optax's test_lbfgs_complex: the complex run and the run on (re, im) agree."""
    complex_run = _lbfgs_solution(linesearch, real=False)
    real_run = _lbfgs_solution(linesearch, real=True)
    np.testing.assert_allclose(complex_run, real_run, rtol=1e-5, atol=1e-5)
