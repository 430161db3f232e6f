"""The normal distribution and its maximum-likelihood fit (seed 004, "Distributions, Probabilities and Likelihoods").

``normal_pdf`` / ``normal_logpdf`` evaluate ``P(x | μ, σ)``; ``log_likelihood`` sums the
log-density over a sample; ``mle_normal`` is the closed-form maximum-likelihood estimate
(``σ`` with ``1/n``, not the notes' ``1/(n − 1)``; see docs/errata.md); and
``fit_normal_gradient_ascent`` finds the same estimate by climbing the log-likelihood with
``jax.grad`` inside ``lax.scan``, with ``σ`` parametrised as ``log σ`` so it stays positive.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as v
from jaxmath.activations import _float

__all__ = [
    "normal_pdf",
    "normal_logpdf",
    "log_likelihood",
    "mle_normal",
    "fit_normal_gradient_ascent",
    "NormalFit",
]

_LOG_2PI = math.log(2 * math.pi)


def _check_sigma(sigma):
    if jnp.ndim(sigma) == 0:
        v.check_positive(sigma, name="sigma")
    elif v.is_concrete(sigma) and bool(jnp.any(jnp.asarray(sigma) <= 0)):
        raise ValueError(f"sigma must be > 0 everywhere, got a non-positive entry in sigma.shape={jnp.shape(sigma)}")


def _broadcast(x, mu, sigma):
    x = _float(x)
    mu = jnp.asarray(mu)
    sigma = jnp.asarray(sigma)
    dtype = jnp.result_type(x, mu, sigma)
    try:
        jnp.broadcast_shapes(x.shape, mu.shape, sigma.shape)
    except ValueError:
        raise ValueError(
            f"x, mu and sigma must broadcast together, got x.shape={x.shape}, mu.shape={mu.shape}, sigma.shape={sigma.shape}"
        ) from None
    return x.astype(dtype), mu.astype(dtype), sigma.astype(dtype)


@jax.jit
def _normal_logpdf(x, mu, sigma):
    z = (x - mu) / sigma
    return -0.5 * _LOG_2PI - jnp.log(sigma) - 0.5 * z * z


def normal_logpdf(x, mu=0.0, sigma=1.0):
    """Log-density of the normal distribution, ``ln P(x | μ, σ) = −½ ln(2π) − ln σ − (x − μ)²/(2σ²)``.

    Symbols: ``x`` → ``x``, ``μ`` → ``mu``, ``σ`` → ``sigma``. Computed in log space, so it
    stays finite far in the tails where the density itself underflows to 0.

    Args:
      x: array of any shape, float dtype.
      mu: mean ``μ``, scalar or array broadcastable against ``x``.
      sigma: standard deviation ``σ > 0``, scalar or broadcastable array.

    Returns:
      array of the broadcast shape, float dtype of the inputs.
    """
    _check_sigma(sigma)
    return _normal_logpdf(*_broadcast(x, mu, sigma))


@jax.jit
def _normal_pdf(x, mu, sigma):
    return jnp.exp(_normal_logpdf(x, mu, sigma))


def normal_pdf(x, mu=0.0, sigma=1.0):
    """The notes' ``P(x | μ, σ) = 1/√(2πσ²) · e^(−(x − μ)²/(2σ²))``.

    Symbols: ``x`` → ``x``, ``μ`` → ``mu``, ``σ`` → ``sigma``.

    Args:
      x: array of any shape, float dtype.
      mu: mean, scalar or broadcastable array.
      sigma: standard deviation ``> 0``, scalar or broadcastable array.

    Returns:
      array of the broadcast shape, entries ``>= 0``.
    """
    _check_sigma(sigma)
    return _normal_pdf(*_broadcast(x, mu, sigma))


@jax.jit
def _log_likelihood(x, mu, sigma):
    return jnp.sum(_normal_logpdf(x, mu, sigma), axis=0)


def log_likelihood(x, mu, sigma):
    """Log-likelihood of a sample under a normal distribution.

    The notes: ``ln L(μ, σ | x_1, …, x_n) = −(n/2) ln(2π) − n ln σ − (x_1 − μ)²/(2σ²) − … − (x_n − μ)²/(2σ²)``.
    Symbols: ``x_1 … x_n`` → ``x`` along axis 0, ``μ`` → ``mu``, ``σ`` → ``sigma``.

    Args:
      x: ``(n,)`` sample, or ``(n, d)`` for ``d`` independent columns.
      mu: scalar, or ``(d,)``.
      sigma: scalar ``> 0``, or ``(d,)``.

    Returns:
      scalar, or ``(d,)`` — one log-likelihood per column.
    """
    _check_sigma(sigma)
    if jnp.ndim(x) == 0:
        raise ValueError("x must hold a sample along axis 0, got x.shape=()")
    return _log_likelihood(*_broadcast(x, mu, sigma))


@partial(jax.jit, static_argnames=("unbiased",))
def _mle_normal(x, unbiased):
    n = x.shape[0]
    mu = jnp.mean(x, axis=0)
    ss = jnp.sum((x - mu) ** 2, axis=0)
    return mu, jnp.sqrt(ss / (n - 1 if unbiased else n))


def mle_normal(x, *, unbiased=False):
    """Closed-form maximum-likelihood estimate of a normal distribution's ``(μ, σ)``.

    Setting the notes' partial derivatives to zero gives ``μ = (x_1 + … + x_n)/n`` and
    ``σ = √( (1/n) Σ_i (x_i − μ)² )``. The notes' ``1/(n − 1)`` is the unbiased variance
    estimator, not the maximum-likelihood one (docs/errata.md); ``unbiased=True`` gives it.

    Args:
      x: ``(n,)`` sample (or ``(n, d)``: one estimate per column), ``n >= 1`` (``>= 2`` if unbiased).
      unbiased: divide by ``n − 1`` instead of ``n`` (keyword-only).

    Returns:
      ``(mu, sigma)``: scalars, or ``(d,)`` arrays, float dtype of ``x``.
    """
    x = _float(x)
    if x.ndim == 0 or x.shape[0] < (2 if unbiased else 1):
        need = 2 if unbiased else 1
        raise ValueError(f"x must hold at least {need} sample(s) along axis 0, got x.shape={x.shape}")
    return _mle_normal(x, bool(unbiased))


class NormalFit(NamedTuple):
    """Result of :func:`fit_normal_gradient_ascent`."""

    mu: jax.Array
    """fitted mean ``μ``."""
    sigma: jax.Array
    """fitted standard deviation ``σ``."""
    log_likelihoods: jax.Array
    """``(num_steps,)`` log-likelihood before each step (the climb, for plotting)."""


@partial(jax.jit, static_argnames=("num_steps",))
def _fit(x, mu0, sigma0, learning_rate, num_steps):
    n = x.shape[0]

    def objective(theta):
        mu, log_sigma = theta
        # Mean log-likelihood per sample: the same maximiser as ln L, with a step size that
        # does not grow with n.
        return jnp.sum(_normal_logpdf(x, mu, jnp.exp(log_sigma)), axis=0) / n

    value_and_grad = jax.value_and_grad(lambda theta: jnp.sum(objective(theta)))

    def step(theta, _):
        value, grad = value_and_grad(theta)
        # Gradient ASCENT: the likelihood is maximised, so the step goes along +∇.
        theta = jax.tree_util.tree_map(lambda t, g: t + learning_rate * g, theta, grad)
        return theta, value * n

    theta0 = (mu0, jnp.log(sigma0))
    (mu, log_sigma), history = lax.scan(step, theta0, None, length=num_steps)
    return mu, jnp.exp(log_sigma), history


def fit_normal_gradient_ascent(x, *, learning_rate=0.1, num_steps=500, init=(0.0, 1.0)):
    """Fit ``(μ, σ)`` by gradient ascent on the log-likelihood, differentiated by ``jax.grad``.

    The notes' recipe: "shift the normal distribution ... to find the position where the
    likelihood is maximized", then change ``σ`` the same way. Each step is
    ``θ ← θ + η ∇_θ (1/n) ln L(μ, σ | x)`` with ``θ = (μ, ln σ)`` — ``σ = e^(ln σ)`` stays
    positive and the step in ``σ`` scales with ``σ``. Symbols: ``η`` → ``learning_rate``,
    ``x_1 … x_n`` → ``x``. Converges to :func:`mle_normal` (``1/n``) for data of moderate
    scale; standardise data whose spread is far from 1 or lower ``learning_rate``.

    Args:
      x: ``(n,)`` sample (or ``(n, d)``, ``d`` independent fits), float dtype.
      learning_rate: ``η > 0`` (keyword-only).
      num_steps: number of ascent steps, an int ``>= 1`` (keyword-only, static).
      init: starting ``(μ₀, σ₀)``, ``σ₀ > 0`` (keyword-only).

    Returns:
      :class:`NormalFit` ``(mu, sigma, log_likelihoods)``; ``log_likelihoods`` has a leading
      axis of length ``num_steps``.
    """
    x = _float(x)
    if x.ndim == 0 or x.shape[0] < 1:
        raise ValueError(f"x must hold at least 1 sample along axis 0, got x.shape={x.shape}")
    v.check_finite(x, name="x")
    v.check_positive(learning_rate, name="learning_rate")
    v.check_integer(num_steps, name="num_steps", minimum=1)
    mu0, sigma0 = init
    _check_sigma(sigma0)
    shape = x.shape[1:]
    mu0 = jnp.broadcast_to(jnp.asarray(mu0, x.dtype), shape)
    sigma0 = jnp.broadcast_to(jnp.asarray(sigma0, x.dtype), shape)
    return NormalFit(*_fit(x, mu0, sigma0, learning_rate, num_steps))
