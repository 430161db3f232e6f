"""Kohonen's self-organizing map: online and batch training, random and PCA initialization, map quality.

Neurons sit on a grid (:mod:`jaxmath.unsupervised.som_grid`) and are trained with winner-takes-most
(seed 000):

    w_ij(s+1) = w_ij(s) + Θ(k_best, i, s) · η(s) · (I_j(s) − w_ij(s))

Symbols: w_ij = ``state.weights[r, c, j]`` (neuron i = (r, c)); I(s) = the example shown at iteration s;
k_best = the neuron nearest to I(s); Θ(k_best, i, s) = a neighbourhood function (gaussian, mexican_hat,
bubble) of the grid offset with spread σ(s); η(s), σ(s) = ``learning_rate`` and ``sigma`` decayed over the
``num_iterations`` iterations (MiniSom's schedules, :data:`som_grid.DECAYS`). Gaussian and Mexican hat use the
positions on the plane (hexagonal or rectangular); bubble uses the integer grid indices (as MiniSom).

Online training (:func:`train`) scans the examples one per iteration (``lax.scan``); batch training
(:func:`train_batch`, Kohonen's batch map) moves every neuron per iteration to the Θ-weighted mean of the data:

    w_i ← (1 − η)·w_i + η · Σ_n Θ(best_n, i)·x_n / Σ_n Θ(best_n, i)

State: :class:`SOMState` with weights (rows, cols, d); everything jits and vmaps.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath import _validation as V
from jaxmath.distances import pairwise_distances
from jaxmath.unsupervised import neighbourhoods as _nb
from jaxmath.unsupervised import som_grid as G

Array = jax.Array


class SOMState(NamedTuple):
    """weights: (rows, cols, d) one prototype per neuron; step: () int32, updates made so far."""

    weights: Array
    step: Array


def init(key, X, rows: int, cols: int, *, method: str = "random", precision=None) -> SOMState:
    """Initial map of ``rows × cols`` neurons for data X (n, d).

    method="random": every neuron starts at a sample of X drawn at random (MiniSom's random_weights_init).
    method="pca": w(r, c) = mean + a_r·√λ_1·v_1 + b_c·√λ_2·v_2 with a, b evenly spaced in [−1, 1] and
      (λ_k, v_k) the two leading eigenpairs of X's covariance (each v_k signed so its largest entry is > 0);
      deterministic, ``key`` is unused.

    Returns:
      :class:`SOMState`, weights (rows, cols, d) of X's dtype.
    """
    G.check_grid(rows, cols)
    _check_data(X)
    V.check_choice(method, ("random", "pca"), name="method")
    X = jnp.asarray(X)
    if method == "random":
        idx = jax.random.randint(key, (rows * cols,), 0, X.shape[0])
        weights = X[idx]
    else:
        if X.shape[1] < 2:
            raise ValueError(f"method='pca' needs at least 2 features, got X.shape={tuple(X.shape)}")
        a = np.linspace(-1, 1, rows) if rows > 1 else np.zeros(1)
        b = np.linspace(-1, 1, cols) if cols > 1 else np.zeros(1)
        weights = _pca_init(X, jnp.asarray(np.repeat(a, cols), X.dtype), jnp.asarray(np.tile(b, rows), X.dtype),
                            precision)
    return SOMState(weights.reshape(rows, cols, X.shape[1]), jnp.zeros((), jnp.int32))


@partial(jax.jit, static_argnames=("precision",))
def _pca_init(X, a, b, precision):
    mean = jnp.mean(X, axis=0)
    Xc = X - mean
    cov = jnp.matmul(Xc.T, Xc, precision=precision) / max(X.shape[0] - 1, 1)
    vals, vecs = jnp.linalg.eigh(cov)
    v = vecs[:, ::-1][:, :2]
    lam = jnp.maximum(vals[::-1][:2], 0)
    sign = jnp.sign(v[jnp.argmax(jnp.abs(v), axis=0), jnp.arange(2)])
    v = v * sign * jnp.sqrt(lam)
    return mean + a[:, None] * v[:, 0] + b[:, None] * v[:, 1]


def _positions(rows, cols, topology, neighbourhood, dtype):
    if neighbourhood == "bubble":
        return jnp.asarray(G.grid_indices(rows, cols), dtype)
    return jnp.asarray(G.grid_coordinates(rows, cols, topology=topology), dtype)


def _schedules(learning_rate, sigma, num_iterations, lr_decay, sigma_decay, dtype):
    # Schedules are computed in at least float32: s up to T is not exact in bfloat16.
    sdtype = jnp.promote_types(dtype, jnp.float32)
    s = jnp.arange(num_iterations, dtype=sdtype)
    T = jnp.asarray(num_iterations, sdtype)
    eta = G.decay(lr_decay)(jnp.asarray(learning_rate, sdtype), s, T)
    sig = G.decay(sigma_decay)(jnp.asarray(sigma, sdtype), s, T)
    return eta.astype(dtype), sig.astype(dtype)


# Most steps between two exact recomputations of ‖w_i‖² in the online epoch (see ``_train``): the closed-form
# update in between adds one rounding per step, so this bounds the drift to about what a fresh 784-term sum
# carries anyway.
_NORM_REFRESH = 256
# XLA:CPU hands an elementwise loop whose output exceeds 256 KiB to two threads. One SOM step is a few
# microseconds of work, so that hand-off, 10,000 times an epoch, costs more than it saves; the update is
# written per block of neurons below this size instead (CPU only: GPUs and TPUs take one kernel).
_CPU_BLOCK_BYTES = 256 * 1024


def _row_blocks(m, d, itemsize):
    if jax.default_backend() != "cpu":
        return ((0, m),)
    num = max(1, -(-m * d * itemsize // _CPU_BLOCK_BYTES))
    size = -(-m // num)
    return tuple((lo, min(lo + size, m)) for lo in range(0, m, size))


@partial(jax.jit, static_argnames=("num_iterations", "neighbourhood", "topology", "lr_decay", "sigma_decay",
                                   "shuffle", "precision"))
def _train(state, X, learning_rate, sigma, key, num_iterations, neighbourhood, topology, lr_decay,
           sigma_decay, shuffle, precision):
    rows, cols, d = state.weights.shape
    m = rows * cols
    dtype = state.weights.dtype
    # ‖w‖², ‖x‖² and w·x are carried in at least float32: the closed form below is a difference of sums.
    acc = jnp.promote_types(dtype, jnp.float32)
    pos = _positions(rows, cols, topology, neighbourhood, dtype)
    fn = _nb.get(neighbourhood)
    order = jnp.arange(num_iterations) % X.shape[0]
    if shuffle:
        order = jax.random.permutation(key, order)
    etas, sigmas = _schedules(learning_rate, sigma, num_iterations, lr_decay, sigma_decay, dtype)
    x_sq = jnp.sum(jnp.square(X.astype(acc)), axis=1)[order]  # ‖x‖² of each step's example, one pass over X

    # The epoch runs as num_chunks chunks of chunk steps; padded steps have η = 0, so they leave w and ‖w‖²
    # exactly as they are (σ is padded with its last value to keep Θ finite), and their winners are dropped.
    num_chunks = -(-num_iterations // _NORM_REFRESH)
    chunk = -(-num_iterations // num_chunks)
    pad = num_chunks * chunk - num_iterations

    def padded(a, value):
        return jnp.concatenate([a, jnp.full((pad,), value, a.dtype)]).reshape(num_chunks, chunk)

    inputs = (padded(order, 0), padded(x_sq, 0), padded(etas, 0), padded(sigmas, sigmas[-1]))
    blocks = _row_blocks(m, d, jnp.dtype(dtype).itemsize)

    def step(carry, inputs):
        ws, w_sq = carry
        idx, xx, eta, sig = inputs
        x = X[idx]
        wx = jnp.concatenate([jnp.matmul(w, x, precision=precision, preferred_element_type=acc) for w in ws])
        # argmin ‖x − w_i‖² = argmin ‖w_i‖² − 2·w_i·x: one matrix-vector product per step, with ‖w_i‖² carried.
        best = jnp.argmin(w_sq - 2 * wx).astype(jnp.int32)
        a = eta * fn(pos - pos[best], sig).astype(dtype)
        ws = tuple(w + a[lo:hi, None] * (x - w) for w, (lo, hi) in zip(ws, blocks))
        # w' = (1 − a)·w + a·x, so ‖w'‖² = (1 − a)²‖w‖² + 2a(1 − a)·w·x + a²‖x‖²: no second pass over w.
        a = a.astype(acc)
        b = 1 - a
        return (ws, b * b * w_sq + 2 * a * b * wx + a * a * xx), best

    def run_chunk(ws, inputs):
        w_sq = jnp.concatenate([jnp.sum(jnp.square(w.astype(acc)), axis=1) for w in ws])  # exact, once a chunk
        (ws, _), winners = lax.scan(step, (ws, w_sq), inputs)
        return ws, winners

    w = state.weights.reshape(m, d)
    ws, winners = lax.scan(run_chunk, tuple(w[lo:hi] for lo, hi in blocks), inputs)
    w = jnp.concatenate(ws) if len(ws) > 1 else ws[0]
    return SOMState(w.reshape(rows, cols, d), state.step + num_iterations), winners.reshape(-1)[:num_iterations]


def train(state: SOMState, X, *, num_iterations: int | None = None, learning_rate=0.5, sigma=1.0,
          neighbourhood: str = "gaussian", topology: str = "rectangular", learning_rate_decay="asymptotic",
          sigma_decay="asymptotic", key=None, precision=None):
    """Online SOM: one example per iteration, ``lax.scan`` over ``num_iterations`` iterations.

    At iteration s the example is X[s mod n] (MiniSom's ``train(..., random_order=False)``), or, with
    ``key``, the same multiset of indices shuffled (``random_order=True``).

    Args:
      state: :class:`SOMState`, weights (rows, cols, d).
      X: (n, d) float array.
      num_iterations: T, default n (one epoch).
      learning_rate, sigma: η(0) and σ(0).
      neighbourhood: "gaussian", "mexican_hat" or "bubble".
      topology: "rectangular" or "hexagonal".
      learning_rate_decay, sigma_decay: a name from :data:`som_grid.DECAYS` or ``(p_0, s, T) -> p(s)``.
      key: PRNG key to shuffle the order, or None for the sequential order.
      precision: passed to the matrix-vector product of the winner search.

    Returns:
      (state, winners): the new state and the (T,) int32 flat index r·cols + c of each iteration's winner.
    """
    num_iterations = _check_train(state, X, num_iterations, learning_rate, sigma, neighbourhood, topology)
    lr_decay = G.decay(learning_rate_decay, argname="learning_rate_decay")
    sig_decay = G.decay(sigma_decay, argname="sigma_decay")
    shuffle = key is not None
    key = key if shuffle else jax.random.key(0)
    return _train(state, jnp.asarray(X), learning_rate, sigma, key, num_iterations, neighbourhood, topology,
                  lr_decay, sig_decay, shuffle, precision)


@partial(jax.jit, static_argnames=("num_iterations", "neighbourhood", "topology", "lr_decay", "sigma_decay",
                                   "precision"))
def _train_batch(state, X, learning_rate, sigma, num_iterations, neighbourhood, topology, lr_decay,
                 sigma_decay, precision):
    rows, cols, d = state.weights.shape
    dtype = state.weights.dtype
    pos = _positions(rows, cols, topology, neighbourhood, dtype)
    fn = _nb.get(neighbourhood)
    etas, sigmas = _schedules(learning_rate, sigma, num_iterations, lr_decay, sigma_decay, dtype)

    def body(w, inputs):
        eta, sig = inputs
        best = _bmu(w, X, precision)
        theta = fn(pos[None, :, :] - pos[best][:, None, :], sig).astype(dtype)  # (n, m)
        num = jnp.matmul(theta.T, X, precision=precision)
        den = jnp.sum(theta, axis=0)
        has = den > 0
        target = num / jnp.where(has, den, 1)[:, None]
        return jnp.where(has[:, None], (1 - eta) * w + eta * target, w), None

    w, _ = lax.scan(body, state.weights.reshape(rows * cols, d), (etas, sigmas))
    return SOMState(w.reshape(rows, cols, d), state.step + num_iterations)


def train_batch(state: SOMState, X, *, num_iterations: int = 10, learning_rate=1.0, sigma=1.0,
                neighbourhood: str = "gaussian", topology: str = "rectangular", learning_rate_decay="asymptotic",
                sigma_decay="asymptotic", precision=None) -> SOMState:
    """Batch SOM (MiniSom's ``train_batch_offline``): each iteration every neuron with Σ_n Θ > 0 moves to
    (1 − η)·w + η·(Θ-weighted mean of X); η = 1 is Kohonen's batch map. Arguments as :func:`train`.
    Returns the new :class:`SOMState`.
    """
    _check_train(state, X, num_iterations, learning_rate, sigma, neighbourhood, topology)
    lr_decay = G.decay(learning_rate_decay, argname="learning_rate_decay")
    sig_decay = G.decay(sigma_decay, argname="sigma_decay")
    return _train_batch(state, jnp.asarray(X), learning_rate, sigma, num_iterations, neighbourhood, topology,
                        lr_decay, sig_decay, precision)


def _sq_dists(w, X, precision):
    return pairwise_distances(X, w, metric="squared_euclidean", precision=precision)


def _bmu(w, X, precision):
    return jnp.argmin(_sq_dists(w, X, precision), axis=1).astype(jnp.int32)


@partial(jax.jit, static_argnames=("precision",))
def _quantization_error(weights, X, precision):
    w = weights.reshape(-1, weights.shape[-1])
    diff = X - w[_bmu(w, X, precision)]
    return jnp.mean(jnp.sqrt(jnp.sum(diff * diff, axis=1)))


def quantization_error(weights, X, *, precision=None) -> Array:
    """Mean distance from each sample to its best-matching unit: (1/n)·Σ_n ‖x_n − w_best(n)‖.

    Args: weights (rows, cols, d); X (n, d). Returns a () float.
    """
    _check_weights_data(weights, X)
    return _quantization_error(jnp.asarray(weights), jnp.asarray(X), precision)


@partial(jax.jit, static_argnames=("topology", "precision"))
def _topographic_error(weights, X, topology, precision):
    rows, cols, d = weights.shape
    w = weights.reshape(-1, d)
    top2 = lax.top_k(-_sq_dists(w, X, precision), 2)[1]
    adj = jnp.asarray(G.adjacency(rows, cols, topology=topology))
    return 1 - jnp.mean(adj[top2[:, 0], top2[:, 1]].astype(weights.dtype))


def topographic_error(weights, X, *, topology: str = "rectangular", precision=None) -> Array:
    """Share of samples whose best and second-best units are not grid neighbours (8-neighbourhood on a
    rectangular grid, 6 on a hexagonal one, as MiniSom). Args: weights (rows, cols, d), X (n, d). Returns ()."""
    _check_weights_data(weights, X)
    V.check_choice(topology, G.TOPOLOGIES, name="topology")
    if weights.shape[0] * weights.shape[1] < 2:
        raise ValueError(f"topographic_error needs at least 2 neurons, got weights.shape={tuple(weights.shape)}")
    return _topographic_error(jnp.asarray(weights), jnp.asarray(X), topology, precision)


@partial(jax.jit, static_argnames=("topology", "scaling"))
def _u_matrix(weights, topology, scaling):
    rows, cols, d = weights.shape
    w = weights.reshape(-1, d)
    diff = w[:, None, :] - w[None, :, :]
    dist = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
    adj = jnp.asarray(G.adjacency(rows, cols, topology=topology))
    total = jnp.sum(jnp.where(adj, dist, 0), axis=1)
    if scaling == "mean":
        total = total / jnp.maximum(jnp.sum(adj, axis=1), 1).astype(total.dtype)
    return (total / jnp.max(total)).reshape(rows, cols)


def u_matrix(weights, *, topology: str = "rectangular", scaling: str = "sum") -> Array:
    """U-matrix: for each neuron the sum (or mean) of the distances ‖w_i − w_k‖ to its grid neighbours,
    divided by the largest such value (MiniSom's ``distance_map``). weights (rows, cols, d) -> (rows, cols)."""
    V.check_ndim(weights, 3, name="weights")
    G.check_grid(weights.shape[0], weights.shape[1])
    V.check_choice(topology, G.TOPOLOGIES, name="topology")
    V.check_choice(scaling, ("sum", "mean"), name="scaling")
    V.check_finite(weights, name="weights")
    return _u_matrix(jnp.asarray(weights), topology, scaling)


def best_matching_units(weights, X, *, precision=None) -> Array:
    """Grid position (r, c) of each sample's nearest neuron: weights (rows, cols, d), X (n, d) -> (n, 2) int32."""
    _check_weights_data(weights, X)
    cols = weights.shape[1]
    flat = _jit_bmu(jnp.asarray(weights).reshape(-1, weights.shape[-1]), jnp.asarray(X), precision)
    return jnp.stack([flat // cols, flat % cols], axis=1)


_jit_bmu = jax.jit(_bmu, static_argnames=("precision",))


def winner_map(weights, X, *, precision=None) -> Array:
    """How many samples each neuron wins: weights (rows, cols, d), X (n, d) -> (rows, cols) int32 counts."""
    _check_weights_data(weights, X)
    rows, cols = weights.shape[:2]
    flat = _jit_bmu(jnp.asarray(weights).reshape(-1, weights.shape[-1]), jnp.asarray(X), precision)
    return jnp.zeros(rows * cols, jnp.int32).at[flat].add(1).reshape(rows, cols)


def _check_data(X):
    V.check_ndim(X, 2, name="X")
    if X.shape[0] == 0:
        raise ValueError(f"X must hold at least one sample, got X.shape={tuple(X.shape)}")
    V.check_finite(X, name="X")


def _check_weights_data(weights, X):
    V.check_ndim(weights, 3, name="weights")
    G.check_grid(weights.shape[0], weights.shape[1])
    _check_data(X)
    if X.shape[1] != weights.shape[2]:
        raise ValueError(f"X must have {weights.shape[2]} features like weights, got X.shape={tuple(X.shape)} "
                         f"and weights.shape={tuple(weights.shape)}")
    V.check_finite(weights, name="weights")


def _check_train(state, X, num_iterations, learning_rate, sigma, neighbourhood, topology):
    _check_weights_data(state.weights, X)
    if num_iterations is None:
        num_iterations = X.shape[0]
    V.check_integer(num_iterations, name="num_iterations", minimum=1)
    V.check_positive(learning_rate, name="learning_rate")
    V.check_positive(sigma, name="sigma")
    V.check_choice(neighbourhood, tuple(_nb.NEIGHBOURHOODS), name="neighbourhood")
    V.check_choice(topology, G.TOPOLOGIES, name="topology")
    return num_iterations
