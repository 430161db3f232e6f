"""Fooling images and noise confidence: shapes, the objective and its gradient against NumPy, the loop against
a NumPy replay, a trained MLP fooled from noise, determinism, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import adversarial, optim, training
from jaxmath.datasets import load_mnist
from jaxmath.models import mlp

SHAPE = (4, 5)
NUM_CLASSES = 3


def linear_apply(params, x):
    return x @ params["w"] + params["b"]


def linear_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    d = int(np.prod(SHAPE))
    return {"w": jnp.asarray(rng.normal(size=(d, NUM_CLASSES)), dtype),
            "b": jnp.asarray(rng.normal(size=NUM_CLASSES) * 0.1, dtype)}


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def np_tv(x):
    return np.abs(np.diff(x, axis=-2)).sum(axis=(-2, -1)) + np.abs(np.diff(x, axis=-1)).sum(axis=(-2, -1))


def np_tv_grad(x):
    """∂TV/∂x: each difference |x_b − x_a| adds sign(x_b − x_a) to x_b and subtracts it from x_a."""
    g = np.zeros_like(x)
    d = np.sign(np.diff(x, axis=-2))
    g[..., 1:, :] += d
    g[..., :-1, :] -= d
    d = np.sign(np.diff(x, axis=-1))
    g[..., :, 1:] += d
    g[..., :, :-1] -= d
    return g


def np_objective_and_grad(params, x, x0, target, penalty, weight):
    """J(x_i) = log softmax(x_i W + b)_t − λ R(x_i) and ∇ₓJ, written for the linear model."""
    w, b = np.asarray(params["w"], np.float64), np.asarray(params["b"], np.float64)
    n = x.shape[0]
    rows = x.reshape(n, -1)
    log_p = np_log_softmax(rows @ w + b)
    value = log_p[np.arange(n), target]
    grad = (w[:, target].T - np.exp(log_p) @ w.T).reshape(x.shape)  # W_t − W softmax(z)
    if penalty == "l2":
        value = value - weight * ((x - x0) ** 2).reshape(n, -1).sum(-1)
        grad = grad - 2 * weight * (x - x0)
    elif penalty == "tv":
        value = value - weight * np_tv(x)
        grad = grad - weight * np_tv_grad(x)
    return value, grad


# --- shapes first -----------------------------------------------------------------------------------------


# Most loop tests share one compiled loop per dtype (3 images, 3 steps, the TV penalty): CI time is compile time.
STEPS = 3


def test_fooling_image_shapes_for_one_target_and_a_batch():
    # float32
    params = linear_params(jnp.float32)
    x, info = adversarial.fooling_image(linear_apply, params, jax.random.key(0), target=1, shape=SHAPE,
                                        max_steps=STEPS, learning_rate=0.1, penalty="tv", penalty_weight=0.05)
    assert x.shape == SHAPE and x.dtype == jnp.float32
    assert info.loss_history.shape == (STEPS,) and info.confidence.shape == ()
    assert info.steps_to_confidence.shape == () and info.steps_to_confidence.dtype == jnp.int32
    xs, info = adversarial.fooling_image(linear_apply, params, jax.random.key(0), target=jnp.arange(3), shape=SHAPE,
                                         max_steps=STEPS, learning_rate=0.1, penalty="tv", penalty_weight=0.05)
    assert xs.shape == (3,) + SHAPE and xs.dtype == jnp.float32
    assert info.confidence.shape == (3,) and info.steps_to_confidence.shape == (3,)
    assert info.converged.shape == () and info.num_steps.shape == () and info.num_steps.dtype == jnp.int32
    assert float(xs.min()) >= 0.0 and float(xs.max()) <= 1.0


def test_noise_confidence_shapes_and_values_match_numpy():
    # float64; 23 images in batches of 5: batch i is jax.random.uniform(split(key, 5)[i], (5,) + shape)
    params = linear_params(jnp.float64)
    key = jax.random.key(3)
    out = adversarial.noise_confidence(linear_apply, params, key, num_images=23, shape=SHAPE, batch_size=5)
    assert out.confidence.shape == (23,) and out.predicted.shape == (23,) and out.predicted.dtype == jnp.int32
    noise = np.concatenate([np.asarray(jax.random.uniform(k, (5,) + SHAPE, jnp.float64))
                            for k in jax.random.split(key, 5)])[:23]
    p = np.exp(np_log_softmax(noise.reshape(23, -1) @ np.asarray(params["w"]) + np.asarray(params["b"])))
    np.testing.assert_allclose(out.confidence, p.max(-1), rtol=1e-10)
    np.testing.assert_array_equal(out.predicted, p.argmax(-1))


# --- the objective and the step against NumPy --------------------------------------------------------------


@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-10), (jnp.float32, 1e-5)])
def test_total_variation_equals_numpy(dtype, tol):
    x = np.random.default_rng(1).uniform(size=(3, 6, 7))
    got = adversarial.total_variation(jnp.asarray(x, dtype))
    assert got.shape == (3,) and got.dtype == dtype
    np.testing.assert_allclose(got, np_tv(x), rtol=tol)
    # a hand value: a single bright pixel inside a dark image has 4 unit jumps around it
    one = np.zeros((5, 5))
    one[2, 2] = 1.0
    assert float(adversarial.total_variation(jnp.asarray(one, dtype))) == 4.0
    # the gradient is the subgradient with sign(0) = 0, as np_tv_grad: clipped flat regions are not pushed
    flat = np.ones((5, 5))
    flat[0, 0] = 0.0
    grad = jax.grad(lambda z: adversarial.total_variation(z))(jnp.asarray(flat, dtype))
    np.testing.assert_array_equal(grad, np_tv_grad(flat))


@pytest.mark.parametrize("penalty,weight", [(None, 0.0), ("l2", 0.3), ("tv", 0.05)])
def test_objective_and_its_gradient_equal_numpy(penalty, weight):
    # float64
    params = linear_params(jnp.float64)
    rng = np.random.default_rng(2)
    x0, x = rng.uniform(size=(2,) + SHAPE), rng.uniform(size=(2,) + SHAPE)
    target = np.array([2, 0])
    want, want_grad = np_objective_and_grad(params, x, x0, target, penalty, weight)
    got = adversarial.fooling_objective(linear_apply, params, jnp.asarray(x), jnp.asarray(x0), jnp.asarray(target),
                                        penalty=penalty, penalty_weight=weight)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    grad = jax.grad(lambda z: jnp.sum(adversarial.fooling_objective(
        linear_apply, params, z, jnp.asarray(x0), jnp.asarray(target), penalty=penalty, penalty_weight=weight)))(
        jnp.asarray(x))
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("penalty,weight", [("l2", 0.3), ("tv", 0.05)])
def test_fooling_loop_replays_numpy_gradient_ascent(penalty, weight):
    # float64: three clipped ascent steps from the documented starting noise, replayed in NumPy
    params = linear_params(jnp.float64)
    key, target, lr, steps = jax.random.key(5), np.array([0, 1, 2]), 0.4, STEPS
    x, info = adversarial.fooling_image(linear_apply, params, key, target=jnp.asarray(target), shape=SHAPE,
                                        max_steps=steps, learning_rate=lr, penalty=penalty, penalty_weight=weight,
                                        confidence=1.0)
    x0 = np.asarray(jax.random.uniform(key, (3,) + SHAPE, jnp.float64))
    z, losses = x0, []
    for _ in range(steps):
        value, grad = np_objective_and_grad(params, z, x0, target, penalty, weight)
        losses.append(-value.mean())
        z = np.clip(z + lr * grad, 0.0, 1.0)
    np.testing.assert_allclose(x, z, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(info.loss_history, losses, rtol=1e-10)
    assert int(info.num_steps) == steps and not bool(info.converged)
    w, b = np.asarray(params["w"]), np.asarray(params["b"])
    np.testing.assert_allclose(info.confidence, np.exp(np_log_softmax(z.reshape(3, -1) @ w + b))[np.arange(3), target],
                               rtol=1e-10)


def test_confident_images_are_frozen_and_the_loop_stops():
    # float64, the replay's compiled loop (3 images, 3 steps, "l2"), with λ = 0. Class 0 has a large bias, so
    # its image is confident from the start and never moves; class 1 is reached by brightening pixels (logit
    # 2·Σx − 20: about 0 on noise, 20 on a white image); class 2 (small weights) is never reached.
    d = int(np.prod(SHAPE))
    w = 0.1 * np.random.default_rng(0).normal(size=(d, 3))
    w[:, 1] += 2.0
    params = {"w": jnp.asarray(w), "b": jnp.asarray([10.0, -20.0, 0.0])}
    key = jax.random.key(6)

    def run(target):
        return adversarial.fooling_image(linear_apply, params, key, target=jnp.asarray(target), shape=SHAPE,
                                         max_steps=STEPS, learning_rate=1.0, penalty="l2", penalty_weight=0.0)

    x0 = np.asarray(jax.random.uniform(key, (3,) + SHAPE, jnp.float64))
    x, info = run([0, 1, 2])
    np.testing.assert_array_equal(x[0], x0[0])
    assert list(np.asarray(info.steps_to_confidence)) == [0, 1, -1]
    assert int(info.num_steps) == STEPS and not bool(info.converged)
    # image 1 follows the same path when image 0 is another one still moving
    other, _ = run([1, 1, 2])
    np.testing.assert_array_equal(other[1], x[1])
    # when every image is confident the loop stops: one step here, the history NaN after it
    x, info = run([0, 1, 1])
    assert bool(info.converged) and int(info.num_steps) == 1
    assert np.all(np.asarray(info.confidence) >= 0.99)
    history = np.asarray(info.loss_history)
    assert np.isfinite(history[0]) and np.all(np.isnan(history[1:]))


def nan_above_half(params, x):
    # logits turn NaN once the mean pixel passes 0.6: the ascent (which brightens class 0's pixels) gets there
    return x @ params["w"] + params["b"] + jnp.log(0.6 - jnp.mean(x, axis=-1, keepdims=True)) * 0


def test_nonfinite_step_stops_and_keeps_the_last_finite_images():
    # float64
    d = int(np.prod(SHAPE))
    params = {"w": jnp.concatenate([jnp.full((d, 1), 1.0 / d), jnp.zeros((d, 2))], axis=1), "b": jnp.zeros(3)}
    with pytest.warns(RuntimeWarning, match="fooling_image: step"):
        x, info = adversarial.fooling_image(nan_above_half, params, jax.random.key(0), target=0, shape=SHAPE,
                                            max_steps=100, learning_rate=1.0, confidence=1.0)
    assert bool(info.nonfinite) and not bool(info.converged)
    assert int(info.first_nonfinite_step) == int(info.num_steps) >= 1
    assert np.all(np.isfinite(np.asarray(x))) and float(jnp.mean(x)) < 0.6
    assert np.isnan(np.asarray(info.loss_history)[int(info.num_steps)])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.bfloat16])
def test_dtypes_follow_the_params_and_stay_finite(dtype):
    params = linear_params(dtype)
    x, info = adversarial.fooling_image(linear_apply, params, jax.random.key(0), target=jnp.arange(3), shape=SHAPE,
                                        max_steps=STEPS, learning_rate=0.5, penalty="tv", penalty_weight=0.05)
    assert x.dtype == dtype
    assert np.all(np.isfinite(np.asarray(x, np.float32)))
    assert np.all(np.isfinite(np.asarray(info.confidence, np.float32)))


def test_same_key_same_images_other_key_other_images():
    params = linear_params(jnp.float32)

    def run(k):
        return adversarial.fooling_image(linear_apply, params, jax.random.key(k), target=jnp.arange(3), shape=SHAPE,
                                         max_steps=STEPS, learning_rate=0.2, penalty="tv", penalty_weight=0.05)

    (a, ia), (b, ib), (c, _) = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ia.loss_history, ib.loss_history)
    assert not np.array_equal(np.asarray(a), np.asarray(c))


# --- bad input ---------------------------------------------------------------------------------------------


def _call(**changes):
    kwargs = dict(target=1, shape=SHAPE, max_steps=3, learning_rate=0.1)
    kwargs.update(changes)
    key = kwargs.pop("key", jax.random.key(0))
    return adversarial.fooling_image(linear_apply, linear_params(jnp.float32), key, **kwargs)


@pytest.mark.parametrize("changes,error,match", [
    ({"target": 3}, ValueError, r"target must lie in \[0, 3\)"),
    ({"target": -1}, ValueError, "target must lie"),
    ({"target": jnp.asarray([0, 5])}, ValueError, "target must lie"),
    ({"target": 1.0}, TypeError, "target must be an integer"),
    ({"target": jnp.zeros((2, 2), jnp.int32)}, ValueError, "target.shape"),
    ({"learning_rate": float("nan")}, ValueError, "learning_rate must be > 0"),
    ({"learning_rate": float("inf")}, ValueError, "learning_rate must be finite"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate must be > 0"),
    ({"max_steps": 0}, ValueError, "max_steps must be >= 1"),
    ({"penalty": "l1"}, ValueError, "penalty must be one of"),
    ({"penalty_weight": 0.5}, ValueError, "needs a penalty"),
    ({"penalty": "l2", "penalty_weight": -1.0}, ValueError, "penalty_weight must be >= 0"),
    ({"penalty": "tv", "penalty_weight": 0.1, "shape": (20,)}, ValueError, "needs a 2-D image shape"),
    ({"confidence": 0.0}, ValueError, "confidence must be in"),
    ({"confidence": 1.5}, ValueError, "confidence must be in"),
    ({"shape": (4, 0)}, ValueError, "shape must be one image's shape"),
    ({"key": 0}, TypeError, r"jax.random.key\(0\)"),
])
def test_bad_input_is_refused_with_a_clear_error(changes, error, match):
    with pytest.raises(error, match=match):
        _call(**changes)


def test_a_shape_the_model_does_not_take_is_refused_before_any_work():
    model = mlp.make((20, 3))
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match="x must have 20 features"):
        adversarial.fooling_image(model.apply, params, jax.random.key(0), target=1, shape=(7, 7), max_steps=3,
                                  learning_rate=0.1)


def test_noise_confidence_refuses_bad_input():
    params = linear_params(jnp.float32)
    with pytest.raises(ValueError, match="num_images must be >= 1"):
        adversarial.noise_confidence(linear_apply, params, jax.random.key(0), num_images=0, shape=SHAPE)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        adversarial.noise_confidence(linear_apply, params, jax.random.key(0), num_images=3, shape=SHAPE, batch_size=0)


# --- a trained MLP is fooled from noise ---------------------------------------------------------------------


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
    return model, state.params


@pytest.mark.slow
def test_trained_mlp_is_fooled_from_noise_into_every_class(small_mlp):
    model, params = small_mlp
    x, info = adversarial.fooling_image(model.apply, params, jax.random.key(3), target=jnp.arange(10),
                                        shape=(28, 28), max_steps=300, learning_rate=1.0)
    assert bool(info.converged) and np.all(np.asarray(info.steps_to_confidence) >= 0)
    # re-predict the returned images independently: softmax in NumPy
    z = np.asarray(model.apply(params, x.reshape(10, -1)), np.float64)
    p = np.exp(np_log_softmax(z))
    assert np.all(p[np.arange(10), np.arange(10)] >= 0.99)
    np.testing.assert_allclose(info.confidence, p[np.arange(10), np.arange(10)], rtol=1e-5)


@pytest.mark.slow
def test_trained_mlp_is_often_sure_about_noise(small_mlp):
    model, params = small_mlp
    out = adversarial.noise_confidence(model.apply, params, jax.random.key(4), num_images=1000, shape=(28, 28))
    conf = np.asarray(out.confidence)
    # a uniform guess would be 0.1: the trained net gives noise far more than that, and favours few classes
    assert np.median(conf) > 0.3
    assert np.bincount(np.asarray(out.predicted), minlength=10).max() > 300
