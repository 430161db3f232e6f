"""jaxmath.checkpoint: exact round trips, the manifest, atomic saves, corrupt steps skipped, like= diffs."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmath
import jaxmath.checkpoint as ckpt
from jaxmath import optim, training
from jaxmath.models import mlp


def _state(optimizer=None, dtype="float32"):
    model = mlp.make((4, 3, 2), activation="relu", dtype=dtype)
    loss_fn = training.make_classifier_loss(model, num_classes=2)
    step = training.make_train_step(loss_fn, optimizer or optim.adam(learning_rate=0.1))
    return step.init(model.init(jax.random.key(0)), key=jax.random.key(1))


def _bits(tree):
    """Every leaf as (dtype name, raw bytes): equal bits, not just equal values (NaN == NaN, -0 != 0)."""
    def one(leaf):
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return ("key", str(jax.random.key_impl(leaf)), np.asarray(jax.random.key_data(leaf)).tobytes())
        a = np.asarray(leaf)
        return (str(a.dtype), a.shape, a.tobytes())
    return jax.tree_util.tree_map(one, tree)


def _same_bits(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    assert jax.tree_util.tree_leaves(_bits(a)) == jax.tree_util.tree_leaves(_bits(b))


def test_round_trip_is_bit_exact_for_every_kind_of_leaf_and_node(tmp_path):
    state = _state()
    tree = {
        "state": state,
        "bf16": jnp.asarray([1.5, -0.0, 3e38, 1e-40], jnp.bfloat16),  # a subnormal and -0: bits must survive
        "f64": np.asarray([np.pi, np.nan, -np.inf]),
        "f16": jnp.asarray([65504.0], jnp.float16),
        "ints": (jnp.arange(3, dtype=jnp.int8), np.uint32(7)),
        "python": [3, 2.5, True, float("inf")],
        "nothing": None,
        "raw_key": jax.random.PRNGKey(3),
        "rbg_key": jax.random.key(4, impl="rbg"),
    }
    path = ckpt.save(tmp_path, tree, step=12, metadata={"note": "hello", "lr": 0.1})
    assert path == tmp_path / "step_00000012" and sorted(os.listdir(path)) == ["arrays.npz", "manifest.json"]
    got, metadata = ckpt.restore(tmp_path)
    assert metadata == {"note": "hello", "lr": 0.1}
    _same_bits(got, tree)
    # Types come back as they went in: jaxmath's NamedTuples without like=, Python numbers as Python numbers.
    assert type(got["state"]) is training.TrainState and type(got["state"].opt_state) is optim.AdamState
    assert got["python"] == [3, 2.5, True, float("inf")]
    assert [type(v) for v in got["python"]] == [int, float, bool, float]
    assert isinstance(got["f64"], np.ndarray) and isinstance(got["bf16"], jax.Array)
    assert got["bf16"].dtype == jnp.bfloat16 and got["rbg_key"].dtype == tree["rbg_key"].dtype
    # The restored key draws the same numbers.
    np.testing.assert_array_equal(jax.random.uniform(got["state"].key, (3,)), jax.random.uniform(state.key, (3,)))


def test_manifest_records_structure_dtypes_shapes_versions_and_sha256(tmp_path):
    state = _state()
    ckpt.save(tmp_path, {"state": state, "w": jnp.ones((2, 3), jnp.bfloat16)}, step=3)
    manifest = json.loads((tmp_path / "step_00000003" / "manifest.json").read_text())
    assert manifest["step"] == 3
    assert manifest["versions"] == {"jaxmath": jaxmath.__version__, "jax": jax.__version__, "numpy": np.__version__}
    digest = hashlib.sha256((tmp_path / "step_00000003" / "arrays.npz").read_bytes()).hexdigest()
    assert manifest["sha256"] == digest
    root = manifest["tree"]
    assert root["kind"] == "dict" and root["keys"] == ["state", "w"]
    state_spec, w_spec = root["children"]
    assert state_spec["type"] == "jaxmath.training.state.TrainState"
    assert state_spec["fields"] == ["params", "opt_state", "step", "key"]
    assert state_spec["children"][1]["type"] == "jaxmath.optim.adam.AdamState"
    assert state_spec["children"][1]["children"][4] == {"kind": "none"}  # nu_max without amsgrad
    assert state_spec["children"][0]["kind"] == "list"
    key_spec = state_spec["children"][3]
    assert key_spec["dtype"] == "key" and key_spec["key_impl"] == "threefry2x32" and key_spec["path"] == "['state'].key"
    assert w_spec["dtype"] == "bfloat16" and w_spec["stored_as"] == "uint16" and w_spec["shape"] == [2, 3]
    # The arrays file holds no pickled objects: it loads with allow_pickle=False, bfloat16 as a uint16 view.
    with np.load(tmp_path / "step_00000003" / "arrays.npz", allow_pickle=False) as arrays:
        assert arrays[w_spec["array"]].dtype == np.uint16
        np.testing.assert_array_equal(arrays[w_spec["array"]], np.full((2, 3), 0x3F80, np.uint16))  # 1.0 in bf16


def test_keep_prunes_old_steps_and_latest_step(tmp_path):
    assert ckpt.latest_step(tmp_path / "missing") is None
    for step in (1, 2, 3, 4, 5):
        ckpt.save(tmp_path, {"x": jnp.full((2,), step)}, step=step, keep=2)
    assert sorted(os.listdir(tmp_path)) == ["step_00000004", "step_00000005"]
    assert ckpt.latest_step(tmp_path) == 5
    assert int(ckpt.restore(tmp_path, step=4)[0]["x"][0]) == 4
    ckpt.save(tmp_path, {"x": jnp.full((2,), 50)}, step=5, keep=2)  # saving a step again replaces it whole
    assert int(ckpt.restore(tmp_path)[0]["x"][0]) == 50
    assert sorted(os.listdir(tmp_path)) == ["step_00000004", "step_00000005"]
    with pytest.raises(ValueError, match="step must be an integer >= 0"):
        ckpt.save(tmp_path, {}, step=-1)
    with pytest.raises(ValueError, match="keep must be"):
        ckpt.save(tmp_path, {}, step=1, keep=0)
    with pytest.raises(TypeError, match=r"leaf at \['s'\] must be an array or a number, got str"):
        ckpt.save(tmp_path, {"s": "text"}, step=1)


def test_partial_or_corrupt_steps_are_skipped_with_a_warning(tmp_path):
    for step in (1, 2, 3):
        ckpt.save(tmp_path, {"x": jnp.full((4,), float(step))}, step=step, keep=None)
    (tmp_path / "step_00000003" / "manifest.json").unlink()  # killed before the manifest was written
    arrays = tmp_path / "step_00000002" / "arrays.npz"
    data = bytearray(arrays.read_bytes())
    data[-30] ^= 0xFF  # one flipped byte
    arrays.write_bytes(bytes(data))
    assert ckpt.latest_step(tmp_path) == 1
    with pytest.warns(RuntimeWarning) as record:
        tree, _ = ckpt.restore(tmp_path)
    messages = [str(w.message) for w in record]
    assert any("step_00000003" in m and "no manifest.json" in m for m in messages)
    assert any("step_00000002" in m and "sha256" in m for m in messages)
    np.testing.assert_array_equal(tree["x"], np.full((4,), 1.0, np.float32))
    with pytest.raises(ValueError, match="step 2 .* unusable: arrays.npz does not match the sha256"):
        ckpt.restore(tmp_path, step=2)
    (tmp_path / "step_00000001" / "arrays.npz").unlink()
    with pytest.warns(RuntimeWarning), pytest.raises(FileNotFoundError, match="no complete step"):
        ckpt.restore(tmp_path)


def test_a_save_killed_half_way_leaves_the_previous_steps_intact(tmp_path):
    ckpt.save(tmp_path, {"x": jnp.arange(3.0)}, step=1)
    # The child dies (SIGKILL) inside np.savez of step 2: the target never appears, step 1 still loads, and the
    # next save removes the dead writer's temporary directory.
    child = textwrap.dedent(f"""
        import os, signal, numpy as np, jax.numpy as jnp
        import jaxmath.checkpoint as ckpt
        real = np.savez
        def dying(f, **arrays):
            real(f, **arrays)
            os.kill(os.getpid(), signal.SIGKILL)
        np.savez = dying
        ckpt.save({str(tmp_path)!r}, {{"x": jnp.zeros(1000)}}, step=2)
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]
    assert len(leftovers) == 1 and not (tmp_path / "step_00000002").exists()
    assert ckpt.latest_step(tmp_path) == 1
    np.testing.assert_array_equal(ckpt.restore(tmp_path)[0]["x"], np.arange(3.0, dtype=np.float32))
    ckpt.save(tmp_path, {"x": jnp.ones(2)}, step=3)
    assert sorted(os.listdir(tmp_path)) == ["step_00000001", "step_00000003"]


class Pair(NamedTuple):
    a: jax.Array
    b: jax.Array


def test_like_checks_structure_shapes_dtypes_and_prints_a_diff(tmp_path, capsys):
    state = _state()
    good = {"state": state, "pair": Pair(jnp.ones(2, jnp.float32), jnp.zeros(3, jnp.float32)), "h": np.zeros(4)}
    ckpt.save(tmp_path, good, step=1)
    got, _ = ckpt.restore(tmp_path, like=good)
    assert type(got["pair"]) is Pair  # like= supplies a user's own NamedTuple
    _same_bits(got, good)
    wrong = {
        "state": state._replace(opt_state=optim.sgd(learning_rate=0.1).init(state.params)),
        "pair": Pair(jnp.ones(5, jnp.float32), jnp.zeros(3, jnp.int32)),
        "extra": np.zeros(1),
    }
    with pytest.raises(ValueError, match="does not match like") as err:
        ckpt.restore(tmp_path, like=wrong)
    text = str(err.value)
    assert "['state'].opt_state: saved NamedTuple jaxmath.optim.adam.AdamState, expected NamedTuple " \
           "jaxmath.optim.sgd.SGDState" in text
    assert "['pair'].a: saved float32[2], expected float32[5]" in text
    assert "['pair'].b: saved float32[3], expected int32[3]" in text
    assert "['h']: only in the checkpoint" in text and "['extra']: missing from the checkpoint" in text
    assert "['pair'].a: saved float32[2]" in capsys.readouterr().err
    # Without like=, a NamedTuple from outside jaxmath is never imported by name.
    with pytest.raises(ValueError, match=r"cannot rebuild NamedTuple .*Pair .*pass like="):
        ckpt.restore(tmp_path)
    assert type(ckpt.restore(tmp_path, types={f"{__name__}.Pair": Pair})[0]["pair"]) is Pair


def test_manifest_cannot_make_restore_import_modules(tmp_path):
    ckpt.save(tmp_path, {"p": Pair(jnp.ones(1), jnp.ones(1))}, step=1)
    manifest_file = tmp_path / "step_00000001" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["tree"]["children"][0]["type"] = "os.path.NotThere"
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="only jaxmath's own types"):
        ckpt.restore(tmp_path)


def test_sharded_arrays_are_gathered_and_restored_onto_a_given_sharding(tmp_path):
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("data",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    x = jax.device_put(jnp.arange(8.0, dtype=jnp.float32), sharding)
    ckpt.save(tmp_path, {"x": x}, step=1)
    got, _ = ckpt.restore(tmp_path, sharding=sharding)
    assert got["x"].sharding == sharding
    np.testing.assert_array_equal(got["x"], np.arange(8.0, dtype=np.float32))
    got, _ = ckpt.restore(tmp_path, sharding=lambda path, shape: sharding if path == "['x']" else None)
    assert got["x"].sharding == sharding


def test_saved_on_four_devices_restored_on_one_and_back(tmp_path):
    # Four host CPU devices in a child process: the array is split in four shards on save, whole on disk.
    child = textwrap.dedent(f"""
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
        import jax, jax.numpy as jnp, numpy as np
        import jaxmath.checkpoint as ckpt
        assert jax.device_count() == 4
        mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data", None))
        x = jax.device_put(jnp.arange(32.0).reshape(8, 4), sharding)
        assert len(x.addressable_shards) == 4
        ckpt.save({str(tmp_path)!r}, {{"x": x}}, step=1)
        got, _ = ckpt.restore({str(tmp_path)!r}, sharding=sharding)
        assert got["x"].sharding == sharding and len(got["x"].addressable_shards) == 4
        np.testing.assert_array_equal(got["x"], np.arange(32.0).reshape(8, 4))
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got, _ = ckpt.restore(tmp_path)
    np.testing.assert_array_equal(got["x"], np.arange(32.0, dtype=np.float32).reshape(8, 4))
