"""Neighbourhood functions Θ for winner-takes-most learning and Kohonen maps.

Each function takes the offsets between every neuron's position and the winner's position and the spread σ
(keyword-only), and returns how strongly each neuron follows the winner (1 at the winner):

    gaussian:     Θ = exp(−‖p_i − p_best‖² / (2σ²))
    mexican_hat:  Θ = (1 − ‖p_i − p_best‖² / σ²) · exp(−‖p_i − p_best‖² / (2σ²))
    bubble:       Θ = 1 if |p_i − p_best| < σ along every axis, else 0

These are the forms MiniSom uses (``bubble`` is a square window on the integer grid indices, as there).
A spread so small that 2σ² underflows to 0 gives the limit σ → 0 (1 at the winner, 0 elsewhere) rather than
0/0 = NaN at the winner.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxmath import _validation as V

Array = jax.Array


def _ratio(offsets, sigma):
    """‖offset‖² / (2σ²), with 0 at the winner even when 2σ² underflows to 0 (σ ≲ 1e-19 in float32)."""
    sq = jnp.sum(offsets * offsets, axis=-1)
    sigma = jnp.asarray(sigma, offsets.dtype)
    two_sigma_sq = 2 * sigma * sigma
    return jnp.where(sq > 0, sq / two_sigma_sq, jnp.zeros_like(sq))


@jax.jit
def gaussian(offsets: Array, *, sigma) -> Array:
    """Gaussian neighbourhood Θ = exp(−‖offset‖² / (2σ²)).

    Args:
      offsets: (..., p) float array, p_i − p_best for each neuron i (p: position on the grid or chain).
      sigma: scalar spread σ > 0.

    Returns:
      (...) array of the offsets' dtype, 1 at the winner.
    """
    return jnp.exp(-_ratio(offsets, sigma))


@jax.jit
def mexican_hat(offsets: Array, *, sigma) -> Array:
    """Mexican-hat (Ricker) neighbourhood Θ = (1 − ‖offset‖²/σ²) · exp(−‖offset‖² / (2σ²)).

    Neurons far from the winner are pushed away (Θ < 0).

    Args:
      offsets: (..., p) float array, p_i − p_best.
      sigma: scalar spread σ > 0.

    Returns:
      (...) array of the offsets' dtype, 1 at the winner.
    """
    r = _ratio(offsets, sigma)
    e = jnp.exp(-r)
    # Far out (r = inf) e is 0 and (1 − 2r) is −inf: the product's limit is 0, not 0·inf = NaN.
    return jnp.where(e > 0, e * (1 - 2 * r), jnp.zeros_like(e))


@jax.jit
def bubble(offsets: Array, *, sigma) -> Array:
    """Bubble neighbourhood: Θ = 1 inside the open window |offset_a| < σ on every axis a, else 0.

    Args:
      offsets: (..., p) array, p_i − p_best (integer grid indices for a Kohonen map, as in MiniSom).
      sigma: scalar half-width σ > 0.

    Returns:
      (...) float array, 1 inside the window and 0 outside.
    """
    dtype = offsets.dtype if jnp.issubdtype(offsets.dtype, jnp.floating) else jnp.float32
    inside = jnp.all(jnp.abs(offsets) < sigma, axis=-1)
    return inside.astype(dtype)


NEIGHBOURHOODS: dict[str, Callable[..., Array]] = {
    "gaussian": gaussian,
    "mexican_hat": mexican_hat,
    "bubble": bubble,
}


def get(name: str) -> Callable[..., Array]:
    """The neighbourhood function called ``name`` ("gaussian", "mexican_hat" or "bubble"): ``fn(offsets, sigma=σ)``."""
    V.check_choice(name, tuple(NEIGHBOURHOODS), name="neighbourhood")
    return NEIGHBOURHOODS[name]
