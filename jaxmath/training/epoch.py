"""``run_epoch``: one epoch as one compiled ``lax.scan``; ``evaluate``: loss and accuracy in batches."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath import _validation as V
from jaxmath.optim.base import learning_rates_in
from jaxmath.training.state import TrainState
from jaxmath.training.step import (
    DONATED_MESSAGE,
    TrainStep,
    check_not_donated,
    is_donated,
    takes_key,
    with_metrics,
)


def check_dataset(x: Any, labels: Any, *, num_classes: int | None = None, name: str = "x") -> None:
    """Host-side checks before training: same length, integer labels in [0, num_classes), finite inputs.

    The dtype is looked at before the data: integer inputs (uint8 MNIST) are never read, float inputs and the
    label range are one reduction each on the device, with one bool or one (min, max) pair brought back.

    Args:
      x: ``(n, ...)`` array (uint8 or float).
      labels: ``(n,)`` integer array.
      num_classes: when given, every label must lie in [0, num_classes).
      name: what to call ``x`` in messages (``labels`` is called ``labels``).
    """
    _check_shapes(x, labels, name=name)
    _check_label_values(labels, num_classes)
    V.check_finite(x, name=name)


def _check_shapes(x, labels, *, name="x"):
    V.check_ndim(labels, 1, name="labels")
    if jnp.ndim(x) < 2:
        raise ValueError(f"{name} must have a leading example axis and features, got {name}.shape={jnp.shape(x)}")
    V.check_same_length(x, labels, names=(name, "labels"))


def _check_label_values(labels, num_classes):
    dtype = labels.dtype if hasattr(labels, "dtype") else jnp.result_type(labels)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"labels must be integers (class indices), got labels.dtype={dtype}")
    if num_classes is not None:
        V.check_labels(labels, num_classes, name="labels")


def _tree_all_finite(tree) -> jax.Array:
    # One sum per leaf: a sum is NaN/Inf when any entry is (or when it overflows: params near the dtype's
    # max, about to blow up anyway). Cheaper to compile and run than an elementwise isfinite per leaf.
    ok = jnp.asarray(True)
    for x in jax.tree_util.tree_leaves(tree):
        if jnp.issubdtype(x.dtype, jnp.inexact):
            ok = ok & jnp.isfinite(jnp.sum(x))
    return ok


def _learning_rates_ok(opt_state) -> jax.Array:
    # A schedule may return NaN or a negative rate (gradient ascent): the step that would apply it is
    # rejected like a non-finite one, so fit never trains with it silently.
    ok = jnp.asarray(True)
    for rate in learning_rates_in(opt_state):
        ok = ok & jnp.all(jnp.isfinite(rate) & (rate >= 0))
    return ok


# Why a step was rejected (metrics["nonfinite_reason"], read by fit for its message).
REASON_LOSS, REASON_PARAMS, REASON_LEARNING_RATE = 1, 2, 3


def _epoch_scan(train_step: Callable, batch_size: int, state: TrainState, x, labels, stop_at):
    """The pure epoch: shuffle with ``state.key``, scan ``train_step`` over the batches.

    A step is applied when its loss at the current params is finite, the learning rate it applies is finite
    and >= 0, the new params are finite, and its index is below ``stop_at`` (an int32 scalar, traced: ``fit``
    replays an epoch up to a given step with the same compiled scan, to recover the state before a step whose
    params turned out to evaluate non-finite). After the first rejected step nothing changes.

    Returns:
      ``(state, metrics)``; ``metrics["first_nonfinite_step"]`` is -1 or the first rejected step's index,
      ``metrics["nonfinite_reason"]`` 0 or one of the ``REASON_*`` codes.
    """
    step_fn = train_step.pure if isinstance(train_step, TrainStep) else train_step
    n = x.shape[0]
    num_batches = n // batch_size
    key, shuffle_key = jax.random.split(state.key)
    # A shuffle by sorting 32 random bits per example: one random draw and one sort (jax.random.permutation
    # does two rounds to remove the tiny bias of tied bits, which costs compile time and does not matter here).
    order = jnp.argsort(jax.random.bits(shuffle_key, (n,)))[: num_batches * batch_size].reshape(num_batches, batch_size)
    state = state._replace(key=key)
    # Gather whole rows of a flat (n, d) view, then restore the example shape: XLA's CPU gather of
    # contiguous rows is much cheaper than gathering (28, 28) slices (figures in benchmarks/RESULTS.md);
    # both reshapes are free.
    rows = x.reshape(n, -1)
    example_shape = x.shape[1:]

    def body(carry, xs):
        current, first_bad, reason = carry
        i, idx = xs
        batch_x = rows[idx].reshape((idx.shape[0],) + example_shape)
        candidate, metrics = step_fn(current, (batch_x, labels[idx]))
        active = (first_bad < 0) & (i < stop_at)
        loss_ok = jnp.isfinite(metrics["loss"])
        rate_ok = _learning_rates_ok(current.opt_state)
        accept = active & loss_ok & rate_ok & _tree_all_finite(candidate.params)
        current = jax.tree_util.tree_map(lambda new, old: lax.select(accept, new, old), candidate, current)
        failed = active & ~accept
        code = jnp.where(~loss_ok, REASON_LOSS, jnp.where(~rate_ok, REASON_LEARNING_RATE, REASON_PARAMS))
        reason = jnp.where(failed, code, reason).astype(jnp.int32)
        first_bad = jnp.where(failed, i, first_bad)
        return (current, first_bad, reason), metrics

    steps = jnp.arange(num_batches, dtype=jnp.int32)
    init = (state, jnp.asarray(-1, jnp.int32), jnp.asarray(0, jnp.int32))
    (state, first_bad, reason), metrics = lax.scan(body, init, (steps, order))
    metrics = dict(metrics)
    metrics["first_nonfinite_step"] = first_bad
    metrics["nonfinite_reason"] = reason
    return state, metrics


def _epoch_core(train_step: Callable, batch_size: int, state: TrainState, x, labels):
    """The pure epoch of ``run_epoch`` (no jit, no checks): every step may run; a rejected step changes
    nothing and ``first_nonfinite_step`` records where it happened."""
    state, metrics = _epoch_scan(train_step, batch_size, state, x, labels, jnp.asarray(x.shape[0], jnp.int32))
    metrics.pop("nonfinite_reason")
    return state, metrics


_run_epoch_donating = jax.jit(_epoch_core, static_argnums=(0, 1), donate_argnums=(2,))
_run_epoch_copying = jax.jit(_epoch_core, static_argnums=(0, 1))
# fit's epoch: the scan with its stop_at and the rejection reason.
_fit_epoch_donating = jax.jit(_epoch_scan, static_argnums=(0, 1), donate_argnums=(2,))
_fit_epoch_copying = jax.jit(_epoch_scan, static_argnums=(0, 1))


def _check_epoch_args(x, labels, batch_size):
    V.check_same_length(x, labels, names=("x", "labels"))
    V.check_integer(batch_size, name="batch_size", minimum=1)
    n = jnp.shape(x)[0]
    if batch_size > n:
        raise ValueError(f"batch_size must be <= the number of examples {n}, got batch_size={batch_size}")


def _check_train_step(train_step):
    if not isinstance(train_step, TrainStep):
        raise TypeError(
            "train_step must be a TrainStep from jaxmath.training.make_train_step(loss_fn, optimizer), "
            f"got {train_step!r}"
        )


def _epoch(state, x, labels, *, train_step, batch_size, donate):
    """``run_epoch`` without its checks."""
    run = _run_epoch_donating if donate else _run_epoch_copying
    try:
        return run(train_step, batch_size, state, x, labels)
    except (RuntimeError, ValueError) as err:
        if is_donated(state):
            raise ValueError(DONATED_MESSAGE) from err
        raise


def _fit_epoch(state, x, labels, *, train_step, batch_size, donate, stop_at=None):
    """One epoch for ``fit`` (checked once before): ``(state, metrics)`` of ``_epoch_scan``."""
    run = _fit_epoch_donating if donate else _fit_epoch_copying
    stop_at = jnp.asarray(np.shape(x)[0] if stop_at is None else stop_at, jnp.int32)
    try:
        return run(train_step, batch_size, state, x, labels, stop_at)
    except (RuntimeError, ValueError) as err:
        if is_donated(state):
            raise ValueError(DONATED_MESSAGE) from err
        raise


def run_epoch(
    state: TrainState,
    x: jax.Array,
    labels: jax.Array,
    *,
    train_step: TrainStep,
    batch_size: int,
    donate: bool = True,
) -> tuple[TrainState, dict]:
    """One epoch of mini-batch training as a single compiled ``lax.scan`` over ⌊n / batch_size⌋ batches.

    The batches are a fresh permutation of the n examples drawn on the device from ``state.key``
    (``key, k = split(state.key)``, order = stable argsort of ``jax.random.bits(k, (n,))``; the key moves
    on, so every epoch shuffles differently). The last ``n mod batch_size`` examples of each permutation are
    skipped. ``x`` stays in its dtype (uint8) on the device; the loss function scales it inside the step.
    Metrics are the scan's outputs: nothing goes back to the host between steps.

    Nothing is lost: a step with a non-finite loss, non-finite new params or a negative or NaN learning
    rate (from a schedule) is not applied, the returned state is the last one reached by accepted steps, and
    ``metrics["first_nonfinite_step"]`` says which step failed. (``fit`` goes one step further back when
    a loss turns non-finite: it replays the epoch to drop the params that produced it.)

    Checked before anything runs: ``state.opt_state`` was made by ``train_step.optimizer`` (structure,
    shapes, dtypes), ``state`` was not consumed by an earlier donating call, ``labels`` are integers and, when
    ``train_step.loss_fn`` has ``num_classes``, lie in [0, num_classes) (one min/max reduction on the device).

    Args:
      state: ``TrainState`` from ``train_step.init(params, key=key)`` (consumed when ``donate``: use the
        returned one).
      x: ``(n, ...)`` inputs, ideally already on the device (``jax.device_put``), uint8 images as they are.
      labels: ``(n,)`` integer array.
      train_step: ``make_train_step(loss_fn, optimizer)``; its pure step is traced into the scan.
      batch_size: examples per step, 1 <= batch_size <= n.
      donate: donate ``state``'s buffers to the result.

    Returns:
      ``(state, metrics)``: ``metrics`` maps "loss" (and every metric of the loss function, e.g.
      "accuracy") to a ``(num_batches,)`` array of per-step values, and "first_nonfinite_step" to an int32
      scalar: -1 when every step was finite, else the 0-based index of the first rejected step.
    """
    _check_train_step(train_step)
    _check_epoch_args(x, labels, batch_size)
    V.check_ndim(labels, 1, name="labels")
    check_not_donated(state)
    train_step.check_state(state)
    _check_label_values(labels, getattr(train_step.loss_fn, "num_classes", None))
    return _epoch(state, x, labels, train_step=train_step, batch_size=batch_size, donate=donate)


# The evaluation key of a key-taking loss when none is given: evaluations are reproducible.
EVALUATION_SEED = 0


def _evaluate_core(loss_fn: Callable, batch_size: int, params, x, labels, key=None) -> dict:
    """Pure evaluation: full batches through ``lax.map``, the remainder as one smaller batch; exact means.

    A loss that ``takes_key`` gets ``fold_in(key, b)`` for batch b (``key`` defaults to
    ``jax.random.key(EVALUATION_SEED)``); other losses never see a key.
    """
    metric_fn = with_metrics(loss_fn)
    needs_key = takes_key(loss_fn)
    if needs_key and key is None:
        key = jax.random.key(EVALUATION_SEED)
    n = x.shape[0]
    batch_size = min(batch_size, n)
    num_full = n // batch_size
    cut = num_full * batch_size

    def one(batch, index):
        batch_key = jax.random.fold_in(key, index) if needs_key else None
        loss, metrics = metric_fn(params, batch, batch_key)
        return {"loss": loss, **metrics}

    xs = x[:cut].reshape((num_full, batch_size) + x.shape[1:])
    ys = labels[:cut].reshape((num_full, batch_size) + labels.shape[1:])
    full = lax.map(lambda b: one((b[0], b[1]), b[2]), (xs, ys, jnp.arange(num_full, dtype=jnp.int32)))
    totals = {k: jnp.sum(v, axis=0) * batch_size for k, v in full.items()}
    if cut < n:
        rest = one((x[cut:], labels[cut:]), jnp.asarray(num_full, jnp.int32))
        totals = {k: totals[k] + rest[k] * (n - cut) for k in totals}
    return {k: v / n for k, v in totals.items()}


_evaluate = jax.jit(_evaluate_core, static_argnums=(0, 1))


def evaluate(
    params: Any, x: jax.Array, labels: jax.Array, *, loss_fn: Callable, batch_size: int = 1000, key: Any = None
) -> dict:
    """Mean loss and metrics of ``loss_fn`` over a whole data set, computed in batches on the device.

        C = (1/n) Σ_b n_b C_b        (C_b: the mean over batch b of n_b examples; likewise for accuracy)

    ``labels`` must be integers and, when ``loss_fn`` has ``num_classes``, lie in [0, num_classes) (one
    min/max reduction on the device).

    A loss that takes a key (``loss_fn.takes_key``, e.g. ``jaxmath.adversarial.adversarial_loss``) is
    evaluated as it is, with the key ``fold_in(key, b)`` for batch b: an adversarial loss thus reports the
    loss and accuracy under its own attack (robust figures), reproducibly, and so does ``fit``'s validation
    (with the default key). Its random start then depends on how the examples fall into batches. For the
    clean figures pass the wrapped loss, ``loss_fn=adv_loss.clean_loss``.

    Args:
      params: the model's params.
      x: ``(n, ...)`` array (uint8 or float).
      labels: ``(n,)`` integer array.
      loss_fn: ``loss_fn(params, (x, labels)) -> loss`` or ``(loss, metrics)``, e.g. from
        ``make_classifier_loss``; it must return means over the batch.
      batch_size: examples per batch (memory bound; the result does not depend on it, except through the
        keys of a key-taking loss).
      key: PRNG key of a key-taking loss (default ``jax.random.key(EVALUATION_SEED)``); must be None for
        other losses.

    Returns:
      dict of scalar arrays: "loss" and every metric of ``loss_fn`` (e.g. "accuracy").
    """
    V.check_same_length(x, labels, names=("x", "labels"))
    V.check_integer(batch_size, name="batch_size", minimum=1)
    if jnp.shape(x)[0] == 0:
        raise ValueError(f"x must hold at least one example, got x.shape={jnp.shape(x)}")
    _check_label_values(labels, getattr(loss_fn, "num_classes", None))
    if key is not None:
        if not takes_key(loss_fn):
            raise TypeError("key is for a loss that takes one (loss_fn.takes_key, e.g. an adversarial loss); "
                            "this loss_fn does not")
        V.check_key(key, name="key")
        return _evaluate(loss_fn, batch_size, params, x, labels, key)
    return _evaluate(loss_fn, batch_size, params, x, labels)
