"""Data parallelism on JAX's own sharding (``Mesh`` + ``NamedSharding`` + ``jit``; no ``pmap``).

Data parallel training: every device holds a full copy of the params and
optimizer state and 1/D of each batch. Under ``jit`` with the batch sharded on
its leading axis and everything else replicated, XLA's SPMD partitioner
compiles the *unchanged* single-device train step into a program where each
device computes the gradient of its shard and the gradients are summed across
devices by an all-reduce (inserted where the loss averages over the batch). The
same ``make_train_step`` therefore runs on 1 to N devices:

    from jaxmath.devices import parallel
    train_step = training.make_train_step(loss_fn, optimizer)
    mesh = parallel.make_mesh()                           # all devices, one "batch" axis
    step = parallel.data_parallel(train_step, mesh)       # jit with shardings
    state = parallel.replicate(train_step.init(params, key=key), mesh)
    for x, y in batches:                                  # global batch, divisible by D
        state, metrics = step(state, parallel.shard_batch((x, y), mesh))

* **One host, several chips** (a TPU v5e-8 in Colab, a machine with 8 GPUs):
  nothing more; ``jax.devices()`` lists them all.
* **Several hosts** (a TPU pod slice, GPU nodes): run the same script on every host,
  calling ``jax.distributed.initialize()`` first (on Cloud TPU it needs no arguments;
  on GPU clusters pass ``coordinator_address``, ``num_processes``, ``process_id`` or let
  it read SLURM/Open MPI variables). ``jax.devices()`` then lists the devices of every
  host, ``make_mesh()`` spans them all, and each host passes *its own* slice of the
  global batch to ``shard_batch`` (rows ``process_index * B/P`` to ``(process_index+1) * B/P``),
  which assembles the global array with ``jax.make_array_from_process_local_data``.
  ``jaxmath.devices.distributed`` packages this: ``initialize``, ``global_mesh``, ``load_process_shard``,
  and ``train_epoch`` / ``evaluate`` that pad and mask a ragged last batch instead of dropping it;
  ``jaxmath.devices.parallel_fit.fit`` adds epochs, validation and early stopping around them (what
  ``jaxmath train mlp|cnn --devices all`` and ``--distributed`` run).
* **Testing without accelerators**: ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
  (set before JAX starts) makes the CPU appear as 8 devices.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def make_mesh(devices: Sequence[jax.Device] | None = None, *, axis_name: str = BATCH_AXIS) -> Mesh:
    """A one-axis device mesh for data parallelism.

    Args:
      devices: the devices to use (default: every device, all hosts included).
      axis_name: the mesh axis the batch is split along.

    Returns:
      ``Mesh`` of shape ``(len(devices),)``.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device, got an empty list")
    return Mesh(np.array(devices), (axis_name,))


def batch_sharding(mesh: Mesh, *, axis_name: str = BATCH_AXIS) -> NamedSharding:
    """Leading (example) axis split across the mesh axis; other axes whole."""
    return NamedSharding(mesh, PartitionSpec(axis_name))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def _check_divisible(tree: Any, mesh: Mesh, axis_name: str, *, per_process: bool) -> None:
    devices = mesh.shape[axis_name]
    if per_process:
        devices = devices // jax.process_count()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        shape = np.shape(leaf)
        if not shape or shape[0] % devices:
            name = "batch" + jax.tree_util.keystr(path)
            raise ValueError(
                f"{name} must have a leading axis divisible by the {devices} device(s) it is split across, "
                f"got {name}.shape={shape}"
            )


def shard_batch(batch: Any, mesh: Mesh, *, axis_name: str = BATCH_AXIS) -> Any:
    """Place a batch (pytree of arrays with examples on axis 0) split across the mesh.

    On one host ``batch`` is the global batch. With several processes
    (``jax.distributed.initialize``) each process passes its local rows and the global
    array is assembled from them.
    """
    sharding = batch_sharding(mesh, axis_name=axis_name)
    if jax.process_count() > 1:
        _check_divisible(batch, mesh, axis_name, per_process=True)
        return jax.tree_util.tree_map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
    _check_divisible(batch, mesh, axis_name, per_process=False)
    return jax.device_put(batch, sharding)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Copy params / optimizer state / train state to every device of the mesh.

    With several processes every process passes the same values (same key, same init) and each fills its
    own devices: ``device_put`` cannot reach another process's devices.
    """
    sharding = replicated_sharding(mesh)
    if jax.process_count() > 1:
        def put(leaf):
            if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
                data = jax.random.key_data(leaf)
                impl = jax.random.key_impl(leaf)
                return jax.random.wrap_key_data(put(data), impl=impl)
            host = np.asarray(leaf)
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree_util.tree_map(put, tree)
    return jax.device_put(tree, sharding)


def data_parallel(
    step: Callable[[Any, Any], Any],
    mesh: Mesh,
    *,
    axis_name: str = BATCH_AXIS,
    donate_state: bool = False,
) -> Callable[[Any, Any], Any]:
    """``jit`` a ``step(state, batch) -> (state, metrics)`` to run data-parallel on ``mesh``.

    The state is replicated, the batch split along ``axis_name``, the outputs replicated.
    ``step`` is unchanged (a ``TrainStep``'s pure function is the one compiled); on a one-device mesh this is
    plain ``jit``.

    Args:
      step: a pure train step, e.g. ``jaxmath.training.make_train_step(loss_fn, optimizer)``.
      mesh: from ``make_mesh``.
      donate_state: let XLA reuse the input state's buffers for the output state.
    """
    replicated = replicated_sharding(mesh)
    # A TrainStep is already jitted (with its own donation); compile its pure function once, here.
    step = getattr(step, "pure", step)
    return jax.jit(
        step,
        in_shardings=(replicated, batch_sharding(mesh, axis_name=axis_name)),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,) if donate_state else (),
    )
