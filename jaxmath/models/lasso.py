"""Lasso: least squares with an L1 penalty, fitted by coordinate descent with the soft threshold.

The objective, exactly scikit-learn's ``Lasso(alpha)``:

    Q(w, b) = 1/(2N) Σ_j (x_j·w + b − y_j)² + α ‖w‖₁

Symbols: x_j → row j of ``X`` (n, d), y_j → ``y[j]``, N → n, w → ``params["w"]`` (d,), b → ``params["b"]``
(never penalised), α → ``alpha`` (the notes' λ). The same ``alpha`` as
``sklearn.linear_model.Lasso(alpha=alpha)`` gives the same coefficients. (Note the 1/(2N): ``ridge`` follows
scikit-learn's ``Ridge``, whose objective has no 1/(2N); the two ``alpha`` are *not* on the same scale.)

Coordinate descent (what scikit-learn runs): with X and y centred (b = ȳ − x̄·w) and r = y − X w, each sweep
sets, for k = 1..d,

    w_k ← S(x_kᵀ r + ‖x_k‖² w_k,  N α) / ‖x_k‖²,     S(z, τ) = sign(z) · max(|z| − τ, 0)

(S is ``jaxmath.regularizers.soft_threshold``; it yields exact zeros) and updates r. Sweeps stop when the
largest change of a coefficient is below ``tol`` times the largest coefficient, or after ``max_sweeps``.
:func:`fit` validates on the host and calls the jitted :func:`fit_core`; both work under ``jax.vmap``
(for instance over ``alpha`` for a whole regularisation path in one call).
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

__all__ = ["FitInfo", "init", "predict", "loss", "fit", "fit_core"]

predict = _lr.predict


def init(num_features: int, *, dtype=jnp.float32) -> dict:
    """Zero parameters {"w": (d,), "b": ()} in ``dtype``."""
    return _lr.init(num_features, dtype=dtype)


def loss(params: dict, X: jax.Array, y: jax.Array, *, alpha=1.0, precision=None) -> jax.Array:
    """Q(w, b) = 1/(2N) Σ_j (x_j·w + b − y_j)² + α ‖w‖₁: a scalar (scikit-learn's Lasso objective)."""
    return _lr.loss(params, X, y, precision=precision) + alpha * jnp.sum(jnp.abs(params["w"]))


@partial(jax.jit, static_argnames=("max_sweeps", "fit_intercept", "precision"))
def fit_core(X, y, alpha, tol, w0, *, max_sweeps: int, fit_intercept: bool = True, precision=None):
    """The jitted coordinate descent, without input checks. ``w0``: (d,) starting weights (warm start)."""
    dtype = _fitting.float_dtype(X)
    X = X.astype(dtype)
    y = y.astype(dtype)
    n, d = X.shape
    Xc, yc, x_mean, y_mean = _lr._center(X, y, fit_intercept)
    XcT = Xc.T  # rows are the columns x_k, so each coordinate reads a contiguous row
    col_sq = jnp.sum(Xc * Xc, axis=0)
    threshold = jnp.asarray(alpha, dtype) * n
    tol = jnp.asarray(tol, dtype)
    w0 = w0.astype(dtype)

    def objective(w, r):
        return 0.5 * jnp.sum(r * r) / n + jnp.asarray(alpha, dtype) * jnp.sum(jnp.abs(w))

    def coordinate(k, carry):
        w, r, max_change = carry
        xk = XcT[k]
        wk = w[k]
        rho = jnp.dot(xk, r, precision=precision) + col_sq[k] * wk
        safe = jnp.where(col_sq[k] > 0, col_sq[k], 1)
        new = jnp.where(col_sq[k] > 0, soft_threshold(rho, threshold) / safe, 0)
        r = r - xk * (new - wk)
        return w.at[k].set(new), r, jnp.maximum(max_change, jnp.abs(new - wk))

    def cond(state):
        sweep, _, _, _, done = state
        return (sweep < max_sweeps) & ~done

    def body(state):
        sweep, w, r, hist, _ = state
        w, r, change = lax.fori_loop(0, d, coordinate, (w, r, jnp.zeros((), dtype)))
        hist = hist.at[sweep].set(objective(w, r))
        w_max = jnp.max(jnp.abs(w))
        done = (w_max == 0) | (change <= tol * w_max)
        return sweep + 1, w, r, hist, done

    r0 = yc - jnp.dot(Xc, w0, precision=precision)
    hist = jnp.full((max_sweeps,), jnp.nan, dtype)
    sweep, w, r, hist, done = lax.while_loop(cond, body, (jnp.int32(0), w0, r0, hist, jnp.bool_(False)))
    b = y_mean - jnp.dot(x_mean, w, precision=precision)
    return {"w": w, "b": b}, FitInfo(hist, sweep, done, jnp.bool_(False))


def fit(X, y, *, alpha=1.0, max_sweeps: int = 1000, tol=1e-6, fit_intercept: bool = True, params=None,
        precision=None):
    """Lasso coefficients by cyclic coordinate descent: argmin 1/(2N) Σ_j (x_j·w + b − y_j)² + α ‖w‖₁.

    Args:
      X: (n, d) float array; y: (n,) float array.
      alpha: α >= 0, scikit-learn's ``Lasso(alpha)``.
      max_sweeps: static int, the most passes over the d coordinates.
      tol: stop when max_k |Δw_k| <= tol · max_k |w_k| over a sweep.
      fit_intercept: learn an unpenalised b; False fixes b = 0.
      params: optional warm start {"w": (d,), ...} (only "w" is used).
      precision: passed to every matmul.

    Returns:
      (params, info): params {"w": (d,), "b": ()} with exact zeros where the penalty wins; ``info`` a
      :class:`FitInfo` with the objective after each sweep and ``converged``.
    """
    _fitting.check_xy(X, y, y_ndim=1)
    v.check_positive(alpha, name="alpha", allow_zero=True)
    v.check_positive(tol, name="tol", allow_zero=True)
    _fitting.check_max_iterations(max_sweeps, name="max_sweeps")
    X = jnp.asarray(X)
    w0 = init(X.shape[1], dtype=_fitting.float_dtype(X))["w"] if params is None else jnp.asarray(params["w"])
    v.check_same_shape(w0, jnp.zeros(X.shape[1:]), names=("params['w']", "X.shape[1:]"))
    return fit_core(X, jnp.asarray(y), alpha, tol, w0, max_sweeps=max_sweeps, fit_intercept=bool(fit_intercept),
                    precision=precision)
