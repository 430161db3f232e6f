"""``fit``: the host loop over epochs, with progress bar, validation, early stopping and best params."""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as V
from jaxmath import checkpoint
from jaxmath.training import resume as resume_lib
from jaxmath.training.epoch import (
    REASON_LEARNING_RATE,
    REASON_LOSS,
    _check_train_step,
    _evaluate,
    _fit_epoch,
    check_dataset,
)
from jaxmath.training.state import TrainState
from jaxmath.training.step import TrainStep, check_not_donated


class FitInfo(NamedTuple):
    """What ``fit`` reports beside the final state.

    Fields:
      converged: True when an early-stopping criterion (``patience`` or ``tolerance``) ended training.
      num_steps: optimizer steps kept (``state.step`` minus its value at the start; a resumed run counts from
        the original start; rejected and rolled-back steps are not counted).
      num_epochs: epochs run (the last one possibly cut short by a non-finite loss).
      loss_history: ``(num_epochs_budget,)`` float64 NumPy array: the mean training loss of each epoch, NaN
        after the last epoch run.
      history: dict of ``(epochs_run,)`` NumPy arrays: "train_loss", "train_<metric>" (means over the epoch's
        steps), "val_loss", "val_<metric>" (when validating), "epoch_time" (seconds).
      best_params: the params of the epoch with the lowest monitored loss (validation loss when there is
        validation data, else training loss).
      best_epoch: 1-based epoch of ``best_params`` (0: none finished, ``best_params`` are the initial ones).
      stop_reason: "epochs", "patience", "tolerance" or a message about a non-finite loss.
      samples_per_second: ``num_steps * batch_size`` over the seconds spent in training epochs (validation not
        counted).
    """

    converged: bool
    num_steps: int
    num_epochs: int
    loss_history: np.ndarray
    history: dict
    best_params: Any
    best_epoch: int
    stop_reason: str
    samples_per_second: float


# Short names for the progress bar, so that the validation metrics stay visible in 80 columns.
POSTFIX_NAMES = {"train_loss": "loss", "train_accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
BAR_FORMAT = "{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}{postfix}"  # tqdm puts ", " before the postfix


def progress_postfix(record: dict) -> str:
    """The progress bar's metrics: ``loss=0.0123 acc=0.988 val_loss=1.2e-5 val_acc=0.971`` (3 significant digits).

    Args:
      record: one epoch's means, keyed as in ``FitInfo.history`` ("train_loss", "val_accuracy", ...).
    """
    parts = []
    for key, short in POSTFIX_NAMES.items():
        if key in record:
            value = float(np.nanmean(record[key]))
            text = f"{value:.3g}".replace("e-0", "e-").replace("e+0", "e+") if "loss" in key else f"{value:.3f}"
            parts.append(f"{short}={text}")
    return " ".join(parts)


def _nonfinite_message(reason: int, epoch: int, bad: int, num_batches: int, state: TrainState,
                       epoch_start: int) -> str:
    """fit's stop reason for a rejected step (``state`` is the state returned, ``epoch_start`` the step count
    when the epoch began)."""
    where = f"at epoch {epoch}, step {bad + 1} of {num_batches} (global step {epoch_start + bad + 1})"
    if reason == REASON_LEARNING_RATE:
        from jaxmath.optim.base import learning_rates_in

        # The state records rates in float32: print them to float32's precision (-0.1, not -0.10000000149).
        rates = [f"{float(np.asarray(r).ravel()[0]):.7g}" for r in learning_rates_in(state.opt_state)]
        shown = rates[0] if len(rates) == 1 else "[" + ", ".join(rates) + "]"
        return (f"learning rate {shown} (negative or not finite) {where}; "
                "stopped before applying it, returning the params before that step")
    if reason == REASON_LOSS:
        return (f"non-finite loss {where}; stopped, returning the last params whose loss was finite "
                "(the params that produced it are dropped)")
    return f"non-finite params after the step {where}; stopped, returning the last finite params"


def check_budget(*, num_epochs, batch_size, eval_batch_size, patience=None) -> None:
    """The loop arguments every trainer shares (fit, fit_ensemble, the mesh trainer): integers ≥ 1."""
    V.check_integer(num_epochs, name="num_epochs", minimum=1)
    V.check_integer(batch_size, name="batch_size", minimum=1)
    V.check_integer(eval_batch_size, name="eval_batch_size", minimum=1)
    if patience is not None:
        V.check_integer(patience, name="patience", minimum=1)


def _split(x, labels, validation_split):
    n = np.shape(x)[0]
    n_val = int(round(n * validation_split))
    if n_val < 1 or n_val >= n:
        raise ValueError(
            f"validation_split={validation_split!r} of {n} examples leaves {n - n_val} to train on and "
            f"{n_val} to validate: both must be >= 1"
        )
    return (x[: n - n_val], labels[: n - n_val]), (x[n - n_val :], labels[n - n_val :])


def _prepare_data(x, labels, *, loss_fn, validation_data, validation_split):
    """Check the training (and validation) data on the host, split off the validation part, put both on the
    device once. Shared by ``fit`` and ``fit_ensemble``.

    Returns:
      ``(x, labels, validation_data or None)``, all device arrays.
    """
    V.check_in_range(validation_split, name="validation_split", low=0.0, high=1.0)
    if validation_data is not None and validation_split:
        raise ValueError("give validation_data or validation_split, not both")
    num_classes = getattr(loss_fn, "num_classes", None)
    # On the device first, in the data's own dtype (the step scales uint8 pixels itself): the value checks
    # then reduce there and bring back one bool, and the epochs never copy the data again.
    x, labels = jax.device_put(x), jax.device_put(labels)
    check_dataset(x, labels, num_classes=num_classes, name="x")
    if validation_split:
        (x, labels), validation_data = _split(x, labels, validation_split)
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (x, labels)")
        validation_data = tuple(jax.device_put(a) for a in validation_data)
        check_dataset(*validation_data, num_classes=num_classes, name="validation x")
        if tuple(np.shape(validation_data[0])[1:]) != tuple(np.shape(x)[1:]):
            raise ValueError(
                f"validation x must have the training x's shape per example {np.shape(x)[1:]}, "
                f"got {np.shape(validation_data[0])[1:]}"
            )
    return x, labels, validation_data


def fit(
    state: TrainState,
    x: Any,
    labels: Any,
    *,
    train_step: TrainStep,
    num_epochs: int,
    batch_size: int,
    validation_data: tuple[Any, Any] | None = None,
    validation_split: float = 0.0,
    patience: int | None = None,
    min_delta: float = 0.0,
    tolerance: float | None = None,
    eval_batch_size: int = 1000,
    progress: bool = True,
    donate: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
) -> tuple[TrainState, FitInfo]:
    """Train for up to ``num_epochs`` epochs of ``run_epoch``, validating after each, and keep the best params.

    Early stopping (on the monitored loss L_t: validation loss when validating, else training loss):
      - patience: stop when L_t has not improved on the best by more than ``min_delta`` for ``patience`` epochs;
      - the notes' criterion: stop when L_{t-1} - L_t < ε, ε ↔ ``tolerance`` (from the second epoch on).

    Checked on the host before any training: ``state.opt_state`` was made by ``train_step.optimizer``, the
    state was not consumed by a donating call, same lengths, integer labels in [0, num_classes) when
    ``train_step.loss_fn`` has ``num_classes``, finite float inputs. The data go to the device once, in
    their own dtype (keep MNIST uint8). A non-finite loss stops training with a warning naming the epoch and
    step; the returned state is the last one whose loss evaluated finite (the good steps of that epoch are
    kept, the params that produced the non-finite loss are not). A step whose learning rate (from a schedule,
    read from the optimizer state) is negative or NaN is never applied: training stops and says so.

    Args:
      state: initial ``TrainState`` from ``train_step.init(params, key=key)``; not consumed (fit copies it).
      x: ``(n, ...)`` training inputs (uint8 images or floats).
      labels: ``(n,)`` integer labels.
      train_step: ``make_train_step(loss_fn, optimizer)``: the optimizer is the step's, the validation metrics
        are ``train_step.loss_fn``'s.
      num_epochs: maximum number of epochs (>= 1).
      batch_size: examples per step.
      validation_data: ``(x, labels)`` to validate on after each epoch.
      validation_split: instead, hold out this fraction of the data (the *last* examples, as Keras does).
      patience: epochs without improvement before stopping (None: never).
      min_delta: how much the monitored loss must drop to count as an improvement.
      tolerance: ε of the notes' criterion L_{t-1} - L_t < ε (None: off).
      eval_batch_size: batch size of ``evaluate``.
      progress: show a tqdm progress bar (80 columns: loss, acc, val_loss, val_acc).
      donate: donate state buffers between epochs (no copies on the device); off with ``checkpoint_dir``.
      checkpoint_dir: save a ``jaxmath.checkpoint`` step per epoch here (numbered by the epoch, newest 3 kept):
        the ``TrainState``, the last state whose loss was finite, and fit's bookkeeping (history, best params,
        early-stopping counters). On KeyboardInterrupt the last completed epoch is saved (a note on the
        re-raised exception says where).
      checkpoint_every: save every that many epochs (the last epoch and an early stop are always saved).
      resume: continue from the newest complete checkpoint in ``checkpoint_dir`` (``state`` then only gives
        the expected structure, checked against the saved one; without a checkpoint training starts from
        ``state``). The resumed run ends bit for bit where an uninterrupted one would (params, optimizer
        state, step, key, history except "epoch_time"); a run that had stopped early returns at once.

    Returns:
      ``(state, info)``: the ``TrainState`` after the last epoch run (the last finite one if training
      diverged) and a ``FitInfo``.
    """
    _check_train_step(train_step)
    check_budget(num_epochs=num_epochs, batch_size=batch_size, eval_batch_size=eval_batch_size, patience=patience)
    V.check_positive(min_delta, name="min_delta", allow_zero=True)
    if tolerance is not None:
        V.check_positive(tolerance, name="tolerance", allow_zero=True)
    resume_lib.check_args(checkpoint_dir, checkpoint_every, resume)
    check_not_donated(state)
    train_step.check_state(state)
    loss_fn = train_step.loss_fn
    x, labels, validation_data = _prepare_data(
        x, labels, loss_fn=loss_fn, validation_data=validation_data, validation_split=validation_split,
    )
    n = np.shape(x)[0]
    if batch_size > n:
        raise ValueError(f"batch_size must be <= the number of training examples {n}, got batch_size={batch_size}")
    # With checkpoints the epochs do not donate: the last completed state must survive a Ctrl-C that lands
    # while the next epoch runs, so that it can be saved.
    donate = donate and checkpoint_dir is None
    loaded = resume_lib.load(checkpoint_dir, state, kind="fit", state_key="state") if resume else None
    stop_reason = "epochs"
    if loaded is None:
        # Copies: the caller's state survives donation, and best_params never alias donated buffers.
        state = jax.tree_util.tree_map(jnp.copy, state)
        previous_start = None
        best_params = jax.tree_util.tree_map(jnp.copy, state.params)
        best_loss, best_epoch, since_best, previous = math.inf, 0, 0, None
        history: dict[str, list] = {}
        first_epoch, start_step, train_seconds = 1, int(state.step), 0.0
    else:
        tree, metadata = loaded
        state, previous_start, book = tree["state"], tree["epoch_start"], tree["fit"]
        best_params, best_loss, best_epoch = book["best_params"], book["best_loss"], book["best_epoch"]
        since_best, previous, history = book["since_best"], book["previous"], resume_lib.history_lists(book["history"])
        first_epoch, start_step, train_seconds = book["epoch"] + 1, book["start_step"], book["train_seconds"]
        if metadata.get("stop_reason"):  # that run had already stopped early: nothing left to do
            stop_reason, first_epoch = metadata["stop_reason"], num_epochs + 1
    num_batches = n // batch_size
    completed_epoch, saved_epoch, snapshot = None, None, None

    def save(epoch, snapshot, reason):
        checkpoint.save(checkpoint_dir, snapshot, step=epoch, metadata={
            "kind": "fit", "epoch": epoch, "num_epochs": num_epochs, "batch_size": batch_size,
            "stop_reason": None if reason == "epochs" else reason})
        return epoch

    bar = None
    epoch_iter = range(first_epoch, num_epochs + 1)
    if progress:
        from tqdm import tqdm

        bar = tqdm(epoch_iter, desc="fit", unit="epoch", total=num_epochs, initial=min(first_epoch, num_epochs + 1) - 1,
                   bar_format=BAR_FORMAT)
        epoch_iter = bar
    try:
        for epoch in epoch_iter:
            start = time.perf_counter()
            best_before, epoch_start = best_epoch, int(state.step)
            # A copy of the epoch's start (the epoch may donate the state): replaying from it recovers the
            # state before any step, should that step's params evaluate non-finite one step later.
            start_state = jax.tree_util.tree_map(jnp.copy, state)
            epoch_kw = dict(train_step=train_step, batch_size=batch_size, donate=donate)
            state, metrics = _fit_epoch(state, x, labels, **epoch_kw)
            metrics = jax.device_get(metrics)
            bad = int(metrics.pop("first_nonfinite_step"))
            reason = int(metrics.pop("nonfinite_reason"))
            if bad >= 0 and reason == REASON_LOSS:
                # The params of the last accepted step evaluate non-finite: drop them too, by replaying up
                # to the step before (the previous epoch's last one when this epoch's first step failed).
                if bad > 0:
                    replay_from = jax.tree_util.tree_map(jnp.copy, start_state)  # start_state is kept
                    state, _ = _fit_epoch(replay_from, x, labels, stop_at=bad - 1, **epoch_kw)
                elif previous_start is not None:
                    state, _ = _fit_epoch(previous_start, x, labels, stop_at=num_batches - 1, **epoch_kw)
            train_seconds += time.perf_counter() - start
            previous_start = start_state
            good = slice(None) if bad < 0 else slice(0, bad)
            record = {}
            for k, v in metrics.items():
                vals = np.asarray(v)[good]
                record[f"train_{k}"] = float(np.mean(vals)) if vals.size else math.nan
            if validation_data is not None:
                val = jax.device_get(_evaluate(loss_fn, min(eval_batch_size, len(validation_data[1])),
                                               state.params, *validation_data))
                record.update({f"val_{k}": float(v) for k, v in val.items()})
            record["epoch_time"] = time.perf_counter() - start
            for k, v in record.items():
                history.setdefault(k, []).append(v)

            monitored = record["val_loss" if validation_data is not None else "train_loss"]
            if bar is not None:
                bar.set_postfix_str(progress_postfix(record), refresh=False)

            stop = None
            if bad >= 0:
                stop = _nonfinite_message(reason, epoch, bad, num_batches, state, epoch_start)
                warnings.warn(f"fit: {stop}", RuntimeWarning, stacklevel=2)
                if bad == 0 and reason == REASON_LOSS and best_before == epoch - 1:
                    # The previous epoch's final params evaluated non-finite: they cannot stay the best.
                    best_params = jax.tree_util.tree_map(jnp.copy, state.params)
                if math.isfinite(monitored) and monitored < best_loss - min_delta:
                    best_params, best_epoch = jax.tree_util.tree_map(jnp.copy, state.params), epoch
            else:
                if monitored < best_loss - min_delta:
                    best_loss, best_epoch, since_best = monitored, epoch, 0
                    best_params = jax.tree_util.tree_map(jnp.copy, state.params)
                else:
                    since_best += 1
                if patience is not None and since_best >= patience:
                    stop = "patience"
                elif tolerance is not None and previous is not None and previous - monitored < tolerance:
                    stop = "tolerance"
                previous = monitored
            if checkpoint_dir is not None:
                snapshot = {"state": state, "epoch_start": previous_start, "fit": {
                    "epoch": epoch, "history": resume_lib.history_arrays(history), "best_params": best_params,
                    "best_loss": best_loss, "best_epoch": best_epoch, "since_best": since_best,
                    "previous": previous, "start_step": start_step, "train_seconds": train_seconds}}
                completed_epoch = epoch
                if stop is not None or epoch % checkpoint_every == 0 or epoch == num_epochs:
                    saved_epoch = save(epoch, snapshot, stop or "epochs")
            if stop is not None:
                stop_reason = stop
                break
    except KeyboardInterrupt as interrupt:
        if checkpoint_dir is not None:
            if completed_epoch is not None and completed_epoch != saved_epoch:
                saved_epoch = save(completed_epoch, snapshot, "epochs")
            latest = saved_epoch if saved_epoch is not None else checkpoint.latest_step(checkpoint_dir)
            interrupt.add_note(resume_lib.interrupted_note(checkpoint_dir, latest))
        raise
    finally:
        if bar is not None:
            bar.close()

    num_steps = int(state.step) - start_step
    history_arrays = {k: np.asarray(v) for k, v in history.items()}
    epochs_run = len(history_arrays.get("train_loss", ()))
    loss_history = np.full((max(num_epochs, epochs_run),), np.nan)  # a resumed run may have run more
    loss_history[:epochs_run] = history_arrays.get("train_loss", np.zeros(0))
    info = FitInfo(
        converged=stop_reason in ("patience", "tolerance"),
        num_steps=num_steps,
        num_epochs=epochs_run,
        loss_history=loss_history,
        history=history_arrays,
        best_params=best_params,
        best_epoch=best_epoch,
        stop_reason=stop_reason,
        samples_per_second=num_steps * batch_size / train_seconds if train_seconds > 0 else math.nan,
    )
    return state, info
