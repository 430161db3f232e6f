"""Convolution and pooling, the bare math: the notes' 1-D convolution, conv2d three ways, hand backprop.

``conv1d`` is the notes' (seed 001) sliding sum. ``conv2d`` takes NHWC images and HWIO kernels, as JAX does,
and computes the same convolution by its definition ("direct"), as one patch-matrix matmul ("im2col") or with
XLA's kernel ("xla"). ``conv2d_backprop`` and ``max_pool_backprop`` / ``avg_pool_backprop`` are the
hand-derived gradients, tested against ``jax.grad``.
"""

from jaxmath.conv.backprop import conv2d_backprop as conv2d_backprop
from jaxmath.conv.conv1d import conv1d as conv1d
from jaxmath.conv.conv2d import METHODS as METHODS
from jaxmath.conv.conv2d import col2im as col2im
from jaxmath.conv.conv2d import conv2d as conv2d
from jaxmath.conv.conv2d import im2col as im2col
from jaxmath.conv.pooling import avg_pool as avg_pool
from jaxmath.conv.pooling import avg_pool_backprop as avg_pool_backprop
from jaxmath.conv.pooling import max_pool as max_pool
from jaxmath.conv.pooling import max_pool_backprop as max_pool_backprop

__all__ = [
    "conv1d", "conv2d", "im2col", "col2im", "conv2d_backprop", "METHODS",
    "max_pool", "avg_pool", "max_pool_backprop", "avg_pool_backprop",
]
