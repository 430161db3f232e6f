"""Norm penalties of the notes over whole parameter pytrees, their (sub)gradients, and soft-thresholding.

A parameter pytree (a list of ``(W, b)`` tuples, a dict, a single array) is treated as
one long vector ``w`` made of all its leaves: ``l1(params) = Σ_i |w_i|`` runs over every
entry of every leaf. Penalties return a scalar of the leaves' common float dtype; the
(sub)gradients return a pytree with the structure, shapes and dtypes of ``params``.

Notation of the notes (seed 004, "Norms L1, L2, P-Norm"): ``w_1 … w_N`` the weights.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxmath import _validation as v

__all__ = [
    "l1",
    "l1_subgradient",
    "l2",
    "l2_gradient",
    "squared_l2",
    "squared_l2_gradient",
    "p_norm",
    "p_norm_gradient",
    "elastic_net",
    "elastic_net_subgradient",
    "soft_threshold",
]


def _leaves(params):
    leaves = [jnp.asarray(x) for x in jax.tree_util.tree_leaves(params)]
    for leaf in leaves:
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(f"params must hold float arrays, got a leaf of dtype {leaf.dtype} and shape {leaf.shape}")
    return leaves


def _dtype(leaves):
    return jnp.result_type(*leaves) if leaves else jnp.float32


def _total(leaves, fn):
    """Σ over leaves of fn(leaf), in the leaves' common dtype."""
    dtype = _dtype(leaves)
    out = jnp.zeros((), dtype)
    for leaf in leaves:
        out = out + jnp.sum(fn(leaf.astype(dtype)))
    return out


def _max_abs(leaves):
    dtype = _dtype(leaves)
    out = jnp.zeros((), dtype)
    for leaf in leaves:
        if leaf.size:
            out = jnp.maximum(out, jnp.max(jnp.abs(leaf)).astype(dtype))
    return out


# --------------------------------------------------------------------------- L1


@jax.jit
def _l1(params):
    return _total(_leaves(params), jnp.abs)


def l1(params):
    """The 1-norm ``‖w‖₁ = |w_1| + |w_2| + … + |w_N|``.

    Symbols: ``w`` → every entry of every leaf of ``params``.

    Args:
      params: a pytree of float arrays.

    Returns:
      scalar of the leaves' common dtype.
    """
    _leaves(params)
    return _l1(params)


@jax.jit
def _l1_subgradient(params):
    return jax.tree_util.tree_map(jnp.sign, params)


def l1_subgradient(params):
    """``∂‖w‖₁/∂w_i = sign(w_i)`` (0 at ``w_i = 0``, the subgradient that keeps zeros at zero).

    Returns:
      pytree like ``params``.
    """
    _leaves(params)
    return _l1_subgradient(params)


# --------------------------------------------------------------------------- L2 and squared L2


@jax.jit
def _squared_l2(params):
    return _total(_leaves(params), jnp.square)


def squared_l2(params):
    """The squared 2-norm ``‖w‖₂² = w_1² + w_2² + … + w_N²`` (the ridge penalty).

    Args:
      params: a pytree of float arrays.

    Returns:
      scalar of the leaves' common dtype.
    """
    _leaves(params)
    return _squared_l2(params)


@jax.jit
def _squared_l2_gradient(params):
    return jax.tree_util.tree_map(lambda w: 2 * w, params)


def squared_l2_gradient(params):
    """``∂‖w‖₂²/∂w_i = 2 w_i``.

    Returns:
      pytree like ``params``.
    """
    _leaves(params)
    return _squared_l2_gradient(params)


def _scaled_norm(leaves, p):
    """(Σ|w|^p)^(1/p) as m·(Σ(|w|/m)^p)^(1/p), m = max|w|: no overflow or underflow in the powers.

    Safe at w = 0 for autodiff too (double ``where``): the value is 0 and the gradient 0.
    """
    m = _max_abs(leaves)
    nonzero = m > 0
    safe_m = jnp.where(nonzero, m, jnp.ones_like(m))
    s = _total(leaves, lambda w: jnp.abs(w / safe_m) ** p)
    safe_s = jnp.where(nonzero, s, jnp.ones_like(s))
    return jnp.where(nonzero, safe_m * safe_s ** (1 / p), jnp.zeros_like(m))


@jax.jit
def _l2(params):
    return _scaled_norm(_leaves(params), 2)


def l2(params):
    """The 2-norm ``‖w‖₂ = (w_1² + w_2² + … + w_N²)^(1/2)``, computed without overflow.

    Args:
      params: a pytree of float arrays.

    Returns:
      scalar of the leaves' common dtype.
    """
    _leaves(params)
    return _l2(params)


@jax.jit
def _l2_gradient(params):
    norm = _l2(params)
    safe = jnp.where(norm > 0, norm, jnp.ones_like(norm))
    return jax.tree_util.tree_map(lambda w: jnp.where(norm > 0, w / safe.astype(w.dtype), jnp.zeros_like(w)), params)


def l2_gradient(params):
    """``∂‖w‖₂/∂w_i = w_i / ‖w‖₂`` (0 at ``w = 0``, where the norm has a kink).

    Returns:
      pytree like ``params``.
    """
    _leaves(params)
    return _l2_gradient(params)


# --------------------------------------------------------------------------- p-norm


def _check_p(p):
    v.check_in_range(p, name="p", low=1.0, high=math.inf)


@jax.jit
def _p_norm(params, p):
    return _scaled_norm(_leaves(params), p)


def p_norm(params, p):
    """The p-norm ``‖w‖_p = (|w_1|^p + |w_2|^p + … + |w_N|^p)^(1/p)``.

    The notes write ``(w_1^p + … + w_N^p)^(1/p)`` without the absolute values, which is wrong
    for odd ``p`` and negative weights (docs/errata.md). Computed as
    ``m·(Σ(|w_i|/m)^p)^(1/p)`` with ``m = max|w_i|``, so large ``p`` neither overflows nor underflows.

    Args:
      params: a pytree of float arrays.
      p: the order, a real number ``>= 1`` (may be traced).

    Returns:
      scalar of the leaves' common dtype.
    """
    _leaves(params)
    _check_p(p)
    return _p_norm(params, p)


@jax.jit
def _p_norm_gradient(params, p):
    leaves = _leaves(params)
    norm = _scaled_norm(leaves, p)
    safe = jnp.where(norm > 0, norm, jnp.ones_like(norm))

    def grad_leaf(w):
        n = safe.astype(w.dtype)
        # sign(w)·|w|^(p−1) / ‖w‖^(p−1) = sign(w)·(|w|/‖w‖)^(p−1): the ratio is ≤ 1, so no overflow.
        g = jnp.sign(w) * (jnp.abs(w) / n) ** (p - 1)
        return jnp.where(norm > 0, g, jnp.zeros_like(w))

    return jax.tree_util.tree_map(grad_leaf, params)


def p_norm_gradient(params, p):
    """``∂‖w‖_p/∂w_i = sign(w_i) · (|w_i| / ‖w‖_p)^(p−1)`` (0 at ``w = 0``; ``sign(w_i)`` for p = 1).

    Returns:
      pytree like ``params``.
    """
    _leaves(params)
    _check_p(p)
    return _p_norm_gradient(params, p)


# --------------------------------------------------------------------------- elastic net


@jax.jit
def _elastic_net(params, l1_ratio):
    leaves = _leaves(params)
    return l1_ratio * _total(leaves, jnp.abs) + (1 - l1_ratio) / 2 * _total(leaves, jnp.square)


def elastic_net(params, *, l1_ratio=0.5):
    """Elastic-net penalty ``ρ ‖w‖₁ + (1 − ρ)/2 ‖w‖₂²`` (scikit-learn's convention).

    A mix of the notes' Lasso (L1) and Ridge (squared L2) penalties. Symbols: ``ρ`` →
    ``l1_ratio``; ``ρ = 1`` is pure L1, ``ρ = 0`` is half the squared L2 norm.

    Args:
      params: a pytree of float arrays.
      l1_ratio: ``ρ`` in [0, 1] (keyword-only).

    Returns:
      scalar of the leaves' common dtype.
    """
    _leaves(params)
    v.check_in_range(l1_ratio, name="l1_ratio", low=0.0, high=1.0, high_inclusive=True)
    return _elastic_net(params, l1_ratio)


@jax.jit
def _elastic_net_subgradient(params, l1_ratio):
    return jax.tree_util.tree_map(lambda w: l1_ratio * jnp.sign(w) + (1 - l1_ratio) * w, params)


def elastic_net_subgradient(params, *, l1_ratio=0.5):
    """``ρ sign(w_i) + (1 − ρ) w_i`` (``sign(0) = 0``).

    Returns:
      pytree like ``params``.
    """
    _leaves(params)
    v.check_in_range(l1_ratio, name="l1_ratio", low=0.0, high=1.0, high_inclusive=True)
    return _elastic_net_subgradient(params, l1_ratio)


# --------------------------------------------------------------------------- proximal operator


@jax.jit
def _soft_threshold(x, threshold):
    def shrink(w):
        lam = jnp.asarray(threshold).astype(w.dtype)
        return jnp.sign(w) * jnp.maximum(jnp.abs(w) - lam, jnp.zeros_like(w))

    return jax.tree_util.tree_map(shrink, x)


def soft_threshold(x, threshold):
    """Soft-thresholding, the proximal operator of ``λ‖w‖₁``: ``S_λ(w) = sign(w) · max(|w| − λ, 0)``.

    ``S_λ(w) = argmin_u ½‖u − w‖² + λ‖u‖₁``: entries with ``|w| ≤ λ`` become exactly 0 (the
    sparsity of Lasso), the others shrink towards 0 by ``λ``. Symbols: ``w`` → ``x``,
    ``λ`` → ``threshold``.

    Args:
      x: an array or a pytree of float arrays.
      threshold: ``λ >= 0``, a scalar (or an array broadcastable against every leaf).

    Returns:
      same structure, shapes and dtypes as ``x``.
    """
    _leaves(x)
    if jnp.ndim(threshold) == 0:
        v.check_positive(threshold, name="threshold", allow_zero=True)
    elif v.is_concrete(threshold) and bool(jnp.any(jnp.asarray(threshold) < 0)):
        raise ValueError(f"threshold must be >= 0 everywhere, got a negative entry in threshold.shape={jnp.shape(threshold)}")
    return _soft_threshold(x, threshold)
