"""Ridge regression: least squares with a squared-L2 penalty on the weights (seed 004, "Regression models").

The objective, exactly scikit-learn's ``Ridge(alpha)``:

    L(w, b) = Σ_j (x_j·w + b − y_j)² + α ‖w‖₂²

Symbols: x_j → row j of ``X`` (n, d), y_j → ``y[j]``, w → ``params["w"]``, b → ``params["b"]`` (never
penalised), α → ``alpha`` (the notes' λ). The same ``alpha`` as ``sklearn.linear_model.Ridge(alpha=alpha)``
gives the same coefficients. The gradient-descent :func:`fit` minimises L/(2N) (same minimiser, the notes'
1/(2N) scaling, so the learning rate means what it means in ``linear_regression.fit``):

    Q(w, b) = 1/(2N) Σ_j (x_j·w + b − y_j)² + α/(2N) ‖w‖₂²

:func:`fit_closed_form` centres X and y (b = ȳ − x̄·w) and solves min ‖Xc w − yc‖² + α‖w‖² as the
least-squares problem [Xc; √α I] w ≈ [yc; 0] by SVD (``solver="lstsq"``), or (Xcᵀ Xc + α I) w = Xcᵀ yc by
Cholesky (``solver="cholesky"``, fast for n ≫ d, needs α > 0 or full-rank X). No inverse is formed.
Both public functions validate then call jitted cores that work under ``jax.vmap``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve

from jaxmath import _validation as v
from jaxmath.models import _fitting
from jaxmath.models import linear_regression as _lr
from jaxmath.models._fitting import FitInfo

__all__ = ["FitInfo", "init", "predict", "loss", "fit_closed_form", "closed_form_core", "fit", "fit_core"]

init = _lr.init
predict = _lr.predict


def loss(params: dict, X: jax.Array, y: jax.Array, *, alpha=1.0, precision=None) -> jax.Array:
    """Q(w, b) = 1/(2N) Σ_j (x_j·w + b − y_j)² + α/(2N) ‖w‖₂²: a scalar (= scikit-learn's objective / 2N)."""
    n = X.shape[0]
    return _lr.loss(params, X, y, precision=precision) + 0.5 * alpha * jnp.sum(params["w"] ** 2) / n


@partial(jax.jit, static_argnames=("fit_intercept", "solver", "precision"))
def closed_form_core(X, y, alpha, *, fit_intercept: bool = True, solver: str = "lstsq", precision=None):
    """The jitted closed-form ridge solver, without input checks (``alpha`` may be traced: vmap over it)."""
    out_dtype = _fitting.float_dtype(X)
    dtype = _fitting.solve_dtype(out_dtype)
    X = X.astype(dtype)
    y = y.astype(dtype)
    Xc, yc, x_mean, y_mean = _lr._center(X, y, fit_intercept)
    d = X.shape[1]
    alpha = jnp.asarray(alpha, dtype)
    if solver == "lstsq":
        A = jnp.concatenate([Xc, jnp.sqrt(alpha) * jnp.eye(d, dtype=dtype)], axis=0)
        rhs = jnp.concatenate([yc, jnp.zeros((d,) + yc.shape[1:], dtype)], axis=0)
        w = jnp.linalg.lstsq(A, rhs)[0]
    else:
        G = jnp.matmul(Xc.T, Xc, precision=precision) + alpha * jnp.eye(d, dtype=dtype)
        w = cho_solve(cho_factor(G), jnp.matmul(Xc.T, yc, precision=precision))
    b = y_mean - jnp.dot(x_mean, w, precision=precision)
    return {"w": w.astype(out_dtype), "b": b.astype(out_dtype)}


def fit_closed_form(X, y, *, alpha=1.0, fit_intercept: bool = True, solver: str = "lstsq", precision=None) -> dict:
    """Ridge coefficients in closed form: argmin Σ_j (x_j·w + b − y_j)² + α ‖w‖₂².

    Args:
      X: (n, d) float array; y: (n,) or (n, k).
      alpha: α >= 0, scikit-learn's ``Ridge(alpha)``.
      fit_intercept: learn an unpenalised b; False fixes b = 0.
      solver: "lstsq" (SVD of the augmented system) or "cholesky" (normal equations, α > 0).
      precision: passed to every matmul.

    Returns:
      params {"w": (d,) or (d, k), "b": () or (k,)} in X's float dtype.
    """
    _fitting.check_xy(X, y)
    v.check_positive(alpha, name="alpha", allow_zero=True)
    v.check_choice(solver, ("lstsq", "cholesky"), name="solver")
    return closed_form_core(jnp.asarray(X), jnp.asarray(y), alpha, fit_intercept=bool(fit_intercept),
                            solver=solver, precision=precision)


@partial(jax.jit, static_argnames=("num_steps", "precision"))
def fit_core(params, X, y, alpha, learning_rate, tol, *, num_steps: int, precision=None):
    """The jitted gradient descent on Q, without input checks; ``params`` without "b" fit no intercept."""
    dtype = params["w"].dtype
    X = X.astype(dtype)
    y = y.astype(dtype)
    alpha = jnp.asarray(alpha, dtype)
    return _fitting.gradient_descent(
        lambda p: loss(p, X, y, alpha=alpha, precision=precision), params, learning_rate, tol,
        num_steps=num_steps, intercept_shape=y.shape[1:],
    )


def fit(X, y, *, alpha=1.0, learning_rate=0.01, num_steps: int = 1000, tol=0.0, fit_intercept: bool = True,
        params=None, precision=None):
    """Full-batch gradient descent on Q(w, b) in one compiled loop:

        w ← w − η (1/N) [Xᵀ(Xw + b − y) + α w],   b ← b − η (1/N) Σ_j (x_j·w + b − y_j)

    Args:
      X: (n, d); y: (n,) or (n, k); alpha: α >= 0 (scikit-learn's); learning_rate: η > 0;
      num_steps: static int; tol: stop when Q changes by less than this (0: run all steps);
      fit_intercept, params, precision: as in ``linear_regression.fit``.

    Returns:
      (params, info) with ``info.loss_history`` (num_steps,) the values of Q before each update.
    """
    _fitting.check_xy(X, y)
    v.check_positive(alpha, name="alpha", allow_zero=True)
    v.check_positive(learning_rate, name="learning_rate")
    v.check_positive(tol, name="tol", allow_zero=True)
    _fitting.check_max_iterations(num_steps, name="num_steps")
    X = jnp.asarray(X)
    y = jnp.asarray(y)
    if params is None:
        params = init(X.shape[1], num_outputs=None if y.ndim == 1 else y.shape[1], dtype=_fitting.float_dtype(X))
    if not fit_intercept:
        params = {"w": params["w"]}
    params, info = fit_core(params, X, y, alpha, learning_rate, tol, num_steps=num_steps, precision=precision)
    _fitting.warn_if_stopped(info, where="ridge.fit")
    return params, info
