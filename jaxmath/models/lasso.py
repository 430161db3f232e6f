"""Lasso: least squares with an L1 penalty, fitted by coordinate descent with the soft threshold.

The objective, exactly scikit-learn's ``Lasso(alpha)``:

    Q(w, b) = 1/(2N) Σ_j (x_j·w + b − y_j)² + α ‖w‖₁

Symbols: x_j → row j of ``x`` (n, d), y_j → ``y[j]``, N → n, w → ``params["w"]`` (d,), b → ``params["b"]``
(never penalised), α → ``alpha`` (the notes' λ). The same ``alpha`` as
``sklearn.linear_model.Lasso(alpha=alpha)`` gives the same coefficients. (Note the 1/(2N): ``ridge`` follows
scikit-learn's ``Ridge``, whose objective has no 1/(2N); the two ``alpha`` are *not* on the same scale.)

Coordinate descent (what scikit-learn runs): with x and y centred (b = ȳ − x̄·w) and r = y − x w, each sweep
sets, for k = 1..d,

    w_k ← S(x_kᵀ r + ‖x_k‖² w_k,  N α) / ‖x_k‖²,     S(z, τ) = sign(z) · max(|z| − τ, 0)

(S is ``jaxmath.regularizers.soft_threshold``; it yields exact zeros) and updates r. One step is one such
sweep over the d coordinates. Each coordinate is minimised exactly, so there is no learning rate and the raw
units need no standardising. Sweeps stop when the largest change of a coefficient is below ``tol`` times
the largest coefficient, or after ``max_steps``. :func:`fit` checks on the host and calls a private jitted
core; it works under ``jax.vmap`` (for instance over ``alpha`` for a whole regularisation path in one call).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as v
from jaxmath.models import _fitting
from jaxmath.models import linear_regression as _lr
from jaxmath.models._fitting import FitInfo
from jaxmath.regularizers import soft_threshold

__all__ = ["FitInfo", "init", "apply", "loss", "fit"]

apply = _lr.apply


def init(key, num_features: int, *, dtype=jnp.float32) -> dict:
    """Zero parameters {"w": (d,), "b": ()} in ``dtype``; ``key`` is unused (coordinate descent starts at 0)."""
    return _lr.init(key, num_features, dtype=dtype)


@partial(jax.jit, static_argnames=("precision",))
def loss(params: dict, x: jax.Array, y: jax.Array, *, alpha=1.0, precision=None) -> jax.Array:
    """Q(w, b) = 1/(2N) Σ_j (x_j·w + b − y_j)² + α ‖w‖₁: a scalar (scikit-learn's Lasso objective)."""
    return _lr.loss(params, x, y, precision=precision) + alpha * jnp.sum(jnp.abs(params["w"]))


@partial(jax.jit, static_argnames=("max_steps", "fit_intercept", "precision"))
def _fit_core(x, y, w0, alpha, tol, *, max_steps: int, fit_intercept: bool, precision):
    dtype = _fitting.float_dtype(x)
    x = x.astype(dtype)
    y = y.astype(dtype)
    n, d = x.shape
    xc, yc, x_mean, y_mean = _lr._center(x, y, fit_intercept)
    xcT = xc.T  # rows are the columns x_k, so each coordinate reads a contiguous row
    col_sq = jnp.sum(xc * xc, axis=0)
    threshold = jnp.asarray(alpha, dtype) * n
    tol = jnp.asarray(tol, dtype)
    w0 = w0.astype(dtype)

    def objective(w, r):
        return 0.5 * jnp.sum(r * r) / n + jnp.asarray(alpha, dtype) * jnp.sum(jnp.abs(w))

    def coordinate(k, carry):
        w, r, max_change = carry
        xk = xcT[k]
        wk = w[k]
        rho = jnp.dot(xk, r, precision=precision) + col_sq[k] * wk
        safe = jnp.where(col_sq[k] > 0, col_sq[k], 1)
        new = jnp.where(col_sq[k] > 0, soft_threshold(rho, threshold=threshold) / safe, 0)
        r = r - xk * (new - wk)
        return w.at[k].set(new), r, jnp.maximum(max_change, jnp.abs(new - wk))

    def cond(state):
        sweep, _, _, _, done = state
        return (sweep < max_steps) & ~done

    def body(state):
        sweep, w, r, hist, _ = state
        w, r, change = lax.fori_loop(0, d, coordinate, (w, r, jnp.zeros((), dtype)))
        hist = hist.at[sweep].set(objective(w, r))
        w_max = jnp.max(jnp.abs(w))
        done = (w_max == 0) | (change <= tol * w_max)
        return sweep + 1, w, r, hist, done

    r0 = yc - jnp.dot(xc, w0, precision=precision)
    hist = jnp.full((max_steps,), jnp.nan, dtype)
    sweep, w, r, hist, done = lax.while_loop(cond, body, (jnp.int32(0), w0, r0, hist, jnp.bool_(False)))
    b = y_mean - jnp.dot(x_mean, w, precision=precision)
    return {"w": w, "b": b}, FitInfo(done, sweep, hist, ~jnp.isfinite(objective(w, r)))


def fit(x, y, *, alpha=1.0, max_steps: int = 1000, tol=1e-6, fit_intercept: bool = True, params=None,
        precision=None):
    """Lasso coefficients by cyclic coordinate descent: argmin 1/(2N) Σ_j (x_j·w + b − y_j)² + α ‖w‖₁.

    Args:
      x: (n, d) float array; y: (n,) float array.
      alpha: α >= 0, scikit-learn's ``Lasso(alpha)`` (may be traced: vmap over it).
      max_steps: static int, the most sweeps over the d coordinates (one step = one sweep).
      tol: stop when max_k |Δw_k| <= tol · max_k |w_k| over a sweep.
      fit_intercept: learn an unpenalised b; False fixes b = 0.
      params: warm start {"w": (d,), ...} (only "w" is used: b follows from w in closed form).
      precision: passed to every matmul.

    Returns:
      (params, info): params {"w": (d,), "b": ()} with exact zeros where the penalty wins; ``info`` a
      :class:`FitInfo` with the objective after each sweep (``loss_history[i]`` after i + 1 sweeps),
      ``num_steps`` the sweeps run and ``converged``.
    """
    _fitting.check_xy(x, y, y_ndim=1)
    v.check_positive(alpha, name="alpha", allow_zero=True)
    v.check_positive(tol, name="tol", allow_zero=True)
    _fitting.check_max_steps(max_steps)
    x = jnp.asarray(x)
    dtype = _fitting.float_dtype(x)
    w0 = jnp.zeros(x.shape[1:], dtype) if params is None else jnp.asarray(params["w"], dtype)
    v.check_same_shape(w0, jnp.zeros(x.shape[1:]), names=("params['w']", "x.shape[1:]"))
    return _fit_core(x, jnp.asarray(y), w0, alpha, tol, max_steps=max_steps, fit_intercept=bool(fit_intercept),
                     precision=precision)
