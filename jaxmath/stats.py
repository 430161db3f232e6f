"""The normal distribution and its maximum-likelihood fit (seed 004, "Distributions, Probabilities and Likelihoods").

``normal_pdf`` / ``normal_logpdf`` evaluate ``P(x | μ, σ)``; ``log_likelihood`` sums the
log-density over a sample; ``mle_normal`` is the closed-form maximum-likelihood estimate
(``σ`` with ``1/n``, not the notes' ``1/(n − 1)``; see docs/errata.md); and ``fit_normal``
finds the same estimate by climbing the log-likelihood with ``jax.grad`` inside ``lax.while_loop``,
with ``σ`` parametrised as ``log σ`` so it stays positive.

The densities are jitted functions whose distribution parameters ``mu`` and ``sigma`` are keyword-only and
traced; shapes are checked at trace time, values (``σ > 0``, finite data) only by the entry point
``fit_normal``.
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
    "fit_normal",
    "NormalFitInfo",
]

_LOG_2PI = math.log(2 * math.pi)


def _broadcast(x, mu, sigma):
    """Trace-time checks, then ``x``, ``mu``, ``sigma`` as arrays of one float dtype."""
    v.check_real(mu, name="mu")
    v.check_real(sigma, name="sigma")
    x = _float(x, name="x")
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
def normal_logpdf(x, *, mu, sigma):
    """Log-density of the normal distribution, ``ln P(x | μ, σ) = −½ ln(2π) − ln σ − (x − μ)²/(2σ²)``.

    Symbols: ``x`` → ``x``, ``μ`` → ``mu``, ``σ`` → ``sigma``. Computed in log space, so it
    stays finite far in the tails where the density itself underflows to 0.

    Args:
      x: array of any shape, float dtype.
      mu: mean ``μ``, scalar or array broadcastable against ``x`` (keyword-only, traced).
      sigma: standard deviation ``σ > 0``, scalar or broadcastable array (keyword-only, traced;
        ``σ ≤ 0`` gives NaN or ``-inf``, not an error).

    Returns:
      array of the broadcast shape, float dtype of the inputs.
    """
    x, mu, sigma = _broadcast(x, mu, sigma)
    z = (x - mu) / sigma
    return -0.5 * _LOG_2PI - jnp.log(sigma) - 0.5 * z * z


@jax.jit
def normal_pdf(x, *, mu, sigma):
    """The notes' ``P(x | μ, σ) = 1/√(2πσ²) · e^(−(x − μ)²/(2σ²))``.

    Symbols: ``x`` → ``x``, ``μ`` → ``mu``, ``σ`` → ``sigma``.

    Args:
      x: array of any shape, float dtype.
      mu: mean, scalar or broadcastable array (keyword-only, traced).
      sigma: standard deviation ``> 0``, scalar or broadcastable array (keyword-only, traced).

    Returns:
      array of the broadcast shape, entries ``>= 0``.
    """
    return jnp.exp(normal_logpdf(x, mu=mu, sigma=sigma))


@jax.jit
def log_likelihood(x, *, mu, sigma):
    """Log-likelihood of a sample under a normal distribution.

    The notes: ``ln L(μ, σ | x_1, …, x_n) = −(n/2) ln(2π) − n ln σ − (x_1 − μ)²/(2σ²) − … − (x_n − μ)²/(2σ²)``.
    Symbols: ``x_1 … x_n`` → ``x`` along axis 0, ``μ`` → ``mu``, ``σ`` → ``sigma``.

    Args:
      x: ``(n,)`` sample, or ``(n, d)`` for ``d`` independent columns.
      mu: scalar, or ``(d,)`` (keyword-only, traced).
      sigma: scalar ``> 0``, or ``(d,)`` (keyword-only, traced).

    Returns:
      scalar, or ``(d,)`` — one log-likelihood per column.
    """
    if jnp.ndim(x) == 0:
        raise ValueError("x must hold a sample along axis 0, got x.shape=()")
    return jnp.sum(normal_logpdf(x, mu=mu, sigma=sigma), axis=0)


@partial(jax.jit, static_argnames=("unbiased",))
def mle_normal(x, *, unbiased=False):
    """Closed-form maximum-likelihood estimate of a normal distribution's ``(μ, σ)``.

    Setting the notes' partial derivatives to zero gives ``μ = (x_1 + … + x_n)/n`` and
    ``σ = √( (1/n) Σ_i (x_i − μ)² )``. The notes' ``1/(n − 1)`` is the unbiased variance
    estimator, not the maximum-likelihood one (docs/errata.md); ``unbiased=True`` gives it.

    Args:
      x: ``(n,)`` sample (or ``(n, d)``: one estimate per column), ``n >= 1`` (``>= 2`` if unbiased).
      unbiased: divide by ``n − 1`` instead of ``n`` (keyword-only, static).

    Returns:
      ``(mu, sigma)``: scalars, or ``(d,)`` arrays, float dtype of ``x``.
    """
    x = _float(x, name="x")
    need = 2 if unbiased else 1
    if x.ndim == 0 or x.shape[0] < need:
        raise ValueError(f"x must hold at least {need} sample(s) along axis 0, got x.shape={x.shape}")
    n = x.shape[0]
    mu = jnp.mean(x, axis=0)
    ss = jnp.sum((x - mu) ** 2, axis=0)
    return mu, jnp.sqrt(ss / (n - 1 if unbiased else n))


class NormalFitInfo(NamedTuple):
    """What :func:`fit_normal` did."""

    converged: jax.Array
    """bool: the largest entry of the gradient fell to ``tol`` or below."""
    num_steps: jax.Array
    """int: ascent steps that ran."""
    loss_history: jax.Array
    """``(max_steps,)`` negative log-likelihood ``−ln L`` before each step; NaN after the last step run."""
    nonfinite: jax.Array
    """bool: the loop stopped at a non-finite log-likelihood (the params are the last finite ones)."""


@partial(jax.jit, static_argnames=("max_steps",))
def _fit_core(x, mu0, sigma0, learning_rate, tol, max_steps):
    n = x.shape[0]

    def mean_log_likelihood(theta):
        mu, log_sigma = theta
        # Mean log-likelihood per sample: the same maximiser as ln L, with a step size that
        # does not grow with n. Columns are independent, so their sum has each column's gradient.
        return jnp.sum(log_likelihood(x, mu=mu, sigma=jnp.exp(log_sigma))) / n

    value_and_grad = jax.value_and_grad(mean_log_likelihood)

    def cond(carry):
        i, _, _, _, converged, nonfinite = carry
        return (i < max_steps) & ~converged & ~nonfinite

    def body(carry):
        i, theta, last_finite, history, _, _ = carry
        value, grad = value_and_grad(theta)
        nonfinite = ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in (value, *grad)]))
        converged = jnp.all(jnp.stack([jnp.max(jnp.abs(g)) <= tol for g in grad]))
        go = ~nonfinite & ~converged
        # A step can overflow σ = e^(ln σ); the next evaluation then is not finite and the loop returns
        # the last θ whose log-likelihood was.
        last_finite = jax.tree_util.tree_map(lambda t, f: jnp.where(nonfinite, f, t), theta, last_finite)
        # Gradient ASCENT: the likelihood is maximised, so the step goes along +∇.
        theta = jax.tree_util.tree_map(lambda t, g: jnp.where(go, t + learning_rate * g, t), theta, grad)
        history = jnp.where(go, history.at[i].set(-value * n), history)
        return jnp.where(go, i + 1, i), theta, last_finite, history, converged, nonfinite

    theta0 = (mu0, jnp.log(sigma0))
    false = jnp.asarray(False)
    init = (jnp.asarray(0, jnp.int32), theta0, theta0, jnp.full((max_steps,), jnp.nan, x.dtype), false, false)
    steps, theta, last_finite, history, converged, nonfinite = lax.while_loop(cond, body, init)
    mu, log_sigma = jax.tree_util.tree_map(lambda t, f: jnp.where(nonfinite, f, t), theta, last_finite)
    return (mu, jnp.exp(log_sigma)), NormalFitInfo(converged, steps, history, nonfinite)


def fit_normal(x, *, learning_rate=0.1, max_steps=500, tol=None, params=None):
    """Fit ``(μ, σ)`` by gradient ascent on the log-likelihood, differentiated by ``jax.grad``.

    The notes' recipe: "shift the normal distribution ... to find the position where the
    likelihood is maximized", then change ``σ`` the same way. Each step is
    ``θ ← θ + η ∇_θ (1/n) ln L(μ, σ | x)`` with ``θ = (μ, ln σ)`` — ``σ = e^(ln σ)`` stays
    positive and the step in ``σ`` scales with ``σ``. Symbols: ``η`` → ``learning_rate``,
    ``x_1 … x_n`` → ``x``. Converges to :func:`mle_normal` (``1/n``) for data of moderate
    scale; standardise data whose spread is far from 1 or lower ``learning_rate``.

    This is a host entry point: it checks that ``x`` is finite (one reduction on the device).

    Args:
      x: ``(n,)`` sample (or ``(n, d)``, ``d`` independent fits), float dtype.
      learning_rate: ``η > 0`` (keyword-only, traced).
      max_steps: the most ascent steps, an int ``>= 1`` (keyword-only, static). One step is one
        gradient step on ``θ``.
      tol: stop when every entry of ``∇_θ (1/n) ln L`` is at most ``tol`` in absolute value
        (keyword-only; default ``100 ε`` of ``x``'s dtype, near the rounding floor of the gradient).
      params: starting ``(μ₀, σ₀)``, ``σ₀ > 0`` (keyword-only); default ``(0, 1)``.

    Returns:
      ``(params, info)``: ``params = (mu, sigma)`` (scalars, or ``(d,)`` arrays, dtype of ``x``) and
      :class:`NormalFitInfo` ``(converged, num_steps, loss_history, nonfinite)``.
    """
    x = _float(x, name="x")
    if x.ndim == 0 or x.shape[0] < 1:
        raise ValueError(f"x must hold at least 1 sample along axis 0, got x.shape={x.shape}")
    v.check_finite(x, name="x")
    v.check_positive(learning_rate, name="learning_rate")
    v.check_integer(max_steps, name="max_steps", minimum=1)
    if tol is None:
        tol = 100 * float(jnp.finfo(x.dtype).eps)
    v.check_positive(tol, name="tol", allow_zero=True)
    mu0, sigma0 = (0.0, 1.0) if params is None else params
    v.check_real(mu0, name="params[0] (mu)")
    v.check_real(sigma0, name="params[1] (sigma)")
    sigma0 = jnp.asarray(sigma0, x.dtype)
    if v.is_concrete(sigma0) and not bool(jnp.all(sigma0 > 0)):
        raise ValueError(f"params[1] (sigma) must be > 0, got {sigma0!r}")
    shape = x.shape[1:]
    mu0 = jnp.broadcast_to(jnp.asarray(mu0, x.dtype), shape)
    sigma0 = jnp.broadcast_to(sigma0, shape)
    return _fit_core(x, mu0, sigma0, jnp.asarray(learning_rate, x.dtype), jnp.asarray(tol, x.dtype), max_steps)
