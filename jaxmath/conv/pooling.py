"""Max and average pooling over NHWC images, with hand-written derivatives.

Pooling takes, per channel, the max or the mean of each kh × kw window (stride defaults to the window, so the
windows tile the image). Its derivative routes each output's gradient δ back to the window:

* average pooling: every pixel of the window receives δ / (kh·kw);
* max pooling: the window's maximal pixel receives δ, the others 0. **Ties**: when several pixels share the
  maximum, the first one in row-major window order (smallest row, then smallest column) receives all of δ,
  which is what ``jax.grad`` of ``max_pool`` gives (for overlapping windows through ``lax.reduce_window``,
  whose select-and-scatter keeps the first maximal element on CPU) and what ``torch.nn.functional.max_pool2d``
  does. The gradient is then a valid
  subgradient, not the symmetric split δ/t among t tied pixels.

Padding: max pooling pads with −∞ (padding never wins); average pooling pads with zeros and divides by the full
window size kh·kw (``count_include_pad``, as flax's ``avg_pool`` by default).

Two forms compute the same values. Overlapping windows (stride ≠ window) use ``lax.reduce_window``, whose
derivative is XLA's select-and-scatter. Tiling windows (stride = window, LeNet's 2×2 pooling) take the kh·kw
strided taps of a reshape and combine them elementwise: XLA:CPU runs select-and-scatter as a slow serial loop,
while the tiled form differentiates into elementwise selects that fuse with the neighbouring layers. The max
of the tiled form is a chain of selects, y = t₀ if t₀ = m else (t₁ if t₁ = m else …) with m the window's max,
so the gradient flows to the first maximal tap only: the same tie rule, under every JAX transformation.
``_max_pool_reference`` / ``_avg_pool_reference`` keep the ``reduce_window`` form for every geometry; tests
compare the two.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath._validation import check_integer, check_ndim
from jaxmath.conv._geometry import Geometry, crop_spatial, geometry, pad_spatial, window_slices


def pool_geometry(x_shape, window, stride, padding) -> Geometry:
    if len(x_shape) != 4:
        raise ValueError(f"x must be 4-dimensional (n, h, w, c) in NHWC, got x.shape={tuple(x_shape)}")
    pair = tuple(window) if isinstance(window, (tuple, list)) else (window, window)
    if len(pair) != 2:
        raise ValueError(f"window must be an int or a pair (kh, kw), got window={window!r}")
    for k in pair:
        check_integer(k, name="window", minimum=1)
    return geometry(x_shape[1:3], pair, stride=pair if stride is None else stride, padding=padding, name="window")


def _lowest(dtype):
    # A concrete host scalar, so that lax.reduce_window recognises the max / add monoid and can differentiate.
    return np.array(-np.inf if jnp.issubdtype(dtype, jnp.inexact) else jnp.iinfo(dtype).min, dtype)


def _reduce(x, geo, init, op):
    (kh, kw), (sh, sw) = geo.window, geo.stride
    return lax.reduce_window(x, init, op, (1, kh, kw, 1), (1, sh, sw, 1), ((0, 0), *geo.pads, (0, 0)))


def _tiles(x, geo, fill):
    """The kh·kw taps of tiling windows (stride = window), row-major: each (n, oh, ow, c), tap (i, j) of every
    window. Padding takes ``fill``; rows and columns past the last whole window are dropped (as "VALID")."""
    (kh, kw), (oh, ow) = geo.window, geo.out
    if any(geo.pads[0]) or any(geo.pads[1]):
        x = pad_spatial(x, geo.pads, fill)
    n, c = x.shape[0], x.shape[3]
    blocks = x[:, :oh * kh, :ow * kw, :].reshape(n, oh, kh, ow, kw, c)
    return [blocks[:, :, i, :, j, :] for i in range(kh) for j in range(kw)]


def _is_tiling(geo):
    return geo.stride == geo.window


def _first_max(taps):
    """Elementwise max of ``taps`` whose derivative goes to the first maximal tap (a chain of selects)."""
    top = taps[0]
    for t in taps[1:]:
        top = jnp.maximum(top, t)
    top = lax.stop_gradient(top)
    # Without a tap equal to the max (a NaN in the window) the result is the max itself, NaN, as reduce_window.
    out = top
    for t in reversed(taps):
        out = jnp.where(t == top, t, out)
    return out


def _max_pool_reference(x, geo):
    return _reduce(x, geo, _lowest(x.dtype), lax.max)


def _avg_pool_reference(x, geo):
    return _reduce(x, geo, np.array(0, x.dtype), lax.add) / jnp.array(geo.window[0] * geo.window[1], x.dtype)


@functools.partial(jax.jit, static_argnames=("window", "stride", "padding"))
def max_pool(x, *, window=2, stride=None, padding="VALID"):
    """Max pooling: y[b, p, q, c] = max_{i<kh, j<kw} x̃[b, p·s_h + i, q·s_w + j, c] (x̃ padded with −∞).

    Args:
      x: (n, h, w, c) array, NHWC.
      window: int or (kh, kw).
      stride: int or (s_h, s_w); None means the window (non-overlapping windows).
      padding: "VALID", "SAME", an int, (p_h, p_w) or ((top, bottom), (left, right)).

    Returns:
      (n, oh, ow, c) array of x's dtype.
    """
    geo = pool_geometry(x.shape, window, stride, padding)
    if _is_tiling(geo):
        return _first_max(_tiles(x, geo, _lowest(x.dtype)))
    return _max_pool_reference(x, geo)


@functools.partial(jax.jit, static_argnames=("window", "stride", "padding"))
def avg_pool(x, *, window=2, stride=None, padding="VALID"):
    """Average pooling: y[b, p, q, c] = (1/(kh·kw)) Σ_{i<kh, j<kw} x̃[b, p·s_h + i, q·s_w + j, c], x̃ zero-padded.

    Args and returns as ``max_pool``; padded zeros count in the mean.
    """
    geo = pool_geometry(x.shape, window, stride, padding)
    if _is_tiling(geo):
        taps = _tiles(x, geo, np.array(0, x.dtype))
        total = taps[0]
        for t in taps[1:]:
            total = total + t
        return total / jnp.array(geo.window[0] * geo.window[1], x.dtype)
    return _avg_pool_reference(x, geo)


def _check_delta(delta, geo, x):
    check_ndim(delta, 4, name="delta")
    want = (x.shape[0], *geo.out, x.shape[3])
    if tuple(delta.shape) != want:
        raise ValueError(f"delta must have the output's shape {want}, got delta.shape={tuple(delta.shape)}")


@functools.partial(jax.jit, static_argnames=("window", "stride", "padding"))
def max_pool_backprop(x, delta, *, window=2, stride=None, padding="VALID"):
    """∂L/∂x of max pooling given δ = ∂L/∂y: δ goes to the first maximal pixel of each window (row-major).

    Args:
      x: (n, h, w, c) the pooling's input; delta: (n, oh, ow, c), the gradient at its output.

    Returns:
      (n, h, w, c) array; overlapping windows add their contributions.
    """
    geo = pool_geometry(x.shape, window, stride, padding)
    _check_delta(delta, geo, x)
    xp = pad_spatial(x, geo.pads, _lowest(x.dtype))
    slices = list(window_slices(geo))
    taps = jnp.stack([xp[idx] for _, idx in slices])  # (kh·kw, n, oh, ow, c), row-major window order
    winner = jnp.argmax(taps, axis=0)  # argmax returns the first maximal index: the tie rule
    dxp = jnp.zeros(xp.shape, delta.dtype)
    for t, (_, idx) in enumerate(slices):
        dxp = dxp.at[idx].add(jnp.where(winner == t, delta, jnp.zeros((), delta.dtype)))
    return crop_spatial(dxp, geo.pads)


@functools.partial(jax.jit, static_argnames=("window", "stride", "padding"))
def avg_pool_backprop(x, delta, *, window=2, stride=None, padding="VALID"):
    """∂L/∂x of average pooling: every pixel of a window receives δ / (kh·kw).

    Args:
      x: (n, h, w, c) the pooling's input (only its shape is used); delta: (n, oh, ow, c).

    Returns:
      (n, h, w, c) array of delta's dtype.
    """
    geo = pool_geometry(x.shape, window, stride, padding)
    _check_delta(delta, geo, x)
    share = delta / jnp.array(geo.window[0] * geo.window[1], delta.dtype)
    (top, bottom), (left, right) = geo.pads
    dxp = jnp.zeros((x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3]), delta.dtype)
    for _, idx in window_slices(geo):
        dxp = dxp.at[idx].add(share)
    return crop_spatial(dxp, geo.pads)
