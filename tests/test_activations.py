"""Activations: shapes and dtypes first, then values against NumPy/torch, derivatives against jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import activations as A

TOL = {jnp.float64: 1e-10, jnp.float32: 1e-5}
FLOATS = [jnp.float32, jnp.float64, jnp.bfloat16]

ELEMENTWISE = [
    ("sigmoid", {}),
    ("sigmoid", {"beta": 2.5}),
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("tanh", {}),
    ("identity", {}),
]


def _inputs(dtype, extreme=True):
    rng = np.random.default_rng(0)
    z = list(rng.normal(scale=3.0, size=40))
    if extreme:
        z += [0.0, -0.0, 1e-8, -1e-8, 20.0, -20.0, 50.0, -50.0, 500.0, -500.0, 1e4, -1e4]
    return jnp.asarray(z, dtype)


def _np_reference(name, z, kw):
    z = np.asarray(z, np.float64)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-kw.get("beta", 1.0) * z))
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, kw.get("negative_slope", 0.01) * z)
    if name == "tanh":
        return np.tanh(z)
    return z


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name,kw", ELEMENTWISE)
def test_elementwise_keeps_shape_and_dtype(name, kw, dtype):
    f, df = A.get(name)
    z = jnp.zeros((2, 3, 4), dtype)
    for g in (f, df):
        out = g(z, **kw)
        assert out.shape == (2, 3, 4)
        assert out.dtype == dtype


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("name,kw", ELEMENTWISE)
def test_elementwise_values_match_numpy(name, kw, dtype):
    f, _ = A.get(name)
    z = _inputs(dtype, extreme=False)
    np.testing.assert_allclose(f(z, **kw), _np_reference(name, z, kw), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("name,kw", ELEMENTWISE)
def test_hand_derivative_equals_jax_grad_on_random_and_extreme_inputs(name, kw, dtype):
    f, df = A.get(name)
    z = _inputs(dtype)
    auto = jax.vmap(jax.grad(lambda s: f(s, **kw)))(z)
    hand = df(z, **kw)
    assert hand.shape == z.shape and hand.dtype == dtype
    assert np.all(np.isfinite(auto)) and np.all(np.isfinite(hand))
    np.testing.assert_allclose(hand, auto, rtol=TOL[dtype], atol=TOL[dtype])


def test_sigmoid_hand_values_from_the_notes():
    # Seed 000, Hebb's neuron: the weighted sum 0.249 gives the output 0.562.
    np.testing.assert_allclose(A.sigmoid(jnp.float64(0.249)), 0.562, atol=5e-4)
    assert float(A.sigmoid(jnp.float64(0.0))) == 0.5
    # "If input is positive it gives values > 0.5".
    assert float(A.sigmoid(jnp.float32(1e-3))) > 0.5
    # Sigmoid derivative peaks at β/4.
    np.testing.assert_allclose(A.sigmoid_derivative(jnp.float64(0.0), beta=3.0), 0.75, rtol=1e-15)


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_never_overflows_and_is_symmetric(dtype):
    z = jnp.linspace(-1e4, 1e4, 2001, dtype=jnp.float32).astype(dtype)
    y = A.sigmoid(z)
    d = A.sigmoid_derivative(z)
    assert np.all(np.isfinite(np.asarray(y, np.float32))) and np.all(np.isfinite(np.asarray(d, np.float32)))
    yf = np.asarray(y, np.float64)
    assert yf.min() >= 0.0 and yf.max() <= 1.0
    assert np.all(np.diff(yf) >= 0)  # monotone
    np.testing.assert_allclose(yf + np.asarray(A.sigmoid(-z), np.float64), 1.0, atol=1e-2 if dtype == jnp.bfloat16 else 1e-6)
    assert float(A.sigmoid(jnp.asarray(-1e4, dtype))) == 0.0 and float(A.sigmoid(jnp.asarray(1e4, dtype))) == 1.0


def test_relu_derivative_is_the_notes_step_at_zero():
    z = jnp.asarray([-1.0, 0.0, 1e-30, 2.0], jnp.float64)
    np.testing.assert_array_equal(A.relu_derivative(z), [0.0, 0.0, 1.0, 1.0])
    # and autodiff of our relu agrees at the tie (jnp.maximum would give 0.5)
    assert float(jax.grad(A.relu)(jnp.float64(0.0))) == 0.0


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_softmax_and_log_softmax_match_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    z = rng.normal(scale=4.0, size=(5, 7))
    tz = torch.tensor(z, dtype=torch.float64)
    for axis in (-1, 0):
        p = A.softmax(jnp.asarray(z, dtype), axis=axis)
        lp = A.log_softmax(jnp.asarray(z, dtype), axis=axis)
        assert p.shape == (5, 7) and p.dtype == dtype and lp.dtype == dtype
        np.testing.assert_allclose(p, torch.softmax(tz, dim=axis).numpy(), rtol=TOL[dtype], atol=TOL[dtype])
        np.testing.assert_allclose(lp, torch.log_softmax(tz, dim=axis).numpy(), rtol=TOL[dtype], atol=TOL[dtype])


def test_softmax_is_stable_for_huge_logits():
    for dtype in FLOATS:
        z = jnp.asarray([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]], dtype)
        p = np.asarray(A.softmax(z), np.float64)
        np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-2 if dtype == jnp.bfloat16 else 1e-6)
        assert np.all(np.isfinite(np.asarray(A.log_softmax(z), np.float64)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_softmax_jacobian_equals_jax_jacobian_and_the_notes_cases(dtype):
    rng = np.random.default_rng(2)
    z = jnp.asarray(rng.normal(scale=2.0, size=(3, 5)), dtype)
    jac = A.softmax_jacobian(z)
    assert jac.shape == (3, 5, 5) and jac.dtype == dtype
    auto = jax.vmap(jax.jacobian(A.softmax))(z)
    np.testing.assert_allclose(jac, auto, rtol=TOL[dtype], atol=TOL[dtype])
    # The notes' two cases: p_i(1 − p_j) on the diagonal (i = j), −p_j p_i off it.
    p = np.asarray(A.softmax(z), np.float64)[0]
    hand = np.array([[p[i] * (1 - p[j]) if i == j else -p[j] * p[i] for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(jac[0], hand, rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(np.asarray(jac).sum(axis=-1), 0.0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_log_softmax_jacobian_equals_jax_jacobian_and_numpy(dtype):
    rng = np.random.default_rng(5)
    z = jnp.asarray(rng.normal(scale=3.0, size=(4, 6)), dtype)
    jac = A.log_softmax_jacobian(z)
    assert jac.shape == (4, 6, 6) and jac.dtype == dtype
    np.testing.assert_allclose(jac, jax.vmap(jax.jacobian(A.log_softmax))(z), rtol=TOL[dtype], atol=TOL[dtype])
    # δ_ij − p_j written out in NumPy, p from a NumPy softmax.
    zz = np.asarray(z, np.float64)
    p = np.exp(zz - zz.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(jac, np.eye(6)[None] - p[:, None, :], rtol=TOL[dtype], atol=TOL[dtype])
    # Extreme logits: finite where softmax_jacobian / p would be 0/0.
    extreme = jnp.asarray([[1e4, -1e4, 0.0]], dtype)
    assert np.all(np.isfinite(np.asarray(A.log_softmax_jacobian(extreme), np.float64)))
    np.testing.assert_allclose(A.log_softmax_jacobian(extreme)[0], jax.jacobian(A.log_softmax)(extreme[0]), atol=TOL[dtype])


def test_activations_work_under_jit_and_vmap():
    z = jnp.asarray(np.random.default_rng(3).normal(size=(4, 6)), jnp.float32)
    for name, kw in ELEMENTWISE:
        f, df = A.get(name)
        np.testing.assert_allclose(jax.jit(lambda s: f(s, **kw))(z), f(z, **kw), rtol=1e-6)
        np.testing.assert_allclose(jax.vmap(lambda s: df(s, **kw))(z), df(z, **kw), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(A.softmax)(z), A.softmax(z), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(A.softmax_jacobian)(z), A.softmax_jacobian(z), rtol=1e-6)
    # beta can be traced (a learnable slope)
    g = jax.grad(lambda b: A.sigmoid(jnp.float32(0.7), beta=b))(jnp.float32(1.3))
    np.testing.assert_allclose(g, 0.7 * A.sigmoid_derivative(jnp.float32(0.91)), rtol=1e-5)


def test_the_tests_cover_every_registered_activation():
    # activations.NAMES is the one registry; these tests read it rather than keep a list of their own.
    assert {name for name, _ in ELEMENTWISE} == set(A.NAMES)


def test_get_and_bad_input():
    assert A.get("tanh") == (A.tanh, A.tanh_derivative)
    with pytest.raises(ValueError, match="name must be one of .*'softplus'"):
        A.get("softplus")
    with pytest.raises(ValueError, match=r"z\.shape=\(\)"):
        A.softmax(jnp.float32(1.0))
    with pytest.raises(ValueError, match=r"axis=2 is out of range for z\.shape=\(3, 4\)"):
        A.softmax(jnp.zeros((3, 4), jnp.float32), axis=2)
    # A string never reaches the function body: jax.jit refuses it at the call, naming the argument's path.
    with pytest.raises(TypeError, match="path beta"):
        A.sigmoid(jnp.zeros(3, jnp.float32), beta="steep")
    # Values that do reach tracing are refused there by dtype, with the argument's name.
    for bad in (None, True, jnp.asarray([1 + 2j])):
        with pytest.raises(TypeError, match="beta must be a real number"):
            A.sigmoid(jnp.zeros(3, jnp.float32), beta=bad)
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        A.leaky_relu_derivative(jnp.zeros(3, jnp.float32), negative_slope=None)


def test_public_functions_are_themselves_jitted_and_keep_their_docstrings():
    for name in A.__all__:
        if name in ("get", "NAMES"):
            continue
        f = getattr(A, name)
        assert hasattr(f, "lower") and hasattr(f, "trace"), f"{name} is not a jax.jit function"
        assert f.__name__ == name and "Args:" in f.__doc__, name
    for name in A.NAMES:
        f, df = A.get(name)
        assert f is getattr(A, name) and df is getattr(A, name + "_derivative")


def test_static_errors_raise_at_trace_time_under_an_outer_jit_and_vmap():
    z = jnp.zeros((3, 4), jnp.float32)
    with pytest.raises(ValueError, match=r"axis=2 is out of range for z\.shape=\(3, 4\)"):
        jax.jit(lambda a: A.softmax(a, axis=2))(z)
    # under vmap each call sees one row of shape (4,): axis 1 is out of range there
    with pytest.raises(ValueError, match=r"axis=1 is out of range for z\.shape=\(4,\)"):
        jax.vmap(lambda a: A.log_softmax(a, axis=1))(z)
    with pytest.raises(ValueError, match=r"z\.shape=\(\)"):
        jax.vmap(A.softmax_jacobian)(jnp.zeros(3, jnp.float32))
    with pytest.raises(TypeError, match="beta must be a real number"):
        jax.jit(lambda a: A.sigmoid(a, beta=None))(z)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_values_are_not_checked_here_nan_propagates(dtype):
    # Finite-ness is checked at the host entry points (fit, run_epoch, evaluate, the CLI), once,
    # on the device; the math functions compute on whatever they get, so NaN flows through.
    z = jnp.asarray([jnp.nan, 0.0, jnp.inf], dtype)
    y = np.asarray(A.sigmoid(z))
    assert np.isnan(y[0]) and y[1] == 0.5 and y[2] == 1.0
    assert np.isnan(np.asarray(A.tanh(z))[0]) and np.asarray(A.tanh(z))[2] == 1.0
    assert np.all(np.isnan(np.asarray(A.softmax(z))))
    assert np.isnan(np.asarray(A.sigmoid(jnp.asarray([1.0], dtype), beta=jnp.nan))[0])


def test_sigmoid_and_softmax_do_not_recompile_for_new_hyperparameter_values():
    chex = pytest.importorskip("chex")

    # chex counts traces of the Python body; jit retraces it only for new shapes/dtypes/static options.
    chex.clear_trace_counter()  # chex keys its counter on the source, shared across parametrized runs

    @jax.jit
    @chex.assert_max_traces(n=1)
    def layer(z, beta):
        return A.softmax(A.sigmoid(z, beta=beta) + A.leaky_relu(z, negative_slope=beta / 10))

    z = jnp.asarray(np.random.default_rng(7).normal(size=(3, 5)), jnp.float32)
    outs = [layer(z, jnp.float32(beta)) for beta in (1.0, 2.0, 3.5)]
    assert not np.allclose(outs[0], outs[1])
    with pytest.raises(AssertionError, match="retrace|trace"):
        layer(jnp.zeros((4, 5), jnp.float32), jnp.float32(1.0))  # a new shape is a new trace
    # The public functions themselves: beta=1.0 then beta=2.0 reuse one compiled executable.
    if hasattr(A.sigmoid, "_cache_size"):
        w = jnp.ones((2, 7), jnp.float32)
        A.sigmoid(w, beta=1.0)
        start = A.sigmoid._cache_size()
        for beta in (2.0, 3.0, -0.5):
            np.testing.assert_allclose(A.sigmoid(w, beta=beta), 1 / (1 + np.exp(-beta)), rtol=1e-6)
        assert A.sigmoid._cache_size() == start


def test_importing_the_bare_math_pulls_in_no_oracle():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import jaxmath.activations, jaxmath.losses, jaxmath.regularizers, jaxmath.distances, jaxmath.stats\n"
        "print(','.join(m for m in ('torch', 'sklearn', 'scipy', 'minisom', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the bare-math modules imported {out.stdout.strip()}"
