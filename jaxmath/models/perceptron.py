"""Rosenblatt's perceptron (1958): a step-activated linear unit and its mistake-driven learning rule.

    ŷ = step(w·x + b),     step(z) = 1 if z ≥ 0 else 0
    w ← w + η (t − ŷ) x,   b ← b + η (t − ŷ)          (one example at a time, in order)

Symbols: x → a row of ``x``, t → ``labels`` (0/1), η → ``learning_rate``, w → ``params["w"]``,
b → ``params["b"]``. One step is one epoch, a pass over the examples; training stops at the first epoch
without a mistake (the data were linearly separable) or after ``max_steps`` epochs (then ``converged`` is
False: on data no line separates, such as XOR, the rule never settles).

``apply`` gives the pre-activation z = w·x + b (the unit's score; its sign is the decision), ``predict`` the
class step(z). ``fit`` checks on the host and calls a private jitted loop (one ``lax.while_loop`` over
epochs, a ``lax.scan`` over examples). It works under ``jax.vmap``: ``jax.vmap(perceptron.fit)(xs, ts)``
trains a batch of independent perceptrons (each stops on its own; the batch loop runs until the slowest is
done).
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

__all__ = ["PerceptronInfo", "init", "apply", "predict", "fit"]


class PerceptronInfo(NamedTuple):
    """What :func:`fit` did. The rule minimises no loss, so in place of a loss history it counts mistakes.

    Attributes:
      converged: bool scalar, the last epoch made no mistake (every training example is classified right).
      num_steps: int32 scalar, epochs run.
      mistakes: (max_steps,) int32, misclassified examples met during each epoch; -1 after the last epoch run.
    """

    converged: jax.Array
    num_steps: jax.Array
    mistakes: jax.Array


def init(key, num_features: int, *, dtype=jnp.float32) -> dict:
    """Zero weights and bias (Rosenblatt's start); ``key`` is unused: the rule needs no random init.

    Returns:
      {"w": (d,) dtype zeros, "b": () dtype zero}.
    """
    v.check_key(key)
    v.check_integer(num_features, name="num_features", minimum=1)
    return {"w": jnp.zeros((num_features,), dtype), "b": jnp.zeros((), dtype)}


@partial(jax.jit, static_argnames=("precision",))
def apply(params: dict, x: jax.Array, *, precision=None) -> jax.Array:
    """The pre-activation z = x w + b: (n, d) -> (n,) (or (d,) -> ())."""
    v.check_ndim(x, (1, 2), name="x")
    if x.shape[-1] != params["w"].shape[0]:
        raise ValueError(f"x must have {params['w'].shape[0]} features on its last axis, got x.shape={x.shape}")
    return jnp.dot(x, params["w"], precision=precision) + params["b"]


@partial(jax.jit, static_argnames=("precision",))
def predict(params: dict, x: jax.Array, *, precision=None) -> jax.Array:
    """ŷ = step(x w + b) ∈ {0, 1}: (n, d) -> (n,) int32."""
    return (apply(params, x, precision=precision) >= 0).astype(jnp.int32)


@partial(jax.jit, static_argnames=("max_steps", "precision"))
def _fit_core(x, labels, params, learning_rate, *, max_steps: int, precision):
    dtype = params["w"].dtype
    x = x.astype(dtype)
    labels = labels.astype(dtype)
    lr = jnp.asarray(learning_rate, dtype)

    def one_example(p, xt):
        xi, t = xt
        y_hat = (jnp.dot(xi, p["w"], precision=precision) + p["b"] >= 0).astype(dtype)
        err = t - y_hat
        p = {"w": p["w"] + lr * err * xi, "b": p["b"] + lr * err}
        return p, (err != 0).astype(jnp.int32)

    def cond(state):
        epoch, _, _, done = state
        return (epoch < max_steps) & ~done

    def body(state):
        epoch, p, hist, _ = state
        p, wrong = lax.scan(one_example, p, (x, labels))
        m = jnp.sum(wrong).astype(jnp.int32)
        return epoch + 1, p, hist.at[epoch].set(m), m == 0

    hist = jnp.full((max_steps,), -1, jnp.int32)
    epoch, params, hist, done = lax.while_loop(cond, body, (jnp.int32(0), params, hist, jnp.bool_(False)))
    return params, PerceptronInfo(done, epoch, hist)


def fit(x, labels, *, learning_rate=1.0, max_steps: int = 100, params=None, precision=None):
    """Train with the perceptron rule until an epoch makes no mistake, or ``max_steps`` epochs.

    Args:
      x: (n, d) float array of examples.
      labels: (n,) array of 0/1 labels (int, bool or float).
      learning_rate: η > 0.
      max_steps: static int >= 1, the most epochs (passes over the data).
      params: starting {"w", "b"} (warm start); zeros in x's dtype when None.
      precision: passed to ``jnp.dot``.

    Returns:
      (params, info): params {"w": (d,), "b": ()} in x's float dtype, and a :class:`PerceptronInfo`.

    Raises:
      ValueError: x not 2-D, labels not (n,), different row counts, NaN/Inf in x, labels not 0/1.
    """
    _fitting.check_xy(x, labels, y_ndim=1, y_name="labels")
    _fitting.check_in_unit_interval(labels, name="labels", binary=True)
    v.check_positive(learning_rate, name="learning_rate")
    _fitting.check_max_steps(max_steps)
    dtype = _fitting.float_dtype(x)
    if params is None:
        params = {"w": jnp.zeros((np.shape(x)[1],), dtype), "b": jnp.zeros((), dtype)}
    params = {"w": jnp.asarray(params["w"], dtype), "b": jnp.asarray(params["b"], dtype)}
    return _fit_core(jnp.asarray(x), jnp.asarray(labels), params, learning_rate, max_steps=max_steps,
                     precision=precision)
