"""Loss functions of the notes and their hand-derived gradients.

Every loss is ``loss(predictions, targets, *, reduction="mean")``:

* examples lie along axis 0; for inputs with ``ndim >= 2`` the per-example loss
  reduces over the trailing axes (mean for ``mse``/``mae``/``rmse``, sum for
  ``sum_of_squares`` and the cross-entropies); a 0-d input is one example;
* ``reduction="mean"`` (default, as the notes define the losses) averages the
  per-example losses, ``"sum"`` adds them, ``"none"`` returns them, shape ``(n,)``.

Each loss ``L`` has ``L_gradient(same args)`` = d loss / d predictions, written by
hand and proven against ``jax.grad`` in the tests; it has the shape of
``predictions``. For ``reduction="none"`` it is the gradient of each example's
own loss with respect to its own predictions (the same array as for ``"sum"``).

Notation of the notes (seed 004): ``t`` label / target, ``y`` prediction
(``ŷ`` where the notes use ``y`` for the label); ``N`` or ``n`` the number of examples.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from jaxmath import _validation as v
from jaxmath.activations import _float, log_softmax, sigmoid, softmax

__all__ = [
    "mse",
    "mse_gradient",
    "sum_of_squares",
    "sum_of_squares_gradient",
    "rmse",
    "rmse_gradient",
    "mae",
    "mae_gradient",
    "binary_cross_entropy",
    "binary_cross_entropy_gradient",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_gradient",
    "categorical_cross_entropy",
    "categorical_cross_entropy_gradient",
    "softmax_cross_entropy",
    "softmax_cross_entropy_gradient",
]

_REDUCTIONS = ("mean", "sum", "none")

# Every loss below is itself jitted with ``reduction`` (and ``half``) static. The checks in ``_prepare`` read
# shapes and static options only, so they raise at trace time, before compiled work and under an outer
# ``jit``/``vmap`` too. Values (probabilities in [0, 1], labels in range, finiteness) are checked by the host
# entry points (``fit``, ``run_epoch``, ``evaluate``, the CLI), not here.
_jit = partial(jax.jit, static_argnames=("reduction",))


# --------------------------------------------------------------------------- plumbing


def _prepare(predictions, targets, reduction, *, names=("predictions", "targets")):
    """Trace-time checks, then float arrays (targets cast to the predictions' dtype)."""
    v.check_choice(reduction, _REDUCTIONS, name="reduction")
    v.check_same_shape(predictions, targets, names=names)
    if reduction == "mean" and math.prod(jnp.shape(predictions)) == 0:
        # A mean over no values is 0/0: refuse it while tracing instead of returning NaN.
        raise ValueError(f"{names[0]} must hold at least one value for reduction='mean', "
                         f"got {names[0]}.shape={tuple(jnp.shape(predictions))}")
    p = _float(predictions, name=names[0])
    t = jnp.asarray(targets).astype(p.dtype)
    return p, t


def _reduce(elementwise, reduction, per_example):
    """Elementwise losses -> per-example losses (over axes 1..) -> reduction over axis 0."""
    if elementwise.ndim == 0:
        return elementwise
    axes = tuple(range(1, elementwise.ndim))
    per = per_example(elementwise, axis=axes) if axes else elementwise
    if reduction == "mean":
        return jnp.mean(per)
    if reduction == "sum":
        return jnp.sum(per)
    return per


def _scale(shape, reduction, *, per_example_mean):
    """The constant by which the elementwise gradient is divided: k (trailing size) and/or n."""
    if len(shape) == 0:
        return 1
    n, k = shape[0], math.prod(shape[1:])
    scale = k if per_example_mean else 1
    if reduction == "mean":
        scale *= n
    return max(scale, 1)


# --------------------------------------------------------------------------- squared errors


@partial(jax.jit, static_argnames=("reduction", "half"))
def mse(predictions, targets, *, reduction="mean", half=False):
    """Mean squared error.

    The notes: ``E = 1/n Σ_i (t_i − y_i)²``; with ``half=True`` their ½ convention
    ``E = 1/n Σ_i ½ (t_i − y_i)²``. Symbols: ``y`` → ``predictions``, ``t`` → ``targets``,
    ``n`` the number of examples (axis 0).

    Args:
      predictions: ``(n, ...)`` float array.
      targets: same shape as ``predictions``.
      reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (keyword-only, static).
      half: multiply by ½ (keyword-only, static).

    Returns:
      scalar, or ``(n,)`` per-example losses for ``reduction="none"``; dtype of ``predictions``.
    """
    p, t = _prepare(predictions, targets, reduction)
    sq = (t - p) ** 2
    return _reduce(sq / 2 if half else sq, reduction, jnp.mean)


@partial(jax.jit, static_argnames=("reduction", "half"))
def mse_gradient(predictions, targets, *, reduction="mean", half=False):
    """d mse / d predictions: ``∂E/∂y_i = −2 (t_i − y_i) / n`` (``−(t_i − y_i) / n`` with ``half=True``).

    Note the minus sign, which the notes drop (see docs/errata.md). For ``ndim >= 2`` the
    divisor also counts the trailing entries averaged per example.

    Args:
      predictions, targets, reduction, half: as for :func:`mse`.

    Returns:
      array with the shape and dtype of ``predictions``.
    """
    p, t = _prepare(predictions, targets, reduction)
    g = (p - t) if half else 2 * (p - t)
    return g / _scale(p.shape, reduction, per_example_mean=True)


@_jit
def sum_of_squares(predictions, targets, *, reduction="mean"):
    """Sum of squared errors per example, seed 001's ``loss = Σ_i (a_i⁽³⁾ − expected_i)²``.

    Symbols: ``a⁽³⁾`` → ``predictions`` (the output layer), ``expected`` → ``targets``;
    ``i`` runs over the trailing axes (the output units) of each example.

    Args:
      predictions: ``(n, ...)`` float array.
      targets: same shape.
      reduction: ``"mean"`` (mean over examples) | ``"sum"`` | ``"none"`` (keyword-only, static).

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _reduce((p - t) ** 2, reduction, jnp.sum)


@_jit
def sum_of_squares_gradient(predictions, targets, *, reduction="mean"):
    """``∂loss/∂a_i = 2 (a_i − expected_i)`` (divided by ``n`` for ``reduction="mean"``).

    Args:
      predictions, targets, reduction: as for :func:`sum_of_squares`.

    Returns:
      array with the shape and dtype of ``predictions``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return 2 * (p - t) / _scale(p.shape, reduction, per_example_mean=False)


@_jit
def rmse(predictions, targets, *, reduction="mean"):
    """Root mean squared error, the notes' ``RMSE = √MSE``.

    ``rmse(..., reduction=r) = sqrt(mse(..., reduction=r))``: for ``"mean"`` the root of the
    mean over all examples; for ``"none"`` the per-example root; for ``"sum"`` the root of
    the summed per-example MSE. Symbols as in :func:`mse`.

    Args:
      predictions: ``(n, ...)`` float array.
      targets: same shape.
      reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (keyword-only, static).

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    return jnp.sqrt(mse(predictions, targets, reduction=reduction))


@_jit
def rmse_gradient(predictions, targets, *, reduction="mean"):
    """``∂RMSE/∂y = (∂MSE/∂y) / (2 √MSE)``; 0 where MSE = 0 (the root's kink).

    Args:
      predictions, targets, reduction: as for :func:`rmse`.

    Returns:
      array with the shape and dtype of ``predictions``.
    """
    # d√M/dy = (dM/dy) / (2√M). At M = 0 (a perfect fit) the root is not differentiable;
    # 0 is returned there (a valid subgradient) instead of 0/0.
    m = mse(predictions, targets, reduction=reduction)
    dm = mse_gradient(predictions, targets, reduction=reduction)
    if reduction == "none" and m.ndim == 1:
        m = m.reshape((-1,) + (1,) * (dm.ndim - 1))
    zero = m == 0
    safe = jnp.where(zero, jnp.ones_like(m), m)
    return jnp.where(zero, jnp.zeros_like(dm), dm / (2 * jnp.sqrt(safe)))


# --------------------------------------------------------------------------- absolute error


@_jit
def mae(predictions, targets, *, reduction="mean"):
    """Mean absolute error (L1 loss) ``MAE = 1/n Σ_i |t_i − y_i|``.

    The notes write ``(t_i − y_i)¹`` and drop the absolute value (docs/errata.md).
    Symbols: ``y`` → ``predictions``, ``t`` → ``targets``.

    Args:
      predictions: ``(n, ...)`` float array.
      targets: same shape.
      reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (keyword-only, static).

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _reduce(jnp.abs(t - p), reduction, jnp.mean)


@_jit
def mae_gradient(predictions, targets, *, reduction="mean"):
    """``∂MAE/∂y_i = sign(y_i − t_i) / n`` (0 where ``y_i = t_i``, a valid subgradient).

    Args:
      predictions, targets, reduction: as for :func:`mae`.

    Returns:
      array with the shape and dtype of ``predictions``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return jnp.sign(p - t) / _scale(p.shape, reduction, per_example_mean=True)


# --------------------------------------------------------------------------- binary cross-entropy


def _clip_probabilities(p):
    # log(0) = −inf: clip to [ε, 1 − ε] with ε the dtype's machine epsilon, so the
    # loss stays finite at p ∈ {0, 1} in every dtype (bfloat16 included).
    eps = jnp.finfo(p.dtype).eps
    return jnp.clip(p, eps, 1 - eps)


@_jit
def binary_cross_entropy(probabilities, targets, *, reduction="mean"):
    """Binary cross-entropy on probabilities.

    The notes: ``E(t, y) = −1/N Σ_i [t_i · log(y_i) + (1 − t_i) · log(1 − y_i)]``.
    Symbols: ``y`` → ``probabilities`` (in [0, 1]), ``t`` → ``targets`` (in [0, 1]),
    ``N`` the number of examples. ``y`` is clipped to ``[ε, 1 − ε]`` (``ε`` the dtype's
    machine epsilon), so the loss is finite at ``y ∈ {0, 1}``. Prefer
    :func:`binary_cross_entropy_with_logits` when the logits are at hand.

    Args:
      probabilities: ``(n, ...)`` float array in [0, 1] (not checked here: the entry points check values).
      targets: same shape, in [0, 1].
      reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (keyword-only, static); per example the loss sums
        over trailing axes.

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    p, t = _prepare(probabilities, targets, reduction, names=("probabilities", "targets"))
    pc = _clip_probabilities(p)
    return _reduce(-(t * jnp.log(pc) + (1 - t) * jnp.log1p(-pc)), reduction, jnp.sum)


@_jit
def binary_cross_entropy_gradient(probabilities, targets, *, reduction="mean"):
    """``∂E_i/∂y_i = (y_i − t_i) / (y_i (1 − y_i))`` (divided by ``N`` for ``"mean"``).

    The notes' final form, which is right; their middle step has a sign error
    (docs/errata.md). Evaluated at the clipped ``y``, so it is finite at ``y ∈ {0, 1}``.

    Args:
      probabilities, targets, reduction: as for :func:`binary_cross_entropy`.

    Returns:
      array with the shape and dtype of ``probabilities``.
    """
    p, t = _prepare(probabilities, targets, reduction, names=("probabilities", "targets"))
    pc = _clip_probabilities(p)
    return (pc - t) / (pc * (1 - pc)) / _scale(p.shape, reduction, per_example_mean=False)


@_jit
def binary_cross_entropy_with_logits(logits, targets, *, reduction="mean"):
    """Binary cross-entropy of ``y = sigmoid(z)``, computed stably from the logits ``z``.

    The notes: ``E = −1/N Σ_i [t_i log(y_i) + (1 − t_i) log(1 − y_i)]`` with ``y_i = 1/(1 + e^(−z_i))``,
    rewritten as ``log(1 + e^z) − t·z`` (a log-add-exp). Symbols: ``z`` → ``logits``,
    ``t`` → ``targets`` (in [0, 1]).

    Args:
      logits: ``(n, ...)`` float array.
      targets: same shape, in [0, 1].
      reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (keyword-only, static).

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    z, t = _prepare(logits, targets, reduction, names=("logits", "targets"))
    # −t log σ(z) − (1 − t) log(1 − σ(z)) = softplus(z) − t·z, with softplus(z) =
    # log(1 + e^z) = logaddexp(0, z): never overflows, and its derivative is σ(z)
    # everywhere (max(z, 0) + log1p(e^−|z|) has the right value but autodiff splits
    # the kink at z = 0 wrongly).
    elementwise = jnp.logaddexp(jnp.zeros_like(z), z) - t * z
    return _reduce(elementwise, reduction, jnp.sum)


@_jit
def binary_cross_entropy_with_logits_gradient(logits, targets, *, reduction="mean"):
    """``∂E_i/∂z_i = y_i − t_i`` with ``y = sigmoid(z)``.

    The notes' chain rule ``∂E/∂y · ∂y/∂z = (y − t)/(y(1 − y)) · y(1 − y)``; times ``x``
    it is their ``∂E/∂w = (y − t) · x``.

    Args:
      logits, targets, reduction: as for :func:`binary_cross_entropy_with_logits`.

    Returns:
      array with the shape and dtype of ``logits``.
    """
    z, t = _prepare(logits, targets, reduction, names=("logits", "targets"))
    return (sigmoid(z) - t) / _scale(z.shape, reduction, per_example_mean=False)


# --------------------------------------------------------------------------- categorical cross-entropy


def _check_class_axis(x, *, name):
    if jnp.ndim(x) == 0:
        raise ValueError(f"{name} must have a class axis (the last), got {name}.shape=()")
    if jnp.shape(x)[-1] == 0:
        raise ValueError(f"{name} must have at least one class on its last axis, got {name}.shape={jnp.shape(x)}")


@_jit
def categorical_cross_entropy(probabilities, targets, *, reduction="mean"):
    """Cross-entropy on probabilities, the notes' ``CE = −1/N Σ_k Σ_i y_i log(ŷ_i)``.

    Symbols: ``ŷ`` → ``probabilities`` (e.g. a softmax output, classes on the last axis),
    ``y`` → ``targets`` (one-hot or a probability vector), ``i`` runs over the classes,
    ``k`` over the ``N`` examples (axis 0). Like :func:`softmax_cross_entropy` the last axis is
    the class axis, so a 1-D input is one example. ``ŷ`` is floored at the dtype's smallest normal
    number, so a zero probability gives a large finite loss, not ``inf``. Prefer
    :func:`softmax_cross_entropy` on logits.

    Args:
      probabilities: ``(n, C)`` (or ``(n, ..., C)``, or ``(C,)``) float array in [0, 1].
      targets: same shape.
      reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (keyword-only, static).

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    p, t = _prepare(probabilities, targets, reduction, names=("probabilities", "targets"))
    _check_class_axis(p, name="probabilities")
    pc = jnp.maximum(p, jnp.finfo(p.dtype).tiny)
    return _reduce(-jnp.sum(t * jnp.log(pc), axis=-1), reduction, jnp.sum)


@_jit
def categorical_cross_entropy_gradient(probabilities, targets, *, reduction="mean"):
    """``∂CE/∂ŷ_i = −y_i / ŷ_i`` (divided by ``N`` for ``"mean"``).

    Args:
      probabilities, targets, reduction: as for :func:`categorical_cross_entropy`.

    Returns:
      array with the shape and dtype of ``probabilities``.
    """
    p, t = _prepare(probabilities, targets, reduction, names=("probabilities", "targets"))
    _check_class_axis(p, name="probabilities")
    pc = jnp.maximum(p, jnp.finfo(p.dtype).tiny)
    return -t / pc / _scale(p.shape[:-1], reduction, per_example_mean=False)


def _prepare_softmax(logits, labels, reduction):
    """Logits and labels -> (float logits, float targets of the logits' shape), checked at trace time."""
    v.check_choice(reduction, _REDUCTIONS, name="reduction")
    z = _float(logits, name="logits")
    _check_class_axis(z, name="logits")
    labels = jnp.asarray(labels)
    num_classes = z.shape[-1]
    if jnp.issubdtype(labels.dtype, jnp.integer) and labels.shape == z.shape[:-1]:
        # Labels outside [0, C) would give an all-zero row (loss 0): the entry points check the range.
        return z, jax.nn.one_hot(labels, num_classes, dtype=z.dtype)
    if labels.shape == z.shape:
        return z, labels.astype(z.dtype)
    raise ValueError(
        "labels must be integers of shape logits.shape[:-1] or one-hot/probabilities of "
        f"logits' shape, got logits.shape={z.shape} and labels.shape={labels.shape} "
        f"(dtype {labels.dtype})"
    )


@_jit
def softmax_cross_entropy(logits, labels, *, reduction="mean"):
    """Softmax followed by cross-entropy, computed stably from the logits.

    The notes: ``CE = −Σ_i y_i log( e^(ŷ_i) / Σ_j e^(ŷ_j) )``, averaged over the ``N`` examples.
    Symbols: ``ŷ`` → ``logits`` (classes on the last axis), ``y`` → ``labels``. The
    log-softmax is max-shifted (log-sum-exp), so logits up to 1e4 stay finite.

    Args:
      logits: ``(n, C)`` (or ``(n, ..., C)``, or ``(C,)`` for one example) float array.
      labels: integer class indices of shape ``logits.shape[:-1]`` in ``[0, C)``, or one-hot /
        probability vectors of ``logits``' shape.
      reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (keyword-only, static); per example the loss sums
        over the positions between axis 0 and the class axis.

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``; dtype of ``logits``.
    """
    z, t = _prepare_softmax(logits, labels, reduction)
    return _reduce(-jnp.sum(t * log_softmax(z, axis=-1), axis=-1), reduction, jnp.sum)


@_jit
def softmax_cross_entropy_gradient(logits, labels, *, reduction="mean"):
    """``∂CE/∂ŷ_i = p_i − y_i`` with ``p = softmax(ŷ)`` (``p − onehot`` for integer labels).

    Divided by ``N`` for ``reduction="mean"``. For targets that do not sum to 1 the exact
    form ``p_i Σ_j y_j − y_i`` is used.

    Args:
      logits, labels, reduction: as for :func:`softmax_cross_entropy`.

    Returns:
      array with the shape and dtype of ``logits``.
    """
    z, t = _prepare_softmax(logits, labels, reduction)
    p = softmax(z, axis=-1)
    # p·Σ_i y_i − y: the notes' p − onehot when the targets sum to 1, exact for any targets.
    g = p * jnp.sum(t, axis=-1, keepdims=True) - t
    return g / _scale(z.shape[:-1], reduction, per_example_mean=False)
