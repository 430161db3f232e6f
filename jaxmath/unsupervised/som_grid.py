"""Kohonen map grids and schedules: neuron positions, grid adjacency, and the decays of η(s) and σ(s).

A map of ``rows × cols`` neurons is stored as weights of shape (rows, cols, d); neuron (r, c) is flat index
r·cols + c. Positions on the plane:

    rectangular:  (r, c)
    hexagonal:    (r + ½·(c mod 2), c·√3/2)      (odd columns shifted by half a cell; six neighbours at distance 1)

The hexagonal layout equals MiniSom's up to a translation when ``cols`` is odd.

Decays of a parameter p(s) from p(0) = p_0 over T iterations (MiniSom's names and formulas):

    asymptotic:       p_0 / (1 + s / (T/2))           (to p_0/3)
    linear_to_zero:   p_0 · (1 − s/T)
    inverse_to_zero:  p_0 · C / (C + s),  C = T/100
    linear_to_one:    p_0 + s·(1 − p_0)/T
    inverse_to_one:   p_0 / (1 + s·(p_0 − 1)/T)
    constant:         p_0

All grid tables here are NumPy constants computed on the host from static shapes.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from jaxmath import _validation as V

TOPOLOGIES = ("rectangular", "hexagonal")


def check_grid(rows, cols) -> None:
    """Both grid sides are integers ≥ 1 (a grid of size 0 is refused, naming the side)."""
    V.check_integer(rows, name="rows", minimum=1)
    V.check_integer(cols, name="cols", minimum=1)


def grid_indices(rows: int, cols: int) -> np.ndarray:
    """Integer (r, c) of every neuron in flat order: (rows·cols, 2) int32."""
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return np.stack([r.ravel(), c.ravel()], axis=1).astype(np.int32)


def grid_coordinates(rows: int, cols: int, *, topology: str = "rectangular") -> np.ndarray:
    """Position of every neuron on the plane in flat order: (rows·cols, 2) float64 NumPy array."""
    V.check_choice(topology, TOPOLOGIES, name="topology")
    pos = grid_indices(rows, cols).astype(np.float64)
    if topology == "hexagonal":
        pos[:, 0] += 0.5 * (pos[:, 1] % 2)
        pos[:, 1] *= math.sqrt(3) / 2
    return pos


def adjacency(rows: int, cols: int, *, topology: str = "rectangular") -> np.ndarray:
    """(m, m) bool: which neurons are grid neighbours.

    Rectangular: the 8 surrounding cells (diagonals included, as MiniSom's U-matrix and topographic error).
    Hexagonal: the 6 cells at distance 1.
    """
    if topology == "rectangular":
        idx = grid_indices(rows, cols)
        cheb = np.max(np.abs(idx[:, None, :] - idx[None, :, :]), axis=-1)
        return cheb == 1
    pos = grid_coordinates(rows, cols, topology=topology)
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    return np.isclose(dist, 1.0)


def _asymptotic(p0, s, T):
    return p0 / (1 + s / (T / 2))


def _linear_to_zero(p0, s, T):
    return p0 * (1 - s / T)


def _inverse_to_zero(p0, s, T):
    c = T / 100.0
    return p0 * c / (c + s)


def _linear_to_one(p0, s, T):
    return p0 + s * (1 - p0) / T


def _inverse_to_one(p0, s, T):
    return p0 / (1 + s * (p0 - 1) / T)


def _constant(p0, s, T):
    return p0 + 0 * s


DECAYS: dict[str, Callable] = {
    "asymptotic": _asymptotic,
    "linear_to_zero": _linear_to_zero,
    "inverse_to_zero": _inverse_to_zero,
    "linear_to_one": _linear_to_one,
    "inverse_to_one": _inverse_to_one,
    "constant": _constant,
}


def decay(name_or_fn, *, argname: str = "decay") -> Callable:
    """The decay ``(p_0, s, T) -> p(s)`` called ``name_or_fn``, or the callable itself."""
    if callable(name_or_fn):
        return name_or_fn
    V.check_choice(name_or_fn, tuple(DECAYS), name=argname)
    return DECAYS[name_or_fn]
