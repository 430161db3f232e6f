"""jaxmath.models.save / load: params.npz (no pickle) plus config.json, the Model rebuilt from its config."""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import models
from jaxmath.models import mlp


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_save_load_round_trip_keeps_config_params_dtype_and_outputs(tmp_path, dtype):
    model = mlp.make((5, 4, 3), activation="tanh", output="softmax", dtype=dtype)
    params = model.init(jax.random.key(0))
    models.save(tmp_path / "run", model, params, metadata={"eval_accuracy": 0.9, "note": "hand"})
    loaded, back, metadata = models.load(tmp_path / "run")
    assert loaded.config == model.config and metadata == {"eval_accuracy": 0.9, "note": "hand"}
    chex.assert_trees_all_equal_structs(back, params)
    chex.assert_trees_all_equal_dtypes(back, params)
    chex.assert_trees_all_equal(back, params)  # bfloat16 survives its float32 detour exactly
    x = jax.random.normal(jax.random.key(1), (7, 5), jnp.dtype(dtype))
    chex.assert_trees_all_equal(loaded.apply(back, x), model.apply(params, x))


def test_saved_files_are_plain_npz_and_json(tmp_path):
    model = mlp.make((3, 2, 2), activation="relu")
    params = model.init(jax.random.key(0))
    models.save(tmp_path, model, params)
    with np.load(tmp_path / "params.npz", allow_pickle=False) as data:  # no pickle needed to read it
        assert data.files == ["000 [0][0]", "001 [0][1]", "002 [1][0]", "003 [1][1]"]
        np.testing.assert_array_equal(data["002 [1][0]"], np.asarray(params[1][0]))
    assert all(name.endswith(".npy") for name in zipfile.ZipFile(tmp_path / "params.npz").namelist())
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == {"model": model.config, "metadata": None,
                     "params_sha256": hashlib.sha256((tmp_path / "params.npz").read_bytes()).hexdigest()}


def test_load_refuses_arrays_that_do_not_fit_the_model(tmp_path):
    model = mlp.make((3, 2, 2))
    models.save(tmp_path, model, model.init(jax.random.key(0)))
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["sizes"] = [3, 5, 2]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"shape \(3, 2\), the model expects \(3, 5\)"):
        models.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        models.load(tmp_path / "elsewhere")


def test_save_needs_a_model():
    with pytest.raises(TypeError, match="mlp.make"):
        models.save("unused", lambda p, x: x, {})


def _two_runs():
    model = mlp.make((3, 2, 2), activation="tanh")
    return model, model.init(jax.random.key(0)), model.init(jax.random.key(1))


def test_failed_config_write_leaves_the_previous_save_whole(tmp_path, monkeypatch):
    # A full disk while the second file is written: the first run's pair must survive untouched.
    model, first, second = _two_runs()
    models.save(tmp_path, model, first, metadata={"run": 1})
    before = {name: (tmp_path / name).read_bytes() for name in ("params.npz", "config.json")}
    real_fsync, calls = os.fsync, []

    def fsync_then_full(fd):
        calls.append(fd)
        if len(calls) == 2:  # the config's temporary file (the params' one was the first)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_then_full)
    with pytest.raises(OSError, match="No space left"):
        models.save(tmp_path, model, second, metadata={"run": 2})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "params.npz"]  # no temporary left
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    _, back, metadata = models.load(tmp_path)
    assert metadata == {"run": 1}
    chex.assert_trees_all_equal(back, first)


def test_load_refuses_params_of_another_save(tmp_path):
    # One run's params beside another run's config (same shapes) used to load without complaint.
    model, first, second = _two_runs()
    models.save(tmp_path / "a", model, first)
    models.save(tmp_path / "b", model, second)
    os.replace(tmp_path / "b" / "params.npz", tmp_path / "a" / "params.npz")
    with pytest.raises(ValueError, match="is not the params file .*config.json was written with"):
        models.load(tmp_path / "a")


def test_kill_between_the_two_renames_loads_the_new_save_whole(tmp_path, monkeypatch):
    # The params rename commits; the new config is then still complete in its temporary file.
    model, first, second = _two_runs()
    models.save(tmp_path, model, first, metadata={"run": 1})
    real_replace, calls = os.replace, []

    def killed_after_first_rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        models.save(tmp_path, model, second, metadata={"run": 2})
    monkeypatch.setattr(os, "replace", real_replace)
    _, back, metadata = models.load(tmp_path)
    assert metadata == {"run": 2}
    chex.assert_trees_all_equal(back, second)
    models.save(tmp_path, model, first)  # the next save clears the leftover temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "params.npz"]


KILLED_SAVER = """
import sys, jax
from jaxmath import models
from jaxmath.models import mlp
model = mlp.make((64, 256, 10))
runs = [model.init(jax.random.key(k)) for k in (0, 1)]
models.save(sys.argv[1], model, runs[0], metadata={"run": 0})
print("ready", flush=True)
i = 0
while True:
    i += 1
    models.save(sys.argv[1], model, runs[i % 2], metadata={"run": i % 2})
"""


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_sigkill_during_a_rewrite_leaves_a_loadable_consistent_save(tmp_path, delay):
    # np.savez in place used to leave a truncated zip (BadZipFile) when killed mid-write.
    child = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    model = mlp.make((64, 256, 10))
    _, back, metadata = models.load(tmp_path)
    chex.assert_trees_all_equal(back, model.init(jax.random.key(metadata["run"])))
