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
import numpy as np

from jaxmath import _validation as v
from jaxmath.activations import _float, _log_softmax_core, _sigmoid, _softmax_core

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


# --------------------------------------------------------------------------- plumbing


def _prepare(predictions, targets, reduction, *, names=("predictions", "targets")):
    """Validate on the host, then return float arrays (targets cast to the predictions' dtype)."""
    v.check_choice(reduction, _REDUCTIONS, name="reduction")
    v.check_same_shape(predictions, targets, names=names)
    p = _float(predictions)
    t = jnp.asarray(targets).astype(p.dtype)
    return p, t


def _check_unit_interval(x, *, name):
    """Concrete entries of ``x`` must lie in [0, 1] (probabilities)."""
    if not v.is_concrete(x):
        return
    arr = np.asarray(x).astype(np.float64)
    if arr.size == 0:
        return
    bad = ~((arr >= 0) & (arr <= 1))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
        raise ValueError(
            f"{name} must lie in [0, 1], got {int(bad.sum())} value(s) outside it; "
            f"first at index {first} (= {arr[first]!r}) in {name}.shape={arr.shape}"
        )


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
def _mse(p, t, reduction, half):
    sq = (t - p) ** 2
    return _reduce(sq / 2 if half else sq, reduction, jnp.mean)


def mse(predictions, targets, *, reduction="mean", half=False):
    """Mean squared error.

    The notes: ``E = 1/n Σ_i (t_i − y_i)²``; with ``half=True`` their ½ convention
    ``E = 1/n Σ_i ½ (t_i − y_i)²``. Symbols: ``y`` → ``predictions``, ``t`` → ``targets``,
    ``n`` the number of examples (axis 0).

    Args:
      predictions: ``(n, ...)`` float array.
      targets: same shape as ``predictions``.
      reduction: ``"mean"`` | ``"sum"`` | ``"none"`` (keyword-only).
      half: multiply by ½ (keyword-only).

    Returns:
      scalar, or ``(n,)`` per-example losses for ``reduction="none"``; dtype of ``predictions``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _mse(p, t, reduction, bool(half))


@partial(jax.jit, static_argnames=("reduction", "half"))
def _mse_gradient(p, t, reduction, half):
    g = (p - t) if half else 2 * (p - t)
    return g / _scale(p.shape, reduction, per_example_mean=True)


def mse_gradient(predictions, targets, *, reduction="mean", half=False):
    """d mse / d predictions: ``∂E/∂y_i = −2 (t_i − y_i) / n`` (``−(t_i − y_i) / n`` with ``half=True``).

    Note the minus sign, which the notes drop (see docs/errata.md). For ``ndim >= 2`` the
    divisor also counts the trailing entries averaged per example.

    Returns:
      array with the shape and dtype of ``predictions``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _mse_gradient(p, t, reduction, bool(half))


@partial(jax.jit, static_argnames=("reduction",))
def _sum_of_squares(p, t, reduction):
    return _reduce((p - t) ** 2, reduction, jnp.sum)


def sum_of_squares(predictions, targets, *, reduction="mean"):
    """Sum of squared errors per example, seed 001's ``loss = Σ_i (a_i⁽³⁾ − expected_i)²``.

    Symbols: ``a⁽³⁾`` → ``predictions`` (the output layer), ``expected`` → ``targets``;
    ``i`` runs over the trailing axes (the output units) of each example.

    Args:
      predictions: ``(n, ...)`` float array.
      targets: same shape.
      reduction: ``"mean"`` (mean over examples) | ``"sum"`` | ``"none"``.

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _sum_of_squares(p, t, reduction)


@partial(jax.jit, static_argnames=("reduction",))
def _sum_of_squares_gradient(p, t, reduction):
    return 2 * (p - t) / _scale(p.shape, reduction, per_example_mean=False)


def sum_of_squares_gradient(predictions, targets, *, reduction="mean"):
    """``∂loss/∂a_i = 2 (a_i − expected_i)`` (divided by ``n`` for ``reduction="mean"``).

    Returns:
      array with the shape and dtype of ``predictions``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _sum_of_squares_gradient(p, t, reduction)


@partial(jax.jit, static_argnames=("reduction",))
def _rmse(p, t, reduction):
    return jnp.sqrt(_mse(p, t, reduction, False))


def rmse(predictions, targets, *, reduction="mean"):
    """Root mean squared error, the notes' ``RMSE = √MSE``.

    ``rmse(..., reduction=r) = sqrt(mse(..., reduction=r))``: for ``"mean"`` the root of the
    mean over all examples; for ``"none"`` the per-example root; for ``"sum"`` the root of
    the summed per-example MSE. Symbols as in :func:`mse`.

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _rmse(p, t, reduction)


@partial(jax.jit, static_argnames=("reduction",))
def _rmse_gradient(p, t, reduction):
    # d√M/dy = (dM/dy) / (2√M). At M = 0 (a perfect fit) the root is not differentiable;
    # 0 is returned there (a valid subgradient) instead of 0/0.
    m = _mse(p, t, reduction, False)
    dm = _mse_gradient(p, t, reduction, False)
    if reduction == "none" and m.ndim == 1:
        m = m.reshape((-1,) + (1,) * (p.ndim - 1))
    safe = jnp.where(m > 0, m, jnp.ones_like(m))
    return jnp.where(m > 0, dm / (2 * jnp.sqrt(safe)), jnp.zeros_like(dm))


def rmse_gradient(predictions, targets, *, reduction="mean"):
    """``∂RMSE/∂y = (∂MSE/∂y) / (2 √MSE)``; 0 where MSE = 0 (the root's kink).

    Returns:
      array with the shape and dtype of ``predictions``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _rmse_gradient(p, t, reduction)


# --------------------------------------------------------------------------- absolute error


@partial(jax.jit, static_argnames=("reduction",))
def _mae(p, t, reduction):
    return _reduce(jnp.abs(t - p), reduction, jnp.mean)


def mae(predictions, targets, *, reduction="mean"):
    """Mean absolute error (L1 loss) ``MAE = 1/n Σ_i |t_i − y_i|``.

    The notes write ``(t_i − y_i)¹`` and drop the absolute value (docs/errata.md).
    Symbols: ``y`` → ``predictions``, ``t`` → ``targets``.

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _mae(p, t, reduction)


@partial(jax.jit, static_argnames=("reduction",))
def _mae_gradient(p, t, reduction):
    return jnp.sign(p - t) / _scale(p.shape, reduction, per_example_mean=True)


def mae_gradient(predictions, targets, *, reduction="mean"):
    """``∂MAE/∂y_i = sign(y_i − t_i) / n`` (0 where ``y_i = t_i``, a valid subgradient).

    Returns:
      array with the shape and dtype of ``predictions``.
    """
    p, t = _prepare(predictions, targets, reduction)
    return _mae_gradient(p, t, reduction)


# --------------------------------------------------------------------------- binary cross-entropy


def _clip_probabilities(p):
    # log(0) = −inf: clip to [ε, 1 − ε] with ε the dtype's machine epsilon, so the
    # loss stays finite at p ∈ {0, 1} in every dtype (bfloat16 included).
    eps = jnp.finfo(p.dtype).eps
    return jnp.clip(p, eps, 1 - eps)


@partial(jax.jit, static_argnames=("reduction",))
def _binary_cross_entropy(p, t, reduction):
    pc = _clip_probabilities(p)
    return _reduce(-(t * jnp.log(pc) + (1 - t) * jnp.log1p(-pc)), reduction, jnp.sum)


def binary_cross_entropy(probabilities, targets, *, reduction="mean"):
    """Binary cross-entropy on probabilities.

    The notes: ``E(t, y) = −1/N Σ_i [t_i · log(y_i) + (1 − t_i) · log(1 − y_i)]``.
    Symbols: ``y`` → ``probabilities`` (in [0, 1]), ``t`` → ``targets`` (in [0, 1]),
    ``N`` the number of examples. ``y`` is clipped to ``[ε, 1 − ε]`` (``ε`` the dtype's
    machine epsilon), so the loss is finite at ``y ∈ {0, 1}``. Prefer
    :func:`binary_cross_entropy_with_logits` when the logits are at hand.

    Args:
      probabilities: ``(n, ...)`` float array in [0, 1].
      targets: same shape, in [0, 1].
      reduction: ``"mean"`` | ``"sum"`` | ``"none"``; per example the loss sums over trailing axes.

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    p, t = _prepare(probabilities, targets, reduction, names=("probabilities", "targets"))
    _check_unit_interval(probabilities, name="probabilities")
    _check_unit_interval(targets, name="targets")
    return _binary_cross_entropy(p, t, reduction)


@partial(jax.jit, static_argnames=("reduction",))
def _binary_cross_entropy_gradient(p, t, reduction):
    pc = _clip_probabilities(p)
    return (pc - t) / (pc * (1 - pc)) / _scale(p.shape, reduction, per_example_mean=False)


def binary_cross_entropy_gradient(probabilities, targets, *, reduction="mean"):
    """``∂E_i/∂y_i = (y_i − t_i) / (y_i (1 − y_i))`` (divided by ``N`` for ``"mean"``).

    The notes' final form, which is right; their middle step has a sign error
    (docs/errata.md). Evaluated at the clipped ``y``, so it is finite at ``y ∈ {0, 1}``.

    Returns:
      array with the shape and dtype of ``probabilities``.
    """
    p, t = _prepare(probabilities, targets, reduction, names=("probabilities", "targets"))
    _check_unit_interval(probabilities, name="probabilities")
    _check_unit_interval(targets, name="targets")
    return _binary_cross_entropy_gradient(p, t, reduction)


@partial(jax.jit, static_argnames=("reduction",))
def _binary_cross_entropy_with_logits(z, t, reduction):
    # −t log σ(z) − (1 − t) log(1 − σ(z)) = softplus(z) − t·z, with softplus(z) =
    # log(1 + e^z) = logaddexp(0, z): never overflows, and its derivative is σ(z)
    # everywhere (max(z, 0) + log1p(e^−|z|) has the right value but autodiff splits
    # the kink at z = 0 wrongly).
    elementwise = jnp.logaddexp(jnp.zeros_like(z), z) - t * z
    return _reduce(elementwise, reduction, jnp.sum)


def binary_cross_entropy_with_logits(logits, targets, *, reduction="mean"):
    """Binary cross-entropy of ``y = sigmoid(z)``, computed stably from the logits ``z``.

    The notes: ``E = −1/N Σ_i [t_i log(y_i) + (1 − t_i) log(1 − y_i)]`` with ``y_i = 1/(1 + e^(−z_i))``,
    rewritten as ``log(1 + e^z) − t·z`` (a log-add-exp). Symbols: ``z`` → ``logits``,
    ``t`` → ``targets`` (in [0, 1]).

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    z, t = _prepare(logits, targets, reduction, names=("logits", "targets"))
    _check_unit_interval(targets, name="targets")
    return _binary_cross_entropy_with_logits(z, t, reduction)


@partial(jax.jit, static_argnames=("reduction",))
def _binary_cross_entropy_with_logits_gradient(z, t, reduction):
    return (_sigmoid(z, 1.0) - t) / _scale(z.shape, reduction, per_example_mean=False)


def binary_cross_entropy_with_logits_gradient(logits, targets, *, reduction="mean"):
    """``∂E_i/∂z_i = y_i − t_i`` with ``y = sigmoid(z)``.

    The notes' chain rule ``∂E/∂y · ∂y/∂z = (y − t)/(y(1 − y)) · y(1 − y)``; times ``x``
    it is their ``∂E/∂w = (y − t) · x``.

    Returns:
      array with the shape and dtype of ``logits``.
    """
    z, t = _prepare(logits, targets, reduction, names=("logits", "targets"))
    _check_unit_interval(targets, name="targets")
    return _binary_cross_entropy_with_logits_gradient(z, t, reduction)


# --------------------------------------------------------------------------- categorical cross-entropy


@partial(jax.jit, static_argnames=("reduction",))
def _categorical_cross_entropy(p, t, reduction):
    pc = jnp.maximum(p, jnp.finfo(p.dtype).tiny)
    return _per_position(-jnp.sum(t * jnp.log(pc), axis=-1), reduction)


def categorical_cross_entropy(probabilities, targets, *, reduction="mean"):
    """Cross-entropy on probabilities, the notes' ``CE = −1/N Σ_k Σ_i y_i log(ŷ_i)``.

    Symbols: ``ŷ`` → ``probabilities`` (e.g. a softmax output, classes on the last axis),
    ``y`` → ``targets`` (one-hot or a probability vector), ``i`` runs over the classes,
    ``k`` over the ``N`` examples (axis 0). Like :func:`softmax_cross_entropy` the last axis is
    the class axis, so a 1-D input is one example. ``ŷ`` is floored at the dtype's smallest normal
    number, so a zero probability gives a large finite loss, not ``inf``. Prefer
    :func:`softmax_cross_entropy` on logits.

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``.
    """
    p, t = _prepare(probabilities, targets, reduction, names=("probabilities", "targets"))
    _check_class_axis(p, name="probabilities")
    _check_unit_interval(probabilities, name="probabilities")
    return _categorical_cross_entropy(p, t, reduction)


@partial(jax.jit, static_argnames=("reduction",))
def _categorical_cross_entropy_gradient(p, t, reduction):
    pc = jnp.maximum(p, jnp.finfo(p.dtype).tiny)
    return -t / pc / _scale(p.shape[:-1], reduction, per_example_mean=False)


def categorical_cross_entropy_gradient(probabilities, targets, *, reduction="mean"):
    """``∂CE/∂ŷ_i = −y_i / ŷ_i`` (divided by ``N`` for ``"mean"``).

    Returns:
      array with the shape and dtype of ``probabilities``.
    """
    p, t = _prepare(probabilities, targets, reduction, names=("probabilities", "targets"))
    _check_class_axis(p, name="probabilities")
    _check_unit_interval(probabilities, name="probabilities")
    return _categorical_cross_entropy_gradient(p, t, reduction)


def _check_class_axis(x, *, name):
    if jnp.ndim(x) == 0:
        raise ValueError(f"{name} must have a class axis (the last), got {name}.shape=()")


def _prepare_softmax(logits, labels, reduction):
    """Logits and labels -> (float logits, float targets of the logits' shape)."""
    v.check_choice(reduction, _REDUCTIONS, name="reduction")
    z = _float(logits)
    _check_class_axis(z, name="logits")
    labels_shape = tuple(np.shape(labels))
    labels_dtype = jnp.asarray(labels).dtype
    num_classes = z.shape[-1]
    if jnp.issubdtype(labels_dtype, jnp.integer) and labels_shape == z.shape[:-1]:
        v.check_labels(labels, num_classes, name="labels")
        t = jax.nn.one_hot(labels, num_classes, dtype=z.dtype)
    elif labels_shape == z.shape:
        t = jnp.asarray(labels).astype(z.dtype)
    else:
        raise ValueError(
            "labels must be integers of shape logits.shape[:-1] or one-hot/probabilities of "
            f"logits' shape, got logits.shape={z.shape} and labels.shape={labels_shape} "
            f"(dtype {labels_dtype})"
        )
    return z, t


def _per_position(values, reduction):
    """Per-position losses (shape logits.shape[:-1]) -> reduced like the other losses."""
    return _reduce(values, reduction, jnp.sum)


@partial(jax.jit, static_argnames=("reduction",))
def _softmax_cross_entropy(z, t, reduction):
    return _per_position(-jnp.sum(t * _log_softmax_core(z, -1), axis=-1), reduction)


def softmax_cross_entropy(logits, labels, *, reduction="mean"):
    """Softmax followed by cross-entropy, computed stably from the logits.

    The notes: ``CE = −Σ_i y_i log( e^(ŷ_i) / Σ_j e^(ŷ_j) )``, averaged over the ``N`` examples.
    Symbols: ``ŷ`` → ``logits`` (classes on the last axis), ``y`` → ``labels``. The
    log-softmax is max-shifted (log-sum-exp), so logits up to 1e4 stay finite.

    Args:
      logits: ``(n, C)`` (or ``(n, ..., C)``, or ``(C,)`` for one example) float array.
      labels: integer class indices of shape ``logits.shape[:-1]`` in ``[0, C)``, or one-hot /
        probability vectors of ``logits``' shape.
      reduction: ``"mean"`` | ``"sum"`` | ``"none"``; per example the loss sums over the
        positions between axis 0 and the class axis.

    Returns:
      scalar, or ``(n,)`` for ``reduction="none"``; dtype of ``logits``.
    """
    z, t = _prepare_softmax(logits, labels, reduction)
    return _softmax_cross_entropy(z, t, reduction)


@partial(jax.jit, static_argnames=("reduction",))
def _softmax_cross_entropy_gradient(z, t, reduction):
    p = _softmax_core(z, -1)
    # p·Σ_i y_i − y: the notes' p − onehot when the targets sum to 1, exact for any targets.
    g = p * jnp.sum(t, axis=-1, keepdims=True) - t
    return g / _scale(z.shape[:-1], reduction, per_example_mean=False)


def softmax_cross_entropy_gradient(logits, labels, *, reduction="mean"):
    """``∂CE/∂ŷ_i = p_i − y_i`` with ``p = softmax(ŷ)`` (``p − onehot`` for integer labels).

    Divided by ``N`` for ``reduction="mean"``. For targets that do not sum to 1 the exact
    form ``p_i Σ_j y_j − y_i`` is used.

    Returns:
      array with the shape and dtype of ``logits``.
    """
    z, t = _prepare_softmax(logits, labels, reduction)
    return _softmax_cross_entropy_gradient(z, t, reduction)
