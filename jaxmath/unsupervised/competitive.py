"""Learning with concurrency: winner takes all (WTA) and winner takes most (WTM).

Each neuron holds a weight vector w_i that generalizes the inputs it wins. For an example x the winner is the
nearest weight vector (Euclidean distance √Σ_j d_j², d = w − x), and (seed 000):

    WTA:  w_best ← w_best − η · (w_best − x)                          (only the winner learns)
    WTM:  w_i    ← w_i − η · Θ(best, i) · (w_i − x)   for every i        (its neighbours follow)

Θ is a neighbourhood function (:mod:`jaxmath.unsupervised.neighbourhoods`) of the neurons' positions, by
default a chain p_i = i. The online forms scan the examples one by one (``lax.scan``); the batch forms move
every neuron once per pass towards the (Θ-weighted) mean of the examples it wins:

    batch:  w_i ← w_i − η · (w_i − Σ_n Θ(best_n, i)·x_n / Σ_n Θ(best_n, i))

The state is a :class:`CompetitiveState` pytree; all functions work under ``jit`` and ``vmap``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as V
from jaxmath.distances import pairwise_distances
from jaxmath.unsupervised import neighbourhoods as _nb

Array = jax.Array


class CompetitiveState(NamedTuple):
    """weights: (num_neurons, d) one weight vector per neuron; step: () int32, examples seen so far."""

    weights: Array
    step: Array


def init(key, X, num_neurons: int) -> CompetitiveState:
    """Start each of ``num_neurons`` neurons at a distinct example of X (X: (n, d), num_neurons ≤ n)."""
    _check_data(X, "X")
    V.check_integer(num_neurons, name="num_neurons", minimum=1)
    if num_neurons > X.shape[0]:
        raise ValueError(f"num_neurons must be <= the number of samples, got num_neurons={num_neurons} "
                         f"and X.shape={tuple(X.shape)}")
    idx = jax.random.choice(key, X.shape[0], (num_neurons,), replace=False)
    return CompetitiveState(jnp.asarray(X)[idx], jnp.zeros((), jnp.int32))


def distances(weights, x) -> Array:
    """Euclidean distance √Σ_j (w_ij − x_j)² from one example x (d,) to each weight vector, shape (num_neurons,)."""
    d = jnp.asarray(weights) - jnp.asarray(x)
    return jnp.sqrt(jnp.sum(d * d, axis=-1))


def winner(weights, x) -> Array:
    """Index of the weight vector nearest to x (the first one on ties): () int32."""
    d = jnp.asarray(weights) - jnp.asarray(x)
    return jnp.argmin(jnp.sum(d * d, axis=-1)).astype(jnp.int32)


def _positions(positions, num_neurons, dtype):
    if positions is None:
        return jnp.arange(num_neurons, dtype=dtype)[:, None]
    return jnp.asarray(positions, dtype)


def _step(weights, x, eta, sigma, neighbourhood, positions):
    d = weights - x
    best = jnp.argmin(jnp.sum(d * d, axis=-1)).astype(jnp.int32)
    if neighbourhood is None:  # winner takes all
        theta = (jnp.arange(weights.shape[0]) == best).astype(weights.dtype)
    else:
        theta = _nb.get(neighbourhood)(positions - positions[best], sigma).astype(weights.dtype)
    return weights - eta * theta[:, None] * d, best


_step_jit = jax.jit(_step, static_argnames=("neighbourhood",))


@partial(jax.jit, static_argnames=("neighbourhood", "num_epochs"))
def _train(state, X, eta, sigma, positions, neighbourhood, num_epochs):
    eta = jnp.asarray(eta, state.weights.dtype)

    def body(state, x):
        weights, best = _step(state.weights, x, eta, sigma, neighbourhood, positions)
        return CompetitiveState(weights, state.step + 1), best

    return lax.scan(body, state, jnp.tile(X, (num_epochs, 1)))


@partial(jax.jit, static_argnames=("neighbourhood", "num_iterations", "precision"))
def _train_batch(state, X, eta, sigma, positions, neighbourhood, num_iterations, precision):
    eta = jnp.asarray(eta, state.weights.dtype)
    m = state.weights.shape[0]

    def body(state, _):
        w = state.weights
        best = jnp.argmin(pairwise_distances(X, w, metric="squared_euclidean", precision=precision), axis=1)
        if neighbourhood is None:
            theta = jax.nn.one_hot(best, m, dtype=w.dtype)  # (n, m)
        else:
            fn = _nb.get(neighbourhood)
            theta = fn(positions[None, :, :] - positions[best][:, None, :], sigma).astype(w.dtype)
        den = jnp.sum(theta, axis=0)
        num = jnp.matmul(theta.T, X, precision=precision)
        has = den > 0
        target = num / jnp.where(has, den, 1)[:, None]
        w = jnp.where(has[:, None], w - eta * (w - target), w)
        return CompetitiveState(w, state.step + X.shape[0]), best.astype(jnp.int32)

    return lax.scan(body, state, None, length=num_iterations)


def wta_step(state: CompetitiveState, x, *, learning_rate=0.1):
    """One winner-takes-all update: w_best ← w_best − η·(w_best − x).

    Args:
      state: :class:`CompetitiveState`, weights (num_neurons, d).
      x: (d,) float array, one example.
      learning_rate: η.

    Returns:
      (state, best): the new state and the winner's index, () int32.
    """
    x = jnp.asarray(x)
    V.check_ndim(x, 1, name="x")
    _check_state(state, x[None], example=True)
    V.check_positive(learning_rate, name="learning_rate")
    weights, best = _step_jit(state.weights, x, jnp.asarray(learning_rate, state.weights.dtype),
                          None, None, None)
    return CompetitiveState(weights, state.step + 1), best


def wtm_step(state: CompetitiveState, x, *, learning_rate=0.1, sigma=1.0, neighbourhood="gaussian",
             positions=None):
    """One winner-takes-most update: w_i ← w_i − η·Θ(best, i)·(w_i − x) for every neuron i.

    Args:
      state: :class:`CompetitiveState`, weights (num_neurons, d).
      x: (d,) float array.
      learning_rate: η.
      sigma: spread σ of Θ.
      neighbourhood: "gaussian", "mexican_hat" or "bubble".
      positions: (num_neurons, p) neuron positions Θ is measured on; default the chain p_i = i.

    Returns:
      (state, best).
    """
    x = jnp.asarray(x)
    V.check_ndim(x, 1, name="x")
    _check_state(state, x[None], example=True)
    _check_wtm(learning_rate, sigma, neighbourhood, positions, state.weights.shape[0])
    w = state.weights
    weights, best = _step_jit(w, x, jnp.asarray(learning_rate, w.dtype), sigma, neighbourhood,
                          _positions(positions, w.shape[0], w.dtype))
    return CompetitiveState(weights, state.step + 1), best


def wta_train(state: CompetitiveState, X, *, learning_rate=0.1, num_epochs: int = 1):
    """Online WTA over the rows of X in order (``lax.scan``), ``num_epochs`` passes.

    Returns (state, winners): winners is the (num_epochs · n,) int32 index of each step's winner.
    """
    _check_state(state, X)
    V.check_positive(learning_rate, name="learning_rate")
    V.check_integer(num_epochs, name="num_epochs", minimum=1)
    return _train(state, jnp.asarray(X), learning_rate, 1.0, None, None, num_epochs)


def wtm_train(state: CompetitiveState, X, *, learning_rate=0.1, sigma=1.0, neighbourhood="gaussian",
              positions=None, num_epochs: int = 1):
    """Online WTM over the rows of X in order (``lax.scan``); arguments as :func:`wtm_step`.

    Returns (state, winners).
    """
    _check_state(state, X)
    _check_wtm(learning_rate, sigma, neighbourhood, positions, state.weights.shape[0])
    V.check_integer(num_epochs, name="num_epochs", minimum=1)
    w = state.weights
    return _train(state, jnp.asarray(X), learning_rate, sigma, _positions(positions, w.shape[0], w.dtype),
                  neighbourhood, num_epochs)


def wta_train_batch(state: CompetitiveState, X, *, learning_rate=1.0, num_iterations: int = 1, precision=None):
    """Batch WTA: each pass moves every neuron towards the mean of the examples it wins,
    w_i ← w_i − η·(w_i − mean{x_n : best_n = i}); neurons that win nothing stay. η = 1 is a Lloyd step.

    Returns (state, winners): winners (num_iterations, n) int32, the assignment used by each pass.
    """
    _check_state(state, X)
    V.check_positive(learning_rate, name="learning_rate")
    V.check_integer(num_iterations, name="num_iterations", minimum=1)
    return _train_batch(state, jnp.asarray(X), learning_rate, 1.0, None, None, num_iterations, precision)


def wtm_train_batch(state: CompetitiveState, X, *, learning_rate=1.0, sigma=1.0, neighbourhood="gaussian",
                    positions=None, num_iterations: int = 1, precision=None):
    """Batch WTM: w_i ← w_i − η·(w_i − Σ_n Θ(best_n, i)·x_n / Σ_n Θ(best_n, i)) once per pass.

    Returns (state, winners): winners (num_iterations, n) int32.
    """
    _check_state(state, X)
    _check_wtm(learning_rate, sigma, neighbourhood, positions, state.weights.shape[0])
    V.check_integer(num_iterations, name="num_iterations", minimum=1)
    w = state.weights
    return _train_batch(state, jnp.asarray(X), learning_rate, sigma, _positions(positions, w.shape[0], w.dtype),
                        neighbourhood, num_iterations, precision)


def _check_data(X, name):
    V.check_ndim(X, 2, name=name)
    if X.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample, got {name}.shape={tuple(X.shape)}")
    V.check_finite(X, name=name)


def _check_state(state, X, example=False):
    V.check_ndim(state.weights, 2, name="state.weights")
    name = "x" if example else "X"
    _check_data(X, name)
    if X.shape[1] != state.weights.shape[1]:
        raise ValueError(f"{name} must have {state.weights.shape[1]} features like state.weights, got "
                         f"{name}.shape={tuple(jnp.shape(X))[1:] if example else tuple(X.shape)} and "
                         f"state.weights.shape={tuple(state.weights.shape)}")
    V.check_finite(state.weights, name="state.weights")


def _check_wtm(learning_rate, sigma, neighbourhood, positions, num_neurons):
    V.check_positive(learning_rate, name="learning_rate")
    V.check_positive(sigma, name="sigma")
    V.check_choice(neighbourhood, tuple(_nb.NEIGHBOURHOODS), name="neighbourhood")
    if positions is not None:
        V.check_ndim(positions, 2, name="positions")
        if jnp.shape(positions)[0] != num_neurons:
            raise ValueError(f"positions must have one row per neuron ({num_neurons}), got "
                             f"positions.shape={tuple(jnp.shape(positions))}")
