"""Learning with concurrency: winner takes all (WTA) and winner takes most (WTM).

Each neuron holds a weight vector w_i that generalizes the inputs it wins. For an example x the winner is the
nearest weight vector (Euclidean distance √Σ_j d_j², d = w − x), and (seed 000):

    WTA:  w_best ← w_best − η · (w_best − x)                          (only the winner learns)
    WTM:  w_i    ← w_i − η · Θ(best, i) · (w_i − x)   for every i        (its neighbours follow)

Θ is a neighbourhood function (:mod:`jaxmath.unsupervised.neighbourhoods`) of the neurons' positions, by
default a chain p_i = i; ``neighbourhood=None`` is WTA. :func:`fit` scans the examples one by one
(``lax.scan``); :func:`fit_batch` moves every neuron once per pass towards the (Θ-weighted) mean of the
examples it wins:

    batch:  w_i ← w_i − η · (w_i − Σ_n Θ(best_n, i)·x_n / Σ_n Θ(best_n, i))

Params are the (num_neurons, d) weight array; everything works under ``jit`` and ``vmap``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as V
from jaxmath.unsupervised import _distances as D
from jaxmath.unsupervised import _guard as _g
from jaxmath.unsupervised import neighbourhoods as _nb

Array = jax.Array


class CompetitiveInfo(NamedTuple):
    """What a fit did.

    converged: () bool, the winners of the last pass equal those of the pass before (False with one pass):
      the rules have no stopping test, they run all ``max_steps`` passes.
    num_steps: () int32, passes over the data made.
    loss_history: (max_steps,) mean distance ‖x_n − w_best(n)‖ of the examples to their winners in each pass
      (online: before each example's update; batch: with the weights the pass starts from).
    winners: online (max_steps · n,) int32 winner of each update; batch (max_steps, n) assignment of each pass.
    nonfinite: () bool, an update would have made the weights, or their squared norms ‖w_i‖² (what the winner
      search computes), non-finite in their dtype: the fit stopped before it and returned
      the last finite weights (``num_steps`` counts the passes completed before it, ``converged`` is False,
      ``loss_history`` NaN from that pass on, ``winners`` -1 from that update on).
    first_nonfinite_step: () int32, the pass (0-based) holding that update, -1 when every update was finite.
    """

    converged: Array
    num_steps: Array
    loss_history: Array
    winners: Array
    nonfinite: Array = False
    first_nonfinite_step: Array = -1


def init(key, x, *, num_neurons: int) -> Array:
    """Start each of ``num_neurons`` neurons at a distinct example of x.

    Args:
      key: PRNG key.
      x: (n, d) float array.
      num_neurons: m ≤ n.

    Returns:
      (num_neurons, d) weights of x's dtype.
    """
    V.check_key(key)
    x = jnp.asarray(x)
    _check_data(x, "x")
    V.check_integer(num_neurons, name="num_neurons", minimum=1)
    if num_neurons > x.shape[0]:
        raise ValueError(f"num_neurons must be <= the number of samples, got num_neurons={num_neurons} "
                         f"and x.shape={tuple(x.shape)}")
    V.check_finite(x, name="x")
    idx = jax.random.choice(key, x.shape[0], (num_neurons,), replace=False)
    return jnp.asarray(x)[idx]


@jax.jit
def apply(params, x) -> Array:
    """Euclidean distance √Σ_j (w_ij − x_j)² from each example to each neuron.

    Args:
      params: (num_neurons, d) weights.
      x: (d,) or (n, d) float array.

    Returns:
      (num_neurons,) or (n, num_neurons) distances.
    """
    _check_params(params, x, ndim=(1, 2))
    d = params - x[..., None, :]
    return jnp.sqrt(jnp.sum(d * d, axis=-1))


@jax.jit
def predict(params, x) -> Array:
    """The winner, argmin of :func:`apply` (the first neuron on ties): () or (n,) int32 for x (d,) or (n, d)."""
    _check_params(params, x, ndim=(1, 2))
    d = params - x[..., None, :]
    return jnp.argmin(jnp.sum(d * d, axis=-1), axis=-1).astype(jnp.int32)


def _theta(best, num_neurons, sigma, neighbourhood, positions, dtype):
    if neighbourhood is None:  # winner takes all
        return (jnp.arange(num_neurons) == best).astype(dtype)
    return _nb.get(neighbourhood)(positions - positions[best], sigma=sigma).astype(dtype)


def _update(w, x, eta, sigma, neighbourhood, positions):
    d = w - x
    sq = jnp.sum(d * d, axis=-1)
    best = jnp.argmin(sq).astype(jnp.int32)
    theta = _theta(best, w.shape[0], sigma, neighbourhood, positions, w.dtype)
    return w - eta * theta[:, None] * d, best, jnp.sqrt(sq[best])


@partial(jax.jit, static_argnames=("neighbourhood",))
def update(params, x, *, learning_rate=0.1, neighbourhood=None, sigma=1.0, positions=None):
    """One online update for one example: WTA (``neighbourhood=None``) w_best ← w_best − η·(w_best − x), or
    WTM w_i ← w_i − η·Θ(best, i)·(w_i − x) for every neuron i.

    Args:
      params: (num_neurons, d) weights.
      x: (d,) float array, one example.
      learning_rate: η.
      neighbourhood: None (WTA), or "gaussian", "mexican_hat", "bubble" (WTM).
      sigma: spread σ of Θ (WTM only).
      positions: (num_neurons, p) neuron positions Θ is measured on; default the chain p_i = i.

    Returns:
      (params, best): the new weights and the winner's index, () int32.
    """
    _check_params(params, x, ndim=1)
    positions = _positions(neighbourhood, positions, params.shape[0], params.dtype)
    w, best, _ = _update(params, x, jnp.asarray(learning_rate, params.dtype), sigma, neighbourhood, positions)
    return w, best


def _positions(neighbourhood, positions, num_neurons, dtype):
    if neighbourhood is not None:
        V.check_choice(neighbourhood, tuple(_nb.NEIGHBOURHOODS), name="neighbourhood")
    if positions is None:
        return jnp.arange(num_neurons, dtype=dtype)[:, None]
    V.check_ndim(positions, 2, name="positions")
    if positions.shape[0] != num_neurons:
        raise ValueError(f"positions must have one row per neuron ({num_neurons}), got "
                         f"positions.shape={tuple(positions.shape)}")
    return jnp.asarray(positions, dtype)


def _converged(winners):
    if winners.shape[0] < 2:
        return jnp.zeros((), bool)
    return jnp.all(winners[-1] == winners[-2])


def _in_range(w):
    """The candidate weights and their squared norms ‖w_i‖² are finite in w's dtype: the winner search
    squares distances in that dtype, so beyond it the next winner would be chosen among infinities."""
    return _g.all_finite(jnp.sum(w * w, axis=-1))


def _info(winners, loss, first_pass, bad_update, max_steps, *, flat):
    """CompetitiveInfo of a guarded loop from the (max_steps, n) winners; ``bad_update`` indexes them
    flattened, -1 when none failed. ``flat``: return the winners as (max_steps · n,)."""
    bad = first_pass >= 0
    out = winners.reshape(-1)
    out = jnp.where(bad & (jnp.arange(out.shape[0]) >= bad_update), -1, out)
    steps = jnp.where(bad, first_pass, max_steps).astype(jnp.int32)
    return CompetitiveInfo(_converged(winners) & ~bad, steps, _g.after_stop(loss, first_pass),
                           out if flat else out.reshape(winners.shape), bad, first_pass)


@partial(jax.jit, static_argnames=("neighbourhood", "max_steps"))
def _fit(params, x, eta, sigma, positions, neighbourhood, max_steps):
    eta = jnp.asarray(eta, params.dtype)
    n = x.shape[0]

    def one(carry, xi):
        w, u, first_bad = carry
        new, best, dist = _update(w, xi, eta, sigma, neighbourhood, positions)
        w, first_bad = _g.keep_if(_in_range(new), first_bad, u, new, w)
        return (w, u + 1, first_bad), (best, dist)

    def one_pass(carry, _):
        return lax.scan(one, carry, x)

    start = (params, jnp.zeros((), jnp.int32), jnp.asarray(_g.NO_STEP, jnp.int32))
    (w, _, bad_update), (winners, dists) = lax.scan(one_pass, start, None, length=max_steps)
    loss = jnp.mean(dists.astype(jnp.promote_types(dists.dtype, jnp.float32)), axis=1).astype(params.dtype)
    first_pass = jnp.where(bad_update >= 0, bad_update // n, _g.NO_STEP).astype(jnp.int32)
    info = _info(winners, loss, first_pass, bad_update, max_steps, flat=True)
    return w, info


@partial(jax.jit, static_argnames=("neighbourhood", "max_steps", "precision"))
def _fit_batch(params, x, eta, sigma, positions, neighbourhood, max_steps, precision):
    eta = jnp.asarray(eta, params.dtype)
    m = params.shape[0]

    def one_pass(carry, t):
        w, first_bad = carry
        sq = D.squared_distances(x, w, precision)
        best = jnp.argmin(sq, axis=1).astype(jnp.int32)
        loss = jnp.mean(jnp.sqrt(jnp.min(sq, axis=1)))
        if neighbourhood is None:
            theta = jax.nn.one_hot(best, m, dtype=w.dtype)  # (n, m)
        else:
            fn = _nb.get(neighbourhood)
            theta = fn(positions[None, :, :] - positions[best][:, None, :], sigma=sigma).astype(w.dtype)
        den = jnp.sum(theta, axis=0)
        num = jnp.matmul(theta.T, x, precision=precision)
        has = den > 0
        target = num / jnp.where(has, den, 1)[:, None]
        new = jnp.where(has[:, None], w - eta * (w - target), w)
        return _g.keep_if(_in_range(new), first_bad, t, new, w), (best, loss)

    start = (params, jnp.asarray(_g.NO_STEP, jnp.int32))
    (w, first_bad), (winners, loss) = lax.scan(one_pass, start, jnp.arange(max_steps, dtype=jnp.int32))
    return w, _info(winners, loss, first_bad, first_bad * x.shape[0], max_steps, flat=False)


def fit(x, *, params, max_steps: int = 1, learning_rate=0.1, neighbourhood=None, sigma=1.0, positions=None):
    """Online WTA / WTM over the rows of x in order (``lax.scan``), starting from ``params``.

    One step is one pass over x (every example once, one update each).

    Args:
      x: (n, d) float array.
      params: (num_neurons, d) starting weights (:func:`init`, or weights of an earlier fit).
      max_steps: passes over x.
      learning_rate, neighbourhood, sigma, positions: as :func:`update` (``neighbourhood=None`` is WTA).

    Returns:
      (params, info): the new weights and a :class:`CompetitiveInfo`, winners (max_steps · n,).
    """
    x, params = jnp.asarray(x), jnp.asarray(params)
    _check_fit(x, params, max_steps, learning_rate, sigma)
    positions = _positions(neighbourhood, positions, params.shape[0], params.dtype)
    w, info = _fit(params, x, learning_rate, sigma, positions, neighbourhood, max_steps)
    _g.warn_nonfinite(info, where="competitive.fit", unit="pass", hint=_HINT)
    return w, info


_HINT = "; lower learning_rate (η ≤ 1 keeps every update a convex step towards the example)"


def fit_batch(x, *, params, max_steps: int = 1, learning_rate=1.0, neighbourhood=None, sigma=1.0,
              positions=None, precision=None):
    """Batch WTA / WTM: each pass moves every neuron towards the (Θ-weighted) mean of the examples it wins,
    w_i ← w_i − η·(w_i − Σ_n Θ(best_n, i)·x_n / Σ_n Θ(best_n, i)); neurons that win nothing stay.
    Batch WTA with η = 1 is a Lloyd step of k-means.

    One step is one pass over x. Arguments as :func:`fit`; ``precision`` goes to the matmuls.

    Returns:
      (params, info): winners (max_steps, n), the assignment each pass used.
    """
    x, params = jnp.asarray(x), jnp.asarray(params)
    _check_fit(x, params, max_steps, learning_rate, sigma)
    positions = _positions(neighbourhood, positions, params.shape[0], params.dtype)
    w, info = _fit_batch(params, x, learning_rate, sigma, positions, neighbourhood, max_steps, precision)
    _g.warn_nonfinite(info, where="competitive.fit_batch", unit="pass", hint=_HINT)
    return w, info


def _check_data(x, name):
    V.check_ndim(x, 2, name=name)
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample, got {name}.shape={tuple(x.shape)}")


def _check_params(params, x, ndim):
    V.check_ndim(params, 2, name="params")
    V.check_ndim(x, ndim, name="x")
    if x.shape[-1] != params.shape[1]:
        raise ValueError(f"x must have {params.shape[1]} features like params, got x.shape={tuple(x.shape)} "
                         f"and params.shape={tuple(params.shape)}")


def _check_fit(x, params, max_steps, learning_rate, sigma):
    _check_data(x, "x")
    _check_params(params, x, ndim=2)
    V.check_integer(max_steps, name="max_steps", minimum=1)
    V.check_positive(learning_rate, name="learning_rate")
    V.check_positive(sigma, name="sigma")
    V.check_finite(x, name="x")
    V.check_finite(params, name="params")
