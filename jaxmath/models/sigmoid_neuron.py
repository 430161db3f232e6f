"""A single sigmoid neuron trained by gradient descent (seed 000's artificial neuron, seed 004's gradient).

    s = Σ_i w_i x_i + w_0,    y = f(s) = 1 / (1 + e^(−β s))

trained on E = −1/N Σ_j [t_j log y_j + (1 − t_j) log(1 − y_j)] (``loss="cross_entropy"``), whose gradient is
the notes' ∂E/∂w = β/N Σ_j (y_j − t_j) x_j, or on the squared error E = 1/N Σ_j ½ (y_j − t_j)²
(``loss="squared_error"``, ∂E/∂w = 1/N Σ_j (y_j − t_j) β y_j (1 − y_j) x_j), by w ← w − η ∂E/∂w.

Symbols: x → a row of ``x`` (n, d), w_i → ``params["w"]`` (d,), w_0 → ``params["b"]``, β → ``beta``,
t_j → ``labels[j]`` (0/1 classes, or soft labels in [0, 1]), η → ``learning_rate``. Unlike the perceptron's
step, the sigmoid is smooth, so the whole data set pulls on every update. ``apply`` is the neuron's output y,
``predict`` the class 1[y > ½]. :func:`fit` checks on the host and calls a private jitted loop (one
``lax.while_loop``); it works under ``jax.vmap``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as v
from jaxmath import activations, losses
from jaxmath.models import _fitting
from jaxmath.models._fitting import FitInfo

__all__ = ["FitInfo", "init", "apply", "predict", "loss", "fit"]

_LOSSES = ("cross_entropy", "squared_error")


def init(key, num_features: int, *, scale=0.01, dtype=jnp.float32) -> dict:
    """Small random weights w ~ N(0, scale²) and a zero bias: {"w": (d,), "b": ()} in ``dtype``."""
    v.check_key(key)
    v.check_integer(num_features, name="num_features", minimum=1)
    v.check_positive(scale, name="scale", allow_zero=True)
    return {"w": scale * jax.random.normal(key, (num_features,), dtype), "b": jnp.zeros((), dtype)}


def _pre_activation(params, x, precision):
    v.check_ndim(x, (1, 2), name="x")
    if x.shape[-1] != params["w"].shape[0]:
        raise ValueError(f"x must have {params['w'].shape[0]} features on its last axis, got x.shape={x.shape}")
    return _fitting.linear(params, x, precision=precision)


@partial(jax.jit, static_argnames=("precision",))
def apply(params: dict, x: jax.Array, *, beta=1.0, precision=None) -> jax.Array:
    """y = sigmoid(β (x w + b)): (n, d) -> (n,) in (0, 1)."""
    return activations.sigmoid(_pre_activation(params, x, precision), beta=beta)


@partial(jax.jit, static_argnames=("precision",))
def predict(params: dict, x: jax.Array, *, precision=None) -> jax.Array:
    """Class 1 where y > ½ (s > 0, for any β > 0), else 0: (n,) int32."""
    return (_pre_activation(params, x, precision) > 0).astype(jnp.int32)


@partial(jax.jit, static_argnames=("loss", "precision"))
def loss(params: dict, x: jax.Array, labels: jax.Array, *, beta=1.0, loss: str = "cross_entropy",
         precision=None) -> jax.Array:
    """E: mean binary cross-entropy (from the logits β s, stable) or mean ½ squared error; a scalar."""
    v.check_choice(loss, _LOSSES, name="loss")
    s = _pre_activation(params, x, precision)
    labels = labels.astype(s.dtype)
    if loss == "cross_entropy":
        return losses.binary_cross_entropy_with_logits(beta * s, labels)
    return losses.mse(activations.sigmoid(s, beta=beta), labels, half=True)


@partial(jax.jit, static_argnames=("max_steps", "loss_name", "precision"))
def _fit_core(x, labels, params, learning_rate, beta, tol, *, max_steps: int, loss_name: str, precision):
    dtype = params["w"].dtype
    x = x.astype(dtype)
    labels = labels.astype(dtype)
    lr = jnp.asarray(learning_rate, dtype)
    beta = jnp.asarray(beta, dtype)
    tol = jnp.asarray(tol, dtype)

    def objective(p):
        return loss(p, x, labels, beta=beta, loss=loss_name, precision=precision)

    def step(p, g, i):
        return jax.tree_util.tree_map(lambda a, ga: a - lr * ga, p, g)

    def stop(value, previous, grads):
        return jnp.abs(previous - value) < tol

    return _fitting.descent_loop(objective, step, params, max_steps=max_steps, stop=stop, dtype=dtype)


def fit(x, labels, *, learning_rate=0.5, max_steps: int = 1000, beta=1.0, loss: str = "cross_entropy", tol=0.0,
        params=None, precision=None):
    """Train the neuron by full-batch gradient descent in one compiled loop (one step = one update).

    Args:
      x: (n, d) float array; labels: (n,) values in [0, 1] (0/1 classes or soft labels).
      learning_rate: η > 0; max_steps: static int, the most updates; beta: β > 0.
      loss: "cross_entropy" or "squared_error".
      tol: stop when E changes by less than this between two steps (0: run all steps).
      params: starting point (warm start, or :func:`init` for a random start); zeros when None.
      precision: passed to every matmul.

    Returns:
      (params, info): ``info.loss_history`` (max_steps,) holds E after each number of updates.
    """
    _fitting.check_xy(x, labels, y_ndim=1, y_name="labels")
    _fitting.check_in_unit_interval(labels, name="labels")
    v.check_positive(learning_rate, name="learning_rate")
    v.check_positive(beta, name="beta")
    v.check_positive(tol, name="tol", allow_zero=True)
    v.check_choice(loss, _LOSSES, name="loss")
    _fitting.check_max_steps(max_steps)
    x = jnp.asarray(x)
    dtype = _fitting.float_dtype(x)
    if params is None:
        params = {"w": jnp.zeros((np.shape(x)[1],), dtype), "b": jnp.zeros((), dtype)}
    params = {"w": jnp.asarray(params["w"], dtype), "b": jnp.asarray(params["b"], dtype)}
    params, info = _fit_core(x, jnp.asarray(labels), params, learning_rate, beta, tol, max_steps=max_steps,
                             loss_name=loss, precision=precision)
    _fitting.warn_if_stopped(info, where="sigmoid_neuron.fit")
    return params, info
