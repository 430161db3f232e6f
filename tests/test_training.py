"""jaxmath.training: each piece replayed independently (hand-written SGD, Python loops, NumPy, torch)."""

import warnings
from functools import partial

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


LOSS_FN = training.make_classifier_loss(
    partial(mlp.apply, activation="sigmoid", output="sigmoid"), num_classes=4, loss="sum_of_squares"
)


def _np_loss_and_accuracy(params, images, labels):
    """sum-of-squares loss of the sigmoid MLP on x/255, written separately in NumPy."""
    a = images.reshape(len(images), -1).astype(np.float64) / 255.0
    for w, b in params:
        a = 1.0 / (1.0 + np.exp(-(a @ np.asarray(w, np.float64) + np.asarray(b, np.float64))))
    onehot = np.eye(4)[labels]
    return np.mean(np.sum((a - onehot) ** 2, axis=1)), np.mean(a.argmax(axis=1) == labels)


def _tree_close(a, b, tol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=tol, atol=tol)


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


def test_make_train_step_is_plain_sgd_on_the_loss():
    images, labels = _data(16)
    batch = (jnp.asarray(images), jnp.asarray(labels))
    params = _params(dtype=jnp.float64)
    state = training.TrainState.create(params, optim.sgd(learning_rate=0.5), key=jax.random.PRNGKey(0))
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.5), jit=False)
    new_state, metrics = jax.jit(step)(state, batch)  # the pure step, under the caller's own jit
    grads = jax.grad(lambda p: LOSS_FN(p, batch)[0])(params)
    want = jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, params, grads)
    _tree_close(new_state.params, want, 1e-12)
    assert int(new_state.step) == 1
    np.testing.assert_allclose(float(metrics["loss"]), _np_loss_and_accuracy(params, images, labels)[0], rtol=1e-10)
    assert set(metrics) == {"loss", "accuracy"}


def test_jitted_step_traces_once_and_donates_state():
    images, labels = _data(16)
    batch = (jnp.asarray(images), jnp.asarray(labels))
    traces = []

    def counted_loss(params, batch):
        traces.append(1)
        return LOSS_FN(params, batch)

    opt = optim.sgd(learning_rate=0.5)
    step = training.make_train_step(counted_loss, opt)  # jit=True, donate=True
    params = _params()
    state = training.TrainState.create(params, opt, key=jax.random.PRNGKey(0))
    want = params
    for _ in range(3):  # hand-written SGD
        grads = jax.grad(lambda p: LOSS_FN(p, batch)[0])(want)
        want = jax.tree_util.tree_map(lambda p, g: p - 0.5 * g, want, grads)
    first_params = state.params[0][0]
    for _ in range(3):
        state, _ = step(state, batch)
    assert len(traces) == 1
    assert first_params.is_deleted()  # donated to the first step's output
    assert not params[0][0].is_deleted()  # TrainState.create copied the caller's params
    _tree_close(state.params, want, 1e-5)
    kept = training.make_train_step(LOSS_FN, opt, donate=False)
    before = state.params[0][0]
    kept(state, batch)
    assert not before.is_deleted()


def test_step_with_bfloat16_compute_keeps_float32_params_finite():
    images, labels = _data(16)
    loss_fn = training.make_classifier_loss(
        partial(mlp.apply, activation="relu", compute_dtype=jnp.bfloat16), num_classes=4
    )
    opt = optim.adam(learning_rate=1e-2)
    state = training.TrainState.create(_params(), opt, key=jax.random.PRNGKey(0))
    step = training.make_train_step(loss_fn, opt)
    for _ in range(5):
        state, metrics = step(state, (jnp.asarray(images), jnp.asarray(labels)))
    assert state.params[0][0].dtype == jnp.float32
    assert np.isfinite(float(metrics["loss"]))


# ----------------------------------------------------------------------------- run_epoch and evaluate


def test_run_epoch_equals_a_python_loop_over_the_same_shuffled_batches():
    images, labels = _data(42)
    opt = optim.sgd(learning_rate=0.3, momentum=0.9)
    state = training.TrainState.create(_params(dtype=jnp.float64), opt, key=jax.random.PRNGKey(7))
    step = training.make_train_step(LOSS_FN, opt, donate=False)
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
    opt = optim.sgd(learning_rate=2.0)
    state = training.TrainState.create(_params(), opt, key=jax.random.PRNGKey(1))
    step = training.make_train_step(LOSS_FN, opt)
    x, y = jax.device_put(images), jax.device_put(labels)
    before = training.evaluate(state.params, x, y, loss_fn=LOSS_FN)
    for _ in range(30):
        state, _ = training.run_epoch(state, x, y, train_step=step, batch_size=8)
    after = training.evaluate(state.params, x, y, loss_fn=LOSS_FN)
    assert x.dtype == jnp.uint8
    assert float(after["loss"]) < 0.5 * float(before["loss"])
    assert float(after["accuracy"]) > 0.9


def test_run_epoch_is_one_scan_traced_once():
    images, labels = _data(32)
    x, y = jnp.asarray(images), jnp.asarray(labels)
    traces = []

    def counted_loss(params, batch):
        traces.append(1)
        return LOSS_FN(params, batch)

    opt = optim.sgd(learning_rate=0.5)
    step = training.make_train_step(counted_loss, opt, jit=False)
    state = training.TrainState.create(_params(), opt, key=jax.random.PRNGKey(0))
    jaxpr = jax.make_jaxpr(partial(training.epoch_core, step, 8))(state, x, y)
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns].count("scan") == 1
    traces.clear()
    for _ in range(3):
        state, metrics = training.run_epoch(state, x, y, train_step=step, batch_size=8)
    assert len(traces) == 1 and int(state.step) == 12


@pytest.mark.parametrize("batch_size", [7, 40, 1000])
def test_evaluate_is_the_exact_mean_whatever_the_batch_size(batch_size):
    images, labels = _data(40)
    params = _params(dtype=jnp.float64)
    got = training.evaluate(params, jnp.asarray(images), jnp.asarray(labels), loss_fn=LOSS_FN, batch_size=batch_size)
    want_loss, want_acc = _np_loss_and_accuracy(params, images, labels)
    assert got["loss"].shape == ()
    np.testing.assert_allclose(float(got["loss"]), want_loss, rtol=1e-10)
    np.testing.assert_allclose(float(got["accuracy"]), want_acc, rtol=1e-10)


def _exploding_setup(n=8):
    """loss = mean(x)·Σ w² with x ≡ 1 and SGD η = 100: w_{k+1} = -199 w_k overflows float32 on a known step."""
    images = np.ones((n, 1), np.float32)
    labels = np.zeros((n,), np.int32)

    def loss_fn(params, batch):
        return jnp.mean(batch[0]) * jnp.sum(params["w"] ** 2)

    # Replay in NumPy float32: the first step whose loss or new params are not finite.
    w, k = np.float32(1.0), 0
    with np.errstate(over="ignore", invalid="ignore"):
        while True:
            loss = w * w
            new = np.float32(w - np.float32(100.0) * np.float32(2.0) * w)
            if not (np.isfinite(loss) and np.isfinite(new)):
                break
            w, k = new, k + 1
    return images, labels, loss_fn, k, w


def test_run_epoch_stops_at_the_first_nonfinite_step_and_keeps_the_last_finite_state():
    images, labels, loss_fn, bad_step, last_w = _exploding_setup(n=32)
    assert 0 < bad_step < 32
    opt = optim.sgd(learning_rate=100.0)
    state = training.TrainState.create({"w": jnp.ones((), jnp.float32)}, opt, key=jax.random.PRNGKey(0))
    step = training.make_train_step(loss_fn, opt, jit=False)
    state, metrics = training.run_epoch(state, jnp.asarray(images), jnp.asarray(labels), train_step=step, batch_size=1)
    assert int(metrics["first_nonfinite_step"]) == bad_step
    assert np.all(np.isfinite(np.asarray(metrics["loss"])[:bad_step]))
    assert not np.isfinite(np.asarray(metrics["loss"])[bad_step])
    assert int(state.step) == bad_step
    assert np.isfinite(float(state.params["w"]))
    np.testing.assert_allclose(float(state.params["w"]), float(last_w), rtol=1e-6)


def test_run_epoch_rejects_bad_arguments():
    images, labels = _data(10)
    step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=0.1))
    state = training.TrainState.create(_params(), optim.sgd(learning_rate=0.1), key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"images and labels must have the same number of rows.*\(10, 4, 4\).*\(9,\)"):
        training.run_epoch(state, images, labels[:9], train_step=step, batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be <= the number of examples 10"):
        training.run_epoch(state, images, labels, train_step=step, batch_size=11)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        training.run_epoch(state, images, labels, train_step=step, batch_size=0)


# ----------------------------------------------------------------------------- fit


def test_fit_history_best_params_and_validation():
    images, labels = _data(80)
    opt = optim.sgd(learning_rate=2.0)
    state = training.TrainState.create(_params(), opt, key=jax.random.PRNGKey(3))
    result = training.fit(
        state, images, labels, loss_fn=LOSS_FN, optimizer=opt, epochs=6, batch_size=8,
        validation_split=0.25, progress=False,
    )
    h = result.history
    assert result.stop_reason == "epochs"
    for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time"):
        assert h[k].shape == (6,)
    assert int(result.state.step) == 6 * (60 // 8)
    assert result.best_epoch == int(np.argmin(h["val_loss"])) + 1
    # The best params really give the recorded validation loss (NumPy on the held-out last quarter).
    want_loss, want_acc = _np_loss_and_accuracy(result.best_params, images[60:], labels[60:])
    np.testing.assert_allclose(h["val_loss"][result.best_epoch - 1], want_loss, rtol=1e-5)
    np.testing.assert_allclose(h["val_accuracy"][result.best_epoch - 1], want_acc, rtol=1e-5)
    assert h["train_loss"][-1] < h["train_loss"][0]
    # The caller's state survived donation.
    assert not state.params[0][0].is_deleted()


def test_fit_early_stopping_by_the_notes_criterion_and_by_patience():
    images, labels = _data(32)
    frozen = optim.sgd(learning_rate=0.0)  # the loss never changes: L_{t-1} - L_t = 0
    state = training.TrainState.create(_params(), frozen, key=jax.random.PRNGKey(0))
    kw = dict(loss_fn=LOSS_FN, optimizer=frozen, epochs=20, batch_size=8, progress=False)
    by_tolerance = training.fit(state, images, labels, tolerance=1e-6, **kw)
    assert by_tolerance.stop_reason == "tolerance" and by_tolerance.history["train_loss"].shape == (2,)
    by_patience = training.fit(state, images, labels, patience=3, **kw)
    assert by_patience.stop_reason == "patience" and by_patience.history["train_loss"].shape == (4,)
    assert by_patience.best_epoch == 1

    learning = optim.sgd(learning_rate=2.0)
    state = training.TrainState.create(_params(), learning, key=jax.random.PRNGKey(0))
    run = training.fit(state, images, labels, loss_fn=LOSS_FN, optimizer=learning, epochs=8, batch_size=8,
                       tolerance=1e-9, progress=False)
    assert run.stop_reason == "epochs"  # still improving: the criterion does not fire
    assert np.all(np.diff(run.history["train_loss"]) < 0)


def test_fit_nonfinite_loss_warns_with_epoch_and_step_and_returns_last_finite_params():
    images, labels, loss_fn, bad_step, last_w = _exploding_setup(n=8)
    opt = optim.sgd(learning_rate=100.0)
    state = training.TrainState.create({"w": jnp.ones((), jnp.float32)}, opt, key=jax.random.PRNGKey(0))
    epoch, step_in_epoch = bad_step // 8 + 1, bad_step % 8 + 1
    with pytest.warns(RuntimeWarning, match=rf"non-finite loss at epoch {epoch}, step {step_in_epoch} of 8"):
        result = training.fit(state, images, labels, loss_fn=loss_fn, optimizer=opt, epochs=10, batch_size=1,
                              progress=False)
    assert result.stop_reason.startswith(f"non-finite loss at epoch {epoch}")
    assert result.history["train_loss"].shape == (epoch,)
    assert int(result.state.step) == bad_step  # the good steps of the last epoch are kept
    np.testing.assert_allclose(float(result.state.params["w"]), float(last_w), rtol=1e-6)


def test_fit_rejects_bad_data_before_training():
    images, labels = _data(20)
    opt = optim.sgd(learning_rate=0.1)
    state = training.TrainState.create(_params(), opt, key=jax.random.PRNGKey(0))
    kw = dict(loss_fn=LOSS_FN, optimizer=opt, epochs=1, batch_size=4, progress=False)
    bad = labels.copy()
    bad[3] = 4
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\), got values from 0 to 4"):
        training.fit(state, images, bad, **kw)
    with pytest.raises(ValueError, match="same number of rows"):
        training.fit(state, images, labels[:-1], **kw)
    floats = images.astype(np.float32)
    floats[2, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"images contains 1 non-finite value.*\(2, 1, 1\)"):
        training.fit(state, floats, labels, **kw)
    with pytest.raises(TypeError, match="labels must be integers"):
        training.fit(state, images, labels.astype(np.float32), **kw)
    with pytest.raises(ValueError, match="validation_split"):
        training.fit(state, images, labels, validation_split=1.5, **kw)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        training.fit(state, images, labels, **{**kw, "epochs": 0})


# ----------------------------------------------------------------------------- K models at once


def test_ensemble_over_seeds_and_learning_rates_equals_separate_runs():
    images, labels = _data(24)
    x, y = jnp.asarray(images), jnp.asarray(labels)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    rates = jnp.asarray([0.1, 1.0], jnp.float64)
    init = lambda k: mlp.init(k, SIZES, scheme="glorot", dtype=jnp.float64)  # noqa: E731
    states = training.init_ensemble(init, optim.sgd, keys)
    assert states.params[0][0].shape == (2, 16, 8) and states.step.shape == (2,)
    members = [jax.tree_util.tree_map(lambda leaf: leaf[i], states) for i in range(2)]
    assert not np.allclose(np.asarray(members[0].params[0][0]), np.asarray(members[1].params[0][0]))
    got, metrics = training.run_ensemble_epoch(
        states, x, y, loss_fn=LOSS_FN, optimizer=optim.sgd, batch_size=6, learning_rates=rates
    )
    assert metrics["loss"].shape == (2, 4) and metrics["first_nonfinite_step"].shape == (2,)
    for i, lr in enumerate([0.1, 1.0]):
        step = training.make_train_step(LOSS_FN, optim.sgd(learning_rate=lr), jit=False)
        want, m = training.run_epoch(members[i], x, y, train_step=step, batch_size=6)
        _tree_close(jax.tree_util.tree_map(lambda leaf: leaf[i], got.params), want.params, 1e-10)
        np.testing.assert_allclose(np.asarray(metrics["loss"][i]), np.asarray(m["loss"]), rtol=1e-10)
    evals = training.evaluate_ensemble(got.params, x, y, loss_fn=LOSS_FN, batch_size=10)
    assert evals["accuracy"].shape == (2,)
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], got.params)
    np.testing.assert_allclose(float(evals["loss"][0]), _np_loss_and_accuracy(first, images, labels)[0], rtol=1e-10)
    with pytest.raises(ValueError, match=r"learning_rates must have shape \(2,\)"):
        training.run_ensemble_epoch(got, x, y, loss_fn=LOSS_FN, optimizer=optim.sgd, batch_size=8,
                                    learning_rates=jnp.ones(3))


def test_fit_ensemble_keeps_best_params_per_model():
    images, labels = _data(80)
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    states = training.init_ensemble(lambda k: mlp.init(k, SIZES), optim.sgd, keys)
    result = training.fit_ensemble(
        states, images, labels, loss_fn=LOSS_FN, optimizer=optim.sgd, learning_rates=jnp.asarray([0.5, 2.0]),
        epochs=4, batch_size=8, validation_split=0.25, progress=False,
    )
    h = result.history
    assert h["train_loss"].shape == (4, 2) and h["val_accuracy"].shape == (4, 2) and h["epoch_time"].shape == (4,)
    assert result.stop_reason == "epochs"
    np.testing.assert_array_equal(result.best_epoch, np.argmin(h["val_loss"], axis=0) + 1)
    for i in range(2):
        best = jax.tree_util.tree_map(lambda leaf: leaf[i], result.best_params)
        want_loss, _ = _np_loss_and_accuracy(best, images[60:], labels[60:])
        np.testing.assert_allclose(h["val_loss"][result.best_epoch[i] - 1, i], want_loss, rtol=1e-5)
    assert not states.params[0][0].is_deleted()


def test_fit_ensemble_reports_the_model_that_diverged_and_trains_the_others():
    images, labels, loss_fn, bad_step, last_w = _exploding_setup(n=8)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    states = training.init_ensemble(lambda k: {"w": jnp.ones((), jnp.float32)}, optim.sgd, keys)
    epoch, step_in_epoch = bad_step // 8 + 1, bad_step % 8 + 1
    with pytest.warns(RuntimeWarning, match=rf"model 1: non-finite loss at epoch {epoch}, step {step_in_epoch}"):
        result = training.fit_ensemble(
            states, images, labels, loss_fn=loss_fn, optimizer=optim.sgd, learning_rates=jnp.asarray([0.01, 100.0]),
            epochs=epoch + 1, batch_size=1, progress=False,
        )
    w = np.asarray(result.state.params["w"])
    np.testing.assert_allclose(w[0], 0.98 ** (8 * (epoch + 1)), rtol=1e-4)  # w <- w (1 - 2·0.01) each step
    np.testing.assert_allclose(w[1], float(last_w), rtol=1e-6)
    assert "model 0" not in result.stop_reason


# ----------------------------------------------------------------------------- torch replay


def test_training_steps_replayed_in_torch():
    """Three SGD-with-momentum steps on the 784-16-16-10 sigmoid network, replayed with torch.optim.SGD."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 10, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, size=(3, 10)).astype(np.int64)
    params = _params((784, 16, 16, 10), jnp.float64, seed=1)
    loss_fn = training.make_classifier_loss(
        partial(mlp.apply, activation="sigmoid", output="sigmoid"), num_classes=10, loss="sum_of_squares"
    )
    opt = optim.sgd(learning_rate=0.5, momentum=0.9)
    state = training.TrainState.create(params, opt, key=jax.random.PRNGKey(0))
    step = training.make_train_step(loss_fn, opt)
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
