"""2-D convolution three ways: the definition (shifts and slices), im2col (one matmul) and XLA's kernel.

As in deep-learning libraries (and JAX), "convolution" is the cross-correlation: the kernel is not flipped.
With x in NHWC, w in HWIO, stride s, dilation d and the input zero-padded to x̃:

    y[b, p, q, o] = Σ_{i<kh} Σ_{j<kw} Σ_c  x̃[b, p·s_h + i·d_h, q·s_w + j·d_w, c] · w[i, j, c, o]

``"direct"`` writes this sum literally: one strided slice of x̃ per window offset (i, j), times w[i, j].
``"im2col"`` gathers the same slices into a patch matrix P with one row per output pixel and one column per
(i, j, c), so that y = P · W with W = w reshaped to (kh·kw·c_in, c_out): one large matmul, the form a
systolic array (``jaxmath.devices.systolic``) runs. ``"xla"`` calls ``lax.conv_general_dilated``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath._validation import check_choice, check_integer, check_ndim
from jaxmath.conv._geometry import Geometry, crop_spatial, geometry, pad_spatial, tap_slices, window_slices

METHODS = ("xla", "direct", "im2col")


def conv_geometry(x_shape, w_shape, *, stride=1, padding="VALID", dilation=1) -> Geometry:
    """Static checks of a convolution's shapes and options; the normalized ``Geometry``."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be 4-dimensional (n, h, w, c_in) in NHWC, got x.shape={tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"w must be 4-dimensional (kh, kw, c_in, c_out) in HWIO, got w.shape={tuple(w_shape)}")
    if x_shape[3] != w_shape[2]:
        raise ValueError(
            f"w's input channels must match x's channels: w.shape[2]={w_shape[2]} but x.shape[3]={x_shape[3]} "
            f"(x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)})"
        )
    if min(w_shape[:2]) < 1 or w_shape[3] < 1:
        raise ValueError(f"w must be non-empty, got w.shape={tuple(w_shape)}")
    return geometry(x_shape[1:3], w_shape[:2], stride=stride, padding=padding, dilation=dilation)


def im2col_geo(x, geo: Geometry):
    """Patch matrix of ``x`` for ``geo``: (n·oh·ow, kh·kw·c_in), columns ordered (i, j, c) like w.reshape."""
    xp = pad_spatial(x, geo.pads)
    cols = [xp[idx] for _, idx in window_slices(geo)]  # each (n, oh, ow, c)
    patches = jnp.stack(cols, axis=3)  # (n, oh, ow, kh·kw, c)
    n, oh, ow = patches.shape[:3]
    return patches.reshape(n * oh * ow, -1)


def col2im_geo(cols, x_shape, geo: Geometry):
    """Adjoint of ``im2col_geo``: add each patch-matrix entry back onto the input pixel it was read from."""
    n, _, _, c = x_shape
    (kh, kw), (oh, ow) = geo.window, geo.out
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    (top, bottom), (left, right) = geo.pads
    xp = jnp.zeros((n, x_shape[1] + top + bottom, x_shape[2] + left + right, c), cols.dtype)
    for (i, j), idx in window_slices(geo):
        xp = xp.at[idx].add(cols[:, :, :, i, j, :])
    return crop_spatial(xp, geo.pads)


def _window(kernel_size):
    pair = tuple(kernel_size) if isinstance(kernel_size, (tuple, list)) else (kernel_size, kernel_size)
    if len(pair) != 2:
        raise ValueError(f"kernel_size must be an int or a pair (kh, kw), got kernel_size={kernel_size!r}")
    for k in pair:
        check_integer(k, name="kernel_size", minimum=1)
    return pair


@functools.partial(jax.jit, static_argnames=("kernel_size", "stride", "padding", "dilation"))
def im2col(x, *, kernel_size, stride=1, padding="VALID", dilation=1):
    """The patch matrix P of a convolution: ``conv2d(x, w) == (P @ w.reshape(-1, c_out)).reshape(n, oh, ow, c_out)``.

    Args:
      x: (n, h, w, c) array, NHWC.
      kernel_size: int or (kh, kw).
      stride, padding, dilation: as in ``conv2d``.

    Returns:
      (n·oh·ow, kh·kw·c) array of x's dtype; row (b, p, q) holds the window of output pixel (p, q) of image b,
      column (i, j, c) the pixel at window offset (i, j), channel c.
    """
    check_ndim(x, 4, name="x")
    geo = geometry(x.shape[1:3], _window(kernel_size), stride=stride, padding=padding, dilation=dilation,
                   name="kernel_size")
    return im2col_geo(x, geo)


@functools.partial(jax.jit, static_argnames=("x_shape", "kernel_size", "stride", "padding", "dilation"))
def col2im(cols, *, x_shape, kernel_size, stride=1, padding="VALID", dilation=1):
    """The adjoint (transpose) of ``im2col``: sums every patch entry back onto its input pixel.

    Args:
      cols: (n·oh·ow, kh·kw·c) array.
      x_shape: (n, h, w, c), the input shape ``im2col`` was applied to.

    Returns:
      (n, h, w, c) array; padding positions are dropped.
    """
    x_shape = tuple(x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must have 4 entries (n, h, w, c), got x_shape={x_shape}")
    geo = geometry(x_shape[1:3], _window(kernel_size), stride=stride, padding=padding, dilation=dilation,
                   name="kernel_size")
    n, c = x_shape[0], x_shape[3]
    want = (n * geo.out[0] * geo.out[1], geo.window[0] * geo.window[1] * c)
    if tuple(cols.shape) != want:
        raise ValueError(f"cols must have shape {want} for x_shape={x_shape}, got cols.shape={tuple(cols.shape)}")
    return col2im_geo(cols, x_shape, geo)


def _add_bias(y, bias):
    return y if bias is None else y + bias.astype(y.dtype)


def _direct(x, w, bias, geo, precision):
    n, (oh, ow), c_out = x.shape[0], geo.out, w.shape[3]
    xp = pad_spatial(x, geo.pads)
    y = jnp.zeros((n, oh, ow, c_out), jnp.result_type(x, w))
    for (i, j), idx in window_slices(geo):
        y = y + jnp.einsum("bpqc,co->bpqo", xp[idx], w[i, j], precision=precision)
    return _add_bias(y, bias)


def patches_transposed(x, geo: Geometry):
    """Pᵀ = ``im2col_geo(x, geo).T`` built directly: (kh·kw·c_in, n·oh·ow), rows ordered (i, j, c)."""
    return patches_channels_first(jnp.transpose(x, (3, 0, 1, 2)), geo)


def patches_channels_first(xc, geo: Geometry):
    """Pᵀ of channels-first images ``xc`` (c, n, h, w): (kh·kw·c, n·oh·ow), rows ordered (i, j, c).

    With the channels first, each tap (i, j) contributes c contiguous rows of n·oh·ow pixels: the stack is a
    copy of large contiguous slices, with no interleaving of the c channels. It is stacked in two stages, the
    kw column shifts and then the kh row shifts of that stack: XLA:CPU copies every operand of a stack into
    place after computing it on its own, so kh + kw operands cost far less than kh·kw (LeNet's C1 and C3:
    ``benchmarks/RESULTS.md``).
    """
    n = xc.shape[1]
    (oh, ow) = geo.out
    (kh, kw) = geo.window
    if geo.out == (1, 1) and geo.dilation == (1, 1) and not any(geo.pads[0] + geo.pads[1]):
        # One window per image (LeNet's C5): the patch is the top-left kh × kw corner, no copy per tap.
        return jnp.transpose(xc[:, :, :kh, :kw], (2, 3, 0, 1)).reshape(-1, n)
    xc = jnp.pad(xc, ((0, 0), (0, 0), *geo.pads))  # (c, n, h + pads, w + pads)
    rows, cols = tap_slices(geo)
    by_column = jnp.stack([xc[:, :, :, c] for c in cols])  # (kw, c, n, h + pads, ow)
    taps = jnp.stack([by_column[:, :, :, r] for r in rows])  # (kh, kw, c, n, oh, ow)
    return taps.reshape(-1, n * oh * ow)


def col2im_channels_first(patches_t, xc_shape, geo: Geometry):
    """Adjoint of ``patches_channels_first``: (kh·kw·c, n·oh·ow) → (c, n, h, w), overlaps summed.

    Each tap is added into its window with ``.at[].add`` rather than padded and summed: XLA fuses a chain of
    kh·kw pads into whichever loop consumes it (in LeNet, the pooling derivative, which reads every pixel four
    times), re-evaluating all kh·kw bounds checks per element read. The scatter-adds stay separate in-place
    updates.
    """
    c, n, h, w = xc_shape
    (kh, kw), (oh, ow) = geo.window, geo.out
    (top, bottom), (left, right) = geo.pads
    taps = patches_t.reshape(kh, kw, c, n, oh, ow)
    xc = jnp.zeros((c, n, h + top + bottom, w + left + right), patches_t.dtype)
    rows, cols = tap_slices(geo)
    for i, r in enumerate(rows):
        for j, col in enumerate(cols):
            xc = xc.at[:, :, r, col].add(taps[i, j])
    return xc[:, :, top:top + h, left:left + w]


# Below this many output channels the patch matmul runs transposed (see _im2col); at and above it the row form
# P · W is the faster one on XLA:CPU (the transposes around a wide matmul cost more than they save).
TRANSPOSED_BELOW_C_OUT = 32


def _im2col(x, w, bias, geo, precision):
    n, (oh, ow), c_out = x.shape[0], geo.out, w.shape[3]
    dtype = jnp.result_type(x, w)
    if c_out >= TRANSPOSED_BELOW_C_OUT:
        patches = im2col_geo(x.astype(dtype), geo)
        y = jnp.matmul(patches, w.astype(dtype).reshape(-1, c_out), precision=precision)
        return _add_bias(y.reshape(n, oh, ow, c_out), bias)
    # Channels first around the transposed matmul: the (c_out, n, oh, ow) result is transposed back once.
    xc = jnp.transpose(x.astype(dtype), (3, 0, 1, 2))
    bias = jnp.zeros((c_out,), dtype) if bias is None else bias.astype(dtype)
    yc = _im2col_transposed(geo, precision, tuple(xc.shape), xc, w.astype(dtype), bias)
    return jnp.transpose(yc, (1, 2, 3, 0))


# y = P · W computed as yᵀ = Wᵀ · Pᵀ, channels first, when c_out is small: with c_out as the rows, the matmul's
# long dimension n·oh·ow is the output's contiguous one (c_out = 6 or 16 columns make a poor matmul on CPU).
# Its derivative is the notes' hand backprop (``conv2d_backprop``) in the same layout, given to JAX as the VJP:
#     ∂L/∂W = Pᵀ · δ   (Pᵀ's rows against δᵀ's rows: no transpose of the long patch matrix),
#     ∂L/∂x = col2im((δ · Wᵀ)ᵀ) = col2im(W · δᵀ),
#     ∂L/∂b = δᵀ · 1   (the sum of δᵀ's rows).
# Left to autodiff, the transposed slices become a chain of pads that XLA:CPU fuses into the next layer's
# backward and re-evaluates there (a LeNet training step: ``benchmarks/RESULTS.md``). Reverse mode only: for jax.jvp /
# jacfwd use method "xla" or "direct".
@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _im2col_transposed(geo, precision, xc_shape, xc, w, bias):
    return _im2col_transposed_fwd(geo, precision, xc_shape, xc, w, bias)[0]


def _im2col_transposed_fwd(geo, precision, xc_shape, xc, w, bias):
    n, (oh, ow), c_out = xc_shape[1], geo.out, w.shape[3]
    patches_t = patches_channels_first(xc, geo)
    w_mat = w.reshape(-1, c_out)
    y_t = jnp.matmul(w_mat.T, patches_t, precision=precision) + bias[:, None]
    return y_t.reshape(c_out, n, oh, ow), (patches_t, w_mat)


def _im2col_transposed_bwd(geo, precision, xc_shape, residuals, delta):
    patches_t, w_mat = residuals
    kh, kw = geo.window
    c_in, c_out = xc_shape[0], w_mat.shape[1]
    delta_t = delta.reshape(c_out, -1)  # δᵀ: (c_out, n·oh·ow)
    dw = jnp.einsum("kn,on->ko", patches_t, delta_t, precision=precision)  # Pᵀ · δ
    dxc = col2im_channels_first(jnp.matmul(w_mat, delta_t, precision=precision), xc_shape, geo)  # col2im(W·δᵀ)
    return dxc, dw.reshape(kh, kw, c_in, c_out), jnp.sum(delta_t, axis=1)


_im2col_transposed.defvjp(_im2col_transposed_fwd, _im2col_transposed_bwd)


def _check_bias(bias, w_shape):
    if bias is not None and tuple(jnp.shape(bias)) != (w_shape[3],):
        raise ValueError(
            f"bias must have shape (c_out,) = ({w_shape[3]},) for w.shape={tuple(w_shape)}, "
            f"got bias.shape={tuple(jnp.shape(bias))}"
        )


def _xla(x, w, bias, geo, precision):
    dtype = jnp.result_type(x, w)
    return _add_bias(lax.conv_general_dilated(
        x.astype(dtype), w.astype(dtype), window_strides=geo.stride, padding=geo.pads, rhs_dilation=geo.dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision,
    ), bias)


@functools.partial(jax.jit, static_argnames=("stride", "padding", "dilation", "method", "precision"))
def conv2d(x, w, bias=None, *, stride=1, padding="VALID", dilation=1, method="xla", precision=None):
    """2-D convolution (cross-correlation) of NHWC images with HWIO kernels, plus an optional bias per channel.

        y[b, p, q, o] = Σ_{i,j,c} x̃[b, p·s_h + i·d_h, q·s_w + j·d_w, c] · w[i, j, c, o]  (+ bias[o])

    x̃ is ``x`` zero-padded, s = ``stride``, d = ``dilation``.

    Args:
      x: (n, h, w, c_in) float array.
      w: (kh, kw, c_in, c_out) float array.
      bias: None or (c_out,) float array, added to every output pixel (cast to the result dtype).
      stride: int or (s_h, s_w), >= 1.
      padding: "VALID" (none), "SAME" (output size ceil(h / s_h), XLA's split), an int p (p on every side),
        (p_h, p_w), or ((top, bottom), (left, right)). Tuples, not lists (static arguments are hashed).
      dilation: int or (d_h, d_w), >= 1: the kernel's taps are d apart.
      method: "xla" (``lax.conv_general_dilated``), "direct" (the sum above, a slice per tap) or "im2col"
        (patch matrix times kernel matrix). All three agree to rounding. Below 32 output channels "im2col"
        differentiates through the hand-derived backprop (dW = Pᵀδ, dx = col2im(δWᵀ)) as a custom VJP, so
        it supports reverse mode (``jax.grad``, ``jax.vjp``) but not forward mode (``jax.jvp``,
        ``jax.jacfwd``); "xla" and "direct" support both.
      precision: passed to the matmuls / XLA convolution (None: the backend's default).

    Returns:
      (n, oh, ow, c_out) array of dtype ``result_type(x, w)``,
      oh = (h + top + bottom − d_h(kh − 1) − 1) // s_h + 1 (and ow alike).
    """
    check_choice(method, METHODS, name="method")
    geo = conv_geometry(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation)
    _check_bias(bias, w.shape)
    return {"xla": _xla, "direct": _direct, "im2col": _im2col}[method](x, w, bias, geo, precision)
