"""Norm penalties of the notes over whole parameter pytrees, their (sub)gradients, and soft-thresholding.

A parameter pytree (a list of ``(W, b)`` tuples, a dict, a single array) is treated as
one long vector ``w`` made of all its leaves: ``l1(params) = Σ_i |w_i|`` runs over every
entry of every leaf. Penalties return a scalar of the leaves' common float dtype; the
(sub)gradients return a pytree with the structure, shapes and dtypes of ``params``.

Every public function is itself jitted; the scalar hyperparameters (``p``, ``l1_ratio``, ``threshold``) are
traced, so new values do not recompile. The dtype checks run at trace time; the domains of values
(``p >= 1``, ``0 <= l1_ratio <= 1``, ``threshold >= 0``) are stated in the docstrings and left to the callers'
entry points.

Notation of the notes (seed 004, "Norms L1, L2, P-Norm"): ``w_1 … w_N`` the weights.
"""

from __future__ import annotations

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


def _scalar(value, leaves, *, name):
    v.check_real(value, name=name)
    return jnp.asarray(value).astype(_dtype(leaves))


# --------------------------------------------------------------------------- L1


@jax.jit
def l1(params):
    """The 1-norm ``‖w‖₁ = |w_1| + |w_2| + … + |w_N|``.

    Symbols: ``w`` → every entry of every leaf of ``params``.

    Args:
      params: a pytree of float arrays.

    Returns:
      scalar of the leaves' common dtype.
    """
    return _total(_leaves(params), jnp.abs)


@jax.jit
def l1_subgradient(params):
    """``∂‖w‖₁/∂w_i = sign(w_i)`` (0 at ``w_i = 0``, the subgradient that keeps zeros at zero).

    Args:
      params: a pytree of float arrays.

    Returns:
      pytree like ``params``.
    """
    _leaves(params)
    return jax.tree_util.tree_map(jnp.sign, params)


# --------------------------------------------------------------------------- L2 and squared L2


@jax.jit
def squared_l2(params):
    """The squared 2-norm ``‖w‖₂² = w_1² + w_2² + … + w_N²`` (the ridge penalty).

    Args:
      params: a pytree of float arrays.

    Returns:
      scalar of the leaves' common dtype.
    """
    return _total(_leaves(params), jnp.square)


@jax.jit
def squared_l2_gradient(params):
    """``∂‖w‖₂²/∂w_i = 2 w_i``.

    Args:
      params: a pytree of float arrays.

    Returns:
      pytree like ``params``.
    """
    _leaves(params)
    return jax.tree_util.tree_map(lambda w: 2 * w, params)


def _scaled_norm(leaves, p):
    """(Σ|w|^p)^(1/p) as m·(Σ(|w|/m)^p)^(1/p), m = max|w|: no overflow or underflow in the powers.

    Safe at w = 0 for autodiff too (double ``where``): the value is 0 and the gradient 0.
    """
    m = _max_abs(leaves)
    nonzero = m != 0  # not m > 0: a NaN weight must give a NaN norm, not 0
    safe_m = jnp.where(nonzero, m, jnp.ones_like(m))
    s = _total(leaves, lambda w: jnp.abs(w / safe_m) ** p)
    safe_s = jnp.where(nonzero, s, jnp.ones_like(s))
    return jnp.where(nonzero, safe_m * safe_s ** (1 / p), jnp.zeros_like(m))


def _norm_gradient(params, leaves, p):
    """sign(w)·|w|^(p−1) / ‖w‖^(p−1) = sign(w)·(|w|/‖w‖)^(p−1): the ratio is ≤ 1, so no overflow."""
    norm = _scaled_norm(leaves, p)
    zero = norm == 0
    safe = jnp.where(zero, jnp.ones_like(norm), norm)

    def grad_leaf(w):
        g = jnp.sign(w) * (jnp.abs(w) / safe.astype(w.dtype)) ** (p - 1)
        return jnp.where(zero, jnp.zeros_like(w), g)

    return jax.tree_util.tree_map(grad_leaf, params)


@jax.jit
def l2(params):
    """The 2-norm ``‖w‖₂ = (w_1² + w_2² + … + w_N²)^(1/2)``, computed without overflow.

    Args:
      params: a pytree of float arrays.

    Returns:
      scalar of the leaves' common dtype.
    """
    return _scaled_norm(_leaves(params), 2)


@jax.jit
def l2_gradient(params):
    """``∂‖w‖₂/∂w_i = w_i / ‖w‖₂`` (0 at ``w = 0``, where the norm has a kink).

    Args:
      params: a pytree of float arrays.

    Returns:
      pytree like ``params``.
    """
    return _norm_gradient(params, _leaves(params), 2)


# --------------------------------------------------------------------------- p-norm


@jax.jit
def p_norm(params, *, p):
    """The p-norm ``‖w‖_p = (|w_1|^p + |w_2|^p + … + |w_N|^p)^(1/p)``.

    The notes write ``(w_1^p + … + w_N^p)^(1/p)`` without the absolute values, which is wrong
    for odd ``p`` and negative weights (docs/errata.md). Computed as
    ``m·(Σ(|w_i|/m)^p)^(1/p)`` with ``m = max|w_i|``, so large ``p`` neither overflows nor underflows.

    Args:
      params: a pytree of float arrays.
      p: the order, a real number ``>= 1`` (keyword-only, traced; below 1 it is not a norm and
        that domain is not checked here).

    Returns:
      scalar of the leaves' common dtype.
    """
    leaves = _leaves(params)
    return _scaled_norm(leaves, _scalar(p, leaves, name="p"))


@jax.jit
def p_norm_gradient(params, *, p):
    """``∂‖w‖_p/∂w_i = sign(w_i) · (|w_i| / ‖w‖_p)^(p−1)`` (0 at ``w = 0``; ``sign(w_i)`` for p = 1).

    Args:
      params: a pytree of float arrays.
      p: the order, as for :func:`p_norm` (keyword-only, traced).

    Returns:
      pytree like ``params``.
    """
    leaves = _leaves(params)
    return _norm_gradient(params, leaves, _scalar(p, leaves, name="p"))


# --------------------------------------------------------------------------- elastic net


@jax.jit
def elastic_net(params, *, l1_ratio=0.5):
    """Elastic-net penalty ``ρ ‖w‖₁ + (1 − ρ)/2 ‖w‖₂²`` (scikit-learn's convention).

    A mix of the notes' Lasso (L1) and Ridge (squared L2) penalties. Symbols: ``ρ`` →
    ``l1_ratio``; ``ρ = 1`` is pure L1, ``ρ = 0`` is half the squared L2 norm.

    Args:
      params: a pytree of float arrays.
      l1_ratio: ``ρ`` in [0, 1] (keyword-only, traced).

    Returns:
      scalar of the leaves' common dtype.
    """
    leaves = _leaves(params)
    rho = _scalar(l1_ratio, leaves, name="l1_ratio")
    return rho * _total(leaves, jnp.abs) + (1 - rho) / 2 * _total(leaves, jnp.square)


@jax.jit
def elastic_net_subgradient(params, *, l1_ratio=0.5):
    """``ρ sign(w_i) + (1 − ρ) w_i`` (``sign(0) = 0``).

    Args:
      params: a pytree of float arrays.
      l1_ratio: ``ρ`` in [0, 1] (keyword-only, traced).

    Returns:
      pytree like ``params``.
    """
    rho = _scalar(l1_ratio, _leaves(params), name="l1_ratio")
    return jax.tree_util.tree_map(lambda w: (rho * jnp.sign(w) + (1 - rho) * w).astype(w.dtype), params)


# --------------------------------------------------------------------------- proximal operator


@jax.jit
def soft_threshold(x, *, threshold):
    """Soft-thresholding, the proximal operator of ``λ‖w‖₁``: ``S_λ(w) = sign(w) · max(|w| − λ, 0)``.

    ``S_λ(w) = argmin_u ½‖u − w‖² + λ‖u‖₁``: entries with ``|w| ≤ λ`` become exactly 0 (the
    sparsity of Lasso), the others shrink towards 0 by ``λ``. Symbols: ``w`` → ``x``,
    ``λ`` → ``threshold``.

    Args:
      x: an array or a pytree of float arrays.
      threshold: ``λ >= 0``, a scalar (or an array broadcastable against every leaf); keyword-only, traced.

    Returns:
      same structure, shapes and dtypes as ``x``.
    """
    _leaves(x)
    v.check_real(threshold, name="threshold")

    def shrink(w):
        lam = jnp.asarray(threshold).astype(w.dtype)
        return jnp.sign(w) * jnp.maximum(jnp.abs(w) - lam, jnp.zeros_like(w))

    return jax.tree_util.tree_map(shrink, x)
