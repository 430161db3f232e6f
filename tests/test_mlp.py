"""jaxmath.models.mlp: shapes first, then values against NumPy, jax.grad, torch and the notes' worked example."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.models import from_config, mlp

SIZES = (784, 16, 16, 10)

# Seed 002's 2-2-2-2 sigmoid network (input (1, -1)): W is (fan_in, fan_out), so column j holds neuron j's weights.
NOTES_X = np.array([[1.0, -1.0]])
NOTES_PARAMS = [
    (np.array([[1.0, -1.0], [-2.0, 1.0]]), np.array([1.0, 0.0])),  # z = (4, -2) -> (0.98, 0.12)
    (np.array([[2.0, -2.0], [-1.0, -1.0]]), np.array([0.0, 0.0])),  # -> (0.86, 0.11)
    (np.array([[3.0, -1.0], [-1.0, 4.0]]), np.array([-2.0, 2.0])),  # -> (0.62, 0.83)
]


def _params(dtype, params=NOTES_PARAMS):
    return [(jnp.asarray(w, dtype), jnp.asarray(b, dtype)) for w, b in params]


def _rand_params(sizes, dtype, seed=0):
    """Random params from NumPy (no compiled random programs: keeps this file fast)."""
    rng = np.random.default_rng(seed)
    return [
        (jnp.asarray(rng.normal(size=(m, n)) / np.sqrt(m), dtype), jnp.asarray(rng.normal(size=n) * 0.1, dtype))
        for m, n in zip(sizes[:-1], sizes[1:])
    ]


def _rand(shape, dtype, seed=1, uniform=False):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(size=shape) if uniform else rng.normal(size=shape), dtype)


def _np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_forward(params, x, hidden, out):
    """The forward pass written separately in NumPy."""
    acts = {
        "sigmoid": _np_sigmoid,
        "relu": lambda z: np.maximum(z, 0.0),
        "tanh": np.tanh,
        "identity": lambda z: z,
    }
    a = np.asarray(x, np.float64)
    for i, (w, b) in enumerate(params):
        z = a @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        if i < len(params) - 1:
            a = acts[hidden](z)
        elif out == "softmax":
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            a = e / e.sum(axis=-1, keepdims=True)
        else:
            a = acts[out](z)
    return a


def _max_abs(tree_a, tree_b):
    return max(
        float(jnp.max(jnp.abs(jnp.asarray(a, jnp.float64) - jnp.asarray(b, jnp.float64))))
        for a, b in zip(jax.tree_util.tree_leaves(tree_a), jax.tree_util.tree_leaves(tree_b))
    )


# ----------------------------------------------------------------------------- init and count_params


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.bfloat16])
def test_init_shapes_dtypes(dtype):
    for scheme in ("glorot", "he", "normal") if dtype == jnp.float32 else ("glorot",):
        params = mlp.init(jax.random.key(0), SIZES, scheme=scheme, dtype=dtype)
        assert len(params) == 3
        for (w, b), fan_in, fan_out in zip(params, SIZES[:-1], SIZES[1:]):
            assert w.shape == (fan_in, fan_out) and b.shape == (fan_out,)
            assert w.dtype == dtype and b.dtype == dtype
            assert bool(jnp.all(jnp.isfinite(w.astype(jnp.float32))))


def test_count_params_is_the_notes_13002():
    params = mlp.init(jax.random.key(0), SIZES)
    # 784·16 + 16 + 16·16 + 16 + 16·10 + 10, as in seed 001 ("We have 13002 weights and biases").
    assert mlp.count_params(params) == 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10 == 13002
    assert mlp.count_params(_rand_params((784, 30, 10), jnp.float32)) == 784 * 30 + 30 + 30 * 10 + 10 == 23860


def test_init_scales_match_each_scheme():
    # The same (sizes, scheme, dtype) as test_init_shapes_dtypes: the compiled init programs are reused.
    glorot = mlp.init(jax.random.key(1), SIZES, scheme="glorot", dtype=jnp.float32)
    w = np.asarray(glorot[0][0], np.float64)
    r = np.sqrt(6.0 / (784 + 16))
    assert np.abs(w).max() <= r * (1 + 1e-6) and np.abs(w).max() > 0.99 * r
    np.testing.assert_allclose(w.std(), r / np.sqrt(3.0), rtol=0.03)  # U(-r, r) has std r/√3
    assert np.all(np.asarray(glorot[0][1]) == 0.0)

    he = mlp.init(jax.random.key(2), SIZES, scheme="he", dtype=jnp.float32)
    np.testing.assert_allclose(np.asarray(he[0][0], np.float64).std(), np.sqrt(2.0 / 784), rtol=0.03)
    np.testing.assert_allclose(np.asarray(he[1][0], np.float64).std(), np.sqrt(2.0 / 16), rtol=0.15)
    assert np.all(np.asarray(he[0][1]) == 0.0)

    normal = mlp.init(jax.random.key(3), SIZES, scheme="normal", dtype=jnp.float32)
    np.testing.assert_allclose(np.asarray(normal[0][0], np.float64).std(), 1.0, rtol=0.03)
    assert np.asarray(normal[0][1]).std() > 0.5  # biases are drawn too

    again = mlp.init(jax.random.key(1), SIZES, scheme="glorot", dtype=jnp.float32)
    assert _max_abs(glorot, again) == 0.0
    other = mlp.init(jax.random.key(4), SIZES, scheme="glorot", dtype=jnp.float32)
    assert _max_abs(glorot, other) > 0.0


def test_init_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sizes"):
        mlp.init(jax.random.key(0), (784,))
    with pytest.raises(ValueError, match=r"sizes\[1\]"):
        mlp.init(jax.random.key(0), (784, 0, 10))
    with pytest.raises(TypeError, match=r"sizes\[1\]"):
        mlp.init(jax.random.key(0), (784, 16.5, 10))
    with pytest.raises(ValueError, match="scheme"):
        mlp.init(jax.random.key(0), SIZES, scheme="xavier")
    with pytest.raises(TypeError, match="dtype"):
        mlp.init(jax.random.key(0), SIZES, dtype=jnp.int32)


def test_an_int_key_gets_a_clear_error():
    with pytest.raises(TypeError, match=r"key must be a JAX PRNG key such as jax\.random\.key\(0\), got key=0"):
        mlp.init(0, SIZES)
    with pytest.raises(TypeError, match=r"jax\.random\.key\(0\)"):
        mlp.make(SIZES).init(7)
    # Raw uint32 keys (jax.random.PRNGKey) are keys too, and draw the same params as the typed key.
    chex.assert_trees_all_equal(mlp.init(jax.random.PRNGKey(3), (4, 3)), mlp.init(jax.random.key(3), (4, 3)))


# ----------------------------------------------------------------------------- make: the config travels


def test_make_carries_the_config_and_equals_apply_with_the_options():
    model = mlp.make((9, 7, 4), activation="tanh", output="softmax", dtype=jnp.float64)
    assert model.config == {
        "name": "mlp", "sizes": [9, 7, 4], "activation": "tanh", "output": "softmax", "scheme": "glorot",
        "dtype": "float64", "precision": None, "compute_dtype": None,
    }
    json.dumps(model.config)  # JSON-serialisable
    params = model.init(jax.random.key(0))
    chex.assert_trees_all_equal(params, mlp.init(jax.random.key(0), (9, 7, 4), scheme="glorot", dtype=jnp.float64))
    x = _rand((5, 9), jnp.float64)
    want = _np_forward(params, x, "tanh", "softmax")
    np.testing.assert_allclose(np.asarray(model.apply(params, x)), want, rtol=1e-10)
    rebuilt = from_config(model.config)
    assert rebuilt.config == model.config
    np.testing.assert_allclose(np.asarray(rebuilt.apply(params, x)), want, rtol=1e-10)
    assert mlp.make((3, 8, 2), activation="relu").config["scheme"] == "he"
    with pytest.raises(ValueError, match="activation"):
        mlp.make((3, 2), activation="gelu")
    with pytest.raises(ValueError, match="sizes"):
        mlp.make((3,))
    with pytest.raises(ValueError, match="precision must be one of"):
        mlp.make((3, 2), precision="fast")
    with pytest.raises(TypeError, match="compute_dtype must be a floating dtype"):
        mlp.make((3, 2), compute_dtype="int8")


# ----------------------------------------------------------------------------- apply


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_notes_worked_example_2_2_2_2(dtype):
    params = _params(dtype)
    x = jnp.asarray(NOTES_X, dtype)
    out = mlp.apply(params, x, activation="sigmoid", output="sigmoid")
    assert out.shape == (1, 2) and out.dtype == dtype
    # Seed 002 writes every activation to two decimals.
    np.testing.assert_array_equal(np.round(np.asarray(out, np.float64), 2), [[0.62, 0.83]])
    first = mlp.apply(params[:1], x, output="sigmoid")
    second = mlp.apply(params[:2], x, activation="sigmoid", output="sigmoid")
    np.testing.assert_array_equal(np.round(np.asarray(first, np.float64), 2), [[0.98, 0.12]])
    np.testing.assert_array_equal(np.round(np.asarray(second, np.float64), 2), [[0.86, 0.11]])
    # z of the first layer is (4, -2) exactly.
    np.testing.assert_array_equal(np.asarray(mlp.apply(params[:1], x, output="identity")), [[4.0, -2.0]])


@pytest.mark.parametrize("hidden,out", [("sigmoid", "identity"), ("relu", "softmax"), ("tanh", "sigmoid")])
@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-10), (jnp.float32, 1e-5)])
def test_apply_matches_numpy_forward(hidden, out, dtype, tol):
    params = _rand_params((20, 7, 5, 4), dtype, seed=0)
    x = _rand((6, 20), dtype, seed=1)
    got = mlp.apply(params, x, activation=hidden, output=out)
    assert got.shape == (6, 4) and got.dtype == dtype
    want = _np_forward(params, x, hidden, out)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol)
    one = mlp.apply(params, x[0], activation=hidden, output=out)
    assert one.shape == (4,)
    np.testing.assert_allclose(np.asarray(one, np.float64), want[0], rtol=tol, atol=tol)


def test_apply_precision_is_passed_to_the_matmuls():
    params = _rand_params((30, 8, 3), jnp.float32, seed=0)
    x = _rand((5, 30), jnp.float32, seed=1)
    want = _np_forward(params, x, "sigmoid", "identity")
    for precision in (None, "highest", jax.lax.Precision.HIGHEST):
        got = mlp.apply(params, x, precision=precision)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5, atol=1e-5)
    lowered = jax.jit(lambda p, x: mlp.apply(p, x, precision="highest")).lower(params, x).as_text()
    assert "HIGHEST" in lowered.upper()


def test_apply_bfloat16_compute_keeps_float32_params_and_stays_finite():
    params = _rand_params(SIZES, jnp.float32, seed=0)
    x = _rand((64, 784), jnp.float32, seed=1, uniform=True)
    full = mlp.apply(params, x, output="softmax")
    low = mlp.apply(params, x, output="softmax", compute_dtype=jnp.bfloat16)
    assert low.shape == full.shape and low.dtype == jnp.float32
    assert params[0][0].dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(low)))
    np.testing.assert_allclose(np.asarray(low), np.asarray(full), atol=0.05)
    assert float(jnp.max(jnp.abs(low - full))) > 0.0  # the cast did happen
    # bfloat16 params end to end: finite, even for large inputs.
    p16 = _rand_params(SIZES, jnp.bfloat16, seed=0)
    out16 = mlp.apply(p16, (x * 255).astype(jnp.bfloat16), output="softmax")
    assert out16.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(out16.astype(jnp.float32))))


def test_apply_works_under_jit_and_vmap():
    params = _rand_params((12, 5, 3), jnp.float64, seed=0)
    x = _rand((4, 12), jnp.float64, seed=1)
    want = _np_forward(params, x, "sigmoid", "sigmoid")
    got_jit = jax.jit(lambda p, x: mlp.apply(p, x, output="sigmoid"))(params, x)
    got_vmap = jax.vmap(lambda row: mlp.apply(params, row, output="sigmoid"))(x)
    np.testing.assert_allclose(np.asarray(got_jit), want, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(got_vmap), want, rtol=1e-10)


def test_apply_rejects_bad_input():
    params = _rand_params(SIZES, jnp.float32)
    with pytest.raises(ValueError, match=r"x must have 784 features.*\(8, 783\)"):
        mlp.apply(params, jnp.zeros((8, 783), jnp.float32))
    with pytest.raises(ValueError, match="activation"):
        mlp.apply(params, jnp.zeros((8, 784), jnp.float32), activation="gelu")
    with pytest.raises(ValueError, match="output"):
        mlp.apply(params, jnp.zeros((8, 784), jnp.float32), output="relu")
    broken = [params[0], (jnp.zeros((20, 10), jnp.float32), jnp.zeros((10,), jnp.float32))]
    with pytest.raises(ValueError, match=r"params\[1\]\[0\].*16 rows"):
        mlp.apply(broken, jnp.zeros((8, 784), jnp.float32))
    with pytest.raises(ValueError, match=r"params\[0\]"):
        mlp.apply([(params[0][0], params[1][1][:3])], jnp.zeros((8, 784), jnp.float32))
    # The checks are static: they run while tracing, so they raise under the caller's jit as well.
    with pytest.raises(ValueError, match=r"x must have 784 features.*\(8, 783\)"):
        jax.jit(lambda p, x: mlp.apply(p, x))(params, jnp.zeros((8, 783), jnp.float32))


def test_apply_is_one_jitted_function_compiled_once_per_shape():
    params = _rand_params((6, 5, 3), jnp.float32)
    start = mlp.apply._cache_size()
    for i in range(4):  # new values, same shapes and options: no new compile
        mlp.apply(params, _rand((4, 6), jnp.float32, seed=i), activation="relu")
    assert mlp.apply._cache_size() - start == 1
    counted = chex.assert_max_traces(lambda p, x: mlp.apply(p, x, activation="relu"), n=1)
    outer = jax.jit(counted)
    for i in range(3):
        outer(params, _rand((4, 6), jnp.float32, seed=i))


# ----------------------------------------------------------------------------- backprop


def _loss(name, outputs, y):
    from jaxmath import losses

    return getattr(losses, name)(outputs, y)


CASES = [
    ("sigmoid", "identity", "mse"),
    ("sigmoid", "sigmoid", "sum_of_squares"),
    ("sigmoid", "softmax", "mse"),
    ("sigmoid", "identity", "softmax_cross_entropy"),
    ("relu", "identity", "mse"),
    ("relu", "sigmoid", "sum_of_squares"),
    ("relu", "identity", "softmax_cross_entropy"),
    ("tanh", "sigmoid", "mse"),
]


@pytest.mark.parametrize(
    "hidden,out,loss,integer_labels",
    [c + (False,) for c in CASES] + [c + (True,) for c in CASES if c[2] == "softmax_cross_entropy"],
)
def test_backprop_equals_jax_grad_float64(hidden, out, loss, integer_labels):
    params = _rand_params((9, 7, 6, 4), jnp.float64, seed=0)
    x = _rand((11, 9), jnp.float64, seed=1)
    labels = jnp.asarray(np.arange(11) % 4)
    y = labels if integer_labels else jax.nn.one_hot(labels, 4, dtype=jnp.float64)
    grads = mlp.backprop(params, x, y, activation=hidden, output=out, loss=loss)
    assert [(dw.shape, db.shape) for dw, db in grads] == [(w.shape, b.shape) for w, b in params]
    assert all(dw.dtype == jnp.float64 and db.dtype == jnp.float64 for dw, db in grads)
    want = jax.grad(lambda p: _loss(loss, mlp.apply(p, x, activation=hidden, output=out), y))(params)
    assert _max_abs(grads, want) < 1e-10
    assert _max_abs(grads, jax.tree_util.tree_map(jnp.zeros_like, want)) > 1e-6  # not trivially zero


@pytest.mark.parametrize("hidden,out,loss", [CASES[1], CASES[3]])
def test_backprop_equals_jax_grad_float32(hidden, out, loss):
    params = _rand_params((784, 16, 16, 10), jnp.float32, seed=3)
    x = _rand((32, 784), jnp.float32, seed=4, uniform=True)
    y = jax.nn.one_hot(jnp.arange(32) % 10, 10, dtype=jnp.float32)
    grads = mlp.backprop(params, x, y, activation=hidden, output=out, loss=loss)
    assert all(dw.dtype == jnp.float32 for dw, _ in grads)
    want = jax.grad(lambda p: _loss(loss, mlp.apply(p, x, activation=hidden, output=out), y))(params)
    assert _max_abs(grads, want) < 1e-5


def test_backprop_notes_example_replayed_in_torch():
    """micrograd-style: the same 2-2-2-2 network and loss built in torch; autograd's gradients must match."""
    torch = pytest.importorskip("torch")
    params = _params(jnp.float64)
    x = jnp.asarray(NOTES_X, jnp.float64)
    y = jnp.asarray([[1.0, 0.0]], jnp.float64)
    grads = mlp.backprop(params, x, y, activation="sigmoid", output="sigmoid", loss="sum_of_squares")

    tp = [
        (torch.tensor(w, dtype=torch.float64, requires_grad=True),
         torch.tensor(b, dtype=torch.float64, requires_grad=True))
        for w, b in NOTES_PARAMS
    ]
    a = torch.tensor(NOTES_X, dtype=torch.float64)
    for w, b in tp:
        a = torch.sigmoid(a @ w + b)
    torch_loss = ((a - torch.tensor([[1.0, 0.0]], dtype=torch.float64)) ** 2).sum(dim=1).mean()
    torch_loss.backward()
    for (dw, db), (w, b) in zip(grads, tp):
        np.testing.assert_allclose(np.asarray(dw), w.grad.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.asarray(db), b.grad.numpy(), rtol=1e-12, atol=1e-14)
    # The output delta by hand, as the notes write it: ∂C/∂z = 2 (a - y) σ'(z).
    a3 = np.array([[0.61770478, 0.82912398]])
    delta = 2 * (a3 - [[1.0, 0.0]]) * a3 * (1 - a3)
    np.testing.assert_allclose(np.asarray(grads[2][1]), delta[0], rtol=1e-6)


def test_backprop_bfloat16_stays_finite():
    params = _rand_params((784, 16, 16, 10), jnp.bfloat16, seed=0)
    x = _rand((16, 784), jnp.bfloat16, seed=1, uniform=True)
    y = jnp.arange(16) % 10
    grads = mlp.backprop(params, x, y, activation="relu", loss="softmax_cross_entropy")
    assert all(dw.dtype == jnp.bfloat16 for dw, _ in grads)
    assert all(bool(jnp.all(jnp.isfinite(g.astype(jnp.float32)))) for g in jax.tree_util.tree_leaves(grads))


def test_backprop_rejects_bad_input():
    params = _rand_params((5, 3, 2), jnp.float32)
    x = jnp.zeros((4, 5), jnp.float32)
    with pytest.raises(ValueError, match=r"y must have shape \(4, 2\).*\(4, 3\)"):
        mlp.backprop(params, x, jnp.zeros((4, 3), jnp.float32))
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        mlp.backprop(params, x[0], jnp.zeros((2,), jnp.float32))
    with pytest.raises(ValueError, match="output must be \"identity\""):
        mlp.backprop(params, x, jnp.zeros((4,), jnp.int32), output="softmax", loss="softmax_cross_entropy")
    with pytest.raises(TypeError, match=r"y must be integer labels \(n,\) or one-hot targets \(n, 2\)"):
        mlp.backprop(params, x, jnp.zeros((4,), jnp.float32), loss="softmax_cross_entropy")
    with pytest.raises(ValueError, match="loss"):
        mlp.backprop(params, x, jnp.zeros((4, 2), jnp.float32), loss="hinge")


def test_layer_outputs_are_each_layer_of_the_forward_pass():
    model = mlp.make((6, 5, 4, 3), activation="tanh", output="softmax")
    params = model.init(jax.random.key(0))
    x = np.asarray(jax.random.uniform(jax.random.key(1), (7, 6)))
    outputs = model.layer_outputs(params, x)
    assert {k: v.shape for k, v in outputs.items()} == {"layer_1": (7, 5), "layer_2": (7, 4), "layer_3": (7, 3)}
    (w1, b1), (w2, b2), (w3, b3) = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in params]
    a1 = np.tanh(x @ w1 + b1)
    a2 = np.tanh(a1 @ w2 + b2)
    z3 = a2 @ w3 + b3
    a3 = np.exp(z3 - z3.max(axis=1, keepdims=True))
    a3 /= a3.sum(axis=1, keepdims=True)
    for got, want in zip((outputs[f"layer_{l}"] for l in (1, 2, 3)), (a1, a2, a3)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(outputs["layer_3"]), np.asarray(model.apply(params, x)), rtol=1e-6)
