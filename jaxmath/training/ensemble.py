"""K models at once: ``vmap`` of the compiled epoch over seeds (and learning rates), and ``fit_ensemble``."""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as V
from jaxmath.training.epoch import _check_epoch_args, epoch_core, evaluate_core
from jaxmath.training.fit import FitResult, _prepare_data
from jaxmath.training.state import TrainState
from jaxmath.training.step import make_train_step


def init_ensemble(init_params: Callable, optimizer: Any, keys: jax.Array) -> TrainState:
    """K training states stacked on a leading axis, one per PRNG key.

    Each key k is split into (k_init, k_shuffle): params_k = ``init_params(k_init)``, shuffling from k_shuffle.

    Args:
      init_params: ``key -> params``, e.g. ``lambda k: mlp.init(k, (784, 16, 16, 10))``.
      optimizer: an ``Optimizer`` (its ``init`` must not depend on the learning rate, true of every
        ``jaxmath.optim`` optimizer), or a factory ``learning_rate -> Optimizer`` (called with 1.0 here).
      keys: K keys from ``jax.random.split(key, K)``: ``(K,)`` typed keys or ``(K, 2)`` uint32 raw keys.

    Returns:
      ``TrainState`` whose leaves all have a leading axis of size K.
    """
    typed = jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
    V.check_ndim(keys, 1 if typed else 2, name="keys")
    opt = optimizer if hasattr(optimizer, "init") else optimizer(learning_rate=1.0)

    def one(key):
        k_init, k_shuffle = jax.random.split(key)
        return TrainState.create(init_params(k_init), opt, key=k_shuffle)

    return jax.jit(jax.vmap(one))(keys)


def _ensemble_epoch(loss_fn, optimizer, batch_size, states, images, labels, learning_rates):
    def member(state, lr):
        opt = optimizer if lr is None else optimizer(learning_rate=lr)
        return epoch_core(make_train_step(loss_fn, opt, jit=False), batch_size, state, images, labels)

    if learning_rates is None:
        return jax.vmap(lambda s: member(s, None))(states)
    return jax.vmap(member)(states, learning_rates)


_ensemble_epoch_jit = jax.jit(_ensemble_epoch, static_argnums=(0, 1, 2), donate_argnums=(3,))


def run_ensemble_epoch(
    states: TrainState,
    images: jax.Array,
    labels: jax.Array,
    *,
    loss_fn: Callable,
    optimizer: Any,
    batch_size: int,
    learning_rates: jax.Array | None = None,
) -> tuple[TrainState, dict]:
    """One epoch of ``run_epoch`` for K models at once (``vmap`` of the scanned epoch, one compile).

    Every model shuffles the shared data with its own key; with ``learning_rates`` model k trains with
    ``optimizer(learning_rate=learning_rates[k])``.

    Args:
      states: stacked ``TrainState`` from ``init_ensemble`` (consumed: use the returned one).
      images: ``(n, ...)`` shared training images (uint8 on the device).
      labels: ``(n,)`` integer labels.
      loss_fn: as for ``make_train_step``.
      optimizer: an ``Optimizer`` (same for all K), or with ``learning_rates`` a factory
        ``learning_rate -> Optimizer`` such as ``jaxmath.optim.sgd``.
      batch_size: examples per step.
      learning_rates: ``(K,)`` float array, or None.

    Returns:
      ``(states, metrics)``: metrics as in ``run_epoch`` with a leading K axis ("loss": ``(K, num_batches)``,
      "first_nonfinite_step": ``(K,)``).
    """
    _check_epoch_args(images, labels, batch_size)
    k = jax.tree_util.tree_leaves(states.step)[0].shape
    if len(k) != 1:
        raise ValueError(f"states must be stacked along a leading axis (init_ensemble), got states.step.shape={k}")
    if learning_rates is not None:
        if jnp.shape(learning_rates) != k:
            raise ValueError(
                f"learning_rates must have shape {k} (one per model), got learning_rates.shape={jnp.shape(learning_rates)}"
            )
        if hasattr(optimizer, "init"):
            raise TypeError("with learning_rates, optimizer must be a factory learning_rate -> Optimizer (e.g. optim.sgd)")
        V.check_finite(learning_rates, name="learning_rates")
    return _ensemble_epoch_jit(loss_fn, optimizer, batch_size, states, images, labels, learning_rates)


_evaluate_ensemble = jax.jit(
    lambda loss_fn, batch_size, params, images, labels: jax.vmap(
        lambda p: evaluate_core(loss_fn, batch_size, p, images, labels)
    )(params),
    static_argnums=(0, 1),
)


def evaluate_ensemble(params: Any, images: jax.Array, labels: jax.Array, *, loss_fn: Callable, batch_size: int = 1000) -> dict:
    """``evaluate`` for K stacked params at once.

    Args:
      params: params with a leading K axis on every leaf (``states.params``).
      images, labels, loss_fn, batch_size: as for ``evaluate``.

    Returns:
      dict of ``(K,)`` arrays: "loss" and every metric of ``loss_fn``.
    """
    V.check_same_length(images, labels, names=("images", "labels"))
    V.check_integer(batch_size, name="batch_size", minimum=1)
    return _evaluate_ensemble(loss_fn, batch_size, params, images, labels)


def fit_ensemble(
    states: TrainState,
    images: Any,
    labels: Any,
    *,
    loss_fn: Callable,
    optimizer: Any,
    epochs: int,
    batch_size: int,
    learning_rates: jax.Array | None = None,
    num_classes: int | None = None,
    validation_data: tuple[Any, Any] | None = None,
    validation_split: float = 0.0,
    eval_batch_size: int = 1000,
    progress: bool = True,
):
    """``fit`` for K models at once: one compiled, vmapped epoch per host iteration, best params per model.

    Every model keeps its own best params (lowest validation loss, else training loss). A model whose loss
    turns non-finite keeps its last finite state (its rejected steps change nothing) and is named in
    ``stop_reason`` with the epoch and step; the others train on. No early stopping: all K run ``epochs``.

    Args:
      states: stacked ``TrainState`` from ``init_ensemble`` (not consumed).
      images, labels: the shared training data, checked as in ``fit``.
      loss_fn, optimizer, batch_size, learning_rates: as for ``run_ensemble_epoch``.
      epochs: number of epochs (>= 1).
      num_classes: labels must lie in [0, num_classes); defaults to ``loss_fn.num_classes``.
      validation_data, validation_split, eval_batch_size, progress: as for ``fit``.

    Returns:
      ``FitResult``: ``state`` and ``best_params`` stacked (leading K axis), ``history`` of ``(epochs, K)``
      arrays ("train_loss", "train_<metric>", "val_loss", "val_<metric>") plus "epoch_time" ``(epochs,)``,
      ``best_epoch`` a ``(K,)`` int array (1-based), ``stop_reason`` "epochs" or the non-finite report.
    """
    V.check_integer(epochs, name="epochs", minimum=1)
    V.check_integer(batch_size, name="batch_size", minimum=1)
    images, labels, validation_data = _prepare_data(
        images, labels, loss_fn=loss_fn, num_classes=num_classes,
        validation_data=validation_data, validation_split=validation_split,
    )
    states = jax.tree_util.tree_map(jnp.copy, states)
    best_params = jax.tree_util.tree_map(jnp.copy, states.params)
    k = states.step.shape[0]
    best_loss = np.full((k,), np.inf)
    best_epoch = np.zeros((k,), int)
    failures: dict[int, str] = {}
    history: dict[str, list] = {}

    bar = None
    epoch_iter = range(1, epochs + 1)
    if progress:
        from tqdm import tqdm

        bar = tqdm(epoch_iter, desc=f"fit x{k}", unit="epoch", total=epochs)
        epoch_iter = bar
    try:
        for epoch in epoch_iter:
            start = time.perf_counter()
            states, metrics = run_ensemble_epoch(
                states, images, labels, loss_fn=loss_fn, optimizer=optimizer, batch_size=batch_size,
                learning_rates=learning_rates,
            )
            metrics = jax.device_get(metrics)
            bad = np.asarray(metrics.pop("first_nonfinite_step"))
            record = {}
            for name, per_step in metrics.items():
                per_step = np.asarray(per_step, np.float64)
                steps = np.arange(per_step.shape[1])
                good = (bad[:, None] < 0) | (steps[None, :] < bad[:, None])
                counts = good.sum(axis=1)
                sums = np.where(good, per_step, 0.0).sum(axis=1)
                record[f"train_{name}"] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            if validation_data is not None:
                val = jax.device_get(
                    evaluate_ensemble(states.params, *validation_data, loss_fn=loss_fn, batch_size=eval_batch_size)
                )
                record.update({f"val_{name}": np.asarray(v, np.float64) for name, v in val.items()})
            for i in np.flatnonzero(bad >= 0):
                failures.setdefault(int(i), f"model {int(i)}: non-finite loss at epoch {epoch}, step {int(bad[i]) + 1}")
            monitored = record["val_loss" if validation_data is not None else "train_loss"]
            improved = np.isfinite(monitored) & (monitored < best_loss)
            if improved.any():
                mask = jnp.asarray(improved)
                best_params = jax.tree_util.tree_map(
                    lambda new, old: jnp.where(mask.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
                    states.params, best_params,
                )
                best_loss = np.where(improved, monitored, best_loss)
                best_epoch = np.where(improved, epoch, best_epoch)
            for name, v in record.items():
                history.setdefault(name, []).append(v)
            history.setdefault("epoch_time", []).append(time.perf_counter() - start)
            if bar is not None:
                bar.set_postfix({n: f"{np.nanmean(v):.4f}" for n, v in record.items()})
    finally:
        if bar is not None:
            bar.close()

    stop_reason = "epochs"
    if failures:
        stop_reason = "; ".join(failures[i] for i in sorted(failures)) + " (those models kept their last finite params)"
        warnings.warn(f"fit_ensemble: {stop_reason}", RuntimeWarning, stacklevel=2)
    return FitResult(states, best_params, {n: np.asarray(v) for n, v in history.items()}, best_epoch, stop_reason)
