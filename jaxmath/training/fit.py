"""``fit``: the host loop over epochs, with progress bar, validation, early stopping and best params."""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as V
from jaxmath.training.epoch import check_dataset, evaluate, run_epoch
from jaxmath.training.state import TrainState
from jaxmath.training.step import make_train_step


@functools.lru_cache(maxsize=32)
def _cached_step(loss_fn, optimizer):
    # The same (loss_fn, optimizer) gives the same step function, so a second fit reuses the compiled epoch.
    return make_train_step(loss_fn, optimizer, jit=False)


class FitResult(NamedTuple):
    """What ``fit`` returns.

    Fields:
      state: the ``TrainState`` after the last epoch run (the last finite one if training diverged).
      best_params: the params of the epoch with the lowest monitored loss (validation loss when there is
        validation data, else training loss).
      history: dict of ``(epochs_run,)`` NumPy arrays: "train_loss", "train_<metric>" (means over the
        epoch's steps), "val_loss", "val_<metric>" (when validating), "epoch_time" (seconds).
      best_epoch: 1-based epoch of ``best_params`` (0: none finished, ``best_params`` are the initial ones).
      stop_reason: "epochs", "patience", "tolerance" or a message about a non-finite loss.
    """

    state: TrainState
    best_params: Any
    history: dict
    best_epoch: int
    stop_reason: str


def _split(images, labels, validation_split):
    n = np.shape(images)[0]
    n_val = int(round(n * validation_split))
    if n_val < 1 or n_val >= n:
        raise ValueError(
            f"validation_split={validation_split!r} of {n} examples leaves {n - n_val} to train on and "
            f"{n_val} to validate: both must be >= 1"
        )
    return (images[: n - n_val], labels[: n - n_val]), (images[n - n_val :], labels[n - n_val :])


def _prepare_data(images, labels, *, loss_fn, num_classes, validation_data, validation_split):
    """Check the training (and validation) data on the host, split off the validation part, put both on the
    device once. Shared by ``fit`` and ``fit_ensemble``.

    Returns:
      ``(images, labels, validation_data or None)``, all device arrays.
    """
    V.check_in_range(validation_split, name="validation_split", low=0.0, high=1.0)
    if validation_data is not None and validation_split:
        raise ValueError("give validation_data or validation_split, not both")
    if num_classes is None:
        num_classes = getattr(loss_fn, "num_classes", None)

    check_dataset(images, labels, num_classes=num_classes, name="images")
    if validation_split:
        (images, labels), validation_data = _split(images, labels, validation_split)
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (images, labels)")
        check_dataset(*validation_data, num_classes=num_classes, name="validation images")
        if tuple(np.shape(validation_data[0])[1:]) != tuple(np.shape(images)[1:]):
            raise ValueError(
                f"validation images must have the training images' shape per example {np.shape(images)[1:]}, "
                f"got {np.shape(validation_data[0])[1:]}"
            )
        # Once on the device, in the data's own dtype; the step scales uint8 pixels itself.
        validation_data = tuple(jax.device_put(a) for a in validation_data)
    return jax.device_put(images), jax.device_put(labels), validation_data


def fit(
    state: TrainState,
    images: Any,
    labels: Any,
    *,
    loss_fn: Callable,
    optimizer: Any,
    epochs: int,
    batch_size: int,
    num_classes: int | None = None,
    validation_data: tuple[Any, Any] | None = None,
    validation_split: float = 0.0,
    patience: int | None = None,
    min_delta: float = 0.0,
    tolerance: float | None = None,
    eval_batch_size: int = 1000,
    progress: bool = True,
    donate: bool = True,
) -> FitResult:
    """Train for up to ``epochs`` epochs of ``run_epoch``, validating after each, and keep the best params.

    Early stopping (on the monitored loss L_t: validation loss when validating, else training loss):
      - patience: stop when L_t has not improved on the best by more than ``min_delta`` for ``patience`` epochs;
      - the notes' criterion: stop when L_{t-1} - L_t < ε, ε ↔ ``tolerance`` (from the second epoch on).

    The data are checked on the host before any training (same length, integer labels in
    [0, num_classes), finite pixels) and put on the device once, in their own dtype (keep MNIST uint8).
    A non-finite loss stops training with a warning naming the epoch and step; the returned state is the
    last finite one (the good steps of that epoch are kept).

    Args:
      state: initial ``TrainState`` (from ``TrainState.create(params, optimizer, key=key)``); not consumed.
      images: ``(n, ...)`` training images (uint8 or float).
      labels: ``(n,)`` integer labels.
      loss_fn: ``loss_fn(params, (images, labels)) -> loss | (loss, metrics)``, e.g. ``make_classifier_loss``.
      optimizer: the ``jaxmath.optim.Optimizer`` that made ``state.opt_state``.
      epochs: maximum number of epochs (>= 1).
      batch_size: examples per step.
      num_classes: labels must lie in [0, num_classes); defaults to ``loss_fn.num_classes`` when it has one.
      validation_data: ``(images, labels)`` to validate on after each epoch.
      validation_split: instead, hold out this fraction of the data (the *last* examples, as Keras does).
      patience: epochs without improvement before stopping (None: never).
      min_delta: how much the monitored loss must drop to count as an improvement.
      tolerance: ε of the notes' criterion L_{t-1} - L_t < ε (None: off).
      eval_batch_size: batch size of ``evaluate``.
      progress: show a tqdm progress bar with loss and accuracy.
      donate: donate state buffers between epochs (no copies on the device).

    Returns:
      ``FitResult(state, best_params, history, best_epoch, stop_reason)``.
    """
    V.check_integer(epochs, name="epochs", minimum=1)
    V.check_integer(batch_size, name="batch_size", minimum=1)
    V.check_integer(eval_batch_size, name="eval_batch_size", minimum=1)
    if patience is not None:
        V.check_integer(patience, name="patience", minimum=1)
    V.check_positive(min_delta, name="min_delta", allow_zero=True)
    if tolerance is not None:
        V.check_positive(tolerance, name="tolerance", allow_zero=True)
    images, labels, validation_data = _prepare_data(
        images, labels, loss_fn=loss_fn, num_classes=num_classes,
        validation_data=validation_data, validation_split=validation_split,
    )
    n = np.shape(images)[0]
    if batch_size > n:
        raise ValueError(f"batch_size must be <= the number of training examples {n}, got batch_size={batch_size}")
    try:
        train_step = _cached_step(loss_fn, optimizer)
    except TypeError:  # unhashable optimizer
        train_step = make_train_step(loss_fn, optimizer, jit=False)
    # Copies: the caller's state survives donation, and best_params never alias donated buffers.
    state = jax.tree_util.tree_map(jnp.copy, state)
    best_params = jax.tree_util.tree_map(jnp.copy, state.params)
    best_loss, best_epoch, since_best, previous = math.inf, 0, 0, None
    history: dict[str, list] = {}
    stop_reason = "epochs"
    num_batches = n // batch_size

    bar = None
    epoch_iter = range(1, epochs + 1)
    if progress:
        from tqdm import tqdm

        bar = tqdm(epoch_iter, desc="fit", unit="epoch", total=epochs)
        epoch_iter = bar
    try:
        for epoch in epoch_iter:
            start = time.perf_counter()
            state, metrics = run_epoch(
                state, images, labels, train_step=train_step, batch_size=batch_size, donate=donate
            )
            metrics = jax.device_get(metrics)
            bad = int(metrics.pop("first_nonfinite_step"))
            good = slice(None) if bad < 0 else slice(0, bad)
            record = {}
            for k, v in metrics.items():
                vals = np.asarray(v)[good]
                record[f"train_{k}"] = float(np.mean(vals)) if vals.size else math.nan
            if validation_data is not None:
                val = jax.device_get(
                    evaluate(state.params, *validation_data, loss_fn=loss_fn, batch_size=eval_batch_size)
                )
                record.update({f"val_{k}": float(v) for k, v in val.items()})
            record["epoch_time"] = time.perf_counter() - start
            for k, v in record.items():
                history.setdefault(k, []).append(v)

            monitored = record["val_loss" if validation_data is not None else "train_loss"]
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "epoch_time"})

            if bad >= 0:
                stop_reason = (
                    f"non-finite loss at epoch {epoch}, step {bad + 1} of {num_batches} "
                    f"(global step {int(state.step) + 1}); stopped, returning the last finite params"
                )
                warnings.warn(f"fit: {stop_reason}", RuntimeWarning, stacklevel=2)
                if math.isfinite(monitored) and monitored < best_loss - min_delta:
                    best_params, best_epoch = jax.tree_util.tree_map(jnp.copy, state.params), epoch
                break
            if monitored < best_loss - min_delta:
                best_loss, best_epoch, since_best = monitored, epoch, 0
                best_params = jax.tree_util.tree_map(jnp.copy, state.params)
            else:
                since_best += 1
            if patience is not None and since_best >= patience:
                stop_reason = "patience"
                break
            if tolerance is not None and previous is not None and previous - monitored < tolerance:
                stop_reason = "tolerance"
                break
            previous = monitored
    finally:
        if bar is not None:
            bar.close()

    history_arrays = {k: np.asarray(v) for k, v in history.items()}
    return FitResult(state, best_params, history_arrays, best_epoch, stop_reason)
