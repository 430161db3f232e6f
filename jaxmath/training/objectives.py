"""Loss functions for ``make_train_step`` that read raw uint8 images and integer labels."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxmath import _validation as V
from jaxmath import losses as _losses

CLASSIFIER_LOSSES = ("softmax_cross_entropy", "sum_of_squares", "mse")


def prepare_images(images: jax.Array, dtype, *, flatten: bool = True) -> jax.Array:
    """Pixels as model inputs: integer images are scaled to [0, 1] (x / 255), floats are cast to ``dtype``.

    Args:
      images: ``(n, ...)`` uint8 (or float) array.
      dtype: float dtype of the result (the params' dtype).
      flatten: reshape to ``(n, prod(...))`` (28 x 28 → 784).

    Returns:
      ``(n, d)`` (flatten) or ``images.shape`` array of ``dtype``.
    """
    x = images
    if jnp.issubdtype(x.dtype, jnp.integer):
        # Divide in the target dtype: no float64 constant on devices without it.
        x = x.astype(dtype) / jnp.asarray(255, dtype)
    else:
        x = x.astype(dtype)
    if flatten:
        x = x.reshape(x.shape[0], -1)
    return x


def make_classifier_loss(
    apply_fn: Callable, *, num_classes: int, loss: str = "softmax_cross_entropy", flatten: bool = True
) -> Callable:
    """``loss_fn(params, (images, labels)) -> (C, {"accuracy": acc})`` for ``make_train_step`` and ``run_epoch``.

        softmax_cross_entropy:  C = -(1/n) Σ_k log softmax(f(x_k))_{y_k}       (f returns logits)
        sum_of_squares:         C = (1/n) Σ_k Σ_i (f(x_k)_i - onehot(y_k)_i)²   (the notes' loss)
        mse:                    C = (1/n) Σ_k (1/c) Σ_i (f(x_k)_i - onehot(y_k)_i)²
        accuracy = (1/n) Σ_k [argmax_i f(x_k)_i = y_k]

    f ↔ ``apply_fn``, c ↔ ``num_classes``; x_k are the images scaled by ``prepare_images`` inside the
    compiled step (uint8 data stays uint8 on the device).

    Args:
      apply_fn: ``apply_fn(params, x (n, d)) -> (n, num_classes)``, e.g.
        ``functools.partial(jaxmath.models.mlp.apply, activation="sigmoid", output="sigmoid")``.
      num_classes: number of classes c (10 for MNIST); ``fit`` checks labels against it.
      loss: "softmax_cross_entropy", "sum_of_squares" or "mse".
      flatten: flatten each image to a vector before ``apply_fn``.

    Returns:
      ``loss_fn`` with the attributes ``num_classes`` and ``loss``.
    """
    V.check_integer(num_classes, name="num_classes", minimum=2)
    V.check_choice(loss, CLASSIFIER_LOSSES, name="loss")

    def loss_fn(params, batch):
        images, labels = batch
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        outputs = apply_fn(params, prepare_images(images, dtype, flatten=flatten))
        labels = labels.astype(jnp.int32)
        if loss == "softmax_cross_entropy":
            value = _losses.softmax_cross_entropy(outputs, labels)
        else:
            targets = jax.nn.one_hot(labels, num_classes, dtype=outputs.dtype)
            value = getattr(_losses, loss)(outputs, targets)
        # At least float32: a bfloat16 mean of 0/1 values would round the accuracy to 8 bits.
        accuracy = jnp.mean((jnp.argmax(outputs, axis=-1) == labels).astype(jnp.promote_types(outputs.dtype, jnp.float32)))
        return value, {"accuracy": accuracy}

    loss_fn.num_classes = num_classes
    loss_fn.loss = loss
    return loss_fn
