"""Hebbian learning: the plain rule on the notes' neuron, Oja's rule and Sanger's generalized Hebbian algorithm.

The notes' neuron (seed 000) takes inputs x_1 … x_n plus a bias input 1 (weight w_0, written last), sums
s = Σ_j w_j·x_j and answers y = f(s) with the sigmoid f(s) = 1 / (1 + e^(−β·s)). Hebb's rule strengthens
the weights of inputs that fire together with the output:

    Δw_ij = η · x_ij · y_i

The weights only ever grow along the data (the notes: "prone to rise the weights ad infinitum");
:func:`hebb_train` returns the weight norm after every step to show it. Oja's rule adds a decay that keeps
‖w‖ → 1 and makes a linear neuron y = w·x converge to the first principal component; Sanger's generalized
Hebbian algorithm (GHA) extends it to the first k components:

    Oja:     Δw = η · y · (x − y·w)
    Sanger:  ΔW = η · (y·xᵀ − LT(y·yᵀ)·W),   y = W·x,   LT = lower triangle (diagonal included)

Every training function is a pure state transform ``(state, X) -> (state, aux)`` over a
:class:`HebbianState`, written with ``lax.scan`` over the samples, and works under ``jit`` and ``vmap``.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as V

Array = jax.Array
LearningRate = Union[float, Callable[[Array], Array]]


class HebbianState(NamedTuple):
    """Weights of one layer of Hebbian neurons and the number of updates made.

    weights: (num_inputs,) for one neuron, or (num_neurons, num_inputs) for a layer (num_inputs counts the
      bias input when the neuron has one; the bias weight w_0 is the last column).
    step: () int32, updates made so far (the ``count`` a learning-rate schedule receives).
    """

    weights: Array
    step: Array


def init(weights) -> HebbianState:
    """A :class:`HebbianState` holding ``weights`` ((num_inputs,) or (num_neurons, num_inputs)) at step 0."""
    weights = jnp.asarray(weights)
    V.check_ndim(weights, (1, 2), name="weights")
    V.check_finite(weights, name="weights")
    return HebbianState(weights, jnp.zeros((), jnp.int32))


def with_bias_input(x: Array) -> Array:
    """Append the constant bias input 1 to the last axis: (..., n) -> (..., n + 1)."""
    x = jnp.asarray(x)
    return jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)


def _split_rate(learning_rate: LearningRate):
    """(constant, schedule): a schedule is a static argument of the jitted core, a constant a traced one."""
    if callable(learning_rate):
        return 0.0, learning_rate
    return learning_rate, None


def _lr(constant, schedule, step: Array, dtype) -> Array:
    value = schedule(step) if schedule is not None else constant
    return jnp.asarray(value, dtype)


def _hebb_output(weights, x, beta, bias, precision):
    xb = with_bias_input(x) if bias else x
    s = jnp.matmul(weights, xb, precision=precision)
    return jax.nn.sigmoid(jnp.asarray(beta, s.dtype) * s), xb


def hebb_output(weights, x, *, beta=1.0, bias: bool = True, precision=None) -> Array:
    """Output of the notes' neuron: y = f(s), s = Σ_j w_j·x_j (with x_0 = 1 last), f(s) = 1/(1 + e^(−β·s)).

    Args:
      weights: (n + 1,) or (num_neurons, n + 1) float array (n + 1 without the bias input if bias=False).
      x: (n,) float array, one example.
      beta: slope β of the sigmoid.
      bias: append the bias input 1 to x.
      precision: passed to ``jnp.matmul``.

    Returns:
      () or (num_neurons,) array, y in (0, 1).
    """
    _check_single(weights, x, bias)
    return _hebb_output(jnp.asarray(weights), jnp.asarray(x), beta, bias, precision)[0]


def hebb_rule(weights, x, *, learning_rate=0.1, beta=1.0, bias: bool = True, precision=None):
    """Hebb's rule for one example: Δw_ij = η · x_ij · y_i.

    Symbols: η = ``learning_rate``, x_ij = ``x`` (with the bias input 1 appended), y_i = :func:`hebb_output`.

    Args:
      weights: (n + 1,) or (num_neurons, n + 1) float array.
      x: (n,) float array.

    Returns:
      (delta, y): delta of the weights' shape, y of shape () or (num_neurons,).
    """
    _check_single(weights, x, bias)
    V.check_positive(learning_rate, name="learning_rate")
    weights, x = jnp.asarray(weights), jnp.asarray(x)
    y, xb = _hebb_output(weights, x, beta, bias, precision)
    return jnp.asarray(learning_rate, y.dtype) * y[..., None] * xb, y


@partial(jax.jit, static_argnames=("schedule", "bias", "num_epochs", "precision"))
def _hebb_train(state, X, constant, schedule, beta, bias, num_epochs, precision):
    def body(state, x):
        y, xb = _hebb_output(state.weights, x, beta, bias, precision)
        eta = _lr(constant, schedule, state.step, y.dtype)
        weights = state.weights + eta * y[..., None] * xb
        return HebbianState(weights, state.step + 1), jnp.linalg.norm(weights)

    xs = jnp.tile(X, (num_epochs, 1))
    return lax.scan(body, state, xs)


def hebb_train(state: HebbianState, X, *, learning_rate: LearningRate = 0.1, beta=1.0, bias: bool = True,
               num_epochs: int = 1, precision=None):
    """Plain Hebbian learning over the rows of X in order (``lax.scan``), ``num_epochs`` times.

    w ← w + η · x · y after every example. On data that excites the neuron the norm ‖w‖ never stops
    growing: the returned norms are the demonstration.

    Args:
      state: :class:`HebbianState` with weights (n + 1,) or (num_neurons, n + 1).
      X: (num_samples, n) float array.
      learning_rate: η, a float or a schedule ``step -> η``.
      beta, bias, precision: as in :func:`hebb_output`.
      num_epochs: passes over X.

    Returns:
      (state, norms): the new state and the (num_epochs · num_samples,) Frobenius norms ‖w‖ after each step.
    """
    _check_train(state, X, bias)
    _check_rate(learning_rate)
    V.check_integer(num_epochs, name="num_epochs", minimum=1)
    return _hebb_train(state, jnp.asarray(X), *_split_rate(learning_rate), beta, bias, num_epochs, precision)


def _sanger_delta(weights, x, eta, precision):
    y = jnp.matmul(weights, x, precision=precision)
    lower = jnp.tril(y[:, None] * y[None, :])
    return eta * (y[:, None] * x[None, :] - jnp.matmul(lower, weights, precision=precision))


def oja_rule(weights, x, *, learning_rate=0.01, precision=None) -> Array:
    """Oja's rule for a linear neuron y = w·x: Δw = η · y · (x − y·w).

    Symbols: w = ``weights`` (d,), x = ``x`` (d,), η = ``learning_rate``. Returns Δw, shape (d,).
    """
    weights, x = jnp.asarray(weights), jnp.asarray(x)
    V.check_ndim(weights, 1, name="weights")
    V.check_same_shape(weights, x, names=("weights", "x"))
    V.check_positive(learning_rate, name="learning_rate")
    return _sanger_delta(weights[None], x, jnp.asarray(learning_rate, weights.dtype), precision)[0]


def sanger_rule(weights, x, *, learning_rate=0.01, precision=None) -> Array:
    """Sanger's generalized Hebbian rule: ΔW = η · (y·xᵀ − LT(y·yᵀ)·W), y = W·x.

    Symbols: W = ``weights`` (k, d), one row per component; x = ``x`` (d,); η = ``learning_rate``;
    LT keeps the lower triangle with the diagonal. With k = 1 it is Oja's rule. Returns ΔW, shape (k, d).
    """
    weights, x = jnp.asarray(weights), jnp.asarray(x)
    V.check_ndim(weights, 2, name="weights")
    if weights.shape[-1:] != x.shape:
        raise ValueError(f"weights and x must agree on the input size, got weights.shape={weights.shape} "
                         f"and x.shape={x.shape}")
    V.check_positive(learning_rate, name="learning_rate")
    return _sanger_delta(weights, x, jnp.asarray(learning_rate, weights.dtype), precision)


@partial(jax.jit, static_argnames=("schedule", "num_epochs", "center", "precision"))
def _sanger_train(state, X, constant, schedule, num_epochs, center, precision):
    if center:
        X = X - jnp.mean(X, axis=0)
    single = state.weights.ndim == 1
    weights = state.weights[None] if single else state.weights

    def body(carry, x):
        weights, step = carry
        eta = _lr(constant, schedule, step, weights.dtype)
        weights = weights + _sanger_delta(weights, x, eta, precision)
        return (weights, step + 1), jnp.linalg.norm(weights, axis=-1)

    (weights, step), norms = lax.scan(body, (weights, state.step), jnp.tile(X, (num_epochs, 1)))
    if single:
        weights, norms = weights[0], norms[:, 0]
    return HebbianState(weights, step), norms


def sanger_train(state: HebbianState, X, *, learning_rate: LearningRate = 0.01, num_epochs: int = 1,
                 center: bool = True, precision=None):
    """Sanger's GHA (Oja's rule when ``state.weights`` is one vector) over the rows of X, ``lax.scan``.

    After enough epochs with a small or decaying η the rows of W are the first k unit eigenvectors of the
    covariance of X (largest eigenvalue first), up to sign.

    Args:
      state: :class:`HebbianState`, weights (d,) (Oja) or (k, d) (Sanger), no bias input.
      X: (num_samples, d) float array.
      learning_rate: η, a float or a schedule ``step -> η``.
      num_epochs: passes over X.
      center: subtract the mean of X first (the rules assume zero-mean data).

    Returns:
      (state, norms): the new state and the row norms ‖w_i‖ after each step, shape (steps,) or (steps, k).
    """
    _check_train(state, X, bias=False)
    _check_rate(learning_rate)
    V.check_integer(num_epochs, name="num_epochs", minimum=1)
    return _sanger_train(state, jnp.asarray(X), *_split_rate(learning_rate), num_epochs, center, precision)


def oja_train(state: HebbianState, X, *, learning_rate: LearningRate = 0.01, num_epochs: int = 1,
              center: bool = True, precision=None):
    """Oja's rule Δw = η·y·(x − y·w) over the rows of X; ``state.weights`` must be one vector (d,).

    Returns (state, norms) as :func:`sanger_train`; ‖w‖ → 1 and w → ± the first principal component.
    """
    V.check_ndim(state.weights, 1, name="state.weights")
    return sanger_train(state, X, learning_rate=learning_rate, num_epochs=num_epochs, center=center,
                        precision=precision)


def _check_single(weights, x, bias):
    V.check_ndim(weights, (1, 2), name="weights")
    V.check_ndim(x, 1, name="x")
    want = x.shape[0] + (1 if bias else 0)
    if weights.shape[-1] != want:
        raise ValueError(f"weights must have {want} inputs per neuron (x has {x.shape[0]}"
                         f"{' plus the bias input' if bias else ''}), got weights.shape={weights.shape}")
    V.check_finite(weights, name="weights")
    V.check_finite(x, name="x")


def _check_train(state, X, bias):
    V.check_ndim(state.weights, (1, 2), name="state.weights")
    V.check_ndim(X, 2, name="X")
    want = X.shape[1] + (1 if bias else 0)
    if state.weights.shape[-1] != want:
        raise ValueError(f"state.weights must have {want} inputs per neuron (X has {X.shape[1]} features"
                         f"{' plus the bias input' if bias else ''}), got state.weights.shape={state.weights.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"X must hold at least one sample, got X.shape={X.shape}")
    V.check_finite(X, name="X")
    V.check_finite(state.weights, name="state.weights")


def _check_rate(learning_rate):
    if not callable(learning_rate):
        V.check_positive(learning_rate, name="learning_rate")
