"""K models at once: ``vmap`` of the compiled epoch over seeds (and learning rates), and ``fit_ensemble``."""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as V
from jaxmath import checkpoint
from jaxmath.training import resume as resume_lib
from jaxmath.training.epoch import (
    _check_epoch_args,
    _check_label_values,
    _check_train_step,
    _epoch_scan,
    _evaluate_core,
    REASON_LEARNING_RATE,
    REASON_LOSS,
    REASON_PARAMS,
)
from jaxmath.training.fit import BAR_FORMAT, FitInfo, _prepare_data, check_budget, progress_postfix
from jaxmath.training.state import TrainState
from jaxmath.training.step import DONATED_MESSAGE, TrainStep, _pure_step, check_not_donated, is_donated


def init_ensemble(keys: jax.Array, *, init_fn: Callable, train_step: TrainStep) -> TrainState:
    """K training states stacked on a leading axis, one per PRNG key, for ``train_step``'s optimizer.

    Each key k is split into (k_init, k_shuffle): params_k = ``init_fn(k_init)``, shuffling from k_shuffle,
    opt_state_k = ``train_step.optimizer.init(params_k)``.

    Args:
      keys: K keys from ``jax.random.split(key, K)``: ``(K,)`` typed keys or ``(K, 2)`` uint32 raw keys.
      init_fn: ``key -> params``, e.g. ``model.init`` of ``mlp.make((784, 16, 16, 10))``.
      train_step: the ``make_train_step(...)`` the ensemble will train with.

    Returns:
      ``TrainState`` whose leaves all have a leading axis of size K.
    """
    _check_train_step(train_step)
    V.check_key(keys, name="keys")
    typed = jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
    V.check_ndim(keys, 1 if typed else 2, name="keys")

    def one(key):
        k_init, k_shuffle = jax.random.split(key)
        return TrainState.create(init_fn(k_init), train_step.optimizer, key=k_shuffle)

    return jax.jit(jax.vmap(one))(keys)


def _ensemble_scan(train_step, batch_size, states, x, labels, learning_rates, stop_at):
    """``_epoch_scan`` for every member (``stop_at``: ``(K,)`` int32): ``(states, metrics)`` with a K axis."""
    def member(state, lr, stop):
        if lr is None:
            step = train_step.pure
        else:
            step = _pure_step(train_step.loss_fn, train_step.optimizer_fn(learning_rate=lr))
        return _epoch_scan(step, batch_size, state, x, labels, stop)

    if learning_rates is None:
        return jax.vmap(lambda s, stop: member(s, None, stop))(states, stop_at)
    return jax.vmap(member)(states, learning_rates, stop_at)


def _ensemble_epoch(train_step, batch_size, states, x, labels, learning_rates):
    stop_at = jnp.full(states.step.shape, x.shape[0], jnp.int32)
    states, metrics = _ensemble_scan(train_step, batch_size, states, x, labels, learning_rates, stop_at)
    metrics.pop("nonfinite_reason")
    return states, metrics


def _pick(mask, new, old):
    """Per member: ``new`` where ``mask`` (K,) is True, else ``old`` (leaves with a leading K axis)."""
    mask = jnp.asarray(mask)
    return jax.tree_util.tree_map(lambda a, b: jnp.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)


_ensemble_epoch_jit = jax.jit(_ensemble_epoch, static_argnums=(0, 1), donate_argnums=(2,))
_ensemble_fit_epoch_jit = jax.jit(_ensemble_scan, static_argnums=(0, 1), donate_argnums=(2,))
_ensemble_fit_epoch_copying = jax.jit(_ensemble_scan, static_argnums=(0, 1))


def _check_ensemble(states, train_step, learning_rates):
    _check_train_step(train_step)
    check_not_donated(states, name="states")
    k = jnp.shape(states.step) if isinstance(states, TrainState) else ()
    if len(k) != 1:
        raise ValueError(f"states must be stacked along a leading axis (init_ensemble), got states.step.shape={k}")
    train_step.check_state(states, stacked=True)
    if learning_rates is not None:
        if jnp.shape(learning_rates) != k:
            raise ValueError(
                f"learning_rates must have shape {k} (one per model), "
                f"got learning_rates.shape={jnp.shape(learning_rates)}"
            )
        if train_step.optimizer_fn is None:
            raise TypeError(
                "learning_rates needs a train step made from an optimizer factory, e.g. "
                "make_train_step(loss_fn, optim.sgd, learning_rate=0.1)"
            )
        V.check_finite(learning_rates, name="learning_rates")


def _run_ensemble_epoch(states, x, labels, *, train_step, batch_size, learning_rates):
    try:
        return _ensemble_epoch_jit(train_step, batch_size, states, x, labels, learning_rates)
    except (RuntimeError, ValueError) as err:
        if is_donated(states):
            raise ValueError(DONATED_MESSAGE) from err
        raise


def run_ensemble_epoch(
    states: TrainState,
    x: jax.Array,
    labels: jax.Array,
    *,
    train_step: TrainStep,
    batch_size: int,
    learning_rates: jax.Array | None = None,
) -> tuple[TrainState, dict]:
    """One epoch of ``run_epoch`` for K models at once (``vmap`` of the scanned epoch, one compile).

    Every model shuffles the shared data with its own key. With ``learning_rates`` model k trains with
    ``train_step.optimizer_fn(learning_rate=learning_rates[k])``, so the step must come from an optimizer
    factory: ``make_train_step(loss_fn, optim.sgd, learning_rate=...)`` (any ``lambda learning_rate: ...``
    returning an ``Optimizer`` works, e.g. ``lambda learning_rate: optim.sgd(learning_rate=learning_rate,
    momentum=0.9)``). The states' optimizer state must not depend on the learning rate (true of every
    ``jaxmath.optim`` optimizer).

    Args:
      states: stacked ``TrainState`` from ``init_ensemble`` (consumed: use the returned one).
      x: ``(n, ...)`` shared training inputs (uint8 on the device).
      labels: ``(n,)`` integer labels, checked against ``train_step.loss_fn.num_classes`` when it has one.
      train_step: ``make_train_step(...)``, the same for all K members.
      batch_size: examples per step.
      learning_rates: ``(K,)`` float array, or None (every member uses ``train_step.optimizer``).

    Returns:
      ``(states, metrics)``: metrics as in ``run_epoch`` with a leading K axis ("loss": ``(K, num_batches)``,
      "first_nonfinite_step": ``(K,)``).
    """
    _check_epoch_args(x, labels, batch_size)
    _check_ensemble(states, train_step, learning_rates)
    V.check_ndim(labels, 1, name="labels")
    _check_label_values(labels, getattr(train_step.loss_fn, "num_classes", None))
    return _run_ensemble_epoch(states, x, labels, train_step=train_step, batch_size=batch_size,
                               learning_rates=learning_rates)


_evaluate_ensemble = jax.jit(
    lambda loss_fn, batch_size, params, x, labels: jax.vmap(
        lambda p: _evaluate_core(loss_fn, batch_size, p, x, labels)
    )(params),
    static_argnums=(0, 1),
)


def evaluate_ensemble(
    params: Any, x: jax.Array, labels: jax.Array, *, loss_fn: Callable, batch_size: int = 1000
) -> dict:
    """``evaluate`` for K stacked params at once.

    Args:
      params: params with a leading K axis on every leaf (``states.params``).
      x, labels, loss_fn, batch_size: as for ``evaluate`` (labels checked the same way).

    Returns:
      dict of ``(K,)`` arrays: "loss" and every metric of ``loss_fn``.
    """
    V.check_same_length(x, labels, names=("x", "labels"))
    V.check_integer(batch_size, name="batch_size", minimum=1)
    _check_label_values(labels, getattr(loss_fn, "num_classes", None))
    return _evaluate_ensemble(loss_fn, batch_size, params, x, labels)


def fit_ensemble(
    states: TrainState,
    x: Any,
    labels: Any,
    *,
    train_step: TrainStep,
    num_epochs: int,
    batch_size: int,
    learning_rates: jax.Array | None = None,
    validation_data: tuple[Any, Any] | None = None,
    validation_split: float = 0.0,
    eval_batch_size: int = 1000,
    progress: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
) -> tuple[TrainState, FitInfo]:
    """``fit`` for K models at once: one compiled, vmapped epoch per host iteration, best params per model.

    Every model keeps its own best params (lowest validation loss, else training loss). A model whose loss
    turns non-finite keeps its last finite state (its rejected steps change nothing) and is named in
    ``stop_reason`` with the epoch and step; the others train on. No early stopping: all K run ``num_epochs``.

    Args:
      states: stacked ``TrainState`` from ``init_ensemble`` (not consumed).
      x, labels: the shared training data, checked as in ``fit``.
      train_step, batch_size, learning_rates: as for ``run_ensemble_epoch``.
      num_epochs: number of epochs (>= 1).
      validation_data, validation_split, eval_batch_size, progress: as for ``fit``.
      checkpoint_dir, checkpoint_every, resume: as for ``fit`` (the checkpoint holds the stacked states);
        ``learning_rates`` are not saved: pass the same ones to resume.

    Returns:
      ``(states, info)``: the stacked final states and a ``FitInfo`` whose per-model fields carry a K axis:
      ``best_params`` stacked, ``history`` of ``(num_epochs, K)`` arrays ("train_loss", "train_<metric>",
      "val_loss", "val_<metric>") plus "epoch_time" ``(num_epochs,)``, ``loss_history`` ``(num_epochs, K)``,
      ``best_epoch`` and ``num_steps`` ``(K,)`` int arrays, ``converged`` False (no early stopping),
      ``stop_reason`` "epochs" or the non-finite report, ``samples_per_second`` summed over the K models.
    """
    check_budget(num_epochs=num_epochs, batch_size=batch_size, eval_batch_size=eval_batch_size)
    resume_lib.check_args(checkpoint_dir, checkpoint_every, resume)
    _check_ensemble(states, train_step, learning_rates)
    loss_fn = train_step.loss_fn
    x, labels, validation_data = _prepare_data(
        x, labels, loss_fn=loss_fn, validation_data=validation_data, validation_split=validation_split,
    )
    _check_epoch_args(x, labels, batch_size)
    num_batches = np.shape(x)[0] // batch_size
    k = states.step.shape[0]
    loaded = resume_lib.load(checkpoint_dir, states, kind="fit_ensemble", state_key="states") if resume else None
    if loaded is None:
        states = jax.tree_util.tree_map(jnp.copy, states)
        previous_start = None
        best_params = jax.tree_util.tree_map(jnp.copy, states.params)
        best_loss = np.full((k,), np.inf)
        best_epoch = np.zeros((k,), int)
        start_step = np.asarray(states.step).astype(int)
        train_seconds, first_epoch = 0.0, 1
        failures: dict[int, str] = {}
        history: dict[str, list] = {}
    else:
        tree, metadata = loaded
        states, previous_start, book = tree["states"], tree["epoch_start"], tree["fit"]
        best_params, best_loss, best_epoch = book["best_params"], book["best_loss"], book["best_epoch"]
        start_step, train_seconds, first_epoch = book["start_step"], book["train_seconds"], book["epoch"] + 1
        history = resume_lib.history_lists(book["history"])
        failures = {int(i): text for i, text in metadata.get("failures", {}).items()}
    # Without donation when checkpointing: the last completed states must survive a Ctrl-C.
    run = _ensemble_fit_epoch_jit if checkpoint_dir is None else _ensemble_fit_epoch_copying
    completed_epoch, saved_epoch, snapshot = None, None, None

    def save(epoch, snapshot):
        checkpoint.save(checkpoint_dir, snapshot, step=epoch, metadata={
            "kind": "fit_ensemble", "epoch": epoch, "num_epochs": num_epochs, "batch_size": batch_size,
            "failures": {str(i): text for i, text in failures.items()}})
        return epoch

    bar = None
    epoch_iter = range(first_epoch, num_epochs + 1)
    if progress:
        from tqdm import tqdm

        bar = tqdm(epoch_iter, desc=f"fit x{k}", unit="epoch", total=num_epochs, initial=first_epoch - 1,
                   bar_format=BAR_FORMAT)
        epoch_iter = bar
    try:
        for epoch in epoch_iter:
            start = time.perf_counter()
            start_states = jax.tree_util.tree_map(jnp.copy, states)  # replayed from after a divergence
            every_step = np.full((k,), np.shape(x)[0], np.int32)
            try:
                states, metrics = run(train_step, batch_size, states, x, labels, learning_rates, every_step)
            except (RuntimeError, ValueError) as err:
                if is_donated(states):
                    raise ValueError(DONATED_MESSAGE) from err
                raise
            metrics = jax.device_get(metrics)
            bad = np.asarray(metrics.pop("first_nonfinite_step"))
            reason = np.asarray(metrics.pop("nonfinite_reason"))
            # As in fit: a member whose last accepted params evaluated non-finite goes back one more step, by
            # replaying its epoch (or the previous one, when the first step failed) up to the step before.
            redo = (bad > 0) & (reason == REASON_LOSS)
            if redo.any():
                stops = np.where(redo, bad - 1, every_step).astype(np.int32)
                replayed, _ = run(train_step, batch_size, jax.tree_util.tree_map(jnp.copy, start_states), x, labels,
                                  learning_rates, stops)
                states = _pick(redo, replayed, states)
            redo = (bad == 0) & (reason == REASON_LOSS)
            if redo.any() and previous_start is not None:
                stops = np.where(redo, num_batches - 1, every_step).astype(np.int32)
                replayed, _ = run(train_step, batch_size, previous_start, x, labels, learning_rates, stops)
                states = _pick(redo, replayed, states)
            train_seconds += time.perf_counter() - start
            previous_start = start_states
            record = {}
            for name, per_step in metrics.items():
                per_step = np.asarray(per_step, np.float64)
                steps = np.arange(per_step.shape[1])
                good = (bad[:, None] < 0) | (steps[None, :] < bad[:, None])
                counts = good.sum(axis=1)
                sums = np.where(good, per_step, 0.0).sum(axis=1)
                record[f"train_{name}"] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            if validation_data is not None:
                val = jax.device_get(_evaluate_ensemble(loss_fn, eval_batch_size, states.params, *validation_data))
                record.update({f"val_{name}": np.asarray(v, np.float64) for name, v in val.items()})
            for i in np.flatnonzero(bad >= 0):
                what = "learning rate negative or not finite" if reason[i] == REASON_LEARNING_RATE else \
                    "non-finite params" if reason[i] == REASON_PARAMS else "non-finite loss"
                failures.setdefault(int(i), f"model {int(i)}: {what} at epoch {epoch}, step {int(bad[i]) + 1}")
            monitored = record["val_loss" if validation_data is not None else "train_loss"]
            # A member whose previous final params evaluated non-finite (rolled back at the first step) must
            # not keep them as its best.
            stale = (bad == 0) & (reason == REASON_LOSS) & (best_epoch == epoch - 1)
            improved = np.isfinite(monitored) & (monitored < best_loss)
            if improved.any() or stale.any():
                best_params = _pick(improved | stale, states.params, best_params)
                best_loss = np.where(improved, monitored, best_loss)
                best_epoch = np.where(improved, epoch, best_epoch)
            for name, v in record.items():
                history.setdefault(name, []).append(v)
            history.setdefault("epoch_time", []).append(time.perf_counter() - start)
            if bar is not None:
                bar.set_postfix_str(progress_postfix(record), refresh=False)
            if checkpoint_dir is not None:
                snapshot = {"states": states, "epoch_start": previous_start, "fit": {
                    "epoch": epoch, "history": resume_lib.history_arrays(history), "best_params": best_params,
                    "best_loss": np.asarray(best_loss, np.float64), "best_epoch": np.asarray(best_epoch),
                    "start_step": np.asarray(start_step), "train_seconds": train_seconds}}
                completed_epoch = epoch
                if epoch % checkpoint_every == 0 or epoch == num_epochs:
                    saved_epoch = save(epoch, snapshot)
    except KeyboardInterrupt as interrupt:
        if checkpoint_dir is not None:
            if completed_epoch is not None and completed_epoch != saved_epoch:
                saved_epoch = save(completed_epoch, snapshot)
            latest = saved_epoch if saved_epoch is not None else checkpoint.latest_step(checkpoint_dir)
            interrupt.add_note(resume_lib.interrupted_note(checkpoint_dir, latest))
        raise
    finally:
        if bar is not None:
            bar.close()

    steps_run = np.asarray(states.step).astype(int) - start_step
    stop_reason = "epochs"
    if failures:
        stop_reason = "; ".join(failures[i] for i in sorted(failures)) + " (those models kept their last finite params)"
        warnings.warn(f"fit_ensemble: {stop_reason}", RuntimeWarning, stacklevel=2)
    history_arrays = {n: np.asarray(v) for n, v in history.items()}
    info = FitInfo(
        converged=False,
        num_steps=steps_run,
        num_epochs=num_epochs,
        loss_history=history_arrays["train_loss"],
        history=history_arrays,
        best_params=best_params,
        best_epoch=best_epoch,
        stop_reason=stop_reason,
        samples_per_second=float(steps_run.sum() * batch_size / train_seconds) if train_seconds > 0 else math.nan,
    )
    return states, info
