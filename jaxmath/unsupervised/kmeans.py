"""k-means clustering: k-means++ seeding, Lloyd iterations in ``lax.while_loop``, restarts in parallel with ``vmap``.

k-means minimizes the inertia, the within-cluster sum of squared distances (seed 003: "intra-cluster variance"):

    J(c) = Σ_n min_k ‖x_n − c_k‖²

Lloyd's algorithm alternates the assignment l_n = argmin_k ‖x_n − c_k‖² and the update
c_k = mean{x_n : l_n = k}. The assignment uses ‖c_k‖² − 2·x_n·c_k (one matmul, no (n, k, d) intermediate;
``_distances.nearest_reference`` keeps the plain formula beside it). A cluster left empty is re-seeded at the
point farthest from its own centroid (as scikit-learn does) instead of becoming NaN. The loop stops when the
assignment no longer changes, when the total squared centroid shift Σ_k ‖c_k' − c_k‖² ≤ tol·mean_j Var(x_j)
(scikit-learn's tolerance), or after ``max_steps`` Lloyd iterations.

Params are the (k, d) centroids: :func:`init` (k-means++) -> :func:`fit` (one run from given centroids, also
a warm start) or :func:`fit_restarts` (the best of several k-means++ runs). Everything jits and vmaps.
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as V
from jaxmath.unsupervised import _distances as D
from jaxmath.unsupervised import _guard as _g

Array = jax.Array


class KMeansInfo(NamedTuple):
    """What a k-means fit did.

    converged: () bool, stopped by the assignment or the tolerance rather than by ``max_steps``.
    num_steps: () int32, Lloyd iterations done.
    loss_history: (max_steps,) inertia J of the centroids each iteration starts from (NaN after the last).
    labels: (n,) int32 cluster of each sample under the returned centroids.
    inertia: () Σ_n ‖x_n − c_{l_n}‖² of the returned centroids.
    nonfinite: () bool, an iteration gave non-finite centroids (sums past the dtype's range): the loop stopped
      before it and returned the last finite centroids, ``converged`` False.
    first_nonfinite_step: () int32, the 0-based index of that iteration, -1 when every one was finite.
    """

    converged: Array
    num_steps: Array
    loss_history: Array
    labels: Array
    inertia: Array
    nonfinite: Array = False
    first_nonfinite_step: Array = -1


@partial(jax.jit, static_argnames=("precision",))
def apply(params, x, *, precision=None) -> Array:
    """Squared distances ‖x_n − c_k‖² = ‖x_n‖² + ‖c_k‖² − 2·x_n·c_k (clamped at 0) to every centroid.

    Args:
      params: (k, d) centroids.
      x: (n, d) float array.
      precision: passed to the matmul.

    Returns:
      (n, k) array of x's dtype.
    """
    _check_centroids(x, params)
    return D.squared_distances(x, params, precision)


@partial(jax.jit, static_argnames=("precision",))
def predict(params, x, *, precision=None) -> Array:
    """Index of the nearest centroid (argmin of :func:`apply`, the first on ties): (n,) int32."""
    _check_centroids(x, params)
    return D.nearest(x, params, precision)


@partial(jax.jit, static_argnames=("precision",))
def inertia(params, x, labels=None, *, precision=None) -> Array:
    """Inertia Σ_n ‖x_n − c_{l_n}‖², with l_n the nearest centroid unless ``labels`` (n,) int is given.

    Args: params (k, d) centroids; x (n, d). Returns a () float of x's dtype.
    """
    _check_centroids(x, params)
    if labels is None:
        labels = D.nearest(x, params, precision)
    else:
        V.check_same_length(x, labels, names=("x", "labels"))
    return _inertia(x, params, labels)


def _inertia(x, centroids, labels):
    # Accumulate in at least float32: a bfloat16 running sum stops growing long before n terms.
    diff = (x - centroids[labels]).astype(jnp.promote_types(x.dtype, jnp.float32))
    return jnp.sum(diff * diff).astype(x.dtype)


def _update(x, centroids, labels, best_scores, precision):
    """Centroid update with empty clusters re-seeded at the farthest points (scikit-learn's relocation).

    best_scores: (n,) ‖c_l‖² − 2·x·c_l of each sample's own centroid (‖x‖² added back only when needed).
    """
    k = centroids.shape[0]
    # segment_sum adds exactly on every backend (a one-hot matmul would round x to bfloat16 under TPU's
    # default precision) and is the faster of the two on CPU.
    # Sums accumulate in at least float32 and counts in int32: bfloat16 cannot count past 256.
    acc = jnp.promote_types(x.dtype, jnp.float32)
    sums = jax.ops.segment_sum(x.astype(acc), labels, k)
    counts = jax.ops.segment_sum(jnp.ones(labels.shape, jnp.int32), labels, k)
    empty = counts == 0

    def relocate(sums_counts):
        sums, counts = sums_counts
        # The r-th empty cluster takes the r-th farthest sample from its own centroid, which leaves its old cluster.
        far = lax.top_k(best_scores + jnp.sum(x * x, axis=1), min(k, x.shape[0]))[1]
        rank = jnp.cumsum(empty) - 1
        uses = jnp.arange(far.shape[0]) < jnp.sum(empty)
        donors = labels[far]
        sums = sums.at[donors].add(-jnp.where(uses[:, None], x[far].astype(acc), 0))
        counts = counts.at[donors].add(-uses.astype(counts.dtype))
        seed = x[far[jnp.clip(rank, 0, far.shape[0] - 1)]].astype(acc)
        return jnp.where(empty[:, None], seed, sums), jnp.where(empty, 1, counts)

    # The relocation (a top-k over all samples) only runs when a cluster is empty.
    sums, counts = lax.cond(jnp.any(empty), relocate, lambda sc: sc, (sums, counts))
    # A donor left with no sample keeps its centroid rather than dividing by zero.
    alive = counts > 0
    means = (sums / jnp.where(alive, counts, 1).astype(acc)[:, None]).astype(x.dtype)
    return jnp.where(alive[:, None], means, centroids)


def _assign_update(x, centroids, precision):
    scores = D.scores(x, centroids, precision)
    labels = jnp.argmin(scores, axis=0).astype(jnp.int32)
    best = jnp.min(scores, axis=0)
    return _update(x, centroids, labels, best, precision), labels, best


@partial(jax.jit, static_argnames=("precision",))
def lloyd_step(params, x, *, precision=None):
    """One Lloyd iteration: assign every sample to its nearest centroid, then move each centroid to its mean.

    Args:
      params: (k, d) centroids.
      x: (n, d) float array.
      precision: passed to the matmuls.

    Returns:
      (new_centroids (k, d), labels (n,) int32 computed with the old centroids).
    """
    _check_centroids(x, params)
    new, labels, _ = _assign_update(x, params, precision)
    return new, labels


def _lloyd(x, centroids, max_steps, tol, precision):
    n = x.shape[0]
    acc = jnp.promote_types(x.dtype, jnp.float32)
    tol = tol * jnp.mean(jnp.var(x, axis=0))
    xx = jnp.sum(jnp.square(x.astype(acc)))  # Σ_n ‖x_n‖², added back to the scores for the inertia

    def cond(carry):
        return (carry[2] < max_steps) & ~carry[3] & (carry[5] < 0)

    def body(carry):
        centroids, labels_old, it, _, history, first_bad = carry
        new, labels, best = _assign_update(x, centroids, precision)
        ok = _g.all_finite(new)
        # A non-finite iteration is not taken: the loop ends with the centroids it started from.
        history = history.at[it].set(jnp.where(ok, (jnp.sum(best.astype(acc)) + xx).astype(history.dtype),
                                               jnp.asarray(jnp.nan, history.dtype)))
        shift = jnp.sum((new - centroids) ** 2)
        done = ok & (jnp.all(labels == labels_old) | (shift <= tol))
        new = jnp.where(ok, new, centroids)
        return new, labels, jnp.where(ok, it + 1, it), done, history, jnp.where(ok, first_bad, it)

    init = (centroids, jnp.full((n,), -1, jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), bool),
            jnp.full((max_steps,), jnp.nan, x.dtype), jnp.asarray(_g.NO_STEP, jnp.int32))
    centroids, _, it, done, history, first_bad = lax.while_loop(cond, body, init)
    labels = D.nearest(x, centroids, precision)
    return centroids, KMeansInfo(done, it, history, labels, _inertia(x, centroids, labels), first_bad >= 0,
                                 first_bad)


def init(key, x, *, num_clusters: int, num_local_trials: int | None = None, precision=None) -> Array:
    """k-means++ seeding (greedy, as scikit-learn): each new centre is the best of ``num_local_trials``
    candidates drawn with probability ∝ D(x)², D(x) = distance to the nearest centre chosen so far.

    Args:
      key: PRNG key.
      x: (n, d) float array.
      num_clusters: k ≤ n.
      num_local_trials: candidates per centre, default 2 + ⌊ln k⌋.
      precision: passed to the matmuls.

    Returns:
      (k, d) initial centroids of x's dtype, each a row of x.
    """
    V.check_key(key)
    x = jnp.asarray(x)
    _check_data(x)
    _check_k(x, num_clusters)
    if num_local_trials is None:
        num_local_trials = 2 + int(math.log(num_clusters))
    V.check_integer(num_local_trials, name="num_local_trials", minimum=1)
    V.check_finite(x, name="x")
    return _kmeans_plus_plus(key, x, num_clusters, num_local_trials, precision)


@partial(jax.jit, static_argnames=("num_clusters", "num_local_trials", "precision"))
def _kmeans_plus_plus(key, x, num_clusters, num_local_trials, precision):
    n = x.shape[0]
    first_key, key = jax.random.split(key)
    first = jax.random.randint(first_key, (), 0, n)
    centroids = jnp.zeros((num_clusters, x.shape[1]), x.dtype).at[0].set(x[first])
    closest = D.squared_distances(x, x[first][None], precision)[:, 0]

    def body(c, carry):
        centroids, closest, key = carry
        key, sub = jax.random.split(key)
        cumulative = jnp.cumsum(closest)
        draws = jax.random.uniform(sub, (num_local_trials,), x.dtype) * cumulative[-1]
        candidates = jnp.clip(jnp.searchsorted(cumulative, draws), 0, n - 1)
        dist = D.squared_distances(x[candidates], x, precision)  # (trials, n)
        dist = jnp.minimum(closest[None, :], dist)
        best = jnp.argmin(jnp.sum(dist, axis=1))
        return centroids.at[c].set(x[candidates[best]]), dist[best], key

    centroids, _, _ = lax.fori_loop(1, num_clusters, body, (centroids, closest, key))
    return centroids


@partial(jax.jit, static_argnames=("max_steps", "precision"))
def _fit(x, centroids, tol, max_steps, precision):
    return _lloyd(x, centroids, max_steps, tol, precision)


@partial(jax.jit, static_argnames=("num_clusters", "num_restarts", "max_steps", "precision"))
def _fit_restarts(key, x, tol, num_clusters, num_restarts, max_steps, precision):
    trials = 2 + int(math.log(num_clusters))

    def one(key):
        return _lloyd(x, _kmeans_plus_plus(key, x, num_clusters, trials, precision), max_steps, tol, precision)

    centroids, info = jax.vmap(one)(jax.random.split(key, num_restarts))
    best = jnp.argmin(info.inertia)
    return jax.tree_util.tree_map(lambda leaf: leaf[best], (centroids, info))


def fit(x, *, params, max_steps: int = 300, tol=1e-4, precision=None):
    """Lloyd's k-means from the given centroids (k-means++ from :func:`init`, or a warm start).

    One step is one Lloyd iteration (assign, then update).

    Args:
      x: (n, d) float array.
      params: (k, d) starting centroids, k ≤ n.
      max_steps: bound on Lloyd iterations.
      tol: stop when Σ_k ‖Δc_k‖² ≤ tol · mean_j Var(x_j) (scikit-learn's convention); 0 runs to a fixed point.
      precision: passed to the matmuls.

    Returns:
      (centroids (k, d), :class:`KMeansInfo`).
    """
    x, params = jnp.asarray(x), jnp.asarray(params)
    _check_data(x)
    _check_centroids(x, params)
    _check_budget(max_steps, tol)
    V.check_finite(x, name="x")
    V.check_finite(params, name="params")
    centroids, info = _fit(x, params.astype(x.dtype), tol, max_steps, precision)
    _report(info, params.shape[0], where="kmeans.fit")
    return centroids, info


def fit_restarts(key, x, *, num_clusters: int, num_restarts: int = 10, max_steps: int = 300, tol=1e-4,
                 precision=None):
    """The best (lowest inertia) of ``num_restarts`` k-means runs, each seeded by k-means++ and run side by
    side with ``vmap``. Arguments as :func:`init` and :func:`fit`.

    Returns:
      (centroids (k, d), :class:`KMeansInfo` of the best run).
    """
    V.check_key(key)
    x = jnp.asarray(x)
    _check_data(x)
    _check_k(x, num_clusters)
    V.check_integer(num_restarts, name="num_restarts", minimum=1)
    _check_budget(max_steps, tol)
    V.check_finite(x, name="x")
    centroids, info = _fit_restarts(key, x, tol, num_clusters, num_restarts, max_steps, precision)
    _report(info, num_clusters, where="kmeans.fit_restarts")
    return centroids, info


@partial(jax.jit, static_argnames=("num_clusters",))
def _num_used(labels, num_clusters):
    return jnp.sum(jnp.bincount(labels, length=num_clusters) > 0)


def _report(info, num_clusters, *, where):
    """Warn (on concrete results) when the fit stopped on non-finite centroids, or found fewer than k clusters.

    Fewer than k non-empty clusters at the end means x has fewer than k distinct rows (duplicates): the
    re-seeding of empty clusters cannot split identical samples, so several centroids coincide. That is a
    fixed point of Lloyd's algorithm (``converged`` stays as the loop found it), but not k clusters, so it is
    reported rather than returned silently (scikit-learn warns the same way).
    """
    _g.warn_nonfinite(info, where=where, unit="Lloyd iteration", what="centroids",
                      hint="; x's sums exceed its dtype's range: rescale x or use a wider dtype")
    if not V.is_concrete(info.labels) or num_clusters < 2:
        return
    used = int(_num_used(info.labels, num_clusters))
    if used < num_clusters:
        warnings.warn(
            f"{where}: only {used} distinct cluster(s) found for num_clusters={num_clusters}: x seems to have fewer "
            f"than {num_clusters} distinct rows (duplicate samples), so some centroids coincide; lower num_clusters",
            RuntimeWarning,
            stacklevel=3,
        )


def _check_budget(max_steps, tol):
    V.check_integer(max_steps, name="max_steps", minimum=1)
    V.check_positive(tol, name="tol", allow_zero=True)


def _check_data(x):
    V.check_ndim(x, 2, name="x")
    if x.shape[0] == 0:
        raise ValueError(f"x must hold at least one sample, got x.shape={tuple(x.shape)}")


def _check_k(x, num_clusters):
    V.check_integer(num_clusters, name="num_clusters", minimum=1)
    if num_clusters > x.shape[0]:
        raise ValueError(f"num_clusters must be <= the number of samples, got num_clusters={num_clusters} "
                         f"and x.shape={tuple(x.shape)}")


def _check_centroids(x, centroids):
    _check_data(x)
    V.check_ndim(centroids, 2, name="params")
    if centroids.shape[1] != x.shape[1]:
        raise ValueError(f"params (centroids) must have x's {x.shape[1]} features, got params.shape="
                         f"{tuple(centroids.shape)} and x.shape={tuple(x.shape)}")
    if centroids.shape[0] > x.shape[0]:
        raise ValueError(f"num_clusters must be <= the number of samples, got params.shape="
                         f"{tuple(centroids.shape)} and x.shape={tuple(x.shape)} (centroids come first: "
                         f"predict(params, x), lloyd_step(params, x))")
