"""Loss functions for ``make_train_step`` that read raw uint8 images and integer labels."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxmath import _validation as V
from jaxmath import losses as _losses
from jaxmath.models.model import Model

CLASSIFIER_LOSSES = ("softmax_cross_entropy", "sum_of_squares", "mse")


def prepare_images(x: jax.Array, dtype, *, flatten: bool = True) -> jax.Array:
    """Pixels as model inputs: integer images are scaled to [0, 1] (x / 255), floats are cast to ``dtype``.

    Args:
      x: ``(n, ...)`` uint8 (or float) array.
      dtype: float dtype of the result (the params' dtype).
      flatten: reshape to ``(n, prod(...))`` (28 x 28 → 784).

    Returns:
      ``(n, d)`` (flatten) or ``x.shape`` array of ``dtype``.
    """
    if jnp.issubdtype(x.dtype, jnp.integer):
        # Divide in the target dtype: no float64 constant on devices without it.
        x = x.astype(dtype) / jnp.asarray(255, dtype)
    else:
        x = x.astype(dtype)
    if flatten:
        x = x.reshape(x.shape[0], -1)
    return x


def make_classifier_loss(
    model: Model | Callable, *, num_classes: int, loss: str = "softmax_cross_entropy", flatten: bool = True
) -> Callable:
    """``loss_fn(params, (x, labels)) -> (C, {"accuracy": acc})`` for ``make_train_step`` and ``run_epoch``.

        softmax_cross_entropy:  C = -(1/n) Σ_k log softmax(f(x_k))_{y_k}       (f returns logits)
        sum_of_squares:         C = (1/n) Σ_k Σ_i (f(x_k)_i - onehot(y_k)_i)²   (the notes' loss)
        mse:                    C = (1/n) Σ_k (1/c) Σ_i (f(x_k)_i - onehot(y_k)_i)²
        accuracy = (1/n) Σ_k [argmax_i f(x_k)_i = y_k]

    f ↔ ``model.apply``, c ↔ ``num_classes``; x_k are the inputs scaled by ``prepare_images`` inside the
    compiled step (uint8 data stays uint8 on the device).

    Args:
      model: a ``jaxmath.models.Model`` (e.g. ``mlp.make((784, 16, 16, 10), output="sigmoid")``), whose
        ``apply(params, x (n, d)) -> (n, num_classes)`` is used, or such an apply function itself.
      num_classes: number of classes c (10 for MNIST); ``run_epoch``, ``evaluate`` and ``fit`` check labels
        against it.
      loss: "softmax_cross_entropy", "sum_of_squares" or "mse".
      flatten: flatten each image to a vector before ``model.apply``.

    Returns:
      ``loss_fn`` with the attributes ``num_classes``, ``loss`` and ``model`` (the ``Model``, or None).
    """
    apply_fn = model.apply if isinstance(model, Model) else model
    if not callable(apply_fn):
        raise TypeError(f"model must be a jaxmath.models.Model or an apply function, got {model!r}")
    V.check_integer(num_classes, name="num_classes", minimum=2)
    V.check_choice(loss, CLASSIFIER_LOSSES, name="loss")

    def loss_fn(params, batch):
        x, labels = batch
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        outputs = apply_fn(params, prepare_images(x, dtype, flatten=flatten))
        labels = labels.astype(jnp.int32)
        if loss == "softmax_cross_entropy":
            value = _losses.softmax_cross_entropy(outputs, labels)
        else:
            targets = jax.nn.one_hot(labels, num_classes, dtype=outputs.dtype)
            value = getattr(_losses, loss)(outputs, targets)
        # At least float32: a bfloat16 mean of 0/1 values would round the accuracy to 8 bits.
        hits = jnp.argmax(outputs, axis=-1) == labels
        accuracy = jnp.mean(hits.astype(jnp.promote_types(outputs.dtype, jnp.float32)))
        return value, {"accuracy": accuracy}

    loss_fn.num_classes = num_classes
    loss_fn.loss = loss
    loss_fn.model = model if isinstance(model, Model) else None
    return loss_fn
