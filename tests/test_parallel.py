"""jaxmath.devices.parallel: the unchanged train step, data-parallel over 8 (virtual CPU) devices.

The 8-device run happens in a subprocess: XLA_FLAGS=--xla_force_host_platform_device_count=8 only
takes effect before JAX initialises its CPU backend.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath.devices import parallel

SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, numpy as np
    from jaxmath import optim, training
    from jaxmath.models import mlp
    from jaxmath.devices import parallel

    assert len(jax.devices()) == 8, jax.devices()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20 * 64, 7, 7), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(20 * 64,), dtype=np.uint8)
    model = mlp.make((49, 32, 10), activation="tanh")
    loss_fn = training.make_classifier_loss(model, num_classes=10)
    step = training.make_train_step(loss_fn, optim.adam(learning_rate=1e-2))

    def fresh_state():
        return step.init(model.init(jax.random.PRNGKey(0)), key=jax.random.PRNGKey(1))

    def batches():
        for i in range(20):
            yield images[i * 64:(i + 1) * 64], labels[i * 64:(i + 1) * 64]

    # One device: the library's jitted step, as a user calls it.
    one = jax.device_put(fresh_state(), jax.devices()[0])
    for x, y in batches():
        one, metrics_one = step(one, (jnp.asarray(x), jnp.asarray(y)))

    # Eight devices: the very same step, wrapped.
    mesh = parallel.make_mesh()
    dp_step = parallel.data_parallel(step, mesh)
    many = parallel.replicate(fresh_state(), mesh)
    for x, y in batches():
        batch = parallel.shard_batch((x, y), mesh)
        many, metrics_many = dp_step(many, batch)

    leaves_one = jax.tree_util.tree_leaves(one.params)
    leaves_many = jax.tree_util.tree_leaves(many.params)
    try:
        parallel.shard_batch((np.zeros((12, 3), np.float32),), mesh)
        error = ""
    except ValueError as err:
        error = str(err)
    print(json.dumps({
        "max_diff": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(leaves_one, leaves_many)),
        "max_change": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                          for a, b in zip(leaves_one, jax.tree_util.tree_leaves(fresh_state().params))),
        "steps": [int(one.step), int(many.step)],
        "loss": [float(metrics_one["loss"]), float(metrics_many["loss"])],
        "batch_shards": len(batch[0].addressable_shards),
        "batch_shard_rows": batch[0].sharding.shard_shape(batch[0].shape)[0],
        "params_replicated": all(l.sharding.is_fully_replicated for l in leaves_many),
        "params_devices": len(leaves_many[0].devices()),
        "dtypes": sorted({str(l.dtype) for l in leaves_many}),
        "error": error,
    }))
    """
)


@pytest.fixture(scope="module")
def eight_devices():
    env = dict(os.environ)
    # XLA:CPU aborts the process when the simulated devices' threads do not all reach a collective within
    # 40 s; on a heavily shared machine a starved thread can take that long, so the abort waits longer.
    flags = " --xla_force_host_platform_device_count=8 --xla_cpu_collective_call_terminate_timeout_seconds=600"
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + flags).strip()
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_batch_is_split_eight_ways_and_params_replicated(eight_devices):
    assert eight_devices["batch_shards"] == 8 and eight_devices["batch_shard_rows"] == 64 // 8
    assert eight_devices["params_replicated"] and eight_devices["params_devices"] == 8
    assert eight_devices["dtypes"] == ["float32"]


def test_twenty_sharded_steps_match_one_device(eight_devices):
    assert eight_devices["steps"] == [20, 20]
    assert eight_devices["max_change"] > 1e-2  # training moved the params: the comparison means something
    assert eight_devices["max_diff"] <= 1e-5
    np.testing.assert_allclose(*eight_devices["loss"], rtol=1e-5)


def test_indivisible_batch_is_refused_naming_the_shape(eight_devices):
    assert "divisible by the 8 device(s)" in eight_devices["error"] and "shape=(12, 3)" in eight_devices["error"]


def test_one_device_mesh_is_plain_jit():
    mesh = parallel.make_mesh(jax.devices()[:1])
    assert mesh.shape == {"batch": 1}

    def step(w, batch):
        x, y = batch
        g = jax.grad(lambda w: jnp.mean((x @ w - y) ** 2))(w)
        return w - 0.1 * g, {"norm": jnp.linalg.norm(g)}

    w = jnp.ones((3,), jnp.float32)
    x = jnp.arange(12, dtype=jnp.float32).reshape(4, 3) / 10
    y = jnp.ones((4,), jnp.float32)
    got, _ = parallel.data_parallel(step, mesh)(parallel.replicate(w, mesh), parallel.shard_batch((x, y), mesh))
    want, _ = step(w, (x, y))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_make_mesh_refuses_no_devices():
    with pytest.raises(ValueError, match="at least one device"):
        parallel.make_mesh([])


def test_shard_batch_refuses_scalars():
    mesh = parallel.make_mesh(jax.devices()[:1])
    with pytest.raises(ValueError, match="leading axis"):
        parallel.shard_batch({"x": np.float32(1.0)}, mesh)
