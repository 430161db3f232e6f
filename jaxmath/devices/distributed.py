"""Multi-process data parallelism on JAX's own runtime (``jax.distributed``), with ragged batches kept.

Every process runs the same script. Each one reads *its own* contiguous rows of a split, feeds its share of
every global batch, and ``jax.make_array_from_process_local_data`` assembles the global batch over the mesh
of all processes' devices; the unchanged train step then runs SPMD under ``jit`` (see ``parallel``)::

    from jaxmath.devices import distributed, parallel
    distributed.initialize()                       # before any other JAX call; args or JAX_* variables
    mesh = distributed.global_mesh()               # every device of every process, one "batch" axis
    x, labels = distributed.load_process_shard("train")
    loss_fn = distributed.make_masked_classifier_loss(model, num_classes=10)
    step = training.make_train_step(loss_fn, optim.sgd(learning_rate=0.1))
    state = parallel.replicate(step.init(params, key=key), mesh)
    state, metrics = distributed.train_epoch(state, x, labels, train_step=step, mesh=mesh, batch_size=256)
    print(distributed.evaluate(state.params, *distributed.load_process_shard("test"), loss_fn=loss_fn,
                               mesh=mesh, batch_size=1000))

Ragged final batches are padded with zero rows and a 0/1 ``mask``; the masked loss averages over the real
rows only, so nothing is dropped (JAX's k8s MNIST example silently skips an evaluation remainder) and the
padding changes no gradient. Every process runs the same number of steps: it is computed from the split's
global size, never from a process's own row count, so no process waits on a collective the others skip.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as V
from jaxmath import losses as _losses
from jaxmath.devices import parallel
from jaxmath.models.model import Model
from jaxmath.training.objectives import CLASSIFIER_LOSSES, prepare_images

ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


class Batch(NamedTuple):
    """One process's share of a global batch: ``x (b, ...)``, ``labels (b,)``, ``mask (b,)`` float32 0/1."""

    x: np.ndarray
    labels: np.ndarray
    mask: np.ndarray


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return None if value in (None, "") else int(value)


def initialize(
    coordinator_address: str | None = None,
    *,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Any = None,
    cpu_collectives: str | None = "gloo",
) -> None:
    """Start JAX's multi-controller runtime (``jax.distributed.initialize``) and turn on partitionable PRNG.

    Arguments win over the environment variables ``JAX_COORDINATOR_ADDRESS`` ("host:port" of process 0),
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``; with none of them, JAX detects the cluster itself
    (Cloud TPU, SLURM, Open MPI). Call it once per process, before anything else touches a JAX backend.

    ``jax_threefry_partitionable`` is set: random bits drawn for a sharded array then depend only on the key
    and the global shape, not on how the array is split, so the same key gives the same dropout masks and
    permutations on 1 or N devices, and each device draws only its own shard's bits.

    Args:
      coordinator_address: "host:port" of process 0's coordinator.
      num_processes: how many processes take part.
      process_id: this process's index, 0 .. num_processes - 1.
      local_device_ids: restrict this process to these local devices (default: all).
      cpu_collectives: the CPU backend's cross-process collectives ("gloo"); None leaves JAX's setting.
        Needed only when the devices are CPUs (tests, CPU clusters); GPUs and TPUs have their own.
    """
    jax.config.update("jax_threefry_partitionable", True)
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes}), got process_id={process_id}")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, local_device_ids=local_device_ids)


def global_mesh(*, axis_name: str = parallel.BATCH_AXIS) -> jax.sharding.Mesh:
    """A one-axis mesh over every process's devices, grouped by process (process 0's devices first).

    The grouping is what ``make_array_from_process_local_data`` needs: each process's rows of a global
    batch then land on its own devices, in process order.
    """
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    return parallel.make_mesh(devices, axis_name=axis_name)


def shard_rows(num_rows: int, *, process_index: int | None = None, process_count: int | None = None) -> slice:
    """The contiguous rows ``[n·i // P, n·(i+1) // P)`` of process i among P (sizes differ by at most one)."""
    i = jax.process_index() if process_index is None else process_index
    p = jax.process_count() if process_count is None else process_count
    if not 0 <= i < p:
        raise ValueError(f"process_index must be in [0, {p}), got process_index={i}")
    return slice(num_rows * i // p, num_rows * (i + 1) // p)


def load_process_shard(
    split: str, data_dir: Any = None, *, process_index: int | None = None, process_count: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """This process's contiguous rows of an MNIST split (``jaxmath.datasets.load_mnist``).

    Args:
      split: as for ``load_mnist`` ("train", "test[:2000]", ...): the *global* split.
      data_dir: as for ``load_mnist``.
      process_index, process_count: default ``jax.process_index()`` / ``jax.process_count()``.

    Returns:
      ``(x, labels)``: uint8 ``(n_i, 28, 28)`` and ``(n_i,)``, rows ``shard_rows(n)`` of the split.
    """
    from jaxmath.datasets import load_mnist

    x, labels = load_mnist(split, data_dir)
    rows = shard_rows(len(x), process_index=process_index, process_count=process_count)
    return np.ascontiguousarray(x[rows]), np.ascontiguousarray(labels[rows])


def num_batches(global_rows: int, batch_size: int, *, process_count: int | None = None) -> int:
    """Steps per epoch: ``ceil(ceil(n / P) / (B / P))``, the same on every process (the largest shard's)."""
    p = jax.process_count() if process_count is None else process_count
    local = _local_batch_size(batch_size, p)
    return max(1, math.ceil(math.ceil(global_rows / p) / local))


def _local_batch_size(batch_size: int, process_count: int) -> int:
    if batch_size % process_count:
        raise ValueError(f"batch_size must be divisible by the {process_count} process(es), got {batch_size}")
    return batch_size // process_count


def local_batches(
    x: np.ndarray, labels: np.ndarray, *, batch_size: int, steps: int, permutation: np.ndarray | None = None
) -> Iterator[Batch]:
    """This process's shares of ``steps`` global batches: ``batch_size`` rows each, the last ones zero-padded.

    Args:
      x, labels: this process's rows.
      batch_size: rows per share (the global batch size / the process count).
      steps: how many shares to yield (``num_batches``): shares past the local data are all padding.
      permutation: an order of the local rows (shuffling), default their order.
    """
    order = np.arange(len(x)) if permutation is None else np.asarray(permutation)
    for t in range(steps):
        idx = order[t * batch_size:(t + 1) * batch_size]
        real = len(idx)
        bx = np.zeros((batch_size,) + x.shape[1:], x.dtype)
        bl = np.zeros((batch_size,), labels.dtype)
        bx[:real], bl[:real] = x[idx], labels[idx]
        mask = np.zeros((batch_size,), np.float32)
        mask[:real] = 1.0
        yield Batch(bx, bl, mask)


def global_batch(batch: Batch, mesh: jax.sharding.Mesh) -> Batch:
    """Assemble the global batch from every process's share (``make_array_from_process_local_data``)."""
    sharding = parallel.batch_sharding(mesh, axis_name=mesh.axis_names[0])
    return Batch(*(jax.make_array_from_process_local_data(sharding, np.asarray(a)) for a in batch))


def make_masked_classifier_loss(
    model: Model | Callable, *, num_classes: int, loss: str = "softmax_cross_entropy", flatten: bool = True
) -> Callable:
    """``loss_fn(params, (x, labels, mask)) -> (C, metrics)``: the classifier loss over the real rows only.

        C = Σ_k m_k ℓ_k / max(Σ_k m_k, 1),   accuracy = Σ_k m_k [argmax f(x_k) = y_k] / max(Σ_k m_k, 1)

    ℓ_k ↔ the per-example loss of ``training.make_classifier_loss`` (same names), m_k ↔ ``mask`` (1 real,
    0 padding). With every m_k = 1 this is that loss. ``metrics`` also carries ``count`` (Σ m_k) and the
    sums ``loss_sum`` and ``correct`` that ``evaluate`` adds up over batches.
    """
    apply_fn = model.apply if isinstance(model, Model) else model
    V.check_integer(num_classes, name="num_classes", minimum=2)
    V.check_choice(loss, CLASSIFIER_LOSSES, name="loss")

    def loss_fn(params, batch):
        x, labels, mask = batch
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        outputs = apply_fn(params, prepare_images(x, dtype, flatten=flatten))
        labels = labels.astype(jnp.int32)
        if loss == "softmax_cross_entropy":
            per = _losses.softmax_cross_entropy(outputs, labels, reduction="none")
        else:
            targets = jax.nn.one_hot(labels, num_classes, dtype=outputs.dtype)
            per = getattr(_losses, loss)(outputs, targets, reduction="none")
        acc_dtype = jnp.promote_types(outputs.dtype, jnp.float32)
        mask = mask.astype(acc_dtype)
        count = jnp.sum(mask)
        denominator = jnp.maximum(count, jnp.asarray(1, acc_dtype))
        loss_sum = jnp.sum(per.astype(acc_dtype) * mask)
        correct = jnp.sum((jnp.argmax(outputs, axis=-1) == labels).astype(acc_dtype) * mask)
        metrics = {"accuracy": correct / denominator, "count": count, "loss_sum": loss_sum, "correct": correct}
        return loss_sum / denominator, metrics

    loss_fn.num_classes = num_classes
    loss_fn.loss = loss
    loss_fn.model = model if isinstance(model, Model) else None
    return loss_fn


def _host(value: jax.Array) -> float:
    """A replicated scalar's value; with several processes it is not fully addressable, so read a local copy."""
    return float(np.asarray(value.addressable_shards[0].data))


@functools.lru_cache(maxsize=16)
def _compiled_step(train_step: Any, mesh: jax.sharding.Mesh) -> Callable:
    # One compiled data-parallel step per (step, mesh): an epoch per call must not recompile.
    return parallel.data_parallel(train_step, mesh, axis_name=mesh.axis_names[0])


@functools.lru_cache(maxsize=16)
def _compiled_metrics(loss_fn: Callable, mesh: jax.sharding.Mesh) -> Callable:
    return jax.jit(lambda params, batch: loss_fn(params, batch)[1], out_shardings=parallel.replicated_sharding(mesh))


# Dispatched steps not yet finished, at most. XLA:CPU's simulated devices share one thread pool: with hundreds of
# collective steps queued, the pool can fill with device threads waiting at one step's all-reduce while another
# device's share of that step waits behind them, and the process aborts (seen with 469 steps of 4 devices).
# Waiting for the step two back keeps the host ahead of the devices without an unbounded queue.
MAX_IN_FLIGHT = 2


def _bound_in_flight(parts: list) -> None:
    if len(parts) > MAX_IN_FLIGHT:
        jax.block_until_ready(parts[-1 - MAX_IN_FLIGHT])


def _permutation(key: jax.Array | None, n: int) -> np.ndarray | None:
    if key is None:
        return None
    key = jax.random.fold_in(key, jax.process_index())
    return np.asarray(jax.random.permutation(key, n))


def train_epoch(
    state: Any, x: np.ndarray, labels: np.ndarray, *, train_step: Any, mesh: jax.sharding.Mesh,
    batch_size: int, global_rows: int | None = None, key: jax.Array | None = None,
) -> tuple[Any, dict]:
    """One epoch over every process's rows: global batches of ``batch_size`` rows, the last ones masked.

    Args:
      state: a replicated ``TrainState`` (``parallel.replicate(step.init(...), mesh)``).
      x, labels: this process's rows (``load_process_shard``).
      train_step: ``training.make_train_step(make_masked_classifier_loss(...), optimizer)``.
      mesh: ``global_mesh()``.
      batch_size: the *global* batch size, divisible by the device count.
      global_rows: the split's total rows over all processes (default: this shard's rows × process count,
        exact when the split divides evenly; pass it otherwise so every process runs the same steps).
      key: shuffle each process's rows with ``fold_in(key, process_index)`` (None: in order).

    Returns:
      ``(state, metrics)`` with the epoch's mean ``loss`` and ``accuracy`` over the real rows and ``count``.
    """
    p = jax.process_count()
    local = _local_batch_size(batch_size, p)
    global_rows = len(x) * p if global_rows is None else global_rows
    step_fn = _compiled_step(train_step, mesh)
    # Sums stay on the devices until the epoch ends: reading them each step would wait for every step.
    parts = []
    for batch in local_batches(x, labels, batch_size=local, steps=num_batches(global_rows, batch_size),
                               permutation=_permutation(key, len(x))):
        state, metrics = step_fn(state, global_batch(batch, mesh))
        parts.append((metrics["loss_sum"], metrics["correct"], metrics["count"]))
        _bound_in_flight(parts)
    sums = [sum(_host(p[i]) for p in parts) for i in range(3)]
    count = max(sums[2], 1.0)
    return state, {"loss": sums[0] / count, "accuracy": sums[1] / count, "count": int(sums[2])}


def evaluate(
    params: Any, x: np.ndarray, labels: np.ndarray, *, loss_fn: Callable, mesh: jax.sharding.Mesh,
    batch_size: int = 1000, global_rows: int | None = None,
) -> dict:
    """Loss and accuracy over every process's rows, every row counted once (the remainder padded, masked).

    Args:
      params: replicated params.
      x, labels: this process's rows.
      loss_fn: from ``make_masked_classifier_loss``.
      batch_size: the global batch size (rounded up to a multiple of the device count).
      global_rows: as for ``train_epoch``.

    Returns:
      ``{"loss", "accuracy", "count"}``; ``count`` is the number of rows evaluated, all processes together.
    """
    devices = mesh.devices.size
    batch_size = -(-batch_size // devices) * devices
    p = jax.process_count()
    global_rows = len(x) * p if global_rows is None else global_rows
    metrics_fn = _compiled_metrics(loss_fn, mesh)
    parts = []
    for batch in local_batches(x, labels, batch_size=batch_size // p, steps=num_batches(global_rows, batch_size)):
        m = metrics_fn(params, global_batch(batch, mesh))
        parts.append((m["loss_sum"], m["correct"], m["count"]))
        _bound_in_flight(parts)
    sums = [sum(_host(q[i]) for q in parts) for i in range(3)]
    count = max(sums[2], 1.0)
    return {"loss": sums[0] / count, "accuracy": sums[1] / count, "count": int(sums[2])}
