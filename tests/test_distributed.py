"""jaxmath.devices.distributed: 2 processes x 2 CPU devices on localhost (jax.distributed, gloo collectives)
train the same params as 1 process x 4 devices and as 1 device, on the same global batches, ragged ones included.

The multi-device runs happen in subprocesses: XLA_FLAGS=--xla_force_host_platform_device_count only takes
effect before JAX starts, and jax.distributed needs one process per participant.
"""

import functools
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmath import optim, training
from jaxmath.datasets import load_mnist
from jaxmath.devices import distributed
from jaxmath.models import mlp

ROOT = Path(__file__).resolve().parents[1]
TRAIN, TRAIN_ROWS = "train[:202]", 202  # 101 rows per process: the last global batch is ragged (5 + 5 of 16)
TEST, TEST_ROWS = "test[:301]", 301
BATCH, EVAL_BATCH, EPOCHS = 16, 64, 2

WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    mode, out = sys.argv[1], sys.argv[2]
    import jax
    from jaxmath.devices import distributed, parallel
    if mode == "multi":
        distributed.initialize(sys.argv[3], num_processes=2, process_id=int(sys.argv[4]))
    else:
        jax.config.update("jax_threefry_partitionable", True)
    from jaxmath import optim, training
    from jaxmath.models import mlp

    TRAIN, TRAIN_ROWS, TEST, TEST_ROWS, BATCH, EVAL_BATCH, EPOCHS = json.loads(sys.argv[-1])
    model = mlp.make((784, 32, 10), activation="tanh")
    loss_fn = distributed.make_masked_classifier_loss(model, num_classes=10)
    step = training.make_train_step(loss_fn, optim.sgd(learning_rate=0.5))
    params0 = model.init(jax.random.key(0))
    mesh = distributed.global_mesh()
    state = parallel.replicate(step.init(params0, key=jax.random.key(1)), mesh)
    result = {"devices": len(jax.devices()), "local_devices": len(jax.local_devices()),
              "processes": jax.process_count(), "partitionable": bool(jax.config.jax_threefry_partitionable)}
    if mode == "multi":
        x, labels = distributed.load_process_shard(TRAIN)
        for epoch in range(EPOCHS):
            state, metrics = distributed.train_epoch(state, x, labels, train_step=step, mesh=mesh,
                                                     batch_size=BATCH, global_rows=TRAIN_ROWS)
        result["train_count"] = metrics["count"]
        tx, tl = distributed.load_process_shard(TEST)
        result["eval"] = distributed.evaluate(state.params, tx, tl, loss_fn=loss_fn, mesh=mesh,
                                              batch_size=EVAL_BATCH, global_rows=TEST_ROWS)
        result["batch_sharding"] = None
    else:
        # One process, four devices, the same global batches: process i's share of batch t is
        # local batch t of shard i, exactly what the two processes feed.
        shards = [distributed.load_process_shard(TRAIN, process_index=i, process_count=2) for i in range(2)]
        steps = distributed.num_batches(TRAIN_ROWS, BATCH, process_count=2)
        dp_step = parallel.data_parallel(step, mesh)
        for epoch in range(EPOCHS):
            parts = [list(distributed.local_batches(x, l, batch_size=BATCH // 2, steps=steps)) for x, l in shards]
            for b0, b1 in zip(*parts):
                batch = distributed.Batch(*(np.concatenate(pair) for pair in zip(b0, b1)))
                state, metrics = dp_step(state, parallel.shard_batch(tuple(batch), mesh))
        tx, tl = distributed.load_process_shard(TEST)
        result["eval"] = distributed.evaluate(state.params, tx, tl, loss_fn=loss_fn, mesh=mesh,
                                              batch_size=EVAL_BATCH)
        result["batch_shards"] = len(parallel.shard_batch(tuple(batch), mesh)[0].addressable_shards)
    if jax.process_index() == 0:
        leaves = [np.asarray(l.addressable_shards[0].data) for l in jax.tree_util.tree_leaves(state.params)]
        np.savez(out + ".npz", *leaves)
        result["dtypes"] = sorted({str(l.dtype) for l in leaves})
        result["step"] = int(np.asarray(state.step.addressable_shards[0].data))
        with open(out + ".json", "w") as f:
            json.dump(result, f)
    if mode == "multi":
        jax.distributed.shutdown()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    env = dict(os.environ)
    # XLA:CPU aborts the process when the simulated devices' threads do not all reach a collective within
    # 40 s; on a heavily shared machine a starved thread can take that long, so the abort waits longer.
    flags = f"--xla_force_host_platform_device_count={devices} --xla_cpu_collective_call_terminate_timeout_seconds=600"
    env.update(XLA_FLAGS=flags, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    env.pop("JAX_ENABLE_X64", None)
    return env


def _load(out: Path):
    result = json.loads(Path(str(out) + ".json").read_text())
    with np.load(str(out) + ".npz") as f:
        leaves = [f[f"arr_{i}"] for i in range(len(f.files))]
    return result, leaves


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Launch the 2-process run and the 1-process 4-device run side by side; wait for all three processes."""
    tmp = tmp_path_factory.mktemp("distributed")
    config = json.dumps([TRAIN, TRAIN_ROWS, TEST, TEST_ROWS, BATCH, EVAL_BATCH, EPOCHS])
    script = tmp / "worker.py"
    script.write_text(WORKER)
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen([sys.executable, str(script), "multi", str(tmp / "multi"), address, str(i), config],
                         env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    procs.append(subprocess.Popen([sys.executable, str(script), "single", str(tmp / "single"), config],
                                  env=_env(4), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=600)[0])  # a guard against a hung coordinator, not a speed limit
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a jax.distributed worker hung:\n" + "\n".join(logs))
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return _load(tmp / "multi"), _load(tmp / "single")


@functools.lru_cache(maxsize=1)
def _one_device_params():
    """The reference: one device, the unmasked loss of ``training``, on the real rows of each global batch."""
    model = mlp.make((784, 32, 10), activation="tanh")
    step = training.make_train_step(training.make_classifier_loss(model, num_classes=10),
                                    optim.sgd(learning_rate=0.5))
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    x, labels = load_mnist(TRAIN)
    halves = [(x[:101], labels[:101]), (x[101:], labels[101:])]
    local = BATCH // 2
    steps = -(-101 // local)
    for _ in range(EPOCHS):
        for t in range(steps):
            bx = np.concatenate([h[0][t * local:(t + 1) * local] for h in halves])
            bl = np.concatenate([h[1][t * local:(t + 1) * local] for h in halves])
            state, _ = step(state, (jnp.asarray(bx), jnp.asarray(bl)))
    return state, steps * EPOCHS, step.loss_fn


def test_two_processes_match_one_process_four_devices_and_one_device(runs):
    (multi, multi_leaves), (single, single_leaves) = runs
    assert (multi["processes"], multi["devices"], multi["local_devices"]) == (2, 4, 2)
    assert (single["processes"], single["devices"], single["batch_shards"]) == (1, 4, 4)
    assert multi["partitionable"] and single["partitionable"]
    assert multi["dtypes"] == ["float32"]
    # Every training row counted once in the last epoch: the ragged batch was padded, not dropped.
    assert multi["train_count"] == TRAIN_ROWS
    ref_state, ref_steps, _ = _one_device_params()
    ref_leaves = [np.asarray(l) for l in jax.tree_util.tree_leaves(ref_state.params)]
    assert multi["step"] == single["step"] == ref_steps == EPOCHS * 13
    initial = [np.asarray(l) for l in jax.tree_util.tree_leaves(mlp.make((784, 32, 10)).init(jax.random.key(0)))]
    assert max(np.max(np.abs(a - b)) for a, b in zip(ref_leaves, initial)) > 1e-2  # training moved the params
    for a, b, c in zip(multi_leaves, single_leaves, ref_leaves):
        assert a.shape == b.shape == c.shape and a.dtype == b.dtype == c.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
        np.testing.assert_allclose(a, c, atol=1e-6, rtol=0)


def test_distributed_evaluation_counts_every_row_and_matches_training_evaluate(runs):
    (multi, _), (single, _) = runs
    ref_state, _, loss_fn = _one_device_params()
    x, labels = load_mnist(TEST)
    want = training.evaluate(ref_state.params, x, labels, loss_fn=loss_fn, batch_size=TEST_ROWS)
    for got in (multi["eval"], single["eval"]):
        assert got["count"] == TEST_ROWS  # 301 rows in batches of 64: the remainder of 45 is kept
        np.testing.assert_allclose(got["accuracy"], float(want["accuracy"]), atol=1e-6)
        np.testing.assert_allclose(got["loss"], float(want["loss"]), rtol=1e-5)


def test_shard_rows_partition_the_split_contiguously():
    for n, p in ((202, 2), (10, 3), (7, 4), (60000, 8)):
        rows = [distributed.shard_rows(n, process_index=i, process_count=p) for i in range(p)]
        assert rows[0].start == 0 and rows[-1].stop == n
        assert all(a.stop == b.start for a, b in zip(rows, rows[1:]))
        assert {r.stop - r.start for r in rows} <= {n // p, -(-n // p)}
    with pytest.raises(ValueError, match="process_index"):
        distributed.shard_rows(10, process_index=2, process_count=2)


def test_local_batches_pad_the_remainder_with_a_zero_mask():
    x = np.arange(10 * 3, dtype=np.uint8).reshape(10, 3)
    labels = np.arange(10, dtype=np.uint8)
    batches = list(distributed.local_batches(x, labels, batch_size=4, steps=4))
    assert [b.x.shape for b in batches] == [(4, 3)] * 4
    assert [b.mask.tolist() for b in batches] == [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(np.concatenate([b.labels[b.mask > 0] for b in batches]), labels)
    np.testing.assert_array_equal(batches[2].x[2:], 0)
    assert distributed.num_batches(202, 16, process_count=2) == 13
    with pytest.raises(ValueError, match="divisible"):
        distributed.num_batches(202, 15, process_count=2)


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "sum_of_squares"])
def test_masked_loss_and_gradient_equal_the_plain_loss_on_the_real_rows_float32(loss):
    model = mlp.make((12, 8, 10), activation="tanh", dtype="float32")
    params = model.init(jax.random.key(0))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 12), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(6,), dtype=np.uint8)
    plain = training.make_classifier_loss(model, num_classes=10, loss=loss)
    masked = distributed.make_masked_classifier_loss(model, num_classes=10, loss=loss)
    pad_x = np.concatenate([x, rng.integers(0, 256, size=(2, 12), dtype=np.uint8)])  # junk rows, masked out
    pad_labels = np.concatenate([labels, [3, 7]]).astype(np.uint8)
    mask = np.array([1] * 6 + [0, 0], np.float32)
    (want, want_m), want_g = jax.value_and_grad(plain, has_aux=True)(params, (x, labels))
    (got, got_m), got_g = jax.value_and_grad(masked, has_aux=True)(params, (pad_x, pad_labels, mask))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(got_m["accuracy"], want_m["accuracy"], atol=1e-6)
    assert float(got_m["count"]) == 6
    for a, b in zip(jax.tree_util.tree_leaves(got_g), jax.tree_util.tree_leaves(want_g)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    ones = np.ones(6, np.float32)
    np.testing.assert_allclose(masked(params, (x, labels, ones))[0], want, rtol=1e-5)


def test_one_process_train_epoch_shuffles_with_the_key_and_keeps_every_row_float32():
    """One process, one device: the epoch with ``key`` equals plain steps over the permuted rows' batches."""
    model = mlp.make((784, 8, 10), activation="tanh", dtype="float32")
    masked = distributed.make_masked_classifier_loss(model, num_classes=10)
    step = training.make_train_step(masked, optim.sgd(learning_rate=0.5))
    plain = training.make_train_step(training.make_classifier_loss(model, num_classes=10),
                                     optim.sgd(learning_rate=0.5))
    x, labels = load_mnist("train[:45]")  # 45 rows in batches of 8: the sixth has 5
    mesh = distributed.global_mesh()
    key = jax.random.key(7)
    params0 = model.init(jax.random.key(0))
    state, metrics = distributed.train_epoch(step.init(params0, key=key), x, labels, train_step=step, mesh=mesh,
                                             batch_size=8, key=key)
    assert metrics["count"] == 45 and int(state.step) == 6
    order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 0), 45))
    ref = plain.init(params0, key=key)
    for t in range(6):
        idx = order[t * 8:(t + 1) * 8]
        ref, _ = plain(ref, (jnp.asarray(x[idx]), jnp.asarray(labels[idx])))
    for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(ref.params)):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
