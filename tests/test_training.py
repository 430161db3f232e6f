"""jaxmath.training: each piece replayed independently (hand-written SGD, Python loops, NumPy, torch)."""

import re
from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import optim, training
from jaxmath.models import mlp

SIZES = (16, 8, 4)


def _params(sizes=SIZES, dtype=jnp.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (jnp.asarray(rng.normal(size=(m, n)) / np.sqrt(m), dtype), jnp.asarray(rng.normal(size=n) * 0.1, dtype))
        for m, n in zip(sizes[:-1], sizes[1:])
    ]


def _data(n=40, seed=0, classes=4):
    """uint8 'images' of 4 x 4 pixels whose class is readable from the pixels (so training can learn it)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 4, 4)).astype(np.uint8)
    images[np.arange(n), labels, :] += 180
    return images, labels


MODEL = mlp.make(SIZES, activation="sigmoid", output="sigmoid")
LOSS_FN = training.make_classifier_loss(MODEL, num_classes=4, loss="sum_of_squares")


def _np_loss_and_accuracy(params, images, labels):
    """sum-of-squares loss of the sigmoid MLP on x/255, written separately in NumPy."""
    a = images.reshape(len(images), -1).astype(np.float64) / 255.0
    for w, b in params:
        a = 1.0 / (1.0 + np.exp(-(a @ np.asarray(w, np.float64) + np.asarray(b, np.float64))))
    onehot = np.eye(4)[labels]
    return np.mean(np.sum((a - onehot) ** 2, axis=1)), np.mean(a.argmax(axis=1) == labels)


def _tree_close(a, b, tol):
    chex.assert_trees_all_close(a, b, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- state, loss, step


def test_train_state_is_a_pytree_and_create_starts_at_step_zero():
    params = _params()
    state = training.TrainState.create(params, optim.sgd(learning_rate=0.1, momentum=0.9), key=jax.random.PRNGKey(0))
    assert int(state.step) == 0 and state.step.dtype == jnp.int32
    leaves = jax.tree_util.tree_leaves(state)
    # params (4) + momentum buffer (4) + sgd count/lr leaves + step + key
    assert sum(leaf.size for leaf in leaves) > 2 * mlp.count_params(params)
    doubled = jax.tree_util.tree_map(lambda x: x * 2, state.params)
    assert float(doubled[0][0][0, 0]) == 2 * float(params[0][0][0, 0])


@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-10), (jnp.float32, 1e-5)])
def test_classifier_loss_scales_uint8_and_matches_numpy(dtype, tol):
    images, labels = _data()
    params = _params(dtype=dtype)
    loss, metrics = LOSS_FN(params, (jnp.asarray(images), jnp.asarray(labels)))
    assert loss.shape == () and loss.dtype == dtype
    want_loss, want_acc = _np_loss_and_accuracy(params, images, labels)
    np.testing.assert_allclose(float(loss), want_loss, rtol=tol)
    np.testing.assert_allclose(float(metrics["accuracy"]), want_acc, rtol=tol)


def test_classifier_loss_takes_a_model_or_its_apply_function():
    images, labels = _data(12)
    params = _params(dtype=jnp.float64)
    batch = (jnp.asarray(images), jnp.asarray(labels))
    from_fn = training.make_classifier_loss(MODEL.apply, num_classes=4, loss="sum_of_squares")
    chex.assert_trees_all_close(LOSS_FN(params, batch), from_fn(params, batch), rtol=1e-12)
    assert LOSS_FN.model is MODEL and from_fn.model is None and LOSS_FN.num_classes == 4
    assert set(training.CLASSIFIER_LOSSES) == {"softmax_cross_entropy", "sum_of_squares", "mse"}
    with pytest.raises(TypeError, match="Model or an apply function"):
        training.make_classifier_loss(42, num_classes=4)


def test_make_train_step_is_plain_sgd_on_the_loss_and_carries_its_optimizer():
    images, labels = _data(16)
    batch = (jnp.asarray(images), jnp.asarray(labels))
    params = _params(dtype=jnp.float64)
    opt = optim.sgd(learning_rate=0.5)
    step = training.make_train_step(LOSS_FN, opt, jit=False)
    assert isinstance(step, training.TrainStep) and step.loss_fn is LOSS_FN and step.optimizer is opt
    state = step.init(params, key=jax.random.key(0))
    assert isinstance(state, training.TrainState) and int(state.step) == 0
    new_state, metrics = jax.jit(step.pure)(state, batch)  # the pure step, under the caller's own jit
    grads = jax.grad(lambda p: LOSS_FN(p, batch)[0])(params)
    want = jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, params, grads)
    _tree_close(new_state.params, want, 1e-12)
    assert int(new_state.step) == 1
    np.testing.assert_allclose(float(metrics["loss"]), _np_loss_and_accuracy(params, images, labels)[0], rtol=1e-10)
    assert set(metrics) == {"loss", "accuracy"}


def test_make_train_step_from_an_optimizer_factory_needs_the_learning_rate():
    step = training.make_train_step(LOSS_FN, optim.sgd, learning_rate=0.25)
    assert step.optimizer_fn is optim.sgd
    state = step.init(_params(dtype=jnp.float64), key=jax.random.key(0))
    assert float(state.opt_state.learning_rate) == 0.25
    with pytest.raises(TypeError, match="give learning_rate"):
        training.make_train_step(LOSS_FN, optim.sgd)
    with pytest.raises(TypeError, match="learning_rate is for optimizer factories"):
        training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.1), learning_rate=0.1)
    with pytest.raises(TypeError, match="optimizer must have init and update"):
        training.make_train_step(LOSS_FN, 0.1)


def test_jitted_step_traces_once_and_donates_state():
    images, labels = _data(16)
    batch = (jnp.asarray(images), jnp.asarray(labels))
    # chex fails the call that would trace the loss a second time (the counter lives on the function).
    counted_loss = chex.assert_max_traces(lambda params, batch: LOSS_FN(params, batch), n=1)
    opt = optim.sgd(learning_rate=0.5)
    step = training.make_train_step(counted_loss, opt)  # jit=True, donate=True
    params = _params()
    key = jax.random.key(0)
    state = step.init(params, key=key)
    want = params
    for _ in range(3):  # hand-written SGD
        grads = jax.grad(lambda p: LOSS_FN(p, batch)[0])(want)
        want = jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, want, grads)
    first_params = state.params[0][0]
    for _ in range(3):
        state, _ = step(state, batch)
    assert first_params.is_deleted()  # donated to the first step's output
    assert not params[0][0].is_deleted()  # step.init copied the caller's params
    assert not key.is_deleted()  # and the caller's key
    _tree_close(state.params, want, 1e-5)
    kept = training.make_train_step(LOSS_FN, opt, donate=False)
    before = state.params[0][0]
    kept(state, batch)
    assert not before.is_deleted()


def test_reusing_a_donated_state_gets_a_jaxmath_message():
    images, labels = _data(16)
    x, y = jnp.asarray(images), jnp.asarray(labels)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.5))
    message = re.escape(
        "state was donated to a previous run_epoch/step call and its buffers are gone: use the state it returned"
    )
    state = step.init(_params(), key=jax.random.key(0))
    new_state, _ = step(state, (x, y))
    with pytest.raises(ValueError, match=message):
        step(state, (x, y))
    after_epoch, _ = training.run_epoch(new_state, x, y, train_step=step, batch_size=4)
    with pytest.raises(ValueError, match=message):
        training.run_epoch(new_state, x, y, train_step=step, batch_size=4)
    with pytest.raises(ValueError, match=message):
        training.fit(new_state, x, y, train_step=step, num_epochs=1, batch_size=4, progress=False)
    # The states that were returned still work.
    training.run_epoch(after_epoch, x, y, train_step=step, batch_size=4)


def test_a_state_from_another_optimizer_is_refused_at_once_naming_both():
    images, labels = _data(16)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.5))
    adam_state = training.TrainState.create(_params(), optim.adam(learning_rate=1e-3), key=jax.random.key(0))
    pattern = r"opt_state was not made by this train step's optimizer.*SGDState.*state.opt_state is .*AdamState"
    with pytest.raises(ValueError, match=pattern):
        training.run_epoch(adam_state, images, labels, train_step=step, batch_size=4)
    with pytest.raises(ValueError, match=pattern):
        training.fit(adam_state, images, labels, train_step=step, num_epochs=1, batch_size=4, progress=False)
    # Same optimizer family, other dtype of params: the shapes agree, the dtypes do not.
    f64_state = training.TrainState.create(_params(dtype=jnp.float64), optim.sgd(learning_rate=0.5, momentum=0.9),
                                           key=jax.random.key(0))
    with pytest.raises(ValueError, match="not made by this train step's optimizer"):
        training.run_epoch(f64_state, images, labels, train_step=step, batch_size=4)
    assert not adam_state.params[0][0].is_deleted()  # refused before anything ran
    with pytest.raises(TypeError, match="train_step must be a TrainStep"):
        training.run_epoch(adam_state, images, labels, train_step=step.pure, batch_size=4)


def test_step_with_bfloat16_compute_keeps_float32_params_finite():
    images, labels = _data(16)
    model = mlp.make(SIZES, activation="relu", compute_dtype=jnp.bfloat16)
    loss_fn = training.make_classifier_loss(model, num_classes=4)
    step = training.make_train_step(loss_fn, optim.adam(learning_rate=1e-2))
    state = step.init(_params(), key=jax.random.key(0))
    for _ in range(5):
        state, metrics = step(state, (jnp.asarray(images), jnp.asarray(labels)))
    assert state.params[0][0].dtype == jnp.float32
    assert np.isfinite(float(metrics["loss"]))


# ----------------------------------------------------------------------------- run_epoch and evaluate


def test_run_epoch_equals_a_python_loop_over_the_same_shuffled_batches():
    images, labels = _data(42)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.3, momentum=0.9), donate=False)
    state = step.init(_params(dtype=jnp.float64), key=jax.random.PRNGKey(7))
    # Replay: the same key split and permutation, then a plain Python loop of steps.
    key, shuffle_key = jax.random.split(state.key)
    order = np.argsort(np.asarray(jax.random.bits(shuffle_key, (42,))), kind="stable")  # documented shuffle
    assert sorted(order.tolist()) == list(range(42))
    want, losses = state, []
    for i in range(42 // 8):
        idx = order[i * 8 : (i + 1) * 8]
        want, m = step(want, (jnp.asarray(images[idx]), jnp.asarray(labels[idx])))
        losses.append(float(m["loss"]))

    got, metrics = training.run_epoch(
        state, jnp.asarray(images), jnp.asarray(labels), train_step=step, batch_size=8, donate=False
    )
    assert metrics["loss"].shape == (5,) and metrics["accuracy"].shape == (5,)
    assert int(metrics["first_nonfinite_step"]) == -1
    np.testing.assert_allclose(np.asarray(metrics["loss"]), losses, rtol=1e-10)
    _tree_close(got.params, want.params, 1e-10)
    assert int(got.step) == 5
    assert np.array_equal(np.asarray(got.key), np.asarray(key))  # next epoch shuffles differently
    _, again = training.run_epoch(got, jnp.asarray(images), jnp.asarray(labels), train_step=step, batch_size=8)
    assert not np.allclose(np.asarray(again["loss"]), np.asarray(metrics["loss"]))


def test_run_epoch_learns_and_keeps_uint8_data():
    images, labels = _data(64)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=2.0))
    state = step.init(_params(), key=jax.random.PRNGKey(1))
    x, y = jax.device_put(images), jax.device_put(labels)
    before = training.evaluate(state.params, x, y, loss_fn=LOSS_FN)
    for _ in range(30):
        state, _ = training.run_epoch(state, x, y, train_step=step, batch_size=8)
    after = training.evaluate(state.params, x, y, loss_fn=LOSS_FN)
    assert x.dtype == jnp.uint8
    assert float(after["loss"]) < 0.5 * float(before["loss"])
    assert float(after["accuracy"]) > 0.9


def test_run_epoch_is_one_scan_that_never_recompiles():
    images, labels = _data(32)
    x, y = jnp.asarray(images), jnp.asarray(labels)
    # The loss body may be traced once: a second trace (a recompiled epoch) fails the call.
    counted_loss = chex.assert_max_traces(lambda params, batch: LOSS_FN(params, batch), n=1)
    counted_loss.num_classes = LOSS_FN.num_classes
    step = training.make_train_step(counted_loss, optim.sgd(learning_rate=0.5))
    state = step.init(_params(), key=jax.random.key(0))
    jaxpr = jax.make_jaxpr(partial(training.epoch._epoch_core, step, 8))(state, x, y)
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns].count("scan") == 1
    chex.clear_trace_counter()
    for _ in range(3):  # three epochs, new data each time: same shapes, one compile
        state, metrics = training.run_epoch(state, x, y, train_step=step, batch_size=8)
        x = jnp.asarray(np.roll(images, 1, axis=0))
    assert int(state.step) == 12


@pytest.mark.parametrize("batch_size", [7, 40, 1000])
def test_evaluate_is_the_exact_mean_whatever_the_batch_size(batch_size):
    images, labels = _data(40)
    params = _params(dtype=jnp.float64)
    got = training.evaluate(params, jnp.asarray(images), jnp.asarray(labels), loss_fn=LOSS_FN, batch_size=batch_size)
    want_loss, want_acc = _np_loss_and_accuracy(params, images, labels)
    assert got["loss"].shape == ()
    np.testing.assert_allclose(float(got["loss"]), want_loss, rtol=1e-10)
    np.testing.assert_allclose(float(got["accuracy"]), want_acc, rtol=1e-10)


def test_run_epoch_and_evaluate_refuse_labels_outside_the_loss_classes():
    # Labels 1..4 for a 4-class loss (the 1..10 MNIST mistake): refused, not trained at low accuracy.
    images, labels = _data(16)
    shifted = jnp.asarray(labels + 1)  # uint8 on the device: checked there, one min/max brought back
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.5))
    state = step.init(_params(), key=jax.random.key(0))
    want = rf"labels must lie in \[0, 4\), got values from {int(labels.min()) + 1} to 4"
    with pytest.raises(ValueError, match=want):
        training.run_epoch(state, images, shifted, train_step=step, batch_size=4)
    with pytest.raises(ValueError, match=want):
        training.evaluate(state.params, images, shifted, loss_fn=LOSS_FN)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got values from -1"):
        training.evaluate(state.params, images, jnp.asarray(labels, jnp.int32) - 1, loss_fn=LOSS_FN)
    with pytest.raises(TypeError, match="labels must be integers"):
        training.run_epoch(state, images, labels.astype(np.float32), train_step=step, batch_size=4)
    assert not state.params[0][0].is_deleted()  # refused before the state was donated
    # A loss without num_classes: nothing to check against.
    plain = training.make_train_step(lambda p, b: jnp.sum(p["w"] ** 2), optim.sgd(learning_rate=0.1))
    training.run_epoch(plain.init({"w": jnp.ones(3)}, key=jax.random.key(0)), images, shifted, train_step=plain,
                       batch_size=4)


def test_value_checks_look_at_the_dtype_first_and_reduce_once_on_the_device(monkeypatch):
    from jaxmath import _validation

    images, labels = _data(16)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.5))
    calls = {"finite": 0, "min_max": 0}
    real_finite, real_min_max = _validation._all_finite, _validation._min_max

    def counted(name, fn):
        def wrapper(*args):
            calls[name] += 1
            return fn(*args)

        return wrapper

    monkeypatch.setattr(_validation, "_all_finite", counted("finite", real_finite))
    monkeypatch.setattr(_validation, "_min_max", counted("min_max", real_min_max))
    x, y = jax.device_put(images), jax.device_put(labels)
    state = step.init(_params(), key=jax.random.key(0))
    state, _ = training.run_epoch(state, x, y, train_step=step, batch_size=4)
    assert calls == {"finite": 0, "min_max": 1}  # uint8 pixels are never read; labels: one min/max
    training.fit(state, x, y, train_step=step, num_epochs=3, batch_size=4, progress=False)
    assert calls == {"finite": 0, "min_max": 2}  # fit checks once, not every epoch
    training.fit(state, x.astype(jnp.float32), y, train_step=step, num_epochs=1, batch_size=4, progress=False)
    assert calls == {"finite": 1, "min_max": 3}  # float pixels: one finite reduction


def _exploding_setup(n=8):
    """loss = mean(x)·Σ w² with x ≡ 1 and SGD η = 100: w_{k+1} = -199 w_k overflows float32 on a known step."""
    images = np.ones((n, 1), np.float32)
    labels = np.zeros((n,), np.int32)

    def loss_fn(params, batch):
        return jnp.mean(batch[0]) * jnp.sum(params["w"] ** 2)

    # Replay in NumPy float32: the first step whose loss or new params are not finite. When the loss
    # overflowed, the params that produced it (finite, but evaluating to inf) are dropped too: the state kept
    # is the one before, the last whose loss evaluated finite.
    w, k, previous = np.float32(1.0), 0, None
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            loss = w * w
            new = np.float32(w - np.float32(100.0) * np.float32(2.0) * w)
            if not (np.isfinite(loss) and np.isfinite(new)):
                break
            w, k, previous = new, k + 1, w
        assert not np.isfinite(w * w) and np.isfinite(w)  # this setup diverges through the loss, params finite
    return images, labels, loss_fn, k, previous, k - 1


def test_run_epoch_stops_at_the_first_nonfinite_step_and_keeps_the_last_finite_state():
    images, labels, loss_fn, bad_step, last_w, kept_steps = _exploding_setup(n=32)
    assert 0 < bad_step < 32
    step = training.make_train_step(loss_fn, optim.sgd(learning_rate=100.0), jit=False)
    state = step.init({"w": jnp.ones((), jnp.float32)}, key=jax.random.PRNGKey(0))
    state, metrics = training.run_epoch(state, jnp.asarray(images), jnp.asarray(labels), train_step=step, batch_size=1)
    assert int(metrics["first_nonfinite_step"]) == bad_step
    assert np.all(np.isfinite(np.asarray(metrics["loss"])[:bad_step]))
    assert not np.isfinite(np.asarray(metrics["loss"])[bad_step])
    # run_epoch rejects the failing step only (fit also drops the params whose loss overflowed).
    assert int(state.step) == bad_step == kept_steps + 1
    assert np.isfinite(float(state.params["w"]))
    np.testing.assert_allclose(float(state.params["w"]), float(last_w) * -199.0, rtol=1e-6)


def test_run_epoch_rejects_bad_arguments():
    images, labels = _data(10)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.1))
    state = step.init(_params(), key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"x and labels must have the same number of rows.*\(10, 4, 4\).*\(9,\)"):
        training.run_epoch(state, images, labels[:9], train_step=step, batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be <= the number of examples 10"):
        training.run_epoch(state, images, labels, train_step=step, batch_size=11)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        training.run_epoch(state, images, labels, train_step=step, batch_size=0)


# ----------------------------------------------------------------------------- fit


def test_fit_info_history_best_params_and_validation():
    images, labels = _data(80)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=2.0))
    state = step.init(_params(), key=jax.random.PRNGKey(3))
    final, info = training.fit(
        state, images, labels, train_step=step, num_epochs=6, batch_size=8, validation_split=0.25, progress=False,
    )
    assert isinstance(info, training.FitInfo)
    h = info.history
    assert info.stop_reason == "epochs" and not info.converged and info.num_epochs == 6
    for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time"):
        assert h[k].shape == (6,)
    assert info.num_steps == 6 * (60 // 8) == int(final.step)
    np.testing.assert_array_equal(info.loss_history, h["train_loss"])
    assert info.samples_per_second > 0
    assert info.best_epoch == int(np.argmin(h["val_loss"])) + 1
    # The best params really give the recorded validation loss (NumPy on the held-out last quarter).
    want_loss, want_acc = _np_loss_and_accuracy(info.best_params, images[60:], labels[60:])
    np.testing.assert_allclose(h["val_loss"][info.best_epoch - 1], want_loss, rtol=1e-5)
    np.testing.assert_allclose(h["val_accuracy"][info.best_epoch - 1], want_acc, rtol=1e-5)
    assert h["train_loss"][-1] < h["train_loss"][0]
    # The caller's state survived donation.
    assert not state.params[0][0].is_deleted()


def test_fit_early_stopping_by_the_notes_criterion_and_by_patience():
    images, labels = _data(32)
    frozen = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.0))  # L_{t-1} - L_t = 0
    state = frozen.init(_params(), key=jax.random.PRNGKey(0))
    kw = dict(train_step=frozen, num_epochs=20, batch_size=8, progress=False)
    _, by_tolerance = training.fit(state, images, labels, tolerance=1e-6, **kw)
    assert by_tolerance.stop_reason == "tolerance" and by_tolerance.converged
    assert by_tolerance.history["train_loss"].shape == (2,) and by_tolerance.num_epochs == 2
    assert by_tolerance.loss_history.shape == (20,) and np.all(np.isnan(by_tolerance.loss_history[2:]))
    _, by_patience = training.fit(state, images, labels, patience=3, **kw)
    assert by_patience.stop_reason == "patience" and by_patience.history["train_loss"].shape == (4,)
    assert by_patience.best_epoch == 1 and by_patience.num_steps == 4 * 4

    learning = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=2.0))
    state = learning.init(_params(), key=jax.random.PRNGKey(0))
    _, run = training.fit(state, images, labels, train_step=learning, num_epochs=8, batch_size=8, tolerance=1e-9,
                          progress=False)
    assert run.stop_reason == "epochs" and not run.converged  # still improving: the criterion does not fire
    assert np.all(np.diff(run.history["train_loss"]) < 0)


def test_fit_nonfinite_loss_warns_with_epoch_and_step_and_returns_last_finite_params():
    images, labels, loss_fn, bad_step, last_w, kept_steps = _exploding_setup(n=8)
    step = training.make_train_step(loss_fn, optim.sgd(learning_rate=100.0))
    state = step.init({"w": jnp.ones((), jnp.float32)}, key=jax.random.PRNGKey(0))
    epoch, step_in_epoch = bad_step // 8 + 1, bad_step % 8 + 1
    with pytest.warns(RuntimeWarning, match=rf"non-finite loss at epoch {epoch}, step {step_in_epoch} of 8"):
        final, info = training.fit(state, images, labels, train_step=step, num_epochs=10, batch_size=1,
                                   progress=False)
    assert info.stop_reason.startswith(f"non-finite loss at epoch {epoch}") and not info.converged
    assert info.history["train_loss"].shape == (epoch,)
    assert int(final.step) == kept_steps == info.num_steps  # the good steps of the last epoch are kept
    np.testing.assert_allclose(float(final.params["w"]), float(last_w), rtol=1e-6)


def test_diverged_fit_returns_params_that_evaluate_finite_not_merely_finite_numbers():
    # relu, softmax cross-entropy, η = 1e6: the params after step 2 are finite numbers whose loss is NaN. The
    # state returned must be the one before them (after step 1), and so must best_params.
    from jaxmath.datasets import load_mnist

    x, labels = load_mnist("test[:500]")  # test slices load fast (train decompresses 60,000 images)
    model = mlp.make((784, 16, 16, 10), activation="relu", output="identity")
    loss_fn = training.make_classifier_loss(model, num_classes=10, loss="softmax_cross_entropy")
    step = training.make_train_step(loss_fn, optim.sgd(learning_rate=1e6))
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    with pytest.warns(RuntimeWarning, match=r"non-finite loss at epoch 1, step 3 of 10 \(global step 3\)"):
        final, info = training.fit(state, x, labels, train_step=step, num_epochs=3, batch_size=50, progress=False)
    # Replay by hand with the epoch's own shuffle: step 2's params are finite, yet their loss is NaN.
    _, shuffle_key = jax.random.split(state.key)
    order = np.asarray(jnp.argsort(jax.random.bits(shuffle_key, (500,))))
    batches = [(jnp.asarray(x[order[i * 50:(i + 1) * 50]]), jnp.asarray(labels[order[i * 50:(i + 1) * 50]]))
               for i in range(3)]
    after_1, _ = step.pure(state, batches[0])
    after_2, _ = step.pure(after_1, batches[1])
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(after_2.params))
    assert not np.isfinite(float(loss_fn(after_2.params, batches[2])[0]))
    assert int(final.step) == 1 == info.num_steps
    chex.assert_trees_all_close(final.params, after_1.params, rtol=1e-5)
    for params in (final.params, info.best_params):
        assert np.isfinite(float(training.evaluate(params, x, labels, loss_fn=loss_fn)["loss"]))
    # Throughput counts the one step kept, not the ten the scan went through.
    assert info.samples_per_second < 5 * 50 / info.history["epoch_time"].sum()


def test_best_params_are_never_the_params_a_divergence_produced():
    # w ← -199 w: with one epoch of exactly `bad_step` steps, epoch 1 ends on params whose loss overflows
    # (found at the first step of epoch 2). Epoch 1 had the best mean loss, yet its final params are dropped.
    images, labels, loss_fn, bad_step, last_w, kept_steps = _exploding_setup(n=8)
    images, labels = images[:1].repeat(bad_step, 0), labels[:1].repeat(bad_step, 0)
    step = training.make_train_step(loss_fn, optim.sgd(learning_rate=100.0))
    state = step.init({"w": jnp.ones((), jnp.float32)}, key=jax.random.PRNGKey(0))
    with pytest.warns(RuntimeWarning, match=rf"non-finite loss at epoch 2, step 1 of {bad_step}"):
        final, info = training.fit(state, images, labels, train_step=step, num_epochs=3, batch_size=1,
                                   progress=False)
    assert info.best_epoch == 1 and int(final.step) == kept_steps == bad_step - 1
    for params in (final.params, info.best_params):
        np.testing.assert_allclose(float(params["w"]), float(last_w), rtol=1e-6)
        assert np.isfinite(float(params["w"]) ** 2)


@pytest.mark.parametrize("bad_rate", [-0.1, float("nan")])
def test_fit_never_applies_a_negative_or_nan_learning_rate_from_a_schedule(bad_rate):
    images, labels = _data(40)
    schedule = lambda count: jnp.where(count < 3, 0.5, bad_rate)  # noqa: E731
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=schedule))
    state = step.init(_params(), key=jax.random.key(0))
    with pytest.warns(RuntimeWarning, match=r"learning rate (-0.1|nan) \(negative or not finite\) at epoch 1, step 4"):
        final, info = training.fit(state, images, labels, train_step=step, num_epochs=2, batch_size=8,
                                   progress=False)
    assert int(final.step) == 3 == info.num_steps and info.stop_reason.startswith("learning rate")
    # The three steps at η = 0.5 are kept: the same as three steps with a constant 0.5.
    plain = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.5), jit=False)
    want = plain.init(_params(), key=jax.random.key(0))
    key, shuffle_key = jax.random.split(want.key)
    order = np.asarray(jnp.argsort(jax.random.bits(shuffle_key, (40,))))
    for i in range(3):
        idx = order[i * 8:(i + 1) * 8]
        want, _ = plain(want, (jnp.asarray(images[idx]), jnp.asarray(labels[idx])))
    chex.assert_trees_all_close(final.params, want.params, rtol=1e-6)


def test_fit_rejects_bad_data_before_training():
    images, labels = _data(20)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.1))
    state = step.init(_params(), key=jax.random.PRNGKey(0))
    kw = dict(train_step=step, num_epochs=1, batch_size=4, progress=False)
    bad = labels.copy()
    bad[3] = 4
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got values from 0 to 4"):
        training.fit(state, images, bad, **kw)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        training.fit(state, images, labels, validation_data=(images, bad), **kw)
    with pytest.raises(ValueError, match="same number of rows"):
        training.fit(state, images, labels[:-1], **kw)
    floats = images.astype(np.float32)
    floats[2, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"x contains 1 non-finite value.*\(2, 1, 1\)"):
        training.fit(state, floats, labels, **kw)
    with pytest.raises(TypeError, match="labels must be integers"):
        training.fit(state, images, labels.astype(np.float32), **kw)
    with pytest.raises(ValueError, match="validation_split"):
        training.fit(state, images, labels, validation_split=1.5, **kw)
    with pytest.raises(ValueError, match="num_epochs must be >= 1"):
        training.fit(state, images, labels, **{**kw, "num_epochs": 0})
    with pytest.raises(TypeError, match="optimizer"):
        training.fit(state, images, labels, optimizer=optim.sgd(learning_rate=0.1), **kw)


def test_fit_progress_bar_fits_80_columns_and_shows_validation(monkeypatch, capsys):
    images, labels = _data(40)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=2.0))
    state = step.init(_params(), key=jax.random.key(0))
    monkeypatch.setenv("COLUMNS", "80")  # what tqdm reads when stderr is not a terminal
    _, info = training.fit(state, images, labels, train_step=step, num_epochs=12, batch_size=8,
                           validation_split=0.2, progress=True)
    err = capsys.readouterr().err
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip()]
    assert lines and all(len(line) <= 80 for line in lines), max(lines, key=len)
    last = [line for line in lines if "12/12" in line][-1]
    h = info.history
    for name, value in (("loss", h["train_loss"][-1]), ("acc", h["train_accuracy"][-1]),
                        ("val_loss", h["val_loss"][-1]), ("val_acc", h["val_accuracy"][-1])):
        shown = re.search(rf"(?<![a-z_]){name}=([0-9.e+-]+)", last)
        assert shown, (name, last)
        np.testing.assert_allclose(float(shown.group(1)), value, rtol=5e-3)
    # The widest figures still fit: losses like 1.23e-05, 100 epochs, a 4-model ensemble's description.
    import tqdm

    widest = training.fit.__globals__["progress_postfix"](
        {"train_loss": 1.2345e-5, "train_accuracy": 1.0, "val_loss": 1.2345e-5, "val_accuracy": 1.0}
    )
    line = tqdm.tqdm.format_meter(n=100, total=100, elapsed=3599, ncols=80, prefix="fit x4", postfix=widest,
                                  bar_format=training.fit.__globals__["BAR_FORMAT"])
    assert len(line) <= 80 and line.endswith("val_acc=1.000"), line


# ----------------------------------------------------------------------------- K models at once


def test_ensemble_over_seeds_and_learning_rates_equals_separate_runs():
    images, labels = _data(24)
    x, y = jnp.asarray(images), jnp.asarray(labels)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    rates = jnp.asarray([0.1, 1.0], jnp.float64)
    model = mlp.make(SIZES, activation="sigmoid", output="sigmoid", dtype=jnp.float64)
    step = training.make_train_step(LOSS_FN, optim.sgd, learning_rate=0.1)
    states = training.init_ensemble(keys, init_fn=model.init, train_step=step)
    assert states.params[0][0].shape == (2, 16, 8) and states.step.shape == (2,)
    members = [jax.tree_util.tree_map(lambda leaf: leaf[i], states) for i in range(2)]
    assert not np.allclose(np.asarray(members[0].params[0][0]), np.asarray(members[1].params[0][0]))
    got, metrics = training.run_ensemble_epoch(states, x, y, train_step=step, batch_size=6, learning_rates=rates)
    assert metrics["loss"].shape == (2, 4) and metrics["first_nonfinite_step"].shape == (2,)
    for i, lr in enumerate([0.1, 1.0]):
        one = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=lr), jit=False)
        want, m = training.run_epoch(members[i], x, y, train_step=one, batch_size=6)
        _tree_close(jax.tree_util.tree_map(lambda leaf: leaf[i], got.params), want.params, 1e-10)
        np.testing.assert_allclose(np.asarray(metrics["loss"][i]), np.asarray(m["loss"]), rtol=1e-10)
    evals = training.evaluate_ensemble(got.params, x, y, loss_fn=LOSS_FN, batch_size=10)
    assert evals["accuracy"].shape == (2,)
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], got.params)
    np.testing.assert_allclose(float(evals["loss"][0]), _np_loss_and_accuracy(first, images, labels)[0], rtol=1e-10)
    with pytest.raises(ValueError, match=r"learning_rates must have shape \(2,\)"):
        training.run_ensemble_epoch(got, x, y, train_step=step, batch_size=8, learning_rates=jnp.ones(3))
    fixed = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.1))
    with pytest.raises(TypeError, match="learning_rates needs a train step made from an optimizer factory"):
        training.run_ensemble_epoch(got, x, y, train_step=fixed, batch_size=8, learning_rates=rates)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        training.run_ensemble_epoch(got, x, y + 1, train_step=step, batch_size=8)
    adam = training.make_train_step(LOSS_FN, optim.adam(learning_rate=0.1))
    with pytest.raises(ValueError, match="not made by this train step's optimizer"):
        training.run_ensemble_epoch(got, x, y, train_step=adam, batch_size=8)


def test_fit_ensemble_keeps_best_params_per_model():
    images, labels = _data(80)
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    step = training.make_train_step(LOSS_FN, optim.sgd, learning_rate=1.0)
    states = training.init_ensemble(keys, init_fn=MODEL.init, train_step=step)
    final, info = training.fit_ensemble(
        states, images, labels, train_step=step, learning_rates=jnp.asarray([0.5, 2.0]),
        num_epochs=4, batch_size=8, validation_split=0.25, progress=False,
    )
    h = info.history
    assert h["train_loss"].shape == (4, 2) and h["val_accuracy"].shape == (4, 2) and h["epoch_time"].shape == (4,)
    assert info.stop_reason == "epochs" and info.loss_history.shape == (4, 2)
    np.testing.assert_array_equal(info.num_steps, [4 * (60 // 8)] * 2)
    np.testing.assert_array_equal(np.asarray(final.step), info.num_steps)
    np.testing.assert_array_equal(info.best_epoch, np.argmin(h["val_loss"], axis=0) + 1)
    for i in range(2):
        best = jax.tree_util.tree_map(lambda leaf: leaf[i], info.best_params)
        want_loss, _ = _np_loss_and_accuracy(best, images[60:], labels[60:])
        np.testing.assert_allclose(h["val_loss"][info.best_epoch[i] - 1, i], want_loss, rtol=1e-5)
    assert not states.params[0][0].is_deleted()


def test_fit_ensemble_reports_the_model_that_diverged_and_trains_the_others():
    images, labels, loss_fn, bad_step, last_w, kept_steps = _exploding_setup(n=8)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    step = training.make_train_step(loss_fn, optim.sgd, learning_rate=0.01)
    states = training.init_ensemble(keys, init_fn=lambda k: {"w": jnp.ones((), jnp.float32)}, train_step=step)
    epoch, step_in_epoch = bad_step // 8 + 1, bad_step % 8 + 1
    with pytest.warns(RuntimeWarning, match=rf"model 1: non-finite loss at epoch {epoch}, step {step_in_epoch}"):
        final, info = training.fit_ensemble(
            states, images, labels, train_step=step, learning_rates=jnp.asarray([0.01, 100.0]),
            num_epochs=epoch + 1, batch_size=1, progress=False,
        )
    w = np.asarray(final.params["w"])
    np.testing.assert_allclose(w[0], 0.98 ** (8 * (epoch + 1)), rtol=1e-4)  # w <- w (1 - 2·0.01) each step
    np.testing.assert_allclose(w[1], float(last_w), rtol=1e-6)
    assert "model 0" not in info.stop_reason
    np.testing.assert_array_equal(info.num_steps, [8 * (epoch + 1), kept_steps])


# ----------------------------------------------------------------------------- torch replay


def test_training_steps_replayed_in_torch():
    """Three SGD-with-momentum steps on the 784-16-16-10 sigmoid network, replayed with torch.optim.SGD."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 10, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, size=(3, 10)).astype(np.int64)
    params = _params((784, 16, 16, 10), jnp.float64, seed=1)
    model = mlp.make((784, 16, 16, 10), activation="sigmoid", output="sigmoid", dtype=jnp.float64)
    loss_fn = training.make_classifier_loss(model, num_classes=10, loss="sum_of_squares")
    step = training.make_train_step(loss_fn, optim.sgd(learning_rate=0.5, momentum=0.9))
    state = step.init(params, key=jax.random.PRNGKey(0))
    ours = []
    for i in range(3):
        state, m = step(state, (jnp.asarray(images[i]), jnp.asarray(labels[i])))
        ours.append(float(m["loss"]))

    tp = [torch.tensor(np.asarray(leaf), requires_grad=True) for layer in params for leaf in layer]
    topt = torch.optim.SGD(tp, lr=0.5, momentum=0.9)
    theirs = []
    for i in range(3):
        topt.zero_grad()
        a = torch.tensor(images[i].reshape(10, -1), dtype=torch.float64) / 255.0
        for w, b in zip(tp[::2], tp[1::2]):
            a = torch.sigmoid(a @ w + b)
        target = torch.nn.functional.one_hot(torch.tensor(labels[i]), 10).double()
        loss = ((a - target) ** 2).sum(dim=1).mean()
        loss.backward()
        topt.step()
        theirs.append(loss.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    for ours_leaf, t in zip(jax.tree_util.tree_leaves(state.params), tp):
        np.testing.assert_allclose(np.asarray(ours_leaf), t.detach().numpy(), rtol=1e-9, atol=1e-12)
