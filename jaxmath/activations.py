"""Activation functions of the notes and their hand-derived derivatives.

Every activation ``f`` comes with ``f_derivative`` (elementwise d f / d z, written
by hand the way the notes derive it; the tests prove each one against
``jax.grad``), and ``softmax`` comes with its full Jacobian ``softmax_jacobian``.
All functions are pure, elementwise (softmax: along one axis), keep the input's
float dtype (float32, float64, bfloat16) and work under ``jit`` and ``vmap``.

Notation of the notes (seed 004): ``z`` is the weighted sum ("net"), ``y = f(z)``
the activation; for softmax ``a`` are the logits and ``p`` the probabilities.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as v

__all__ = [
    "sigmoid",
    "sigmoid_derivative",
    "relu",
    "relu_derivative",
    "leaky_relu",
    "leaky_relu_derivative",
    "tanh",
    "tanh_derivative",
    "identity",
    "identity_derivative",
    "softmax",
    "log_softmax",
    "softmax_jacobian",
    "log_softmax_jacobian",
    "get",
    "NAMES",
]


def _float(z, *, name="z"):
    """``z`` as a JAX array of a float dtype (integers promote to the default float, floats are kept)."""
    try:
        z = jnp.asarray(z)
    except (TypeError, ValueError):
        # None, strings and objects reach here untraced (a jitted function sees None as an empty pytree).
        raise TypeError(f"{name} must be a numeric array, got {type(z).__name__}: {z!r:.60}") from None
    if not jnp.issubdtype(z.dtype, jnp.inexact):
        z = z.astype(jnp.promote_types(z.dtype, jnp.float32))
    return z


def _check_axis(z, axis, *, name="z"):
    if z is None:
        _float(z, name=name)  # raises the TypeError naming the argument
    ndim = jnp.ndim(z)
    v.check_integer(axis, name="axis")
    if ndim == 0:
        raise ValueError(f"{name} must have at least one axis to normalise over, got {name}.shape=()")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for {name}.shape={tuple(jnp.shape(z))}")
    if jnp.shape(z)[axis] == 0:
        raise ValueError(f"{name} must have at least one entry along axis {axis} to normalise over, "
                         f"got {name}.shape={tuple(jnp.shape(z))}")


def _scalar(value, z, *, name):
    """A traced hyperparameter in ``z``'s dtype (refused at trace time unless it is a real number)."""
    v.check_real(value, name=name)
    return jnp.asarray(value).astype(z.dtype)


# Every public function below is itself jitted. Options that change the program (``axis``) are static;
# slopes (``beta``, ``negative_slope``) are traced, so new values reuse the compiled function and can be
# learned with ``jax.grad``. Checks read shapes, dtypes and static options only, so they run at trace time.

# --------------------------------------------------------------------------- sigmoid


@jax.jit
def sigmoid(z, *, beta=1.0):
    """The logistic sigmoid, computed without overflow.

    The notes write ``f(x) = 1 / (1 + e^(-βx))``. Symbols: ``x`` → ``z``, ``β`` → ``beta``.

    Args:
      z: array of any shape, float32/float64/bfloat16 (integers are promoted to float).
      beta: slope β, a real scalar (keyword-only, traced: new values do not recompile).

    Returns:
      ``y`` with the shape and dtype of ``z``, each entry in [0, 1]; finite for every finite ``z``.
    """
    z = _float(z)
    # lax.logistic is XLA's own stable sigmoid: it never exponentiates a large positive
    # number (finite for any |z|, bfloat16 too) and fuses into one elementwise op, where
    # the textbook where(βz >= 0, 1/(1+e), e/(1+e)) form costs two branches per step.
    return lax.logistic(_scalar(beta, z, name="beta") * z)


@jax.jit
def sigmoid_derivative(z, *, beta=1.0):
    """d y / d z of the sigmoid, the notes' ``y' = β · y (1 − y)``.

    Symbols: ``y = sigmoid(z, beta=beta)``, ``β`` → ``beta``; ``1 − y`` is computed as
    ``sigmoid(−z)`` so the tails do not round to zero.

    Args:
      z: array of any shape, float dtype.
      beta: slope β (keyword-only, traced).

    Returns:
      array with the shape and dtype of ``z``, entries in [0, β/4].
    """
    z = _float(z)
    beta = _scalar(beta, z, name="beta")
    # 1 - y computed as σ(-βz) keeps full relative precision in both tails,
    # where 1 - σ(βz) would round to 0. Near z = 0 the two rounded factors can multiply
    # to a hair above the exact bound y(1 - y) <= 1/4, so the product is clamped there.
    y_times_one_minus_y = jnp.minimum(lax.logistic(beta * z) * lax.logistic(-beta * z), jnp.asarray(0.25, z.dtype))
    return beta * y_times_one_minus_y


# --------------------------------------------------------------------------- relu family


@jax.jit
def relu(z):
    """The rectifier ``y = max(0, z)`` of the notes ("z for z greater than 0, otherwise 0").

    Args:
      z: array of any shape, float dtype.

    Returns:
      array with the shape and dtype of ``z``.
    """
    z = _float(z)
    # where(z > 0, ...) rather than maximum(z, 0): autodiff of this form gives 0 at
    # z = 0, the notes' convention, where jnp.maximum would split the tie as 0.5.
    return jnp.where(z > 0, z, jnp.zeros_like(z))


@jax.jit
def relu_derivative(z):
    """The notes' step: ``dy/dz = 0 for z ≤ 0, 1 for z > 0`` (0 at z = 0 exactly).

    Args:
      z: array of any shape, float dtype.

    Returns:
      array of 0s and 1s with the shape and dtype of ``z``.
    """
    z = _float(z)
    return (z > 0).astype(z.dtype)


@jax.jit
def leaky_relu(z, *, negative_slope=0.01):
    """Leaky rectifier ``y = z for z > 0, a·z for z ≤ 0``.

    Symbols: ``a`` → ``negative_slope``.

    Args:
      z: array of any shape, float dtype.
      negative_slope: slope ``a`` for non-positive inputs (keyword-only, traced).

    Returns:
      array with the shape and dtype of ``z``.
    """
    z = _float(z)
    return jnp.where(z > 0, z, _scalar(negative_slope, z, name="negative_slope") * z)


@jax.jit
def leaky_relu_derivative(z, *, negative_slope=0.01):
    """``dy/dz = 1 for z > 0, a for z ≤ 0`` (``a`` → ``negative_slope``).

    Args:
      z: array of any shape, float dtype.
      negative_slope: slope ``a`` (keyword-only, traced).

    Returns:
      array with the shape and dtype of ``z``.
    """
    z = _float(z)
    one = jnp.ones_like(z)
    return jnp.where(z > 0, one, _scalar(negative_slope, z, name="negative_slope") * one)


# --------------------------------------------------------------------------- tanh, identity


@jax.jit
def tanh(z):
    """Hyperbolic tangent ``y = (e^z − e^−z) / (e^z + e^−z)``, in (−1, 1).

    Args:
      z: array of any shape, float dtype.

    Returns:
      array with the shape and dtype of ``z``.
    """
    return jnp.tanh(_float(z))


@jax.jit
def tanh_derivative(z):
    """``dy/dz = 1 − y²`` with ``y = tanh(z)``.

    Args:
      z: array of any shape, float dtype.

    Returns:
      array with the shape and dtype of ``z``, entries in [0, 1].
    """
    y = jnp.tanh(_float(z))
    return 1 - y * y


@jax.jit
def identity(z):
    """The notes' output function ``f_out(a) = a``.

    Args:
      z: array of any shape.

    Returns:
      ``z`` as a float array (same shape).
    """
    return _float(z)


@jax.jit
def identity_derivative(z):
    """``d f_out / d a = 1``.

    Args:
      z: array of any shape.

    Returns:
      ones with the shape and float dtype of ``z``.
    """
    return jnp.ones_like(_float(z))


# --------------------------------------------------------------------------- softmax


def _shifted(z, axis):
    # The notes' stability trick: multiply numerator and denominator by C with
    # log C = −max(a). The shift does not change the value, so no gradient flows through it.
    return z - lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))


@partial(jax.jit, static_argnames="axis")
def softmax(z, *, axis=-1):
    """Max-shifted softmax ``p_i = e^(a_i) / Σ_k e^(a_k)``.

    The notes' stable form: ``p_i = e^(a_i + log C) / Σ_k e^(a_k + log C)`` with
    ``log C = −max(a)``. Symbols: ``a`` → ``z`` (the logits), ``k`` runs along ``axis``.

    Args:
      z: logits, array with at least one axis, float dtype.
      axis: the axis that is normalised (keyword-only, static, default the last).

    Returns:
      ``p`` with the shape and dtype of ``z``; entries in [0, 1] summing to 1 along ``axis``.
    """
    _check_axis(z, axis)
    e = jnp.exp(_shifted(_float(z), axis))
    return e / jnp.sum(e, axis=axis, keepdims=True)


@partial(jax.jit, static_argnames="axis")
def log_softmax(z, *, axis=-1):
    """``log p_i = a_i − log Σ_k e^(a_k)``, computed as ``(a_i − max a) − log Σ_k e^(a_k − max a)``.

    Symbols: ``a`` → ``z``, ``k`` runs along ``axis``.

    Args:
      z: logits, array with at least one axis, float dtype.
      axis: the axis that is normalised (keyword-only, static).

    Returns:
      array with the shape and dtype of ``z``, entries ≤ 0.
    """
    _check_axis(z, axis)
    s = _shifted(_float(z), axis)
    return s - jnp.log(jnp.sum(jnp.exp(s), axis=axis, keepdims=True))


@jax.jit
def softmax_jacobian(z):
    """Jacobian of the softmax over the last axis: ``∂p_i/∂a_j = p_i (δ_ij − p_j)``.

    The notes' cases: ``p_i (1 − p_j)`` for ``i = j`` and ``−p_j p_i`` for ``i ≠ j``.
    Symbols: ``a`` → ``z``, ``p = softmax(z)``, ``δ_ij`` the Kronecker delta.

    Args:
      z: logits of shape ``(..., n)``, float dtype.

    Returns:
      ``J`` of shape ``(..., n, n)`` with ``J[..., i, j] = ∂p_i/∂a_j``; each row sums to 0.
    """
    p = softmax(z, axis=-1)
    eye = jnp.eye(p.shape[-1], dtype=p.dtype)
    return p[..., :, None] * (eye - p[..., None, :])


@jax.jit
def log_softmax_jacobian(z):
    """Jacobian of the log-softmax over the last axis: ``∂ log p_i / ∂a_j = δ_ij − p_j``.

    From ``log p_i = a_i − log Σ_k e^(a_k)``: the first term gives ``δ_ij``, the log-sum-exp
    gives ``e^(a_j) / Σ_k e^(a_k) = p_j``. It is :func:`softmax_jacobian` divided row by row by
    ``p_i``, without the division (no 0/0 where ``p_i`` underflows).
    Symbols: ``a`` → ``z``, ``p = softmax(z)``, ``δ_ij`` the Kronecker delta.

    Args:
      z: logits of shape ``(..., n)``, float dtype.

    Returns:
      ``J`` of shape ``(..., n, n)`` with ``J[..., i, j] = ∂ log p_i/∂a_j``; each row sums to 1 − 1 = 0.
    """
    p = softmax(z, axis=-1)
    eye = jnp.eye(p.shape[-1], dtype=p.dtype)
    return eye - p[..., None, :]


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (sigmoid, sigmoid_derivative),
    "relu": (relu, relu_derivative),
    "leaky_relu": (leaky_relu, leaky_relu_derivative),
    "tanh": (tanh, tanh_derivative),
    "identity": (identity, identity_derivative),
}

# The one list of hidden-activation names: the MLP, the CLI and the notebooks all read it from here.
NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get(name: str) -> tuple[Callable, Callable]:
    """The pair ``(function, derivative)`` for an activation name.

    Args:
      name: one of ``"sigmoid"``, ``"relu"``, ``"leaky_relu"``, ``"tanh"``, ``"identity"``.

    Returns:
      ``(f, f_derivative)``, both elementwise ``z -> array`` of ``z``'s shape.
    """
    v.check_choice(name, NAMES, name="name")
    return _REGISTRY[name]
