"""Sizes for the matrix units: pad batch rows and hidden widths to multiples of 8 and 128.

Where it matters:

* **TPU**: the matrix unit (MXU) is a 128 × 128 systolic array (256 × 256 on v6e) and the vector registers
  hold (8, 128) tiles of float32 ((16, 128) of bfloat16). XLA lays every array out in those tiles, padding
  the last dimension to a multiple of 128 and the one before it to a multiple of 8 with zeros *it still
  multiplies*. A hidden layer of 1000 units therefore costs what 1024 cost (24 lanes wasted), 10 output
  classes cost what 128 cost, and a batch of 100 rows what 104 cost. Choosing the multiples yourself wastes
  nothing you did not ask for: use 1024 units rather than 1000, batches of 128 rather than 100.
* **GPU** (tensor cores, Volta and later): cuBLAS runs its tensor-core kernels most efficiently when the
  matrix dimensions are multiples of 8 for float16/bfloat16 (16 bytes), 4 for TF32, 16 for int8 (NVIDIA's
  matrix multiplication performance guide); odd sizes fall back to slower tiles or pad internally.
* **CPU**: no matrix unit. Padding only adds work (vector widths of 8 or 16 floats make multiples of 16 a
  little friendlier, nothing more); ``benchmarks/bench_padding.py`` measures it.

What padding does to the results:

* **Hidden units** padded with zero weights in *and* out (``pad_hidden``) leave the network's function
  unchanged for every activation f: a padded unit computes f(0) and passes it on through zero weights.
  Under gradient training they also stay exactly zero when f(0) = 0 (relu, tanh, leaky_relu, identity): the
  gradient of an out-weight is f(0)·δ = 0 and of an in-weight w_out·f'(0)·x = 0, so padded training equals
  unpadded training. With f(0) ≠ 0 (sigmoid: 0.5, softplus) the out-weights receive gradient and the padded
  units start to contribute: mask them, ``params = mask_tree * params`` after each update, with
  ``hidden_mask``.
* **Batch rows** padded with zeros change a mean loss (and its gradient) unless they are masked:
  ``pad_batch`` returns a 0/1 ``mask`` for ``distributed.make_masked_classifier_loss``, which averages over the
  real rows only.
* Output classes are not padded here: extra logits would enter the softmax's normaliser unless masked
  with -inf.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as V
from jaxmath.devices.distributed import Batch

# The multiple of the feature (lane) dimension the matrix unit works in, by platform; batch rows: 8 on TPU.
MATRIX_UNIT_MULTIPLE = {"tpu": 128, "gpu": 8, "cpu": 1}
TPU_ROW_MULTIPLE = 8


def padded_size(n: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``n``: ``⌈n / m⌉ · m`` (1000, 128 → 1024; 100, 8 → 104).

    Args:
      n: a size >= 0.
      multiple: >= 1.
    """
    V.check_integer(n, name="n", minimum=0)
    V.check_integer(multiple, name="multiple", minimum=1)
    return -(-n // multiple) * multiple


def matrix_unit_multiple(platform: str | None = None) -> int:
    """The feature multiple that fills the matrix unit: 128 on TPU, 8 on GPU, 1 on CPU (default: JAX's backend)."""
    platform = jax.default_backend() if platform is None else platform
    V.check_choice(platform, tuple(MATRIX_UNIT_MULTIPLE), name="platform")
    return MATRIX_UNIT_MULTIPLE[platform]


def padded_sizes(sizes: Any, multiple: int) -> tuple[int, ...]:
    """An MLP's layer widths with the hidden ones padded: ``(784, 1000, 10)``, 128 → ``(784, 1024, 10)``.

    The input and output widths are the data's and stay as they are.
    """
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least the input and output widths, got sizes={sizes}")
    return (sizes[0], *(padded_size(n, multiple) for n in sizes[1:-1]), sizes[-1])


def pad_hidden(params: list, multiple: int) -> list:
    """An MLP's params (``[(W_1, b_1), ..., (W_L, b_L)]``, ``W_l (n_{l-1}, n_l)``) with every hidden width
    padded to a multiple of ``multiple`` by zero columns of W_l, zero entries of b_l and zero rows of W_{l+1}.

    The padded network computes the same function (see the module docstring for training).
    """
    padded = []
    for l, (w, b) in enumerate(params):
        rows = np.shape(w)[0] if l == 0 else np.shape(padded[-1][0])[1]
        cols = np.shape(w)[1] if l == len(params) - 1 else padded_size(np.shape(w)[1], multiple)
        w = jnp.pad(jnp.asarray(w), ((0, rows - np.shape(w)[0]), (0, cols - np.shape(w)[1])))
        b = jnp.pad(jnp.asarray(b), (0, cols - np.shape(b)[0]))
        padded.append((w, b))
    return padded


def unpad_hidden(params: list, sizes: Any) -> list:
    """The inverse of ``pad_hidden``: the first ``sizes`` rows and columns of every layer."""
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) != len(params) + 1:
        raise ValueError(f"sizes must have {len(params) + 1} widths for {len(params)} layers, got sizes={sizes}")
    return [(w[:sizes[l], :sizes[l + 1]], b[:sizes[l + 1]]) for l, (w, b) in enumerate(params)]


def hidden_mask(params: list, sizes: Any) -> list:
    """0/1 arrays shaped like padded ``params``: 1 where a weight or bias belongs to the unpadded network."""
    mask = []
    for l, (w, b) in enumerate(params):
        mw = np.zeros(np.shape(w), np.dtype(w.dtype))
        mb = np.zeros(np.shape(b), np.dtype(b.dtype))
        mw[:sizes[l], :sizes[l + 1]] = 1
        mb[:sizes[l + 1]] = 1
        mask.append((jnp.asarray(mw), jnp.asarray(mb)))
    return mask


def pad_batch(x: Any, labels: Any, multiple: int) -> Batch:
    """Rows padded with zeros to a multiple of ``multiple``, with a 0/1 ``mask`` of the real rows.

    Returns:
      ``distributed.Batch(x, labels, mask)``: ``x (m, ...)``, ``labels (m,)``, ``mask (m,)`` float32,
      ``m = padded_size(n, multiple)``; feed it to a loss from ``distributed.make_masked_classifier_loss``.
    """
    x, labels = np.asarray(x), np.asarray(labels)
    V.check_same_length(x, labels, names=("x", "labels"))
    n = len(labels)
    m = padded_size(n, multiple)
    px = np.zeros((m,) + x.shape[1:], x.dtype)
    pl = np.zeros((m,) + labels.shape[1:], labels.dtype)
    px[:n], pl[:n] = x, labels
    mask = np.zeros((m,), np.float32)
    mask[:n] = 1
    return Batch(px, pl, mask)
