"""Fooling images: noise that a trained classifier names as a digit, and the noise it is sure about already.

Seed 001: "Random patterns will often be strongly identified as a number". :func:`noise_confidence` measures
how sure a network is on uniform noise; :func:`fooling_image` makes it sure, by gradient ascent on the input
from noise towards one class (Nguyen et al. 2015, "Deep neural networks are easily fooled"):

    J(x) = log softmax(f(x))_t − λ R(x),    x ← clip(x + η ∇ₓJ(x), 0, 1)

until softmax(f(x))_t ≥ the requested confidence. R is nothing, the squared distance to the starting noise
(the image stays a random pattern) or the total variation (it gets smooth, blob-like strokes).

Images are ``(n, H, W)`` arrays in [0, 1]; with ``flatten=True`` (the default, as in
``training.make_classifier_loss``) the model sees ``(n, H·W)`` rows, which both the MLP and LeNet-5 accept.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath import _validation as V
from jaxmath.adversarial.losses import cross_entropy
from jaxmath.unsupervised import _guard as _g

Array = jax.Array
PENALTIES = (None, "l2", "tv")


class FoolingInfo(NamedTuple):
    """What :func:`fooling_image` did.

    converged: () bool, every image reached ``confidence``.
    num_steps: () int32, gradient steps made (the batch stops when its last image is confident enough).
    loss_history: (max_steps,) the loss −(1/n) Σ_i J(x_i) at the images each step starts from (NaN after the
      last step).
    confidence: (n,) (or () for a scalar target) softmax(f(x))_t of the returned images.
    steps_to_confidence: (n,) (or ()) int32, steps after which each image first reached ``confidence`` (it is
      frozen from then on); -1 when it never did.
    nonfinite: () bool, a step gave images with a non-finite objective or pixels: it was undone, the loop
      stopped and the images before it came back (a ``RuntimeWarning`` says so).
    first_nonfinite_step: () int32, that step's index (0 also when the starting noise itself evaluates
      non-finite), -1 when every step was finite.
    """

    converged: Array
    num_steps: Array
    loss_history: Array
    confidence: Array
    steps_to_confidence: Array
    nonfinite: Array
    first_nonfinite_step: Array


class NoiseConfidence(NamedTuple):
    """:func:`noise_confidence`'s answer: ``confidence`` (n,) max_k softmax(f(x))_k, ``predicted`` (n,) int32 argmax."""

    confidence: Array
    predicted: Array


def _abs(d):
    # |d| as d·sign(d): its gradient is sign(d), 0 on flat regions (jnp.abs's is 1 at 0), so a uniform patch
    # of clipped pixels is not pushed by the penalty.
    return d * jnp.sign(d)


@jax.jit
def total_variation(x: Array) -> Array:
    """Anisotropic total variation of each image, over the last two axes (rows, columns).

        TV(x) = Σ_{i,j} |x_{i+1,j} − x_{i,j}| + Σ_{i,j} |x_{i,j+1} − x_{i,j}|

    Its gradient is the subgradient with sign(0) = 0: zero on flat regions.

    Args:
      x: ``(..., H, W)`` float array.

    Returns:
      ``(...)`` array of x's dtype.
    """
    if jnp.ndim(x) < 2:
        raise ValueError(f"x must have at least 2 axes (..., H, W), got x.shape={jnp.shape(x)}")
    rows = _abs(jnp.diff(x, axis=-2))
    cols = _abs(jnp.diff(x, axis=-1))
    return jnp.sum(rows, axis=(-2, -1)) + jnp.sum(cols, axis=(-2, -1))


def _penalty(x, x0, penalty):
    if penalty == "l2":
        return jnp.sum(jnp.square(x - x0).reshape(x.shape[0], -1), axis=-1)
    if penalty == "tv":
        return total_variation(x)
    return jnp.zeros(x.shape[:1], x.dtype)


def _log_probs(apply_fn, params, x, target, flatten):
    logits = apply_fn(params, x.reshape(x.shape[0], -1) if flatten else x)
    if jnp.ndim(logits) != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(f"apply_fn must return (n, num_classes) logits for n={x.shape[0]} images, "
                         f"got shape {jnp.shape(logits)}")
    return -cross_entropy(logits, target.astype(jnp.int32))  # log-sum-exp form: finite for large logits


def _check_images(x, x0, target, penalty):
    V.check_choice(penalty, PENALTIES, name="penalty")
    if jnp.ndim(x) < 2:
        raise ValueError(f"x must be (n, ...) images, got x.shape={jnp.shape(x)}")
    V.check_same_shape(x, x0, names=("x", "x0"))
    V.check_ndim(target, 1, name="target")
    V.check_same_length(x, target, names=("x", "target"))
    if penalty == "tv" and jnp.ndim(x) != 3:
        raise ValueError(f"penalty='tv' needs (n, H, W) images, got x.shape={jnp.shape(x)}")


@partial(jax.jit, static_argnames=("apply_fn", "penalty", "flatten"))
def fooling_objective(
    apply_fn: Callable, params: Any, x: Array, x0: Array, target: Array, *,
    penalty: str | None = None, penalty_weight: Any = 0.0, flatten: bool = True,
) -> Array:
    """The objective each fooling image ascends, per image.

        J(x_i) = log softmax(f(x_i))_{t_i} − λ R(x_i),
        R = 0 (None),  ‖x_i − x0_i‖² = Σ_pixels (x_i − x0_i)²  ("l2"),  TV(x_i)  ("tv", :func:`total_variation`)

    f ↔ ``apply_fn(params, ·)``, t ↔ ``target``, λ ↔ ``penalty_weight``, x0 ↔ ``x0`` (the starting noise).

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, num_classes)`` logits (static: hashable).
      params: the model's params.
      x: ``(n, H, W)`` float images (any ``(n, ...)`` without "tv").
      x0: like ``x``, the images the ascent started from.
      target: ``(n,)`` integer classes.
      penalty: None, "l2" or "tv".
      penalty_weight: λ ≥ 0 (a traced scalar is fine).
      flatten: give the model ``(n, H·W)`` rows.

    Returns:
      ``(n,)`` array of J.
    """
    return _objective(apply_fn, params, x, x0, target, penalty, penalty_weight, flatten)[0]


def _objective(apply_fn, params, x, x0, target, penalty, penalty_weight, flatten):
    """(J (n,), log softmax(f(x))_t (n,))."""
    _check_images(x, x0, target, penalty)
    V.check_real(penalty_weight, name="penalty_weight")
    log_p = _log_probs(apply_fn, params, x, target, flatten)
    weight = jnp.asarray(penalty_weight, log_p.dtype)
    return log_p - weight * _penalty(x, x0, penalty).astype(log_p.dtype), log_p


@partial(jax.jit, static_argnames=("apply_fn", "max_steps", "penalty", "flatten"))
def _ascend(apply_fn, params, x0, target, learning_rate, penalty_weight, confidence, *, max_steps, penalty, flatten):
    dtype = x0.dtype
    lr = jnp.asarray(learning_rate, dtype)
    log_conf = jnp.log(jnp.asarray(confidence, jnp.promote_types(dtype, jnp.float32)))
    zero, one = jnp.asarray(0, dtype), jnp.asarray(1, dtype)

    def total(x):
        values, log_p = _objective(apply_fn, params, x, x0, target, penalty, penalty_weight, flatten)
        return jnp.sum(values), (values, log_p)

    def cond(carry):
        _, _, step, finished, _, _, first_bad = carry
        return (step < max_steps) & ~finished & (first_bad < 0)

    def body(carry):
        x, x_prev, step, _, history, reached, first_bad = carry
        (_, (values, log_p)), grad = jax.value_and_grad(total, has_aux=True)(x)
        value_ok = _g.all_finite(values)
        done = value_ok & (log_p.astype(log_conf.dtype) >= log_conf)
        reached = jnp.where((reached < 0) & done, step, reached)
        # Confident images are frozen, so each image's path does not depend on the others in the batch.
        moving = (~done).reshape((-1,) + (1,) * (x.ndim - 1))
        candidate = jnp.where(moving, jnp.clip(x + lr * grad, zero, one), x)
        candidate_ok = _g.all_finite(candidate)
        finished = jnp.all(done)
        advance = value_ok & candidate_ok & ~finished
        history = history.at[step].set(jnp.where(advance, -jnp.mean(values), jnp.nan).astype(history.dtype))
        # Images whose objective is non-finite came from the previous step: that step is undone.
        undo = ~value_ok & (step > 0)
        new_x = jnp.where(advance, candidate, jnp.where(undo, x_prev, x))
        x_prev = jnp.where(advance, x, x_prev)
        first_bad = jnp.where(value_ok & candidate_ok, first_bad, jnp.where(undo, step - 1, step))
        step = jnp.where(advance, step + 1, jnp.where(undo, step - 1, step))
        return new_x, x_prev, step, finished, history, reached, first_bad

    n = x0.shape[0]
    init = (x0, x0, jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.full((max_steps,), jnp.nan, dtype),
            jnp.full((n,), -1, jnp.int32), jnp.asarray(_g.NO_STEP, jnp.int32))
    x, x_prev, steps, _, history, reached, first_bad = lax.while_loop(cond, body, init)
    log_p = _log_probs(apply_fn, params, x, target, flatten)
    # The last step's images are only evaluated here: undo it too when they are non-finite.
    undo = (first_bad < 0) & (steps > 0) & ~_g.all_finite(log_p)
    x = jnp.where(undo, x_prev, x)
    first_bad = jnp.where(undo, steps - 1, first_bad)
    steps = jnp.where(undo, steps - 1, steps)
    log_p = jnp.where(undo, _log_probs(apply_fn, params, x, target, flatten), log_p)
    done = log_p.astype(log_conf.dtype) >= log_conf
    reached = jnp.where((reached < 0) & done, steps, reached)
    info = FoolingInfo(jnp.all(done), steps, _g.after_stop(history, first_bad), jnp.exp(log_p), reached,
                       first_bad >= 0, first_bad)
    return x, info


def _params_dtype(params):
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(params) if jnp.issubdtype(jnp.result_type(leaf), jnp.floating)]
    if not leaves:
        raise TypeError("params must hold at least one floating-point array")
    return jnp.result_type(leaves[0])


def num_classes_of(apply_fn: Callable, params: Any, example_shape: tuple, *, flatten: bool) -> int:
    """Number of classes of ``apply_fn``, read from its output shape on one abstract example (nothing runs)."""
    shape = (1, math.prod(example_shape)) if flatten else (1,) + tuple(example_shape)
    out = jax.eval_shape(apply_fn, params, jax.ShapeDtypeStruct(shape, _params_dtype(params)))
    if len(out.shape) != 2 or out.shape[0] != 1:
        raise ValueError(f"apply_fn must map (n, ...) inputs to (n, num_classes) logits, got {out.shape} for {shape}")
    return int(out.shape[1])


def check_rate(value: Any, *, name: str) -> None:
    """A step size: a finite real number > 0 (host-side check)."""
    V.check_positive(value, name=name)
    if V.is_concrete(value) and math.isinf(float(value)):
        raise ValueError(f"{name} must be finite, got {name}={value!r}")


def check_target(target: Any, num_classes: int) -> Array:
    """``target`` as an int32 array (scalar or (n,)), each in [0, num_classes)."""
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"target must be an integer class or an integer array, got target.dtype={target.dtype}")
    if target.ndim > 1:
        raise ValueError(f"target must be a class index or a (n,) array of them, got target.shape={target.shape}")
    V.check_labels(target.reshape(-1), num_classes, name="target")
    return target.astype(jnp.int32)


def _check_shape(shape):
    if not isinstance(shape, (tuple, list)) or not shape or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise ValueError(
            f"shape must be one image's shape, a tuple of positive ints such as (28, 28), got shape={shape!r}")
    return tuple(int(s) for s in shape)


def fooling_image(
    apply_fn: Callable, params: Any, key: Array, *, target: Any, shape: tuple, max_steps: int, learning_rate: Any,
    penalty: str | None = None, penalty_weight: Any = 0.0, confidence: Any = 0.99, flatten: bool = True,
) -> tuple[Array, FoolingInfo]:
    """Images the model classifies as ``target`` with probability ≥ ``confidence``, grown from uniform noise.

        x⁰ ~ U[0, 1]^shape (``jax.random.uniform(key, (n,) + shape, dtype)``, n = 1 for a scalar target),
        xᵏ⁺¹ = clip(xᵏ + η ∇ₓJ(xᵏ), 0, 1),   J(x) = log softmax(f(x))_t − λ R(x)     (:func:`fooling_objective`)

    One step is one gradient step on every image not yet confident; an image that reaches
    softmax(f(x))_t ≥ c is frozen. The loop (a jitted ``lax.while_loop``) ends when all are, or after
    ``max_steps``. R: None; "l2" = ‖x − x⁰‖² (the distance to the starting noise, so the image stays noise-like);
    "tv" = total variation (:func:`total_variation`). The pixels are in the params' dtype.

    f ↔ ``apply_fn(params, ·)``, t ↔ ``target``, η ↔ ``learning_rate``, λ ↔ ``penalty_weight``,
    c ↔ ``confidence``.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, num_classes)`` logits, e.g. ``model.apply`` (hashable: static).
      params: the model's params.
      key: PRNG key of the starting noise.
      target: a class index (one image) or a ``(n,)`` integer array (n images, e.g. ``jnp.arange(10)``).
      shape: one image's shape, e.g. ``(28, 28)``.
      max_steps: most gradient steps, >= 1.
      learning_rate: η > 0, finite.
      penalty: None, "l2" or "tv" ("tv" needs a 2-D ``shape``).
      penalty_weight: λ ≥ 0 (must be 0 without a penalty).
      confidence: c in (0, 1].
      flatten: give the model ``(n, prod(shape))`` rows (the MLP needs them; LeNet-5 takes both).

    Returns:
      ``(x, info)``: x ``shape`` (scalar target) or ``(n,) + shape`` floats in [0, 1]; info a :class:`FoolingInfo`.
    """
    V.check_key(key)
    shape = _check_shape(shape)
    V.check_integer(max_steps, name="max_steps", minimum=1)
    check_rate(learning_rate, name="learning_rate")
    V.check_choice(penalty, PENALTIES, name="penalty")
    V.check_positive(penalty_weight, name="penalty_weight", allow_zero=True)
    if V.is_concrete(penalty_weight) and math.isinf(float(penalty_weight)):
        raise ValueError(f"penalty_weight must be finite, got penalty_weight={penalty_weight!r}")
    if penalty is None and V.is_concrete(penalty_weight) and float(penalty_weight) != 0:
        raise ValueError(f"penalty_weight={penalty_weight!r} needs a penalty ('l2' or 'tv'), got penalty=None")
    if penalty == "tv" and len(shape) != 2:
        raise ValueError(f"penalty='tv' needs a 2-D image shape (H, W), got shape={shape}")
    V.check_in_range(confidence, name="confidence", low=0.0, high=1.0, low_inclusive=False, high_inclusive=True)
    target = check_target(target, num_classes_of(apply_fn, params, shape, flatten=flatten))
    targets = target.reshape(-1)
    x0 = jax.random.uniform(key, (targets.shape[0],) + shape, _params_dtype(params))
    x, info = _ascend(apply_fn, params, x0, targets, learning_rate, penalty_weight, confidence, max_steps=max_steps,
                      penalty=penalty, flatten=flatten)
    _g.warn_nonfinite(info, where="fooling_image", what="images", hint="; lower learning_rate")
    if target.ndim == 0:
        x = x[0]
        info = info._replace(confidence=info.confidence[0], steps_to_confidence=info.steps_to_confidence[0])
    return x, info


@partial(jax.jit, static_argnames=("apply_fn", "num_images", "shape", "batch_size", "flatten", "dtype"))
def _noise_confidence(apply_fn, params, key, *, num_images, shape, batch_size, flatten, dtype):
    def one_batch(batch_key):
        x = jax.random.uniform(batch_key, (batch_size,) + shape, dtype)
        logits = apply_fn(params, x.reshape(batch_size, -1) if flatten else x)
        prob = jax.nn.softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), axis=-1)
        return jnp.max(prob, axis=-1), jnp.argmax(logits, axis=-1).astype(jnp.int32)

    num_batches = -(-num_images // batch_size)
    confidence, predicted = lax.map(one_batch, jax.random.split(key, num_batches))
    return NoiseConfidence(confidence.reshape(-1)[:num_images], predicted.reshape(-1)[:num_images])


def noise_confidence(
    apply_fn: Callable, params: Any, key: Array, *, num_images: int, shape: tuple, batch_size: int = 1000,
    flatten: bool = True,
) -> NoiseConfidence:
    """How sure the model is on pure noise: max_k softmax(f(x))_k for x ~ U[0, 1]^shape, and its class.

    The noise is drawn ``batch_size`` images at a time (one key per batch, split from ``key``) so a
    convolutional model never holds more than one batch's activations. Jitted, ``lax.map`` over batches.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, num_classes)`` logits.
      params: the model's params (their dtype is the pixels').
      key: PRNG key.
      num_images: n >= 1.
      shape: one image's shape, e.g. ``(28, 28)``.
      batch_size: images per forward pass, >= 1.
      flatten: give the model ``(batch, prod(shape))`` rows.

    Returns:
      :class:`NoiseConfidence` of ``(n,)`` arrays: ``confidence`` (at least float32), ``predicted`` int32.
    """
    V.check_key(key)
    shape = _check_shape(shape)
    V.check_integer(num_images, name="num_images", minimum=1)
    V.check_integer(batch_size, name="batch_size", minimum=1)
    num_classes_of(apply_fn, params, shape, flatten=flatten)
    batch_size = min(batch_size, num_images)
    return _noise_confidence(apply_fn, params, key, num_images=num_images, shape=shape, batch_size=batch_size,
                             flatten=flatten, dtype=jnp.dtype(_params_dtype(params)).name)
