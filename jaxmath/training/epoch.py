"""``run_epoch``: one epoch as one compiled ``lax.scan``; ``evaluate``: loss and accuracy in batches."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as V
from jaxmath.training.state import TrainState
from jaxmath.training.step import with_metrics


def check_dataset(images: Any, labels: Any, *, num_classes: int | None = None, name: str = "images") -> None:
    """Host-side checks before any training: same length, integer labels in [0, num_classes), finite pixels.

    Args:
      images: ``(n, ...)`` array (uint8 or float).
      labels: ``(n,)`` integer array.
      num_classes: when given, every label must lie in [0, num_classes).
      name: what to call the images in messages (``labels`` is called ``labels``).
    """
    V.check_ndim(labels, 1, name="labels")
    if jnp.ndim(images) < 2:
        raise ValueError(f"{name} must have a leading example axis and features, got {name}.shape={jnp.shape(images)}")
    V.check_same_length(images, labels, names=(name, "labels"))
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise TypeError(f"labels must be integers (class indices), got labels.dtype={jnp.result_type(labels)}")
    if num_classes is not None:
        V.check_labels(labels, num_classes, name="labels")
    V.check_finite(images, name=name)


def _tree_all_finite(tree) -> jax.Array:
    # One sum per leaf: a sum is NaN/Inf when any entry is (or when it overflows: params near the dtype's
    # max, about to blow up anyway). Cheaper to compile and run than an elementwise isfinite per leaf.
    ok = jnp.asarray(True)
    for x in jax.tree_util.tree_leaves(tree):
        if jnp.issubdtype(x.dtype, jnp.inexact):
            ok = ok & jnp.isfinite(jnp.sum(x))
    return ok


def epoch_core(train_step: Callable, batch_size: int, state: TrainState, images, labels):
    """The pure epoch (no jit, no checks): shuffle with ``state.key``, scan ``train_step`` over the batches.

    A step whose loss or new params are not finite is rejected: the carry keeps the last good state,
    the remaining steps change nothing, and ``first_nonfinite_step`` records where it happened.
    """
    n = images.shape[0]
    num_batches = n // batch_size
    key, shuffle_key = jax.random.split(state.key)
    # A shuffle by sorting 32 random bits per example: one random draw and one sort (jax.random.permutation
    # does two rounds to remove the tiny bias of tied bits, which costs compile time and does not matter here).
    order = jnp.argsort(jax.random.bits(shuffle_key, (n,)))[: num_batches * batch_size].reshape(num_batches, batch_size)
    state = state._replace(key=key)
    # Gather whole rows of a flat (n, d) view, then restore the example shape: XLA's CPU gather of
    # contiguous rows costs about half as much as gathering (28, 28) slices (~50 us of a ~240 us
    # 784-16-16-10 step at batch 128); both reshapes are free.
    rows = images.reshape(n, -1)
    example_shape = images.shape[1:]

    def body(carry, xs):
        current, first_bad = carry
        i, idx = xs
        batch_images = rows[idx].reshape((idx.shape[0],) + example_shape)
        candidate, metrics = train_step(current, (batch_images, labels[idx]))
        ok = (first_bad < 0) & jnp.isfinite(metrics["loss"]) & _tree_all_finite(candidate.params)
        current = jax.tree_util.tree_map(lambda new, old: lax.select(ok, new, old), candidate, current)
        first_bad = jnp.where((first_bad < 0) & ~ok, i, first_bad)
        return (current, first_bad), metrics

    steps = jnp.arange(num_batches, dtype=jnp.int32)
    (state, first_bad), metrics = lax.scan(body, (state, jnp.asarray(-1, jnp.int32)), (steps, order))
    metrics = dict(metrics)
    metrics["first_nonfinite_step"] = first_bad
    return state, metrics


_run_epoch_donating = jax.jit(epoch_core, static_argnums=(0, 1), donate_argnums=(2,))
_run_epoch_copying = jax.jit(epoch_core, static_argnums=(0, 1))


def _check_epoch_args(images, labels, batch_size):
    V.check_same_length(images, labels, names=("images", "labels"))
    V.check_integer(batch_size, name="batch_size", minimum=1)
    n = jnp.shape(images)[0]
    if batch_size > n:
        raise ValueError(f"batch_size must be <= the number of examples {n}, got batch_size={batch_size}")


def run_epoch(
    state: TrainState,
    images: jax.Array,
    labels: jax.Array,
    *,
    train_step: Callable,
    batch_size: int,
    donate: bool = True,
) -> tuple[TrainState, dict]:
    """One epoch of mini-batch training as a single compiled ``lax.scan`` over ⌊n / batch_size⌋ batches.

    The batches are a fresh permutation of the n examples drawn on the device from ``state.key``
    (``key, k = split(state.key)``, order = stable argsort of ``jax.random.bits(k, (n,))``; the key moves
    on, so every epoch shuffles differently). The last
    ``n mod batch_size`` examples of each permutation are skipped. ``images`` stay in their dtype
    (uint8) on the device; the loss function scales them inside the step. Metrics are the scan's outputs:
    nothing goes back to the host between steps.

    Nothing is lost: a step with a non-finite loss (or non-finite new params) is not applied, the
    returned state is the last finite one, and ``metrics["first_nonfinite_step"]`` says which step failed.

    Args:
      state: ``TrainState`` (consumed when ``donate``: use the returned one).
      images: ``(n, ...)`` array, ideally already on the device (``jax.device_put``) as uint8.
      labels: ``(n,)`` integer array.
      train_step: ``make_train_step(loss_fn, optimizer)`` (jitted or not; it is traced into the scan).
      batch_size: examples per step, 1 <= batch_size <= n.
      donate: donate ``state``'s buffers to the result.

    Returns:
      ``(state, metrics)``: ``metrics`` maps "loss" (and every metric of the loss function, e.g.
      "accuracy") to a ``(num_batches,)`` array of per-step values, and "first_nonfinite_step" to an int32
      scalar: -1 when every step was finite, else the 0-based index of the first rejected step.
    """
    _check_epoch_args(images, labels, batch_size)
    run = _run_epoch_donating if donate else _run_epoch_copying
    return run(train_step, batch_size, state, images, labels)


def evaluate_core(loss_fn: Callable, batch_size: int, params, images, labels) -> dict:
    """Pure evaluation: full batches through ``lax.map``, the remainder as one smaller batch; exact means."""
    metric_fn = with_metrics(loss_fn)
    n = images.shape[0]
    batch_size = min(batch_size, n)
    num_full = n // batch_size
    cut = num_full * batch_size

    def one(batch):
        loss, metrics = metric_fn(params, batch)
        return {"loss": loss, **metrics}

    xs = images[:cut].reshape((num_full, batch_size) + images.shape[1:])
    ys = labels[:cut].reshape((num_full, batch_size) + labels.shape[1:])
    full = lax.map(one, (xs, ys))
    totals = {k: jnp.sum(v, axis=0) * batch_size for k, v in full.items()}
    if cut < n:
        rest = one((images[cut:], labels[cut:]))
        totals = {k: totals[k] + rest[k] * (n - cut) for k in totals}
    return {k: v / n for k, v in totals.items()}


_evaluate = jax.jit(evaluate_core, static_argnums=(0, 1))


def evaluate(params: Any, images: jax.Array, labels: jax.Array, *, loss_fn: Callable, batch_size: int = 1000) -> dict:
    """Mean loss and metrics of ``loss_fn`` over a whole data set, computed in batches on the device.

        C = (1/n) Σ_b n_b C_b        (C_b: the mean over batch b of n_b examples; likewise for accuracy)

    Args:
      params: the model's params.
      images: ``(n, ...)`` array (uint8 or float).
      labels: ``(n,)`` integer array.
      loss_fn: ``loss_fn(params, (images, labels)) -> loss`` or ``(loss, metrics)``, e.g. from
        ``make_classifier_loss``; it must return means over the batch.
      batch_size: examples per batch (memory bound; the result does not depend on it).

    Returns:
      dict of scalar arrays: "loss" and every metric of ``loss_fn`` (e.g. "accuracy").
    """
    V.check_same_length(images, labels, names=("images", "labels"))
    V.check_integer(batch_size, name="batch_size", minimum=1)
    if jnp.shape(images)[0] == 0:
        raise ValueError(f"images must hold at least one example, got images.shape={jnp.shape(images)}")
    return _evaluate(loss_fn, batch_size, params, images, labels)
