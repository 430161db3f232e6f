"""Kohonen's self-organizing map: online and batch training, random and PCA initialization, map quality.

Neurons sit on a grid (:mod:`jaxmath.unsupervised.som_grid`) and are trained with winner-takes-most
(seed 000):

    w_ij(s+1) = w_ij(s) + Θ(k_best, i, s) · η(s) · (I_j(s) − w_ij(s))

Symbols: w_ij = ``params[r, c, j]`` (neuron i = (r, c)); I(s) = the example shown at step s;
k_best = the neuron nearest to I(s); Θ(k_best, i, s) = a neighbourhood function (gaussian, mexican_hat,
bubble) of the grid offset with spread σ(s); η(s), σ(s) = ``learning_rate`` and ``sigma`` decayed over the
``max_steps`` steps (MiniSom's schedules, :data:`som_grid.DECAYS`). Gaussian and Mexican hat use the
positions on the plane (hexagonal or rectangular); bubble uses the integer grid indices (as MiniSom).

Online training (:func:`fit`) scans the examples one per step (``lax.scan``); batch training
(:func:`fit_batch`, Kohonen's batch map) moves every neuron per step to the Θ-weighted mean of the data:

    w_i ← (1 − η)·w_i + η · Σ_n Θ(best_n, i)·x_n / Σ_n Θ(best_n, i)

Params are the (rows, cols, d) weights; everything jits and vmaps. The compiled epochs live in
:mod:`jaxmath.unsupervised.som_epochs`: the online one is tuned (‖w_i‖² carried from step to step, blocks of
neurons on CPU) and ``_fit_online_reference`` keeps the plain update beside it.
The map measures (quantization and topographic error, U-matrix, hits) live in
:mod:`jaxmath.unsupervised.som_measures` and are re-exported here.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as V
from jaxmath.unsupervised import _distances as D
from jaxmath.unsupervised import _guard as _g
from jaxmath.unsupervised import neighbourhoods as _nb
from jaxmath.unsupervised import som_grid as G
from jaxmath.unsupervised.som_epochs import SOMInfo as SOMInfo
from jaxmath.unsupervised.som_epochs import _finish, _fit_batch, _fit_online, _fit_online_reference  # noqa: F401
from jaxmath.unsupervised.som_epochs import _row_blocks  # noqa: F401  (tests check the CPU blocking)
from jaxmath.unsupervised.som_measures import _check_data, _check_weights_data
from jaxmath.unsupervised.som_measures import best_matching_units as best_matching_units
from jaxmath.unsupervised.som_measures import quantization_error as quantization_error
from jaxmath.unsupervised.som_measures import topographic_error as topographic_error
from jaxmath.unsupervised.som_measures import u_matrix as u_matrix
from jaxmath.unsupervised.som_measures import winner_map as winner_map

Array = jax.Array


def init(key, x, *, rows: int, cols: int, method: str = "random", precision=None) -> Array:
    """Initial map of ``rows × cols`` neurons for data x.

    method="random": every neuron starts at a sample of x drawn at random (MiniSom's random_weights_init).
    method="pca": w(r, c) = mean + a_r·√λ_1·v_1 + b_c·√λ_2·v_2 with a, b evenly spaced in [−1, 1] and
      (λ_k, v_k) the two leading eigenpairs of x's covariance (each v_k signed so its largest entry is > 0);
      deterministic, ``key`` is checked but unused.

    Args:
      key: PRNG key.
      x: (n, d) float array.
      rows, cols: grid size.
      method: "random" or "pca".
      precision: passed to the covariance matmul.

    Returns:
      (rows, cols, d) weights of x's dtype.
    """
    V.check_key(key)
    G.check_grid(rows, cols)
    x = jnp.asarray(x)
    _check_data(x)
    V.check_choice(method, ("random", "pca"), name="method")
    V.check_finite(x, name="x")
    if method == "random":
        idx = jax.random.randint(key, (rows * cols,), 0, x.shape[0])
        weights = x[idx]
    else:
        if x.shape[1] < 2:
            raise ValueError(f"method='pca' needs at least 2 features, got x.shape={tuple(x.shape)}")
        a = np.linspace(-1, 1, rows) if rows > 1 else np.zeros(1)
        b = np.linspace(-1, 1, cols) if cols > 1 else np.zeros(1)
        weights = _pca_init(x, jnp.asarray(np.repeat(a, cols), x.dtype), jnp.asarray(np.tile(b, rows), x.dtype),
                            precision)
    return weights.reshape(rows, cols, x.shape[1])


@partial(jax.jit, static_argnames=("precision",))
def _pca_init(x, a, b, precision):
    # The eigendecomposition runs in at least float32 (LAPACK has no bfloat16 or float16 kernel).
    dtype = x.dtype
    x, a, b = (v.astype(jnp.promote_types(dtype, jnp.float32)) for v in (x, a, b))
    return _pca_weights(x, a, b, precision).astype(dtype)


def _pca_weights(x, a, b, precision):
    mean = jnp.mean(x, axis=0)
    xc = x - mean
    cov = jnp.matmul(xc.T, xc, precision=precision) / max(x.shape[0] - 1, 1)
    vals, vecs = jnp.linalg.eigh(cov)
    v = vecs[:, ::-1][:, :2]
    lam = jnp.maximum(vals[::-1][:2], 0)
    sign = jnp.sign(v[jnp.argmax(jnp.abs(v), axis=0), jnp.arange(2)])
    v = v * sign * jnp.sqrt(lam)
    return mean + a[:, None] * v[:, 0] + b[:, None] * v[:, 1]


def fit(x, *, params, max_steps: int | None = None, learning_rate=0.5, sigma=1.0, neighbourhood: str = "gaussian",
        topology: str = "rectangular", learning_rate_decay="asymptotic", sigma_decay="asymptotic", key=None,
        precision=None):
    """Online SOM: one example per step, ``lax.scan`` over ``max_steps`` steps, starting from ``params``.

    At step s the example is x[s mod n] (MiniSom's ``train(..., random_order=False)``), or, with ``key``, the
    same multiset of indices shuffled (``random_order=True``). η(s) and σ(s) decay over the ``max_steps``
    steps of this call.

    Args:
      x: (n, d) float array.
      params: (rows, cols, d) starting weights (:func:`init`, or the weights of an earlier fit).
      max_steps: T, the number of examples shown (one step = one example); default n, one epoch.
      learning_rate, sigma: η(0) and σ(0).
      neighbourhood: "gaussian", "mexican_hat" or "bubble".
      topology: "rectangular" or "hexagonal".
      learning_rate_decay, sigma_decay: a name from :data:`som_grid.DECAYS` or ``(p_0, s, T) -> p(s)``.
      key: PRNG key to shuffle the order, or None for the sequential order.
      precision: passed to the matrix-vector product of the winner search.

    Returns:
      (params, info): the new weights and a :class:`SOMInfo` (winners and distances per step).
    """
    x, params = jnp.asarray(x), jnp.asarray(params)
    args = _check_fit(params, x, max_steps, learning_rate, sigma, neighbourhood, topology, learning_rate_decay,
                      sigma_decay)
    shuffle = key is not None
    if shuffle:
        V.check_key(key)
    w, winners, dists, first_bad = _fit_online(params, x, learning_rate, sigma,
                                               key if shuffle else jax.random.key(0), *args, shuffle, precision)
    w, info = _finish(w, winners, dists, first_bad, jnp.zeros((), bool), args[0])
    _g.warn_nonfinite(info, where="som.fit", hint=_HINT)
    return w, info


_HINT = "; lower learning_rate (η(0) ≤ 1 keeps every update a convex step towards the example)"


def fit_batch(x, *, params, max_steps: int = 10, learning_rate=1.0, sigma=1.0, neighbourhood: str = "gaussian",
              topology: str = "rectangular", learning_rate_decay="asymptotic", sigma_decay="asymptotic",
              precision=None):
    """Batch SOM (MiniSom's ``train_batch_offline``): each step every neuron with Σ_n Θ > 0 moves to
    (1 − η)·w + η·(Θ-weighted mean of x); η = 1 is Kohonen's batch map. One step is one pass over x.
    Arguments as :func:`fit`.

    Returns:
      (params, info): the new weights and a :class:`SOMInfo` (winners (max_steps, n)).
    """
    x, params = jnp.asarray(x), jnp.asarray(params)
    if max_steps is None:
        raise TypeError("fit_batch needs an integer max_steps")
    args = _check_fit(params, x, max_steps, learning_rate, sigma, neighbourhood, topology, learning_rate_decay,
                      sigma_decay)
    w, info = _fit_batch(params, x, learning_rate, sigma, *args, precision)
    _g.warn_nonfinite(info, where="som.fit_batch", hint=_HINT)
    return w, info


@partial(jax.jit, static_argnames=("precision",))
def apply(params, x, *, precision=None) -> Array:
    """Euclidean distance ‖x_n − w_i‖ from every example to every neuron.

    Args:
      params: (rows, cols, d) weights.
      x: (n, d) float array.
      precision: passed to the matmul of ‖x‖² + ‖w‖² − 2·x·w.

    Returns:
      (n, rows, cols) distances.
    """
    _check_weights_data(params, x)
    rows, cols, d = params.shape
    return jnp.sqrt(D.squared_distances(x, params.reshape(-1, d), precision)).reshape(-1, rows, cols)


@partial(jax.jit, static_argnames=("precision",))
def predict(params, x, *, precision=None) -> Array:
    """Flat index r·cols + c of each example's best-matching unit (argmin of :func:`apply`): (n,) int32."""
    _check_weights_data(params, x)
    return D.nearest(x, params.reshape(-1, params.shape[-1]), precision)


def _check_fit(params, x, max_steps, learning_rate, sigma, neighbourhood, topology, learning_rate_decay,
               sigma_decay):
    """Host checks of a fit; returns the static arguments (max_steps, neighbourhood, topology, decays)."""
    _check_weights_data(params, x)
    if max_steps is None:
        max_steps = x.shape[0]
    V.check_integer(max_steps, name="max_steps", minimum=1)
    V.check_positive(learning_rate, name="learning_rate")
    V.check_positive(sigma, name="sigma")
    V.check_choice(neighbourhood, tuple(_nb.NEIGHBOURHOODS), name="neighbourhood")
    V.check_choice(topology, G.TOPOLOGIES, name="topology")
    lr_decay = G.decay(learning_rate_decay, argname="learning_rate_decay")
    sig_decay = G.decay(sigma_decay, argname="sigma_decay")
    V.check_finite(x, name="x")
    V.check_finite(params, name="params")
    return max_steps, neighbourhood, topology, lr_decay, sig_decay
