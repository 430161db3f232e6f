"""k-means clustering: k-means++ seeding, Lloyd iterations in ``lax.while_loop``, restarts in parallel with ``vmap``.

k-means minimizes the inertia, the within-cluster sum of squared distances (seed 003: "intra-cluster variance"):

    J(c) = Σ_n min_k ‖x_n − c_k‖²

Lloyd's algorithm alternates the assignment l_n = argmin_k ‖x_n − c_k‖² (with ‖x‖² + ‖c‖² − 2·x·c, no
(n, k, d) intermediate) and the update c_k = mean{x_n : l_n = k}. A cluster left empty is re-seeded at the
point farthest from its own centroid (as scikit-learn does) instead of becoming NaN. The loop stops when
the assignment no longer changes, when the total squared centroid shift Σ_k ‖c_k' − c_k‖² ≤ tol·mean_j Var(x_j)
(scikit-learn's tolerance), or after ``max_iter`` iterations.

State is a :class:`KMeansState` pytree; everything jits and vmaps.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as V
from jaxmath.distances import pairwise_distances

Array = jax.Array


class KMeansState(NamedTuple):
    """One k-means run.

    centroids: (k, d) cluster centres c_k.
    labels: (n,) int32 cluster of each sample.
    inertia: () Σ_n ‖x_n − c_{l_n}‖².
    num_iterations: () int32 Lloyd iterations done.
    converged: () bool, stopped by the assignment or the tolerance rather than by max_iter.
    """

    centroids: Array
    labels: Array
    inertia: Array
    num_iterations: Array
    converged: Array


def squared_distances(X, centroids, *, precision=None) -> Array:
    """‖x_n − c_k‖² = ‖x_n‖² + ‖c_k‖² − 2·x_n·c_k, clamped at 0: X (n, d), centroids (k, d) -> (n, k).

    :func:`jaxmath.distances.pairwise_distances` with ``metric="squared_euclidean"``.
    """
    return pairwise_distances(X, centroids, metric="squared_euclidean", precision=precision)


def _scores(X, centroids, precision):
    # ‖x_n‖² does not change the argmin, so it is left out: score[k, n] = ‖c_k‖² − 2·c_k·x_n.
    # The (k, n) layout (C·Xᵀ) is the faster product on CPU for k ≪ n.
    cc = jnp.sum(centroids * centroids, axis=-1)
    return cc[:, None] - 2 * jnp.matmul(centroids, X.T, precision=precision)


def _assign(X, centroids, precision):
    return jnp.argmin(_scores(X, centroids, precision), axis=0).astype(jnp.int32)


def _inertia(X, centroids, labels):
    # Accumulate in at least float32: a bfloat16 running sum stops growing long before n terms.
    diff = (X - centroids[labels]).astype(jnp.promote_types(X.dtype, jnp.float32))
    return jnp.sum(diff * diff).astype(X.dtype)


def _update(X, centroids, labels, best_scores, precision):
    """Centroid update with empty clusters re-seeded at the farthest points (scikit-learn's relocation).

    best_scores: (n,) ‖c_l‖² − 2·x·c_l of each sample's own centroid (‖x‖² added back only when needed).
    """
    k = centroids.shape[0]
    # segment_sum adds exactly on every backend (a one-hot matmul would round X to bfloat16 under TPU's
    # default precision) and is the faster of the two on CPU.
    # Sums accumulate in at least float32 and counts in int32: bfloat16 cannot count past 256.
    acc = jnp.promote_types(X.dtype, jnp.float32)
    sums = jax.ops.segment_sum(X.astype(acc), labels, k)
    counts = jax.ops.segment_sum(jnp.ones(labels.shape, jnp.int32), labels, k)
    empty = counts == 0

    def relocate(sums_counts):
        sums, counts = sums_counts
        # The r-th empty cluster takes the r-th farthest sample from its own centroid, which leaves its old cluster.
        far = lax.top_k(best_scores + jnp.sum(X * X, axis=1), min(k, X.shape[0]))[1]
        rank = jnp.cumsum(empty) - 1
        uses = jnp.arange(far.shape[0]) < jnp.sum(empty)
        donors = labels[far]
        sums = sums.at[donors].add(-jnp.where(uses[:, None], X[far].astype(acc), 0))
        counts = counts.at[donors].add(-uses.astype(counts.dtype))
        seed = X[far[jnp.clip(rank, 0, far.shape[0] - 1)]].astype(acc)
        return jnp.where(empty[:, None], seed, sums), jnp.where(empty, 1, counts)

    # The relocation (a top-k over all samples) only runs when a cluster is empty.
    sums, counts = lax.cond(jnp.any(empty), relocate, lambda sc: sc, (sums, counts))
    # A donor left with no sample keeps its centroid rather than dividing by zero.
    alive = counts > 0
    means = (sums / jnp.where(alive, counts, 1).astype(acc)[:, None]).astype(X.dtype)
    return jnp.where(alive[:, None], means, centroids)


def _assign_update(X, centroids, precision):
    scores = _scores(X, centroids, precision)
    labels = jnp.argmin(scores, axis=0).astype(jnp.int32)
    best = jnp.min(scores, axis=0)
    return _update(X, centroids, labels, best, precision), labels


def lloyd_step(X, centroids, *, precision=None):
    """One Lloyd iteration: assign every sample to its nearest centroid, then move each centroid to its mean.

    Args:
      X: (n, d) float array.
      centroids: (k, d) float array.
      precision: passed to the matmuls.

    Returns:
      (new_centroids (k, d), labels (n,) int32 computed with the old centroids).
    """
    _check_data(X)
    _check_centroids(X, centroids)
    return _lloyd_step(jnp.asarray(X), jnp.asarray(centroids), precision)


@partial(jax.jit, static_argnames=("precision",))
def _lloyd_step(X, centroids, precision):
    return _assign_update(X, centroids, precision)


def _lloyd(X, centroids, max_iter, tol, precision):
    n = X.shape[0]
    tol = tol * jnp.mean(jnp.var(X, axis=0))

    def cond(carry):
        _, _, it, done = carry
        return (it < max_iter) & ~done

    def body(carry):
        centroids, labels_old, it, _ = carry
        new, labels = _assign_update(X, centroids, precision)
        shift = jnp.sum((new - centroids) ** 2)
        done = jnp.all(labels == labels_old) | (shift <= tol)
        return new, labels, it + 1, done

    init = (centroids, jnp.full((n,), -1, jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    centroids, _, it, done = lax.while_loop(cond, body, init)
    labels = _assign(X, centroids, precision)
    return KMeansState(centroids, labels, _inertia(X, centroids, labels), it, done)


def kmeans_plus_plus(key, X, num_clusters: int, *, num_local_trials: int | None = None, precision=None) -> Array:
    """k-means++ seeding (greedy, as scikit-learn): each new centre is the best of ``num_local_trials``
    candidates drawn with probability ∝ D(x)², D(x) = distance to the nearest centre chosen so far.

    Args:
      key: PRNG key.
      X: (n, d) float array.
      num_clusters: k ≤ n.
      num_local_trials: candidates per centre, default 2 + ⌊ln k⌋.

    Returns:
      (k, d) initial centroids of X's dtype.
    """
    _check_data(X)
    _check_k(X, num_clusters)
    if num_local_trials is None:
        num_local_trials = 2 + int(math.log(num_clusters))
    V.check_integer(num_local_trials, name="num_local_trials", minimum=1)
    return _kmeans_plus_plus(key, jnp.asarray(X), num_clusters, num_local_trials, precision)


@partial(jax.jit, static_argnames=("num_clusters", "num_local_trials", "precision"))
def _kmeans_plus_plus(key, X, num_clusters, num_local_trials, precision):
    n = X.shape[0]
    first_key, key = jax.random.split(key)
    first = jax.random.randint(first_key, (), 0, n)
    centroids = jnp.zeros((num_clusters, X.shape[1]), X.dtype).at[0].set(X[first])
    closest = squared_distances(X, X[first][None], precision=precision)[:, 0]

    def body(c, carry):
        centroids, closest, key = carry
        key, sub = jax.random.split(key)
        cumulative = jnp.cumsum(closest)
        draws = jax.random.uniform(sub, (num_local_trials,), X.dtype) * cumulative[-1]
        candidates = jnp.clip(jnp.searchsorted(cumulative, draws), 0, n - 1)
        dist = squared_distances(X[candidates], X, precision=precision)  # (trials, n)
        dist = jnp.minimum(closest[None, :], dist)
        best = jnp.argmin(jnp.sum(dist, axis=1))
        return centroids.at[c].set(X[candidates[best]]), dist[best], key

    centroids, _, _ = lax.fori_loop(1, num_clusters, body, (centroids, closest, key))
    return centroids


@partial(jax.jit, static_argnames=("num_clusters", "num_restarts", "max_iter", "precision"))
def _kmeans_restarts(key, X, tol, num_clusters, num_restarts, max_iter, precision):
    trials = 2 + int(math.log(num_clusters))

    def one(key):
        init = _kmeans_plus_plus(key, X, num_clusters, trials, precision)
        return _lloyd(X, init, max_iter, tol, precision)

    runs = jax.vmap(one)(jax.random.split(key, num_restarts))
    best = jnp.argmin(runs.inertia)
    return jax.tree_util.tree_map(lambda leaf: leaf[best], runs)


@partial(jax.jit, static_argnames=("max_iter", "precision"))
def _kmeans_from(X, centroids, tol, max_iter, precision):
    return _lloyd(X, centroids, max_iter, tol, precision)


def fit(X, *, num_clusters: int | None = None, key=None, init=None, num_restarts: int = 10,
           max_iter: int = 300, tol=1e-4, precision=None) -> KMeansState:
    """Cluster the rows of X with k-means (Lloyd), keeping the best of several k-means++ restarts.

    Either ``init`` (k, d) gives the starting centroids (one run), or ``key`` and ``num_clusters`` seed
    ``num_restarts`` runs with k-means++, run side by side with ``vmap``; the lowest inertia wins.

    Args:
      X: (n, d) float array.
      num_clusters: k ≤ n (taken from ``init`` when given).
      key: PRNG key for k-means++ (required without ``init``).
      init: (k, d) initial centroids, or None.
      num_restarts: parallel k-means++ runs.
      max_iter: bound on Lloyd iterations per run.
      tol: stop when Σ_k ‖Δc_k‖² ≤ tol · mean_j Var(x_j) (scikit-learn's convention); 0 runs to a fixed point.
      precision: passed to the matmuls.

    Returns:
      :class:`KMeansState` of the best run.
    """
    _check_data(X)
    V.check_integer(max_iter, name="max_iter", minimum=1)
    V.check_positive(tol, name="tol", allow_zero=True)
    X = jnp.asarray(X)
    if init is not None:
        _check_centroids(X, init)
        if num_clusters is not None and num_clusters != init.shape[0]:
            raise ValueError(f"num_clusters={num_clusters} does not match init.shape={tuple(init.shape)}")
        return _kmeans_from(X, jnp.asarray(init, X.dtype), tol, max_iter, precision)
    if num_clusters is None or key is None:
        raise ValueError("kmeans.fit needs init=centroids, or num_clusters and key for k-means++")
    _check_k(X, num_clusters)
    V.check_integer(num_restarts, name="num_restarts", minimum=1)
    return _kmeans_restarts(key, X, tol, num_clusters, num_restarts, max_iter, precision)


def predict(centroids, X, *, precision=None) -> Array:
    """Index of the nearest centroid for each row of X: centroids (k, d), X (n, d) -> (n,) int32."""
    _check_data(X)
    _check_centroids(X, centroids)
    return jax.jit(_assign, static_argnames="precision")(jnp.asarray(X), jnp.asarray(centroids), precision)


def inertia(centroids, X, labels=None, *, precision=None) -> Array:
    """Inertia Σ_n ‖x_n − c_{l_n}‖², with l_n the nearest centroid unless ``labels`` (n,) is given."""
    _check_data(X)
    _check_centroids(X, centroids)
    X, centroids = jnp.asarray(X), jnp.asarray(centroids)
    if labels is None:
        labels = _assign(X, centroids, precision)
    else:
        V.check_same_length(X, labels, names=("X", "labels"))
        V.check_labels(labels, centroids.shape[0])
    return _inertia(X, centroids, jnp.asarray(labels))


def _check_data(X):
    V.check_ndim(X, 2, name="X")
    if X.shape[0] == 0:
        raise ValueError(f"X must hold at least one sample, got X.shape={tuple(X.shape)}")
    V.check_finite(X, name="X")


def _check_k(X, num_clusters):
    V.check_integer(num_clusters, name="num_clusters", minimum=1)
    if num_clusters > X.shape[0]:
        raise ValueError(f"num_clusters must be <= the number of samples, got num_clusters={num_clusters} "
                         f"and X.shape={tuple(X.shape)}")


def _check_centroids(X, centroids):
    V.check_ndim(centroids, 2, name="centroids")
    if centroids.shape[1] != X.shape[1]:
        raise ValueError(f"centroids must have X's {X.shape[1]} features, got centroids.shape="
                         f"{tuple(centroids.shape)} and X.shape={tuple(X.shape)}")
    if centroids.shape[0] > X.shape[0]:
        raise ValueError(f"num_clusters must be <= the number of samples, got centroids.shape="
                         f"{tuple(centroids.shape)} and X.shape={tuple(X.shape)}")
    V.check_finite(centroids, name="centroids")
