"""A single sigmoid neuron trained by gradient descent (seed 000's artificial neuron, seed 004's gradient).

    s = Σ_i w_i x_i + w_0,    y = f(s) = 1 / (1 + e^(−β s))

trained on E = −1/N Σ_j [t_j log y_j + (1 − t_j) log(1 − y_j)] (``loss="cross_entropy"``), whose gradient is
the notes' ∂E/∂w = β/N Σ_j (y_j − t_j) x_j, or on the squared error E = 1/N Σ_j ½ (y_j − t_j)²
(``loss="squared_error"``, ∂E/∂w = 1/N Σ_j (y_j − t_j) β y_j (1 − y_j) x_j), by w ← w − η ∂E/∂w.

Symbols: x → a row of ``X`` (n, d), w_i → ``params["w"]`` (d,), w_0 → ``params["b"]``, β → ``beta``,
t_j → ``targets[j]`` (in [0, 1]), η → ``learning_rate``. Unlike the perceptron's step, the sigmoid is smooth,
so the whole data set pulls on every update. :func:`fit` validates and calls the jitted :func:`fit_core`
(one ``lax.while_loop``); both work under ``jax.vmap``.
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

__all__ = ["FitInfo", "init", "apply", "predict", "loss", "fit", "fit_core"]

_LOSSES = ("cross_entropy", "squared_error")


def init(key: jax.Array, num_features: int, *, scale=0.01, dtype=jnp.float32) -> dict:
    """Small random weights w ~ N(0, scale²) and a zero bias: {"w": (d,), "b": ()} in ``dtype``."""
    v.check_integer(num_features, name="num_features", minimum=1)
    v.check_positive(scale, name="scale", allow_zero=True)
    return {"w": scale * jax.random.normal(key, (num_features,), dtype), "b": jnp.zeros((), dtype)}


def apply(params: dict, X: jax.Array, *, beta=1.0, precision=None) -> jax.Array:
    """y = sigmoid(β (X w + b)): (n, d) -> (n,) in (0, 1)."""
    s = _fitting.linear(params, X, precision=precision)
    return activations.sigmoid(s, beta=beta)


def predict(params: dict, X: jax.Array, *, precision=None) -> jax.Array:
    """Class 1 where y > ½ (s > 0), else 0: (n,) int32."""
    return (_fitting.linear(params, X, precision=precision) > 0).astype(jnp.int32)


def loss(params: dict, X: jax.Array, targets: jax.Array, *, beta=1.0, loss: str = "cross_entropy",
         precision=None) -> jax.Array:
    """E: mean binary cross-entropy (from the logits β s, stable) or mean ½ squared error; a scalar."""
    s = _fitting.linear(params, X, precision=precision)
    targets = targets.astype(s.dtype)
    if loss == "cross_entropy":
        return losses.binary_cross_entropy_with_logits(beta * s, targets)
    return losses.mse(activations.sigmoid(s, beta=beta), targets, half=True)


@partial(jax.jit, static_argnames=("num_steps", "loss_name", "precision"))
def fit_core(params, X, targets, learning_rate, beta, tol, *, num_steps: int, loss_name: str = "cross_entropy",
             precision=None):
    """The jitted gradient descent, without input checks."""
    dtype = params["w"].dtype
    X = X.astype(dtype)
    targets = targets.astype(dtype)
    lr = jnp.asarray(learning_rate, dtype)
    beta = jnp.asarray(beta, dtype)

    def objective(p):
        return loss(p, X, targets, beta=beta, loss=loss_name, precision=precision)

    def step(p, g, i):
        return jax.tree_util.tree_map(lambda a, ga: a - lr * ga, p, g)

    return _fitting.descent_loop(objective, step, params, max_iterations=num_steps, tol=tol, dtype=dtype)


def fit(X, targets, *, learning_rate=0.5, num_steps: int = 1000, beta=1.0, loss: str = "cross_entropy", tol=0.0,
        params=None, key=None, precision=None):
    """Train the neuron by full-batch gradient descent in one compiled loop.

    Args:
      X: (n, d) float array; targets: (n,) values in [0, 1].
      learning_rate: η > 0; num_steps: static int; beta: β > 0.
      loss: "cross_entropy" or "squared_error".
      tol: stop when E changes by less than this (0: run all steps).
      params: starting point; otherwise :func:`init` with ``key`` (zeros when ``key`` is None).
      precision: passed to every matmul.

    Returns:
      (params, info): ``info.loss_history`` (num_steps,) holds E before each update.
    """
    _fitting.check_xy(X, targets, y_ndim=1, y_name="targets")
    if v.is_concrete(targets):
        t = np.asarray(targets, dtype=np.float64)
        if t.size and ((t < 0) | (t > 1)).any():
            bad = int(np.argwhere((t < 0) | (t > 1))[0][0])
            raise ValueError(f"targets must lie in [0, 1], got targets[{bad}]={t[bad]!r} in targets.shape={t.shape}")
    v.check_positive(learning_rate, name="learning_rate")
    v.check_positive(beta, name="beta")
    v.check_positive(tol, name="tol", allow_zero=True)
    v.check_choice(loss, _LOSSES, name="loss")
    _fitting.check_max_iterations(num_steps, name="num_steps")
    X = jnp.asarray(X)
    if params is None:
        dtype = _fitting.float_dtype(X)
        if key is None:
            params = {"w": jnp.zeros((X.shape[1],), dtype), "b": jnp.zeros((), dtype)}
        else:
            params = init(key, X.shape[1], dtype=dtype)
    params, info = fit_core(params, X, jnp.asarray(targets), learning_rate, beta, tol, num_steps=num_steps,
                            loss_name=loss, precision=precision)
    _fitting.warn_if_stopped(info, where="sigmoid_neuron.fit")
    return params, info
