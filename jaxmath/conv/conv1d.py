"""The notes' 1-D convolution (seed 001): a window of k weights slides along the input, zeros past the end.

    y_i = w_1 x_i + w_2 x_{i+1} + … + w_k x_{i+k−1},   with x_j = 0 for j > n,

so y has the length of x. For k = n = 3: y_1 = w_1x_1 + w_2x_2 + w_3x_3, y_2 = w_1x_2 + w_2x_3 + 0,
y_3 = w_1x_3 + 0 + 0 (the slide's y_1 repeats w_2x_2 where w_3x_3 belongs: docs/errata.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmath._validation import check_ndim


@jax.jit
def conv1d(x, w):
    """1-D convolution as the notes define it: y_i = Σ_{j=1..k} w_j · x_{i+j−1}, x zero past its end.

    Args:
      x: (..., n) array, the inputs x_1 … x_n (leading axes are a batch).
      w: (k,) array, the weights w_1 … w_k; k may exceed n (those taps only ever see zeros).

    Returns:
      (..., n) array of dtype ``result_type(x, w)``: y_1 … y_n.
    """
    check_ndim(w, 1, name="w")
    if x.ndim < 1:
        raise ValueError(f"x must have at least 1 dimension (..., n), got x.shape={tuple(x.shape)}")
    if w.shape[0] < 1:
        raise ValueError(f"w must hold at least one weight, got w.shape={tuple(w.shape)}")
    n, k = x.shape[-1], w.shape[0]
    dtype = jnp.result_type(x, w)
    padded = jnp.pad(x.astype(dtype), [(0, 0)] * (x.ndim - 1) + [(0, k - 1)])
    y = jnp.zeros(x.shape, dtype)
    # One shifted copy of x per weight: tap j reads x_{i+j}.
    for j in range(k):
        y = y + w[j].astype(dtype) * padded[..., j:j + n]
    return y
