"""K models at once: ``vmap`` of the compiled epoch over seeds (and learning rates)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxmath import _validation as V
from jaxmath.training.epoch import _check_epoch_args, epoch_core, evaluate_core
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
    opt = optimizer if hasattr(optimizer, "init") else optimizer(1.0)

    def one(key):
        k_init, k_shuffle = jax.random.split(key)
        return TrainState.create(init_params(k_init), opt, key=k_shuffle)

    return jax.jit(jax.vmap(one))(keys)


def _ensemble_epoch(loss_fn, optimizer, batch_size, states, images, labels, learning_rates):
    def member(state, lr):
        opt = optimizer if lr is None else optimizer(lr)
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
    ``optimizer(learning_rates[k])``.

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
