"""jaxmath.models.save / load: params.npz (no pickle) plus config.json, the Model rebuilt from its config."""

import json
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
    assert saved == {"model": model.config, "metadata": None}


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
