"""What DeepDream maximises: one layer's (or one channel's) activation, or one class logit.

Seed 003: DeepDream "loops on some layers, thus manifesting the things it knows how to recognize in the
image". The loop is gradient ascent on the input; this module builds the quantity it climbs, from
``model.layer_outputs(params, x)`` (LeNet-5: "c1", "s2", "c3", "s4", "c5", "f6", "out"; the MLP: "layer_1" ..
"layer_L"):

    mean:  J(x) = (1/|a|) Σ_u a_u(x)          (the average activation of the layer or channel)
    l2:    J(x) = ½ Σ_u a_u(x)²                (google/deepdream's objective_L2, whose gradient wrt a is a)

where a = layer_outputs(params, x)[layer], restricted to ``a[..., channel]`` when a channel is given (a feature
map of a convolution layer, one unit of a dense layer, or one class logit of "out").
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from jaxmath import _validation as V
from jaxmath.models.model import Model

__all__ = ["layer_objective", "layer_names", "layer_shapes", "KINDS"]

KINDS = ("mean", "l2")
MNIST_SHAPE = (28, 28)


def _check_model(model: Any) -> None:
    if not isinstance(model, Model):
        raise TypeError(f"model must be a jaxmath.models.Model (e.g. lenet5.make()), got {type(model).__name__}")
    if model.layer_outputs is None:
        raise ValueError(f"model {model.config.get('name')!r} has no layer_outputs: DeepDream needs named layers")


def _forward_order(model: Model, names: Sequence[str]) -> tuple[str, ...]:
    """Layer names in forward order (jit hands dicts back with sorted keys, which puts "c3" before "s2")."""
    if model.config.get("name") == "lenet5":
        from jaxmath.models.lenet5 import LAYERS

        return tuple(n for n in LAYERS if n in names) + tuple(n for n in names if n not in LAYERS)

    def natural(name: str):  # "layer_2" before "layer_10"
        return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]

    return tuple(sorted(names, key=natural))


def layer_shapes(model: Model, *, input_shape: Sequence[int] = MNIST_SHAPE) -> dict[str, tuple[int, ...]]:
    """Each layer's output shape for one image, in forward order, from shapes alone (``jax.eval_shape``).

    Args:
      model: a ``Model`` with ``layer_outputs`` (``lenet5.make()``, ``mlp.make(...)``).
      input_shape: the shape of one image, e.g. ``(28, 28)``; flattened for the model, as the objective does.

    Returns:
      ``{name: shape}`` with shapes of a batch of one, e.g. ``{"c1": (1, 28, 28, 6), ...}``.
    """
    _check_model(model)
    params = jax.eval_shape(model.init, jax.random.key(0))
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    try:
        shapes = jax.eval_shape(lambda p, x: model.layer_outputs(p, x.reshape(1, -1)), params, x)
    except (ValueError, TypeError) as err:
        raise ValueError(f"input_shape={tuple(input_shape)} does not fit the model: {err}") from None
    return {name: tuple(shapes[name].shape) for name in _forward_order(model, list(shapes))}


def layer_names(model: Model, *, input_shape: Sequence[int] = MNIST_SHAPE) -> tuple[str, ...]:
    """The names ``layer_objective`` accepts for ``model``, in forward order."""
    return tuple(layer_shapes(model, input_shape=input_shape))


def layer_objective(
    model: Model,
    layer: str,
    *,
    channel: int | None = None,
    kind: str = "mean",
    input_shape: Sequence[int] = MNIST_SHAPE,
) -> Callable[[Any, jax.Array], jax.Array]:
    """The per-image objective J(x) of one layer (or channel, or class logit) of ``model``.

        mean: J(x) = mean_u a_u(x);   l2: J(x) = ½ Σ_u a_u(x)²;   a = model.layer_outputs(params, x)[layer]
        (a[..., channel] when ``channel`` is given).

    The layer name and the channel are checked here, once, against the model's layer shapes (no params or data
    needed), so a typo fails before anything is compiled.

    Args:
      model: a ``Model`` with ``layer_outputs``.
      layer: a name from ``layer_names(model)``; "out" with ``channel=k`` is the logit of class k (LeNet-5).
      channel: index on the layer's last axis (a feature map, a unit, a class), or None for the whole layer.
      kind: "mean" or "l2".
      input_shape: the shape of one image the objective receives (default (28, 28)).

    Returns:
      ``objective(params, x) -> (n,)``: J of each image of ``x``, an ``(n, *input_shape)`` float array in
      [0, 1] (flattened to ``(n, prod(input_shape))`` for the model, which both jaxmath MNIST models accept).
      Jitted.
    """
    shapes = layer_shapes(model, input_shape=input_shape)
    if layer not in shapes:
        raise ValueError(f"layer must be one of {', '.join(shapes)} (the layers of this "
                         f"{model.config.get('name')} model), got layer={layer!r}")
    V.check_choice(kind, KINDS, name="kind")
    width = shapes[layer][-1]
    if channel is not None:
        V.check_integer(channel, name="channel")
        if not 0 <= channel < width:
            raise ValueError(f"channel must be in [0, {width}) for layer {layer!r} of shape "
                             f"(n, {', '.join(map(str, shapes[layer][1:]))}), got channel={channel}")
    image_shape = tuple(input_shape)

    @jax.jit
    def objective(params: Any, x: jax.Array) -> jax.Array:
        if tuple(x.shape[1:]) != image_shape:
            raise ValueError(f"x must have shape (n, {', '.join(map(str, image_shape))}), got x.shape={x.shape}")
        a = model.layer_outputs(params, x.reshape(x.shape[0], -1))[layer]
        if channel is not None:
            a = a[..., channel]
        a = a.reshape(a.shape[0], -1)
        if kind == "mean":
            return jnp.mean(a, axis=1)
        return jnp.asarray(0.5, a.dtype) * jnp.sum(jnp.square(a), axis=1)

    return objective
