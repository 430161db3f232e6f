"""Quality measures of a Kohonen map: quantization and topographic error, U-matrix, best-matching units, hits.

Every function takes the map's params, weights of shape (rows, cols, d) (neuron (r, c) is flat index
r·cols + c), and is jitted with its shape checks at trace time. They are re-exported by
:mod:`jaxmath.unsupervised.som`; the formulas are MiniSom's (``quantization_error``, ``topographic_error``,
``distance_map``, ``winner``, ``activation_response``).
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as V
from jaxmath.unsupervised import _distances as D
from jaxmath.unsupervised import som_grid as G

Array = jax.Array


@partial(jax.jit, static_argnames=("precision",))
def quantization_error(params, x, *, precision=None) -> Array:
    """Mean distance from each sample to its best-matching unit: (1/n)·Σ_n ‖x_n − w_best(n)‖.

    Args: params (rows, cols, d); x (n, d). Returns a () float.
    """
    _check_weights_data(params, x)
    w = params.reshape(-1, params.shape[-1])
    diff = x - w[D.nearest(x, w, precision)]
    return jnp.mean(jnp.sqrt(jnp.sum(diff * diff, axis=1)))


@partial(jax.jit, static_argnames=("topology", "precision"))
def topographic_error(params, x, *, topology: str = "rectangular", precision=None) -> Array:
    """Share of samples whose best and second-best units are not grid neighbours (8-neighbourhood on a
    rectangular grid, 6 on a hexagonal one, as MiniSom). Args: params (rows, cols, d), x (n, d). Returns ()."""
    _check_weights_data(params, x)
    V.check_choice(topology, G.TOPOLOGIES, name="topology")
    rows, cols, d = params.shape
    if rows * cols < 2:
        raise ValueError(f"topographic_error needs at least 2 neurons, got params.shape={tuple(params.shape)}")
    top2 = lax.top_k(-D.squared_distances(x, params.reshape(-1, d), precision), 2)[1]
    adj = jnp.asarray(G.adjacency(rows, cols, topology=topology))
    return 1 - jnp.mean(adj[top2[:, 0], top2[:, 1]].astype(params.dtype))


@partial(jax.jit, static_argnames=("topology", "scaling"))
def u_matrix(params, *, topology: str = "rectangular", scaling: str = "sum") -> Array:
    """U-matrix: for each neuron the sum (or mean) of the distances ‖w_i − w_k‖ to its grid neighbours,
    divided by the largest such value (MiniSom's ``distance_map``). params (rows, cols, d) -> (rows, cols).

    A map with no spread (every neuron at the same point, or a 1×1 grid) has no boundaries at all: its U-matrix
    is all zeros, not MiniSom's 0/0 = NaN, and a ``RuntimeWarning`` says so (emitted from the compiled function
    by ``jax.debug.callback``, only when the spread is zero, so it costs nothing on a trained map)."""
    V.check_ndim(params, 3, name="params")
    G.check_grid(params.shape[0], params.shape[1])
    V.check_choice(topology, G.TOPOLOGIES, name="topology")
    V.check_choice(scaling, ("sum", "mean"), name="scaling")
    rows, cols, d = params.shape
    w = params.reshape(-1, d)
    diff = w[:, None, :] - w[None, :, :]
    dist = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
    adj = jnp.asarray(G.adjacency(rows, cols, topology=topology))
    total = jnp.sum(jnp.where(adj, dist, 0), axis=1)
    if scaling == "mean":
        total = total / jnp.maximum(jnp.sum(adj, axis=1), 1).astype(total.dtype)
    top = jnp.max(total)
    lax.cond(top > 0, lambda: None, lambda: jax.debug.callback(_warn_zero_spread, rows, cols))
    return jnp.where(top > 0, total / jnp.where(top > 0, top, 1), jnp.zeros_like(total)).reshape(rows, cols)


def _warn_zero_spread(rows, cols):
    warnings.warn(f"u_matrix: the {int(rows)}x{int(cols)} map has no spread (every neuron's weights are equal, "
                  "or the grid is 1x1): its U-matrix is all zeros", RuntimeWarning, stacklevel=2)


@partial(jax.jit, static_argnames=("precision",))
def best_matching_units(params, x, *, precision=None) -> Array:
    """Grid position (r, c) of each sample's nearest neuron: params (rows, cols, d), x (n, d) -> (n, 2) int32."""
    _check_weights_data(params, x)
    cols = params.shape[1]
    flat = D.nearest(x, params.reshape(-1, params.shape[-1]), precision)
    return jnp.stack([flat // cols, flat % cols], axis=1)


@partial(jax.jit, static_argnames=("precision",))
def winner_map(params, x, *, precision=None) -> Array:
    """How many samples each neuron wins: params (rows, cols, d), x (n, d) -> (rows, cols) int32 counts."""
    _check_weights_data(params, x)
    rows, cols, d = params.shape
    flat = D.nearest(x, params.reshape(-1, d), precision)
    return jnp.zeros(rows * cols, jnp.int32).at[flat].add(1).reshape(rows, cols)


def _check_data(x):
    V.check_ndim(x, 2, name="x")
    if x.shape[0] == 0:
        raise ValueError(f"x must hold at least one sample, got x.shape={tuple(x.shape)}")


def _check_weights_data(params, x):
    V.check_ndim(params, 3, name="params")
    G.check_grid(params.shape[0], params.shape[1])
    _check_data(x)
    if x.shape[1] != params.shape[2]:
        raise ValueError(f"x must have {params.shape[2]} features like params, got x.shape={tuple(x.shape)} "
                         f"and params.shape={tuple(params.shape)}")
