"""jaxmath.models.lenet5: shapes and parameter counts first (against the paper), then values against a torch replay
of the same weights (forward and autograd), dtypes, and a CI-sized training run to an accuracy target."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.models import from_config, lenet5

torch = pytest.importorskip("torch")
F = torch.nn.functional

# Table I of LeCun et al. 1998, typed from the paper: row = S2 map, column = C3 map, X = connected.
PAPER_TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def _paper_mask():
    rows = PAPER_TABLE_I.split()
    return np.array([[ch == "X" for ch in row] for row in rows], np.int8)


def _params(variant, dtype, seed=0):
    """init's params with non-zero biases (so the replay checks them too), in ``dtype``."""
    params = lenet5.init(jax.random.key(seed), variant=variant, dtype=jnp.float64)
    rng = np.random.default_rng(seed)
    out = {}
    for name, layer in params.items():
        out[name] = {k: jnp.asarray(np.asarray(v) + (0.1 * rng.normal(size=v.shape) if k == "b" else 0.0), dtype)
                     for k, v in layer.items()}
    if variant == "1998":
        out["c3"]["w"] = out["c3"]["w"] * jnp.asarray(lenet5.C3_MASK, dtype)
    return out


def _x(n, dtype, seed=1):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=(n, 784)), dtype)


# ----------------------------------------------------------------------------- the torch replay


def _torch_params(params):
    return {name: {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for k, v in layer.items()}
            for name, layer in params.items()}


def _torch_forward(tp, x, variant):
    """The same network written with torch.nn.functional (NCHW, OIHW kernels), float64."""
    def conv(h, layer, mask=None):
        w = layer["w"] if mask is None else layer["w"] * mask
        return F.conv2d(h, w.permute(3, 2, 0, 1)) + layer["b"][None, :, None, None]

    h = F.pad(x.reshape(-1, 1, 28, 28), (2, 2, 2, 2))
    if variant == "modern":
        h = F.max_pool2d(torch.relu(conv(h, tp["c1"])), 2)
        h = F.max_pool2d(torch.relu(conv(h, tp["c3"])), 2)
        h = torch.relu(conv(h, tp["c5"])).flatten(1)
        h = torch.relu(h @ tp["f6"]["w"] + tp["f6"]["b"])
        return h @ tp["out"]["w"] + tp["out"]["b"]

    def f(a):  # the paper's squashing function
        return 1.7159 * torch.tanh(2.0 * a / 3.0)

    def sub(h, layer):  # sum of each 2x2 window, one coefficient and one bias per map
        s = F.avg_pool2d(h, 2) * 4.0
        return f(s * layer["coef"][None, :, None, None] + layer["b"][None, :, None, None])

    h = h * 1.275 - 0.1  # white 0 → -0.1, black 1 → 1.175
    h = sub(f(conv(h, tp["c1"])), tp["s2"])
    mask = torch.tensor(_paper_mask().astype(np.float64))[None, None]  # (1, 1, 6, 16) over HWIO
    h = sub(f(conv(h, tp["c3"], mask)), tp["s4"])
    h = f(conv(h, tp["c5"])).flatten(1)
    h = f(h @ tp["f6"]["w"] + tp["f6"]["b"])
    codes = torch.tensor(np.asarray(lenet5.RBF_CODES, np.float64))
    return -((h[:, None, :] - codes[None]) ** 2).sum(-1)


# ----------------------------------------------------------------------------- shapes and counts


@pytest.mark.parametrize("variant", ["modern", "1998"])
def test_shapes_and_input_layouts(variant):
    dtype = jnp.float32
    model = lenet5.make(variant=variant)
    params = model.init(jax.random.key(0))
    x = _x(4, dtype)
    out = model.apply(params, x)
    chex.assert_shape(out, (4, 10))
    assert out.dtype == dtype
    if variant == "modern":  # the layouts are reshaped before the variants part ways
        chex.assert_trees_all_close(model.apply(params, x.reshape(4, 28, 28)), out, atol=0.0)
        chex.assert_trees_all_close(model.apply(params, x.reshape(4, 28, 28, 1)), out, atol=0.0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 784\)"):
        model.apply(params, x[:, :783])
    with pytest.raises(ValueError, match="variant"):
        lenet5.make(variant="2024")


def test_layer_shapes_and_modern_count():
    params = lenet5.init(jax.random.key(0), variant="modern")
    shapes = jax.tree_util.tree_map(jnp.shape, params)
    assert shapes == {"c1": {"w": (5, 5, 1, 6), "b": (6,)}, "c3": {"w": (5, 5, 6, 16), "b": (16,)},
                      "c5": {"w": (5, 5, 16, 120), "b": (120,)}, "f6": {"w": (120, 84), "b": (84,)},
                      "out": {"w": (84, 10), "b": (10,)}}
    per_layer = {name: sum(int(np.prod(s)) for s in layer.values()) for name, layer in shapes.items()}
    assert per_layer == {"c1": 156, "c3": 2416, "c5": 48120, "f6": 10164, "out": 850}
    assert lenet5.count_params(params) == 61_706


def test_c3_table_matches_the_paper():
    np.testing.assert_array_equal(lenet5.C3_MASK, _paper_mask())
    # Six maps read 3 inputs, nine read 4, one reads all 6: 60 connections.
    assert sorted(_paper_mask().sum(axis=0).tolist()) == [3] * 6 + [4] * 9 + [6]


def test_1998_count_is_the_papers():
    params = lenet5.init(jax.random.key(0), variant="1998")
    assert set(params) == {"c1", "s2", "c3", "s4", "c5", "f6"}
    c3_connected = int(np.count_nonzero(np.asarray(params["c3"]["w"]))) + params["c3"]["b"].size
    assert c3_connected == 1516  # the paper: "Layer C3 has 1,516 trainable parameters"
    # C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164: the paper's 60,000 (RBF codes are fixed, not trained).
    assert params["s2"]["coef"].size + params["s2"]["b"].size == 12
    assert params["s4"]["coef"].size + params["s4"]["b"].size == 32
    assert lenet5.count_params(params) == 156 + 12 + 1516 + 32 + 48120 + 10164 == 60_000


def test_rbf_codes_are_fixed_pm1_bitmaps():
    codes = np.asarray(lenet5.RBF_CODES)
    assert codes.shape == (10, 84) and set(np.unique(codes).tolist()) == {-1, 1}
    one = codes[1].reshape(12, 7)
    assert (one[:, 3] == 1).all()  # the 7x12 bitmap of "1" has its stem in column 3
    distances = (codes[:, None] != codes[None]).sum(-1)
    assert distances[~np.eye(10, dtype=bool)].min() >= 7  # distinct codes


def test_from_config_round_trip():
    model = lenet5.make(variant="1998", dtype="float64", compute_dtype=None)
    config = json.loads(json.dumps(model.config))
    assert config == {"name": "lenet5", "variant": "1998", "dtype": "float64", "compute_dtype": None,
                      "conv_method": "im2col", "batch_split": "auto"}
    again = from_config(config)
    params = model.init(jax.random.key(0))
    assert params["c1"]["w"].dtype == jnp.float64
    assert again == model or again.config == model.config
    chex.assert_trees_all_close(again.apply(params, _x(4, jnp.float64)), model.apply(params, _x(4, jnp.float64)))


def test_int_key_refused():
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        lenet5.init(0)


# ----------------------------------------------------------------------------- values


def _check_against_torch(params, x, labels, variant, **options):
    """Logits and cross-entropy gradients of ``lenet5.apply(..., **options)`` against the torch replay, float64.

    Returns jaxmath's logits and gradients."""
    n = x.shape[0]

    def loss(p):
        logits = lenet5.apply(p, x, variant=variant, **options)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(n), labels]), logits

    (_, got), grads = jax.value_and_grad(loss, has_aux=True)(params)
    tp = _torch_params(params)
    want = _torch_forward(tp, torch.tensor(np.asarray(x)), variant)
    np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=1e-10, atol=1e-10)
    F.cross_entropy(want, torch.tensor(labels)).backward()
    for name, layer in tp.items():
        for k, v in layer.items():
            np.testing.assert_allclose(np.asarray(grads[name][k]), v.grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name}.{k}")
    return got, grads


@pytest.mark.parametrize("variant", ["modern", "1998"])
def test_forward_and_gradients_match_torch_float64(variant):
    params = _params(variant, jnp.float64)
    x = _x(4, jnp.float64)
    got, grads = _check_against_torch(params, x, np.array([0, 3, 7, 9]), variant)
    # XLA's convolution gives the same logits as the default im2col matmuls.
    np.testing.assert_allclose(np.asarray(lenet5.apply(params, x, variant=variant, conv_method="xla")),
                               np.asarray(got), rtol=1e-10, atol=1e-10)
    if variant == "1998":  # unconnected C3 weights get no gradient, so they stay 0 under any optimizer
        unconnected = np.broadcast_to(lenet5.C3_MASK == 0, (5, 5, 6, 16))
        assert np.all(np.asarray(grads["c3"]["w"])[unconnected] == 0.0)


@pytest.mark.parametrize("variant", ["modern", "1998"])
def test_a_batch_split_in_parts_matches_torch_float64(variant):
    """130 examples as 2 independent parts of 65 (``batch_split=2``) against torch's one batch."""
    _check_against_torch(_params(variant, jnp.float64), _x(130, jnp.float64, seed=2), np.arange(130) % 10, variant,
                         batch_split=2)


@pytest.mark.parametrize("variant", ["modern", "1998"])
def test_float32_and_bfloat16(variant):
    p32 = _params(variant, jnp.float32)
    x = _x(4, jnp.float32)
    want = _torch_forward(_torch_params(p32), torch.tensor(np.asarray(x, np.float64)), variant).detach().numpy()
    out32 = lenet5.apply(p32, x, variant=variant)
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out32), want, rtol=1e-4, atol=1e-4)
    params16 = lenet5.make(variant=variant, dtype="bfloat16").init(jax.random.key(0))
    out16 = lenet5.apply(params16, x, variant=variant)
    assert out16.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(out16.astype(jnp.float32))))
    mixed = lenet5.make(variant=variant, compute_dtype="bfloat16").apply(p32, x)
    assert mixed.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(mixed)))
    # bfloat16 inputs keep about 3 significant digits: close to the float32 logits, not equal.
    np.testing.assert_allclose(np.asarray(mixed), want, rtol=0.05, atol=0.05 * np.abs(want).max())


# ----------------------------------------------------------------------------- training


@pytest.mark.slow
def test_modern_lenet_reaches_97_percent_on_a_slice():
    """Fixed seed, train[:12000], Adam (cosine-decayed), batch 64, 3 epochs with run_epoch; scored on all of test."""
    from jaxmath import optim, training
    from jaxmath.datasets import load_mnist

    x, labels = load_mnist("train[:12000]")
    x_test, labels_test = load_mnist("test")
    model = lenet5.make(variant="modern")
    loss_fn = training.make_classifier_loss(model, num_classes=10)
    schedule = optim.cosine_decay(init_value=3e-3, decay_steps=3 * (12000 // 64), alpha=0.01)
    step = training.make_train_step(loss_fn, optim.adam(learning_rate=schedule))
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    x, labels = jax.device_put(x), jax.device_put(labels)
    for _ in range(3):
        state, metrics = training.run_epoch(state, x, labels, train_step=step, batch_size=64)
        assert int(metrics["first_nonfinite_step"]) == -1
    result = training.evaluate(state.params, x_test, labels_test, loss_fn=loss_fn)
    assert float(result["accuracy"]) >= 0.97


@pytest.mark.parametrize("variant", ["modern", "1998"])
def test_layer_outputs_shapes_and_the_last_is_apply(variant):
    model = lenet5.make(variant=variant)
    params = model.init(jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (3, 28, 28))
    outputs = model.layer_outputs(params, x)
    assert set(outputs) == set(lenet5.LAYERS)
    assert {k: v.shape for k, v in outputs.items()} == {
        "c1": (3, 28, 28, 6), "s2": (3, 14, 14, 6), "c3": (3, 10, 10, 16), "s4": (3, 5, 5, 16),
        "c5": (3, 120), "f6": (3, 84), "out": (3, 10),
    }
    np.testing.assert_allclose(np.asarray(outputs["out"]), np.asarray(model.apply(params, x)), rtol=1e-6)
    # F6 from C5 by hand: the layers chain as the docstring says.
    w, b = np.asarray(params["f6"]["w"]), np.asarray(params["f6"]["b"])
    pre = np.asarray(outputs["c5"]) @ w + b
    want = np.maximum(pre, 0) if variant == "modern" else 1.7159 * np.tanh(2 / 3 * pre)
    np.testing.assert_allclose(np.asarray(outputs["f6"]), want, rtol=1e-5, atol=1e-5)
