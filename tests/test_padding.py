"""jaxmath.devices.padding: sizes rounded up for the matrix units; padded hidden units and batch rows change
nothing (function, gradients, training) where the module says so."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import optim, training
from jaxmath.devices import distributed, padding
from jaxmath.models import mlp


@pytest.mark.parametrize("n, multiple, want", [(1000, 128, 1024), (1024, 128, 1024), (1025, 128, 1152),
                                               (100, 8, 104), (128, 8, 128), (0, 8, 0), (1, 128, 128), (7, 1, 7)])
def test_padded_size_by_hand(n, multiple, want):
    assert padding.padded_size(n, multiple) == want


@pytest.mark.parametrize("n, multiple, name", [(-1, 8, "n"), (10, 0, "multiple"), (10.5, 8, "n")])
def test_padded_size_refuses_bad_values_by_name(n, multiple, name):
    with pytest.raises((ValueError, TypeError), match=name):
        padding.padded_size(n, multiple)


def test_padded_sizes_pad_only_the_hidden_widths():
    assert padding.padded_sizes((784, 1000, 10), 128) == (784, 1024, 10)
    assert padding.padded_sizes((784, 30, 20, 10), 8) == (784, 32, 24, 10)
    assert padding.padded_sizes((784, 16, 16, 10), 8) == (784, 16, 16, 10)
    assert (padding.matrix_unit_multiple("tpu"), padding.matrix_unit_multiple("gpu")) == (128, 8)
    assert padding.matrix_unit_multiple("cpu") == 1
    with pytest.raises(ValueError, match="platform"):
        padding.matrix_unit_multiple("npu")


def _numpy_forward(params, x, activation):
    f = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[activation]
    a = np.asarray(x, np.float64)
    for i, (w, b) in enumerate(params):
        z = a @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
        a = z if i == len(params) - 1 else f(z)
    return a


@pytest.mark.parametrize("activation, dtype, tol", [("sigmoid", "float32", 1e-5), ("relu", "float32", 1e-5),
                                                   ("tanh", "float32", 1e-5), ("sigmoid", "float64", 1e-10)])
def test_padded_hidden_units_leave_the_function_unchanged(activation, dtype, tol):
    sizes = (12, 10, 5, 3)
    model = mlp.make(sizes, activation=activation, dtype=dtype)
    params = model.init(jax.random.key(0))
    padded = padding.pad_hidden(params, 8)
    assert [w.shape for w, _ in padded] == [(12, 16), (16, 8), (8, 3)]
    assert [b.shape for _, b in padded] == [(16,), (8,), (3,)]
    assert {str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(padded)} == {dtype}
    x = np.random.default_rng(0).normal(size=(7, 12)).astype(dtype)
    got = np.asarray(model.apply(padded, jnp.asarray(x)))
    np.testing.assert_allclose(got, _numpy_forward(params, x, activation), atol=tol, rtol=tol)
    back = padding.unpad_hidden(padded, sizes)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)


def _train(model, params, x, labels, steps, mask=None):
    step = training.make_train_step(training.make_classifier_loss(model, num_classes=3, flatten=False),
                                    optim.sgd(learning_rate=0.3), donate=False)
    state = step.init(params, key=jax.random.key(1))
    for t in range(steps):
        state, _ = step(state, (x[t * 8:(t + 1) * 8], labels[t * 8:(t + 1) * 8]))
        if mask is not None:
            state = state._replace(params=jax.tree_util.tree_map(jnp.multiply, state.params, mask))
    return state.params


@pytest.mark.parametrize("activation, masked", [("relu", False), ("tanh", False), ("sigmoid", True)])
def test_padded_training_equals_unpadded_training_float32(activation, masked):
    """f(0) = 0: the padded units get zero gradients and stay zero; sigmoid (f(0) = 1/2) needs the mask."""
    sizes = (12, 10, 3)
    model = mlp.make(sizes, activation=activation, dtype="float32")
    params = model.init(jax.random.key(0))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 12)).astype(np.float32)
    labels = rng.integers(0, 3, size=(40,)).astype(np.int32)
    padded = padding.pad_hidden(params, 8)
    mask = padding.hidden_mask(padded, sizes) if masked else None
    plain = _train(model, params, x, labels, 5)
    wide = _train(model, padded, x, labels, 5, mask)
    for a, b in zip(jax.tree_util.tree_leaves(padding.unpad_hidden(wide, sizes)), jax.tree_util.tree_leaves(plain)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert float(jnp.max(jnp.abs(wide[0][0][:, 10:]))) == 0.0 and float(jnp.max(jnp.abs(wide[1][0][10:]))) == 0.0
    assert float(jnp.max(jnp.abs(plain[0][0] - params[0][0]))) > 1e-3  # training moved the real weights


def test_sigmoid_padded_units_receive_gradient_without_the_mask_float32():
    """The reason the mask exists: σ(0) = 1/2 flows into the padded units' out-weights."""
    model = mlp.make((12, 10, 3), activation="sigmoid", dtype="float32")
    padded = padding.pad_hidden(model.init(jax.random.key(0)), 8)
    loss_fn = training.make_classifier_loss(model, num_classes=3, flatten=False)
    x = np.random.default_rng(2).normal(size=(8, 12)).astype(np.float32)
    labels = np.arange(8, dtype=np.int32) % 3
    grads = jax.grad(lambda p: loss_fn(p, (x, labels))[0])(padded)
    assert float(jnp.max(jnp.abs(grads[1][0][10:]))) > 1e-4   # out-weights of the padded units
    assert float(jnp.max(jnp.abs(grads[0][0][:, 10:]))) == 0.0  # in-weights: w_out = 0 stops it


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "sum_of_squares"])
def test_padded_batch_with_its_mask_gives_the_plain_loss_and_gradient_float32(loss):
    model = mlp.make((12, 8, 10), activation="tanh", dtype="float32")
    params = model.init(jax.random.key(0))
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(100, 12), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(100,), dtype=np.uint8)
    batch = padding.pad_batch(x, labels, 128)
    assert batch.x.shape == (128, 12) and batch.labels.shape == (128,) and batch.mask.dtype == np.float32
    assert batch.mask.sum() == 100 and np.all(batch.mask[:100] == 1) and np.all(batch.x[100:] == 0)
    plain = training.make_classifier_loss(model, num_classes=10, loss=loss)
    masked = distributed.make_masked_classifier_loss(model, num_classes=10, loss=loss)
    (want, _), want_g = jax.value_and_grad(plain, has_aux=True)(params, (x, labels))
    (got, _), got_g = jax.value_and_grad(masked, has_aux=True)(params, tuple(batch))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(got_g), jax.tree_util.tree_leaves(want_g)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # Unmasked, the 28 zero rows (and their label 0) would change the loss.
    unmasked = float(plain(params, (batch.x, batch.labels))[0])
    assert abs(unmasked - float(want)) > 1e-3
