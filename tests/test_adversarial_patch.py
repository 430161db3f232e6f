"""The adversarial patch: pasting against NumPy, the loss and its gradient against NumPy, the success rate
against a NumPy count, a fitted patch far above a noise patch on a trained MLP, determinism, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import adversarial, optim, training
from jaxmath.datasets import load_mnist
from jaxmath.models import mlp

H, W, NUM_CLASSES = 6, 7, 3


def linear_apply(params, x):
    return x @ params["w"] + params["b"]


def linear_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {"w": jnp.asarray(rng.normal(size=(H * W, NUM_CLASSES)), dtype),
            "b": jnp.asarray(rng.normal(size=NUM_CLASSES) * 0.1, dtype)}


def np_paste(x, patch, positions):
    out = np.array(x, copy=True)
    p, q = patch.shape
    for i, (r, c) in enumerate(positions):
        out[i, r:r + p, c:c + q] = patch
    return out


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# --- shapes and pasting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_apply_patch_equals_a_numpy_paste(dtype):
    rng = np.random.default_rng(0)
    x, patch = rng.uniform(size=(5, H, W)), rng.uniform(size=(3, 2))
    positions = np.array([[0, 0], [H - 3, W - 2], [1, 4], [3, 0], [0, 5]])  # corners and edges included
    got = adversarial.apply_patch(jnp.asarray(x, dtype), jnp.asarray(patch, dtype), jnp.asarray(positions))
    assert got.shape == (5, H, W) and got.dtype == dtype
    np.testing.assert_array_equal(got, np_paste(x, patch, positions).astype(dtype))


def test_apply_patch_clamps_positions_past_the_edge():
    # float64: a corner past the edge pastes the patch flush with it (lax.dynamic_update_slice's clamping); a
    # negative one counts from the end first (-4 → H - 4 = 2), as JAX's dynamic slices do
    x, patch = np.zeros((2, H, W)), np.ones((3, 3))
    got = adversarial.apply_patch(jnp.asarray(x), jnp.asarray(patch), jnp.asarray([[10, 10], [-4, 2]]))
    np.testing.assert_array_equal(got, np_paste(x, patch, [(H - 3, W - 3), (2, 2)]))


def test_apply_patch_gradient_reaches_the_patch_from_every_image():
    # float64: d/dP Σ_i Σ A(x_i, P, l_i) ⊙ V_i = Σ_i V_i[l_i : l_i + p]
    rng = np.random.default_rng(1)
    x, v = rng.uniform(size=(4, H, W)), rng.normal(size=(4, H, W))
    positions = np.array([[0, 0], [2, 3], [3, 4], [1, 1]])
    grad = jax.grad(lambda P: jnp.sum(adversarial.apply_patch(jnp.asarray(x), P, jnp.asarray(positions)) * v))(
        jnp.zeros((3, 3)))
    want = sum(v[i, r:r + 3, c:c + 3] for i, (r, c) in enumerate(positions))
    np.testing.assert_allclose(grad, want, rtol=1e-12)


def test_random_positions_cover_exactly_the_places_that_fit():
    pos = np.asarray(adversarial.random_positions(jax.random.key(0), num_images=4000, image_shape=(H, W),
                                                  patch_shape=(3, 2)))
    assert pos.shape == (4000, 2) and pos.dtype == np.int32
    assert set(pos[:, 0]) == set(range(H - 3 + 1)) and set(pos[:, 1]) == set(range(W - 2 + 1))


# --- the loss, its gradient and the success rate against NumPy ----------------------------------------------


def test_patch_loss_and_gradient_equal_numpy():
    # float64: linear model z = x W + b; ∂/∂x_i of −log softmax(z_i)_t is W (softmax(z_i) − e_t) / n
    params = linear_params(jnp.float64)
    rng = np.random.default_rng(2)
    x, patch = rng.uniform(size=(5, H, W)), rng.uniform(size=(3, 3))
    positions = rng.integers(0, [H - 2, W - 2], size=(5, 2))
    target = 2
    w, b = np.asarray(params["w"]), np.asarray(params["b"])
    pasted = np_paste(x, patch, positions).reshape(5, -1)
    log_p = np_log_softmax(pasted @ w + b)
    loss, grad = jax.value_and_grad(lambda P: adversarial.patch_loss(
        linear_apply, params, jnp.asarray(x), P, jnp.asarray(positions), target=target))(jnp.asarray(patch))
    np.testing.assert_allclose(loss, -log_p[:, target].mean(), rtol=1e-10)
    onehot = np.eye(NUM_CLASSES)[target]
    grad_x = ((np.exp(log_p) - onehot) @ w.T / 5).reshape(5, H, W)
    want = sum(grad_x[i, r:r + 3, c:c + 3] for i, (r, c) in enumerate(positions))
    np.testing.assert_allclose(grad, want, rtol=1e-10, atol=1e-13)


def test_patch_success_rate_equals_a_numpy_count():
    # float64; uint8 images scaled by 1/255, positions from the documented random_positions(key, ...)
    params = linear_params(jnp.float64)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(40, H, W), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=40)
    patch, key, target = rng.uniform(size=(2, 4)), jax.random.key(7), 1
    rate = adversarial.patch_success_rate(linear_apply, params, x, labels, patch, key, target=target, batch_size=16)
    positions = np.asarray(adversarial.random_positions(key, num_images=40, image_shape=(H, W), patch_shape=(2, 4)))
    z = np_paste(x / 255.0, patch, positions).reshape(40, -1) @ np.asarray(params["w"]) + np.asarray(params["b"])
    others = labels != target
    assert isinstance(rate, float)
    assert rate == pytest.approx(np.sum((z.argmax(-1) == target) & others) / np.sum(others), abs=1e-12)


# --- fit_patch ---------------------------------------------------------------------------------------------


def _fit(key=0, dtype=jnp.float64, **changes):
    # one compiled fit (float64, 200 steps) shared by the tests below: CI time is compile time
    kwargs = dict(target=1, patch_size=3, max_steps=200, batch_size=8, learning_rate=0.05)
    kwargs.update(changes)
    x = np.random.default_rng(4).integers(0, 256, size=(30, H, W), dtype=np.uint8)
    return adversarial.fit_patch(linear_apply, linear_params(dtype), x, jax.random.key(key), **kwargs)


def test_fit_patch_shapes_info_determinism_and_descent():
    patch, info = _fit()
    assert patch.shape == (3, 3) and patch.dtype == jnp.float64
    assert float(patch.min()) >= 0.0 and float(patch.max()) <= 1.0
    history = np.asarray(info.loss_history)
    assert history.shape == (200,) and np.all(np.isfinite(history))
    assert int(info.num_steps) == 200 and not bool(info.nonfinite) and int(info.first_nonfinite_step) == -1
    # the mean batch loss of the last steps is below that of the first (the patch starts as noise)
    assert history[-20:].mean() < history[:20].mean()
    again, info_again = _fit()
    np.testing.assert_array_equal(patch, again)
    np.testing.assert_array_equal(info.loss_history, info_again.loss_history)
    # another key draws other batches (the patch itself may reach the same corner of [0, 1]^(p×p): for a
    # linear model the best patch is pixel-wise 0 or 1)
    _, info_other = _fit(key=1)
    assert not np.array_equal(np.asarray(info.loss_history), np.asarray(info_other.loss_history))


def test_fit_patch_in_bfloat16_stays_finite():
    patch, info = _fit(dtype=jnp.bfloat16, max_steps=4)
    assert patch.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(patch, np.float32)))
    assert not bool(info.nonfinite)


@pytest.mark.parametrize("changes,error,match", [
    ({"target": 3}, ValueError, r"target must lie in \[0, 3\)"),
    ({"target": jnp.asarray([0, 1])}, ValueError, "one class index"),
    ({"patch_size": 7}, ValueError, "patch_size must be <= the image side 6"),
    ({"patch_size": 0}, ValueError, "patch_size must be >= 1"),
    ({"learning_rate": float("nan")}, ValueError, "learning_rate must be > 0"),
    ({"learning_rate": float("inf")}, ValueError, "learning_rate must be finite"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"max_steps": 0}, ValueError, "max_steps must be >= 1"),
])
def test_fit_patch_refuses_bad_input(changes, error, match):
    with pytest.raises(error, match=match):
        _fit(**changes)


def test_bad_images_labels_and_keys_are_refused():
    params = linear_params(jnp.float32)
    x = np.zeros((4, H, W), np.float32)
    with pytest.raises(ValueError, match="x must be 3-dimensional"):
        adversarial.fit_patch(linear_apply, params, x.reshape(4, -1), jax.random.key(0), target=1, max_steps=2,
                              batch_size=2, learning_rate=0.1, patch_size=2)
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        bad = x.copy()
        bad[1, 2, 3] = np.nan
        adversarial.fit_patch(linear_apply, params, bad, jax.random.key(0), target=1, max_steps=2, batch_size=2,
                              learning_rate=0.1, patch_size=2)
    with pytest.raises(TypeError, match=r"jax.random.key\(0\)"):
        adversarial.fit_patch(linear_apply, params, x, 0, target=1, max_steps=2, batch_size=2, learning_rate=0.1)
    with pytest.raises(ValueError, match="no digit of a class other than target=1"):
        adversarial.patch_success_rate(linear_apply, params, x, np.ones(4, np.int32), np.zeros((2, 2)),
                                       jax.random.key(0), target=1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        adversarial.patch_success_rate(linear_apply, params, x, np.array([0, 1, 2, 5]), np.zeros((2, 2)),
                                       jax.random.key(0), target=1)
    with pytest.raises(ValueError, match="patch must fit in the images"):
        adversarial.patch_success_rate(linear_apply, params, x, np.zeros(4, np.int32), np.zeros((9, 2)),
                                       jax.random.key(0), target=1)
    with pytest.raises(ValueError, match=r"positions must be \(n, 2\) = \(4, 2\)"):
        adversarial.apply_patch(jnp.asarray(x), jnp.zeros((2, 2)), jnp.zeros((4, 3), jnp.int32))
    with pytest.raises(TypeError, match="x must be float images"):
        adversarial.apply_patch(jnp.asarray(x, jnp.uint8), jnp.zeros((2, 2)), jnp.zeros((4, 2), jnp.int32))


# --- a trained MLP ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_mlp():
    """784-64-10 ReLU MLP, 2 epochs of Adam on train[:6000] (float32): about 89% on test."""
    x, labels = load_mnist("train[:6000]")
    model = mlp.make((784, 64, 10), activation="relu")
    step = training.make_train_step(training.make_classifier_loss(model, num_classes=10),
                                    optim.adam(learning_rate=2e-3))
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    for _ in range(2):
        state, _ = training.run_epoch(state, x, labels, train_step=step, batch_size=64)
    return model, state.params, x


@pytest.mark.slow
def test_fitted_patch_beats_a_noise_patch_on_held_out_digits(small_mlp):
    # An MLP has no translation equivariance: a small patch at random places barely moves it (an 8x8 patch
    # reaches about the noise patch's rate), so the test uses a 20x20 patch (81 places), where the fit matters.
    model, params, x = small_mlp
    x_test, labels_test = load_mnist("test[:1000]")
    patch, info = adversarial.fit_patch(model.apply, params, x, jax.random.key(4), target=4, patch_size=20,
                                        max_steps=100, batch_size=32, learning_rate=0.1)
    assert not bool(info.nonfinite)
    key = jax.random.key(5)
    fitted = adversarial.patch_success_rate(model.apply, params, x_test, labels_test, patch, key, target=4)
    noise = adversarial.patch_success_rate(model.apply, params, x_test, labels_test,
                                           jax.random.uniform(jax.random.key(6), (20, 20)), key, target=4)
    assert fitted >= 0.4 and noise <= 0.1


@pytest.mark.slow
def test_a_patch_fitted_under_rotation_and_scale_works_turned_and_scaled(small_mlp):
    # Brown et al.'s expectation over transformation: turned by up to 22.5° and scaled by 0.9–1.05 while fitting,
    # then measured on held-out digits under fresh placements of the same kind
    model, params, x = small_mlp
    x_test, labels_test = load_mnist("test[:1000]")
    turns = dict(max_rotation_degrees=22.5, scale_range=(0.9, 1.05))
    patch, info = adversarial.fit_patch(model.apply, params, x, jax.random.key(4), target=4, patch_size=20,
                                        max_steps=100, batch_size=32, learning_rate=0.1, **turns)
    assert not bool(info.nonfinite)
    key = jax.random.key(5)
    fitted = adversarial.patch_success_rate(model.apply, params, x_test, labels_test, patch, key, target=4, **turns)
    noise = adversarial.patch_success_rate(model.apply, params, x_test, labels_test,
                                           jax.random.uniform(jax.random.key(6), (20, 20)), key, target=4, **turns)
    assert fitted >= 0.4 and noise <= 0.1
