"""Hand-derived backpropagation through conv2d, in the im2col form.

Forward: Y = P · W, with P = im2col(x) of shape (N, K) (N = n·oh·ow output pixels, K = kh·kw·c_in) and
W = w reshaped to (K, c_out). Given δ = ∂L/∂Y reshaped to (N, c_out), the chain rule on a matmul gives

    ∂L/∂W = Pᵀ · δ                     (K, c_out), reshaped back to (kh, kw, c_in, c_out);
    ∂L/∂P = δ · Wᵀ                     (N, K);
    ∂L/∂x = col2im(δ · Wᵀ)            every patch entry goes back to the input pixel it was copied from,
                                      summed where windows overlap (col2im is im2col's transpose).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxmath._validation import check_ndim
from jaxmath.conv.conv2d import col2im_geo, conv_geometry, im2col_geo


@functools.partial(jax.jit, static_argnames=("stride", "padding", "dilation", "precision"))
def conv2d_backprop(x, w, delta, *, stride=1, padding="VALID", dilation=1, precision=None):
    """Gradients of a loss L through ``y = conv2d(x, w, ...)`` given δ = ∂L/∂y: dW = Pᵀδ, dx = col2im(δWᵀ).

    Args:
      x: (n, h, w, c_in) the forward input; w: (kh, kw, c_in, c_out) the kernel.
      delta: (n, oh, ow, c_out), ∂L/∂y.
      stride, padding, dilation: as in the forward ``conv2d``.
      precision: passed to the two matmuls.

    Returns:
      (dx, dw): (n, h, w, c_in) and (kh, kw, c_in, c_out), of dtype ``result_type(x, w, delta)``.
    """
    geo = conv_geometry(x.shape, w.shape, stride=stride, padding=padding, dilation=dilation)
    check_ndim(delta, 4, name="delta")
    want = (x.shape[0], *geo.out, w.shape[3])
    if tuple(delta.shape) != want:
        raise ValueError(f"delta must have the output's shape {want}, got delta.shape={tuple(delta.shape)}")
    dtype = jnp.result_type(x, w, delta)
    c_out = w.shape[3]
    patches = im2col_geo(x.astype(dtype), geo)  # (N, K)
    d = delta.astype(dtype).reshape(-1, c_out)  # (N, c_out)
    w_mat = w.astype(dtype).reshape(-1, c_out)  # (K, c_out)
    dw = jnp.matmul(patches.T, d, precision=precision).reshape(w.shape)
    dx = col2im_geo(jnp.matmul(d, w_mat.T, precision=precision), x.shape, geo)
    return dx, dw
