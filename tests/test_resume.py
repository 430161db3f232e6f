"""Exact resume: a fit SIGKILLed after epoch k and resumed ends bit for bit where an uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmath.checkpoint as ckpt
from jaxmath import optim, training
from jaxmath.datasets import load_mnist
from jaxmath.models import mlp

# The child trains a 784-16-10 relu MLP with Adam on 600 MNIST test images (test slices load fast) for
# 5 epochs, validating on 200.
# mode "full": no checkpoints at all (donating epochs); "killed": checkpoints, and after saving epoch KILL_AFTER
# it writes a marker and waits to be SIGKILLed; "resume": resume=True from the same directory.
CHILD = textwrap.dedent("""
    import sys, time
    import jax, numpy as np
    import jaxmath.checkpoint as ckpt
    from jaxmath import optim, training
    from jaxmath.datasets import load_mnist
    from jaxmath.models import mlp

    mode, directory, out, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "killed":
        real_save = ckpt.save
        def save(path, tree, *, step, **kw):
            result = real_save(path, tree, step=step, **kw)
            if step == kill_after and path == directory:
                open(out + ".marker", "w").close()
                time.sleep(600)  # the parent SIGKILLs us here, mid-run
            return result
        ckpt.save = save
    x, labels = load_mnist("test[:600]")
    val = load_mnist("test[-200:]")
    model = mlp.make((784, 16, 10), activation="relu", output="identity")
    loss_fn = training.make_classifier_loss(model, num_classes=10)
    step = training.make_train_step(loss_fn, optim.adam(learning_rate=3e-3))
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    kw = {} if mode == "full" else dict(checkpoint_dir=directory, resume=(mode == "resume"))
    final, info = training.fit(state, x, labels, train_step=step, num_epochs=5, batch_size=50,
                               validation_data=val, patience=10, progress=False, **kw)
    history = {k: v for k, v in info.history.items() if k != "epoch_time"}
    ckpt.save(out, {"state": final, "history": history, "best_params": info.best_params,
                    "loss_history": info.loss_history},
              step=0, metadata={"num_steps": info.num_steps, "best_epoch": info.best_epoch,
                                "num_epochs": info.num_epochs, "stop_reason": info.stop_reason})
""")


def _bits(tree):
    def one(leaf):
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        a = np.asarray(leaf)
        return (str(a.dtype), a.shape, a.tobytes())
    return jax.tree_util.tree_leaves(jax.tree_util.tree_map(one, tree))


def _run(script, *args, **popen):
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def test_sigkilled_fit_resumes_bit_for_bit(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    directory, kill_after = tmp_path / "ckpt", 2
    full = _run(script, "full", directory, tmp_path / "full", kill_after)
    killed = _run(script, "killed", directory, tmp_path / "killed", kill_after)
    marker = tmp_path / "killed.marker"
    while not marker.exists():
        assert killed.poll() is None, killed.communicate()[1]
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    assert ckpt.latest_step(directory) == kill_after
    out, err = full.communicate()
    assert full.returncode == 0, err
    resumed = _run(script, "resume", directory, tmp_path / "resumed", kill_after)
    out, err = resumed.communicate()
    assert resumed.returncode == 0, err

    want, want_meta = ckpt.restore(tmp_path / "full")
    got, got_meta = ckpt.restore(tmp_path / "resumed")
    assert got_meta == want_meta and want_meta["num_epochs"] == 5 and want_meta["num_steps"] == 5 * 12
    assert set(got["history"]) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    # params, optimizer state, step, key; history; best params: every bit.
    assert _bits(got["state"]) == _bits(want["state"])
    assert _bits(got["history"]) == _bits(want["history"]) and _bits(got["best_params"]) == _bits(want["best_params"])
    np.testing.assert_array_equal(got["loss_history"], want["loss_history"])
    assert int(got["state"].step) == 60
    assert ckpt.latest_step(directory) == 5


def _setup():
    x, labels = load_mnist("test[:200]")
    model = mlp.make((784, 8, 10), activation="relu", output="identity")
    loss_fn = training.make_classifier_loss(model, num_classes=10)
    return x, labels, model, loss_fn


def test_keyboard_interrupt_saves_the_last_completed_epoch_then_resume_is_exact(tmp_path, monkeypatch):
    x, labels, model, loss_fn = _setup()
    step = training.make_train_step(loss_fn, optim.sgd(learning_rate=0.05, momentum=0.9))
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    kw = dict(train_step=step, num_epochs=4, batch_size=20, progress=False)
    want, want_info = training.fit(state, x, labels, **kw)

    fit_module = sys.modules["jaxmath.training.fit"]  # the module (training.fit is the function)
    real_epoch, calls = fit_module._fit_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C while the third epoch runs
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(fit_module, "_fit_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt) as err:
        training.fit(state, x, labels, checkpoint_dir=tmp_path, checkpoint_every=10, **kw)
    # checkpoint_every=10 saved nothing on its own: the interrupt saved epoch 2 and says where.
    assert os.listdir(tmp_path) == ["step_00000002"]
    assert any("epoch 2 is saved in" in note and "step_00000002" in note for note in err.value.__notes__)
    monkeypatch.setattr(fit_module, "_fit_epoch", real_epoch)
    got, info = training.fit(state, x, labels, checkpoint_dir=tmp_path, resume=True, **kw)
    assert _bits(got) == _bits(want) and _bits(info.best_params) == _bits(want_info.best_params)
    for name in ("train_loss", "train_accuracy"):
        np.testing.assert_array_equal(info.history[name], want_info.history[name])
    assert info.num_steps == want_info.num_steps == 4 * 10 and info.best_epoch == want_info.best_epoch


def test_resume_refuses_a_checkpoint_of_another_model_and_starts_fresh_without_one(tmp_path):
    x, labels, model, loss_fn = _setup()
    step = training.make_train_step(loss_fn, optim.adam(learning_rate=1e-3))
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    kw = dict(train_step=step, num_epochs=1, batch_size=50, progress=False)
    fresh, _ = training.fit(state, x, labels, checkpoint_dir=tmp_path, resume=True, **kw)  # nothing to resume
    plain, _ = training.fit(state, x, labels, checkpoint_dir=tmp_path / "plain", **kw)
    assert _bits(fresh) == _bits(plain)
    other = mlp.make((784, 4, 10), activation="relu", output="identity")
    other_step = training.make_train_step(training.make_classifier_loss(other, num_classes=10),
                                          optim.adam(learning_rate=1e-3))
    other_state = other_step.init(other.init(jax.random.key(0)), key=jax.random.key(1))
    with pytest.raises(ValueError, match=r"does not match the state.*\n.*state.params\[0\]\[0\]: "
                                         r"saved float32\[784, 8\], expected float32\[784, 4\]"):
        training.fit(other_state, x, labels, checkpoint_dir=tmp_path, resume=True,
                     **{**kw, "train_step": other_step})
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        training.fit(state, x, labels, resume=True, **kw)
    with pytest.raises(ValueError, match="checkpoint_every"):
        training.fit(state, x, labels, checkpoint_dir=tmp_path, checkpoint_every=0, **kw)


def test_fit_ensemble_resumes_bit_for_bit(tmp_path):
    x, labels, model, loss_fn = _setup()
    step = training.make_train_step(loss_fn, optim.sgd, learning_rate=0.05)
    states = training.init_ensemble(jax.random.split(jax.random.key(0), 2), init_fn=model.init, train_step=step)
    kw = dict(train_step=step, batch_size=40, learning_rates=jnp.asarray([0.05, 0.1]), progress=False,
              validation_data=load_mnist("test[-100:]"))
    want, want_info = training.fit_ensemble(states, x, labels, num_epochs=3, checkpoint_dir=tmp_path / "ref", **kw)
    run = tmp_path / "run"
    training.fit_ensemble(states, x, labels, num_epochs=2, checkpoint_dir=run, **kw)  # "stopped" after 2
    assert ckpt.latest_step(run) == 2
    got, info = training.fit_ensemble(states, x, labels, num_epochs=3, checkpoint_dir=run, resume=True, **kw)
    assert _bits(got) == _bits(want) and _bits(info.best_params) == _bits(want_info.best_params)
    for name in ("train_loss", "val_loss", "val_accuracy"):
        np.testing.assert_array_equal(info.history[name], want_info.history[name])
    np.testing.assert_array_equal(info.num_steps, want_info.num_steps)
    np.testing.assert_array_equal(info.best_epoch, want_info.best_epoch)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_resume_is_exact_in_every_dtype(tmp_path, dtype):
    # Synthetic 4 x 4 "images" (class = the bright row), a 16-8-4 MLP with Adam in the given dtype: 3 epochs in
    # one go equal 1 epoch, then a resume for 2 more, bit for bit; bfloat16 stays finite.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=64).astype(np.uint8)
    x = rng.integers(0, 60, size=(64, 4, 4)).astype(np.uint8)
    x[np.arange(64), labels, :] += 180
    model = mlp.make((16, 8, 4), activation="relu", dtype=dtype)
    step = training.make_train_step(training.make_classifier_loss(model, num_classes=4), optim.adam(learning_rate=1e-2))
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    kw = dict(train_step=step, batch_size=8, progress=False)
    # The reference also checkpoints (elsewhere), so one compiled epoch serves all three runs.
    want, want_info = training.fit(state, x, labels, num_epochs=3, checkpoint_dir=tmp_path / "ref", **kw)
    training.fit(state, x, labels, num_epochs=1, checkpoint_dir=tmp_path / "run", **kw)
    got, info = training.fit(state, x, labels, num_epochs=3, checkpoint_dir=tmp_path / "run", resume=True, **kw)
    assert got.params[0][0].dtype == jnp.dtype(dtype)
    assert _bits(got) == _bits(want) and _bits(info.best_params) == _bits(want_info.best_params)
    np.testing.assert_array_equal(info.history["train_loss"], want_info.history["train_loss"])
    assert np.all(np.isfinite(info.history["train_loss"])) and info.num_steps == 3 * 8 == int(got.step)
