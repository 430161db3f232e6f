"""``fit`` on a device mesh: data-parallel epochs over one or many processes, with what ``training.fit`` adds.

The epochs are ``distributed.train_epoch`` (every process feeds its own rows; the global batch is assembled
with ``jax.make_array_from_process_local_data``; the ragged last batch is padded and masked, never dropped)
and the evaluations ``distributed.evaluate``. Around them this loop adds what ``jaxmath.training.fit`` adds
around ``run_epoch``: a progress bar (process 0 only), validation after each epoch, early stopping on
``patience`` with the best params kept, a stop on a non-finite loss, and a ``training.FitInfo``. It is what
``jaxmath train mlp|cnn --devices all`` and ``--distributed`` run::

    mesh = parallel.make_mesh()                      # or distributed.global_mesh() after initialize()
    loss_fn = distributed.make_masked_classifier_loss(model, num_classes=10)
    step = training.make_train_step(loss_fn, optim.adam(learning_rate=1e-3))
    state, info = parallel_fit.fit(step.init(params, key=key), x, labels, train_step=step, mesh=mesh,
                                   num_epochs=10, batch_size=128, key=key, global_rows=60_000)

How it differs from ``training.fit`` (one device, one compiled scan per epoch):

* every row is trained in every epoch: ⌈n / B⌉ steps, the last one on the real rows of a padded batch
  (``training.fit`` skips the n mod B rows left over by its permutation);
* the shuffle of epoch e permutes each process's own rows with ``fold_in(fold_in(key, e), process_index)``,
  so the global batches depend on the key and the process count, not on the device count: 1 device and
  4 devices of one process train the same params;
* a non-finite loss is seen at the end of an epoch: training stops and returns the params of the previous
  epoch (the last finite ones);
* no checkpoints.
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import numpy as np

from jaxmath.devices import distributed, parallel
from jaxmath.training.epoch import _check_train_step, check_dataset
from jaxmath.training.fit import BAR_FORMAT, FitInfo, check_budget, progress_postfix


def mesh_description(mesh: jax.sharding.Mesh) -> str:
    """What the results table prints: ``"4 × cpu (batch)"`` or ``"2 processes × 2 cpu (batch)"``.

    The axis name in brackets is the one the batch is split along.
    """
    devices = list(mesh.devices.flat)
    processes = len({d.process_index for d in devices})
    kind = devices[0].platform
    axes = ", ".join(mesh.axis_names)
    if processes > 1:
        return f"{processes} processes × {len(devices) // processes} {kind} ({axes})"
    return f"{len(devices)} × {kind} ({axes})"


def check_batch_size(batch_size: int, mesh: jax.sharding.Mesh) -> None:
    """``batch_size`` must split evenly over the mesh's devices (each device gets ``batch_size / D`` rows)."""
    devices = mesh.devices.size
    if batch_size % devices:
        raise ValueError(f"batch_size must be divisible by the {devices} devices of the mesh "
                         f"({mesh_description(mesh)}), got batch_size={batch_size}")


def host_copy(tree: Any) -> Any:
    """NumPy copies of replicated arrays (read from this process's first shard: with several processes the
    global arrays are not fully addressable)."""
    return jax.tree_util.tree_map(lambda a: np.array(a.addressable_shards[0].data), tree)


def fit(
    state: Any,
    x: np.ndarray,
    labels: np.ndarray,
    *,
    train_step: Any,
    mesh: jax.sharding.Mesh,
    num_epochs: int,
    batch_size: int,
    key: jax.Array,
    global_rows: int | None = None,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    validation_rows: int | None = None,
    patience: int | None = None,
    eval_batch_size: int = 1000,
    progress: bool = True,
) -> tuple[Any, FitInfo]:
    """Train data-parallel on ``mesh`` for up to ``num_epochs`` epochs; validate after each; keep the best params.

    Early stopping: with ``patience`` p, stop when the validation loss has not gone below its best for p
    epochs. ``info.best_params`` are the params of the epoch with the lowest monitored loss (validation
    loss when validating, else training loss), as in ``training.fit``.

    Args:
      state: ``train_step.init(params, key=...)``; the same on every process (same seed). Replicated here.
      x, labels: this process's rows (``(n_i, ...)`` uint8 images, ``(n_i,)`` integer labels).
      train_step: ``make_train_step(distributed.make_masked_classifier_loss(...), optimizer)``.
      mesh: ``parallel.make_mesh(...)`` or ``distributed.global_mesh()``.
      num_epochs: epochs (>= 1).
      batch_size: the global batch size, divisible by the mesh's device count.
      key: shuffling key (the same on every process).
      global_rows: the split's rows over all processes (default ``len(x) * process_count``).
      validation_data: this process's validation rows, or None.
      validation_rows: the validation split's rows over all processes.
      patience: epochs without a lower validation loss before stopping (None: never).
      eval_batch_size: global batch size of the evaluations.
      progress: show a tqdm bar (only process 0 ever does).

    Returns:
      ``(state, info)``: the replicated ``TrainState`` after the last epoch run (the last finite one if the
      loss turned non-finite) and a ``training.FitInfo`` whose ``history`` has "train_loss",
      "train_accuracy", "val_loss", "val_accuracy" (when validating) and "epoch_time".
    """
    _check_train_step(train_step)
    check_budget(num_epochs=num_epochs, batch_size=batch_size, eval_batch_size=eval_batch_size, patience=patience)
    check_batch_size(batch_size, mesh)
    num_classes = getattr(train_step.loss_fn, "num_classes", None)
    check_dataset(x, labels, num_classes=num_classes, name="x")
    if validation_data is not None:
        check_dataset(*validation_data, num_classes=num_classes, name="validation x")
    global_rows = len(x) * jax.process_count() if global_rows is None else int(global_rows)
    state = parallel.replicate(state, mesh)
    start_step = int(distributed._host(state.step))
    best_params, best_loss, best_epoch, since_best = state.params, math.inf, 0, 0
    history: dict[str, list] = {}
    stop_reason, train_seconds, rows_trained = "epochs", 0.0, 0
    bar = None
    epochs = range(1, num_epochs + 1)
    if progress and jax.process_index() == 0:
        from tqdm import tqdm

        bar = tqdm(epochs, desc="fit", unit="epoch", total=num_epochs, bar_format=BAR_FORMAT)
        epochs = bar
    try:
        for epoch in epochs:
            start = time.perf_counter()
            # The step compiled by data_parallel does not donate: the previous state stays valid, and is what
            # a non-finite epoch falls back to.
            new_state, metrics = distributed.train_epoch(
                state, x, labels, train_step=train_step, mesh=mesh, batch_size=batch_size,
                global_rows=global_rows, key=jax.random.fold_in(key, epoch))
            seconds = time.perf_counter() - start
            if not math.isfinite(metrics["loss"]):
                stop_reason = (f"non-finite loss in epoch {epoch}; stopped, returning the params after epoch "
                               f"{epoch - 1} (the last finite ones)")
                break
            state = new_state
            train_seconds += seconds
            rows_trained += metrics["count"]
            record = {"train_loss": metrics["loss"], "train_accuracy": metrics["accuracy"]}
            if validation_data is not None:
                val = distributed.evaluate(state.params, *validation_data, loss_fn=train_step.loss_fn, mesh=mesh,
                                           batch_size=eval_batch_size, global_rows=validation_rows)
                record.update({"val_loss": val["loss"], "val_accuracy": val["accuracy"]})
            record["epoch_time"] = time.perf_counter() - start
            for name, value in record.items():
                history.setdefault(name, []).append(float(value))
            if bar is not None:
                bar.set_postfix_str(progress_postfix(record), refresh=False)
            monitored = record["val_loss" if validation_data is not None else "train_loss"]
            if monitored < best_loss:
                best_params, best_loss, best_epoch, since_best = state.params, monitored, epoch, 0
            else:
                since_best += 1
            if patience is not None and since_best >= patience:
                stop_reason = "patience"
                break
    finally:
        if bar is not None:
            bar.close()
    if stop_reason.startswith("non-finite"):
        import warnings

        warnings.warn(f"fit: {stop_reason}", RuntimeWarning, stacklevel=2)
    arrays = {name: np.asarray(values) for name, values in history.items()}
    epochs_run = len(arrays.get("train_loss", ()))
    loss_history = np.full((num_epochs,), np.nan)
    loss_history[:epochs_run] = arrays.get("train_loss", np.zeros(0))
    info = FitInfo(
        converged=stop_reason == "patience",
        num_steps=int(distributed._host(state.step)) - start_step,
        num_epochs=epochs_run,
        loss_history=loss_history,
        history=arrays,
        best_params=best_params,
        best_epoch=best_epoch,
        stop_reason=stop_reason,
        samples_per_second=rows_trained / train_seconds if train_seconds > 0 else math.nan,
    )
    return state, info
