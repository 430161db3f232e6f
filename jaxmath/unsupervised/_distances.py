"""Squared Euclidean distances between samples and prototypes, shared by k-means, the SOM and WTA/WTM.

Tuned form (what the methods run):

    ‖x_n − w_k‖² = ‖x_n‖² + ‖w_k‖² − 2·x_n·w_k        (one (n, d)×(d, k) matmul, clamped at 0)

Reference form (the plain formula, kept beside it for the tests): Σ_j (x_nj − w_kj)², which builds the
(n, k, d) differences. The two agree up to rounding; the tuned one never materializes the (n, k, d) array.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def squared_distances(x, w, precision=None):
    """(n, k) ‖x_n − w_k‖² by the expansion, clamped at 0 (rounding can take it below): x (n, d), w (k, d)."""
    xx = jnp.sum(x * x, axis=-1)[:, None]
    ww = jnp.sum(w * w, axis=-1)[None, :]
    return jnp.maximum(xx + ww - 2 * jnp.matmul(x, w.T, precision=precision), 0)


def squared_distances_reference(x, w):
    """(n, k) Σ_j (x_nj − w_kj)², the plain formula: x (n, d), w (k, d)."""
    diff = x[:, None, :] - w[None, :, :]
    return jnp.sum(diff * diff, axis=-1)


def scores(x, w, precision=None):
    """(k, n) ‖w_k‖² − 2·w_k·x_n: ‖x_n‖² is left out, it does not change the argmin over k.

    The (k, n) layout (W·xᵀ) is the faster product on CPU for k ≪ n.
    """
    ww = jnp.sum(w * w, axis=-1)
    return ww[:, None] - 2 * jnp.matmul(w, x.T, precision=precision)


def nearest(x, w, precision=None) -> jax.Array:
    """(n,) int32 index of the nearest row of w for each row of x (the first one on ties), via :func:`scores`."""
    return jnp.argmin(scores(x, w, precision), axis=0).astype(jnp.int32)


def nearest_reference(x, w) -> jax.Array:
    """(n,) int32 argmin_k Σ_j (x_nj − w_kj)², the plain formula."""
    return jnp.argmin(squared_distances_reference(x, w), axis=1).astype(jnp.int32)
