"""A cycle-level model of a TPU matrix unit: a weight-stationary systolic array.

The notes (seed 001): training is mostly matrix multiplies, so Google built a
processor of matrix units. A TPU's MXU is an N×N grid (N = 128 on TPU v2–v5,
256 on v6e) of multiply-accumulate (MAC) cells. In a *weight-stationary* array,
computing ``Y = X @ W`` for ``X: (m, k)``, ``W: (k, n)``:

* cell (i, j) holds one weight ``W[i, j]`` of an N×N tile of W;
* row i of X's tile enters the left edge of array row i, skewed by one cycle per
  row: ``X[t, i]`` enters cell (i, 0) at cycle ``t + i`` and moves one cell right
  per cycle, so it is at cell (i, j) at cycle ``t + i + j``;
* partial sums move one cell down per cycle; cell (i, j) computes
  ``p_out = p_in + a_in · W[i, j]``, so the sum ``Σ_i X[t, i] W[i, j]`` leaves the
  bottom of column j at cycle ``t + (N − 1) + j``.

One tile of m rows therefore takes ``m + 2(N − 1)`` cycles (fill, stream, drain),
plus N cycles to shift the tile's weights in. Matrices larger than the array are
tiled, and padded with zeros up to a multiple of N: a cell holding padding does
no useful work. That is why a 16-wide layer on a 128 × 128 array leaves at
least 112 of every 128 columns idle (utilization ≤ 16/128 = 12.5%).

This model runs the tiles one after another without overlap; real MXUs
double-buffer weights and overlap one tile's drain with the next tile's fill,
so their cycle counts are lower, but the padding waste is the same.

A convolution reaches the array as a matmul: ``systolic_conv2d`` lowers it with im2col
(``jaxmath.conv.im2col``), one row per output pixel and one column per kernel tap and input channel, so
``Y = P · W`` with W the kernel reshaped to (kh·kw·c_in, c_out) held in the cells.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath._validation import check_integer, check_ndim
from jaxmath.conv.conv2d import conv_geometry, im2col_geo


class SystolicResult(NamedTuple):
    """What the simulated array produced and how busy it was.

    Attributes:
      output: (m, n) array, equal to ``jnp.dot(x, w)``.
      array_size: N, the array is N×N cells.
      tiles: (k_tiles, n_tiles) = (ceil(k / N), ceil(n / N)).
      cycles: total clock cycles = compute_cycles + weight_load_cycles.
      compute_cycles: k_tiles · n_tiles · (m + 2(N − 1)).
      weight_load_cycles: k_tiles · n_tiles · N.
      macs: useful multiply-accumulates, m · k · n.
      utilization: macs / (N² · cycles), the fraction of cell-cycles doing useful work.
      streaming_utilization: macs / (N² · tiles · m), the utilization once the pipeline
        is full: only the padding waste, k/(k_tiles N) · n/(n_tiles N).
      cell_activity: (N, N) int32, useful MACs done by each cell over all tiles.
      activity: (cycles_per_tile, N, N) bool, which cells did useful work at each cycle of
        the first tile (for heat maps), or None unless ``record_activity=True``.
    """

    output: jax.Array
    array_size: int
    tiles: tuple[int, int]
    cycles: int
    compute_cycles: int
    weight_load_cycles: int
    macs: int
    utilization: float
    streaming_utilization: float
    cell_activity: jax.Array
    activity: jax.Array | None


class CycleModel(NamedTuple):
    """Closed-form cycle counts of ``systolic_matmul`` (no simulation)."""

    tiles: tuple[int, int]
    cycles: int
    compute_cycles: int
    weight_load_cycles: int
    macs: int
    utilization: float
    streaming_utilization: float


def cycle_model(m: int, k: int, n: int, *, array_size: int = 128) -> CycleModel:
    """Cycles and utilization of ``(m, k) @ (k, n)`` on an ``array_size``² weight-stationary array.

    >>> round(cycle_model(128, 784, 16).streaming_utilization, 3)   # the notes' 784-16 layer
    0.109
    """
    for value, name in ((m, "m"), (k, "k"), (n, "n"), (array_size, "array_size")):
        check_integer(value, name=name, minimum=1)
    size = array_size
    kt, nt = math.ceil(k / size), math.ceil(n / size)
    per_tile = m + 2 * (size - 1)
    compute = kt * nt * per_tile
    load = kt * nt * size
    macs = m * k * n
    return CycleModel(
        (kt, nt), compute + load, compute, load, macs,
        macs / (size * size * (compute + load)), macs / (size * size * kt * nt * m),
    )


def _tile_pass(x_tile, w_tile, w_real, record_activity):
    """Run one N×N weight tile over all m input rows, cycle by cycle.

    x_tile: (m, N) inputs (column i feeds array row i); w_tile: (N, N) weights held by the
    cells; w_real: (N, N) bool, False where the weight is padding.
    """
    m, size = x_tile.shape
    cycles = m + 2 * (size - 1)
    dtype = jnp.result_type(x_tile, w_tile)
    # The skewed input wavefront: array row i receives X[t, i] at cycle t + i.
    c = jnp.arange(cycles)[:, None]
    row = jnp.arange(size)[None, :]
    t = c - row
    valid = (t >= 0) & (t < m)
    feed = jnp.where(valid, x_tile[jnp.clip(t, 0, m - 1), row], 0).astype(dtype)

    def clock(state, inputs):
        a_reg, v_reg, p_reg, count = state
        a_edge, v_edge = inputs
        # Activations move one cell right, partial sums one cell down, per cycle.
        a_in = jnp.concatenate([a_edge[:, None], a_reg[:, :-1]], axis=1)
        v_in = jnp.concatenate([v_edge[:, None], v_reg[:, :-1]], axis=1)
        p_in = jnp.concatenate([jnp.zeros((1, size), dtype), p_reg[:-1, :]], axis=0)
        p_out = p_in + a_in * w_tile
        active = v_in & w_real
        out = (p_out[-1], active if record_activity else None)
        return (a_in, v_in, p_out, count + active.astype(jnp.int32)), out

    zeros = jnp.zeros((size, size), dtype)
    init = (zeros, jnp.zeros((size, size), bool), zeros, jnp.zeros((size, size), jnp.int32))
    (_, _, _, count), (bottom, activity) = lax.scan(clock, init, (feed, valid))
    # Y[t, j] leaves the bottom of column j at cycle t + (N - 1) + j.
    rows = jnp.arange(m)[:, None]
    cols = jnp.arange(size)[None, :]
    return bottom[rows + size - 1 + cols, cols], count, activity


@functools.partial(jax.jit, static_argnames=("size", "k", "n", "record_activity"))
def _systolic_core(x, w, *, size, k, n, record_activity):
    m = x.shape[0]
    kt, nt = -(-k // size), -(-n // size)
    xp = jnp.pad(x, ((0, 0), (0, kt * size - k)))
    wp = jnp.pad(w, ((0, kt * size - k), (0, nt * size - n)))
    real = jnp.pad(jnp.ones((k, n), bool), ((0, kt * size - k), (0, nt * size - n)))
    x_tiles = xp.reshape(m, kt, size).transpose(1, 0, 2)  # (kt, m, N)
    w_tiles = wp.reshape(kt, size, nt, size).transpose(0, 2, 1, 3)  # (kt, nt, N, N)
    r_tiles = real.reshape(kt, size, nt, size).transpose(0, 2, 1, 3)
    run = functools.partial(_tile_pass, record_activity=record_activity)
    over_n = jax.vmap(run, in_axes=(None, 0, 0))
    over_k = jax.vmap(over_n, in_axes=(0, 0, 0))
    outs, counts, activity = over_k(x_tiles, w_tiles, r_tiles)  # outs: (kt, nt, m, N)
    # The k-tiles' partial products accumulate in order, as the MXU's accumulators do.
    y = outs[0]
    for i in range(1, kt):
        y = y + outs[i]
    y = y.transpose(1, 0, 2).reshape(m, nt * size)[:, :n]
    first = activity[0, 0] if record_activity else None
    return y, counts.sum(axis=(0, 1)), first


def systolic_matmul(x, w, *, array_size: int = 128, record_activity: bool = False) -> SystolicResult:
    """``x @ w`` computed by a simulated N×N weight-stationary systolic array, cycle by cycle.

    Every cycle each cell (i, j) does ``p_out = p_in + a_in · W[i, j]``, passes ``a_in``
    right and ``p_out`` down; the simulation steps the whole grid with ``lax.scan``.

    Args:
      x: (m, k) activations (streamed in, one row per cycle).
      w: (k, n) weights (held stationary, tiled into N×N blocks, zero-padded).
      array_size: N (128 for a TPU v2–v5 MXU).
      record_activity: also return the per-cycle activity of the first tile.

    Returns:
      ``SystolicResult``; ``output`` is (m, n) with dtype ``result_type(x, w)``.
    """
    check_ndim(x, 2, name="x")
    check_ndim(w, 2, name="w")
    check_integer(array_size, name="array_size", minimum=1)
    if np.shape(x)[1] != np.shape(w)[0]:
        raise ValueError(f"x and w must agree on k: got x.shape={np.shape(x)} and w.shape={np.shape(w)}")
    m, k = np.shape(x)
    n = np.shape(w)[1]
    if m < 1 or k < 1 or n < 1:
        raise ValueError(f"x and w must be non-empty, got x.shape={np.shape(x)} and w.shape={np.shape(w)}")
    x, w = jnp.asarray(x), jnp.asarray(w)
    y, cell_activity, activity = _systolic_core(x, w, size=array_size, k=k, n=n, record_activity=record_activity)
    model = cycle_model(m, k, n, array_size=array_size)
    return SystolicResult(
        y, array_size, model.tiles, model.cycles, model.compute_cycles, model.weight_load_cycles,
        model.macs, model.utilization, model.streaming_utilization, cell_activity, activity,
    )


def layer_report(sizes, *, batch: int = 128, array_size: int = 128) -> list[dict]:
    """Cycle model of each dense layer of an MLP (``sizes`` like (784, 16, 16, 10)) at ``batch`` rows."""
    rows = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        model = cycle_model(batch, fan_in, fan_out, array_size=array_size)
        rows.append(
            {
                "layer": f"{fan_in}->{fan_out}",
                "tiles": model.tiles,
                "cycles": model.cycles,
                "utilization": model.utilization,
                "streaming_utilization": model.streaming_utilization,
            }
        )
    return rows


def conv_cycle_model(x_shape, w_shape, *, stride=1, padding="VALID", dilation=1, array_size: int = 128) -> CycleModel:
    """Cycle model of a conv2d lowered by im2col: (n·oh·ow, kh·kw·c_in) @ (kh·kw·c_in, c_out).

    LeNet's C1 (5×5, 1 → 6 channels) is a K = 25, 6-wide matmul: at most 25/128 · 6/128 of the cells work.
    """
    geo = conv_geometry(tuple(x_shape), tuple(w_shape), stride=stride, padding=padding, dilation=dilation)
    m = x_shape[0] * geo.out[0] * geo.out[1]
    return cycle_model(m, w_shape[0] * w_shape[1] * w_shape[2], w_shape[3], array_size=array_size)


def systolic_conv2d(
    x, w, *, stride=1, padding="VALID", dilation=1, array_size: int = 128, record_activity: bool = False
) -> SystolicResult:
    """``conv2d(x, w)`` run on the simulated systolic array as the im2col matmul ``P · W``.

    Args:
      x: (n, h, w, c_in) NHWC images; w: (kh, kw, c_in, c_out) HWIO kernel.
      stride, padding, dilation: as in ``jaxmath.conv.conv2d``.
      array_size, record_activity: as in ``systolic_matmul``.

    Returns:
      ``SystolicResult`` whose ``output`` is reshaped to (n, oh, ow, c_out); the cycle counts are those of the
      (n·oh·ow, kh·kw·c_in) @ (kh·kw·c_in, c_out) matmul.
    """
    check_ndim(x, 4, name="x")
    check_ndim(w, 4, name="w")
    x, w = jnp.asarray(x), jnp.asarray(w)
    geo = conv_geometry(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation)
    patches = im2col_geo(x, geo)
    result = systolic_matmul(
        patches, w.reshape(-1, w.shape[3]), array_size=array_size, record_activity=record_activity
    )
    return result._replace(output=result.output.reshape(x.shape[0], *geo.out, w.shape[3]))
