"""Rosenblatt's perceptron (1958): a step-activated linear unit and its mistake-driven learning rule.

    ŷ = step(w·x + b),     step(z) = 1 if z ≥ 0 else 0
    w ← w + η (t − ŷ) x,   b ← b + η (t − ŷ)          (one example at a time, in order)

Symbols: x → a row of ``X``, t → ``targets`` (0/1), η → ``learning_rate``, w → ``params["w"]``,
b → ``params["b"]``. An epoch is one pass over the examples; training stops at the first epoch without a
mistake (the data were linearly separable) or after ``max_epochs`` (then ``converged`` is False: on data no
line separates, such as XOR, the rule never settles).

``fit`` validates on the host and calls the jitted core ``fit_core`` (one ``lax.while_loop`` over epochs, a
``lax.scan`` over examples). Both work under ``jax.vmap``: ``jax.vmap(perceptron.fit)(Xs, ts)`` trains a
batch of independent perceptrons (each stops on its own; the batch loop runs until the slowest is done).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath import _validation as v
from jaxmath.models import _fitting

__all__ = ["PerceptronInfo", "init", "apply", "predict", "fit", "fit_core"]


class PerceptronInfo(NamedTuple):
    """What :func:`fit` did.

    Attributes:
      mistakes: (max_epochs,) int32, misclassified examples met during each epoch; -1 after the last epoch run.
      num_epochs: int32 scalar, epochs run.
      converged: bool scalar, the last epoch made no mistake (every training example is classified right).
    """

    mistakes: jax.Array
    num_epochs: jax.Array
    converged: jax.Array


def init(num_features: int, *, dtype=jnp.float32) -> dict:
    """Zero weights and bias (Rosenblatt's start; the rule needs no random init).

    Returns:
      {"w": (d,) dtype zeros, "b": () dtype zero}.
    """
    v.check_integer(num_features, name="num_features", minimum=1)
    return {"w": jnp.zeros((num_features,), dtype), "b": jnp.zeros((), dtype)}


def apply(params: dict, X: jax.Array, *, precision=None) -> jax.Array:
    """The pre-activation z = X w + b: (n, d) -> (n,) (or (d,) -> ())."""
    return jnp.dot(X, params["w"], precision=precision) + params["b"]


def predict(params: dict, X: jax.Array, *, precision=None) -> jax.Array:
    """ŷ = step(X w + b) ∈ {0, 1}: (n, d) -> (n,) int32."""
    return (apply(params, X, precision=precision) >= 0).astype(jnp.int32)


@partial(jax.jit, static_argnames=("max_epochs", "precision"))
def fit_core(params: dict, X: jax.Array, targets: jax.Array, learning_rate, *, max_epochs: int, precision=None):
    """The compiled training loop, without input checks (use it inside your own jit/vmap)."""
    dtype = params["w"].dtype
    X = X.astype(dtype)
    targets = targets.astype(dtype)
    lr = jnp.asarray(learning_rate, dtype)

    def one_example(p, xt):
        x, t = xt
        y_hat = (jnp.dot(x, p["w"], precision=precision) + p["b"] >= 0).astype(dtype)
        err = t - y_hat
        p = {"w": p["w"] + lr * err * x, "b": p["b"] + lr * err}
        return p, (err != 0).astype(jnp.int32)

    def cond(state):
        epoch, _, _, done = state
        return (epoch < max_epochs) & ~done

    def body(state):
        epoch, p, hist, _ = state
        p, wrong = lax.scan(one_example, p, (X, targets))
        m = jnp.sum(wrong).astype(jnp.int32)
        return epoch + 1, p, hist.at[epoch].set(m), m == 0

    hist = jnp.full((max_epochs,), -1, jnp.int32)
    epoch, params, hist, done = lax.while_loop(cond, body, (jnp.int32(0), params, hist, jnp.bool_(False)))
    return params, PerceptronInfo(hist, epoch, done)


def fit(X, targets, *, learning_rate=1.0, max_epochs: int = 100, params=None, precision=None):
    """Train with the perceptron rule until an epoch makes no mistake, or ``max_epochs``.

    Args:
      X: (n, d) float array of examples.
      targets: (n,) array of 0/1 labels (int, bool or float).
      learning_rate: η > 0.
      max_epochs: static int >= 1, the most passes over the data.
      params: starting {"w", "b"}; zeros (:func:`init`) in X's dtype when None.
      precision: passed to ``jnp.dot``.

    Returns:
      (params, info): params {"w": (d,), "b": ()} in X's float dtype, and a :class:`PerceptronInfo`.

    Raises:
      ValueError: X not 2-D, targets not (n,), different row counts, NaN/Inf in X, targets not 0/1.
    """
    _fitting.check_xy(X, targets, y_ndim=1, y_name="targets")
    if v.is_concrete(targets):
        t = np.asarray(targets)
        if t.size and not np.isin(t, (0, 1)).all():
            bad = int(np.argwhere(~np.isin(t, (0, 1)))[0][0])
            raise ValueError(f"targets must be 0/1, got targets[{bad}]={t[bad]!r} in targets.shape={t.shape}")
    v.check_positive(learning_rate, name="learning_rate")
    _fitting.check_max_iterations(max_epochs, name="max_epochs")
    if params is None:
        params = init(np.shape(X)[1], dtype=_fitting.float_dtype(X))
    return fit_core(params, jnp.asarray(X), jnp.asarray(targets), learning_rate, max_epochs=max_epochs,
                    precision=precision)
