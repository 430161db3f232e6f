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
derivative is XLA's select-and-scatter. Tiling windows (stride = window, LeNet's 2×2 pooling) reshape x to
(n, oh, kh, ow, kw, c) and reduce over the two window axes: XLA:CPU runs select-and-scatter as a slow serial
loop, while the reshaped form differentiates into one mask that fuses with the neighbouring layers. Its max
carries a custom JVP (the tangent of the first maximal tap), so forward and reverse mode both follow the
tie rule above.
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


def _blocks(x, geo, fill):
    """Tiling windows (stride = window) as a reshape: (n, oh, kh, ow, kw, c), window (p, q) at [:, p, :, q, :, :].

    Padding takes ``fill``; rows and columns past the last whole window are dropped (as "VALID" does).
    """
    (kh, kw), (oh, ow) = geo.window, geo.out
    if any(geo.pads[0]) or any(geo.pads[1]):
        x = pad_spatial(x, geo.pads, fill)
    n, c = x.shape[0], x.shape[3]
    return x[:, :oh * kh, :ow * kw, :].reshape(n, oh, kh, ow, kw, c)


def _is_tiling(geo):
    return geo.stride == geo.window


@jax.custom_jvp
def _window_max(blocks):
    """max over the window axes (2, 4) of ``_blocks``; its derivative picks the first maximal tap (row-major)."""
    return jnp.max(blocks, axis=(2, 4))


@_window_max.defjvp
def _window_max_jvp(primals, tangents):
    # JAX's own max derivative splits δ among tied taps. Here the tangent of the first maximal tap (smallest
    # i·kw + j) is taken, a linear map whose transpose (reverse mode) sends δ to that tap alone: one mask
    # over the same reshaped array, fused like an elementwise op. A window holding a NaN has no tap equal to
    # its max (NaN) and gets a zero tangent.
    (blocks,), (tangent,) = primals, tangents
    kh, kw = blocks.shape[2], blocks.shape[4]
    top = jnp.max(blocks, axis=(2, 4), keepdims=True)
    shape = (1, 1, kh, 1, kw, 1)
    order = lax.broadcasted_iota(jnp.int32, shape, 2) * kw + lax.broadcasted_iota(jnp.int32, shape, 4)
    first = jnp.min(jnp.where(blocks == top, order, kh * kw), axis=(2, 4), keepdims=True)
    picked = jnp.sum(jnp.where(order == first, tangent, jnp.zeros((), tangent.dtype)), axis=(2, 4))
    return top[:, :, 0, :, 0, :], picked


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
        return _window_max(_blocks(x, geo, _lowest(x.dtype)))
    return _max_pool_reference(x, geo)


@functools.partial(jax.jit, static_argnames=("window", "stride", "padding"))
def avg_pool(x, *, window=2, stride=None, padding="VALID"):
    """Average pooling: y[b, p, q, c] = (1/(kh·kw)) Σ_{i<kh, j<kw} x̃[b, p·s_h + i, q·s_w + j, c], x̃ zero-padded.

    Args and returns as ``max_pool``; padded zeros count in the mean.
    """
    geo = pool_geometry(x.shape, window, stride, padding)
    if _is_tiling(geo):
        total = jnp.sum(_blocks(x, geo, np.array(0, x.dtype)), axis=(2, 4))
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
