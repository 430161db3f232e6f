"""Ridge regression: least squares with a squared-L2 penalty on the weights (seed 004, "Regression models").

The objective, exactly scikit-learn's ``Ridge(alpha)``:

    L(w, b) = Σ_j (x_j·w + b − y_j)² + α ‖w‖₂²

Symbols: x_j → row j of ``x`` (n, d), y_j → ``y[j]``, w → ``params["w"]``, b → ``params["b"]`` (never
penalised), α → ``alpha`` (the notes' λ). The same ``alpha`` as ``sklearn.linear_model.Ridge(alpha=alpha)``
gives the same coefficients. The gradient-descent :func:`fit` minimises L/(2N) (same minimiser, the notes'
1/(2N) scaling, so the learning rate means what it means in ``linear_regression.fit``):

    Q(w, b) = 1/(2N) Σ_j (x_j·w + b − y_j)² + α/(2N) ‖w‖₂²

:func:`fit_closed_form` centres x and y (b = ȳ − x̄·w) and solves min ‖xc w − yc‖² + α‖w‖² as the
least-squares problem [xc; √α I] w ≈ [yc; 0] by SVD (``solver="lstsq"``), or (xcᵀ xc + α I) w = xcᵀ yc by
Cholesky (``solver="cholesky"``, fast for n ≫ d, needs α > 0 or full-rank x). No inverse is formed.
:func:`fit` standardises the features inside the descent only as a preconditioner: the penalty stays on the
raw-unit weights (α Σ_k (w̃_k / s_k)² in the standardised coordinates), so it finds the same minimiser as
the closed form and scikit-learn. Both fits check on the host, then call private jitted cores that work
under ``jax.vmap`` (over ``alpha`` too).
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

__all__ = ["FitInfo", "init", "apply", "loss", "fit_closed_form", "fit"]

init = _lr.init
apply = _lr.apply


@partial(jax.jit, static_argnames=("precision",))
def loss(params: dict, x: jax.Array, y: jax.Array, *, alpha=1.0, precision=None) -> jax.Array:
    """Q(w, b) = 1/(2N) Σ_j (x_j·w + b − y_j)² + α/(2N) ‖w‖₂²: a scalar (= scikit-learn's objective / 2N)."""
    n = x.shape[0]
    return _lr.loss(params, x, y, precision=precision) + 0.5 * alpha * jnp.sum(params["w"] ** 2) / n


@partial(jax.jit, static_argnames=("fit_intercept", "solver", "precision"))
def _closed_form(x, y, alpha, *, fit_intercept: bool, solver: str, precision):
    out_dtype = _fitting.float_dtype(x)
    dtype = _fitting.solve_dtype(out_dtype)
    x = x.astype(dtype)
    y = y.astype(dtype)
    xc, yc, x_mean, y_mean = _lr._center(x, y, fit_intercept)
    d = x.shape[1]
    alpha = jnp.asarray(alpha, dtype)
    if solver == "lstsq":
        A = jnp.concatenate([xc, jnp.sqrt(alpha) * jnp.eye(d, dtype=dtype)], axis=0)
        rhs = jnp.concatenate([yc, jnp.zeros((d,) + yc.shape[1:], dtype)], axis=0)
        w = jnp.linalg.lstsq(A, rhs)[0]
    else:
        G = jnp.matmul(xc.T, xc, precision=precision) + alpha * jnp.eye(d, dtype=dtype)
        w = cho_solve(cho_factor(G), jnp.matmul(xc.T, yc, precision=precision))
    b = y_mean - jnp.dot(x_mean, w, precision=precision)
    params = {"w": w, "b": b}
    info = _fitting.closed_form_info(loss(params, x, y, alpha=alpha, precision=precision).astype(out_dtype))
    return jax.tree_util.tree_map(lambda a: a.astype(out_dtype), params), info


def fit_closed_form(x, y, *, alpha=1.0, fit_intercept: bool = True, solver: str = "lstsq", precision=None):
    """Ridge coefficients in closed form: argmin Σ_j (x_j·w + b − y_j)² + α ‖w‖₂².

    Args:
      x: (n, d) float array; y: (n,) or (n, k).
      alpha: α >= 0, scikit-learn's ``Ridge(alpha)`` (may be traced: vmap over it).
      fit_intercept: learn an unpenalised b; False fixes b = 0.
      solver: "lstsq" (SVD of the augmented system) or "cholesky" (normal equations, α > 0).
      precision: passed to every matmul.

    Returns:
      (params, info): params {"w": (d,) or (d, k), "b": () or (k,)} in x's float dtype; ``info`` a
      :class:`FitInfo` of one step (converged, num_steps 1, loss_history (1,) = Q at the solution).
    """
    _fitting.check_xy(x, y)
    v.check_positive(alpha, name="alpha", allow_zero=True)
    v.check_choice(solver, ("lstsq", "cholesky"), name="solver")
    return _closed_form(jnp.asarray(x), jnp.asarray(y), alpha, fit_intercept=bool(fit_intercept), solver=solver,
                        precision=precision)


@partial(jax.jit, static_argnames=("max_steps", "fit_intercept", "standardize", "precision"))
def _fit_core(x, y, params, alpha, learning_rate, tol, *, max_steps, fit_intercept, standardize, precision):
    return _fitting.linear_descent(x, y, params, alpha=alpha, learning_rate=learning_rate, tol=tol,
                                   max_steps=max_steps, fit_intercept=fit_intercept, standardize=standardize,
                                   precision=precision)


def fit(x, y, *, alpha=1.0, learning_rate=None, max_steps: int = 1000, tol=None, fit_intercept: bool = True,
        standardize: bool = True, params=None, precision=None):
    """Full-batch gradient descent on Q(w, b) in one compiled loop; one step updates w and b once:

        w ← w − η (1/N) [xᵀ(xw + b − y) + α w],   b ← b − η (1/N) Σ_j (x_j·w + b − y_j)

    With ``standardize`` (default) the same Q is descended in standardised coordinates w̃ = s w (see
    ``linear_regression.fit``), where the penalty reads α Σ_k (w̃_k / s_k)²: the raw-unit weights are
    penalised, so the answer is scikit-learn's ``Ridge(alpha)`` whatever the features' units.

    Args:
      x: (n, d); y: (n,) or (n, k); alpha: α >= 0 (scikit-learn's).
      learning_rate: η > 0 in the descent's coordinates; None takes 1/L from the data.
      max_steps: static int, the most updates.
      tol: gradient tolerance as in ``linear_regression.fit`` (None: 100 ε; 0: run all steps).
      fit_intercept, standardize, params, precision: as in ``linear_regression.fit``.

    Returns:
      (params, info) with ``info.loss_history`` (max_steps,) the values of Q after each number of updates.
    """
    _fitting.check_xy(x, y)
    v.check_positive(alpha, name="alpha", allow_zero=True)
    if learning_rate is not None:
        v.check_positive(learning_rate, name="learning_rate")
    _fitting.check_max_steps(max_steps)
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    dtype = _fitting.float_dtype(x)
    tol = _lr._default_tol(dtype) if tol is None else tol
    v.check_positive(tol, name="tol", allow_zero=True)
    params = _lr._start_params(params, x, y, dtype)
    params, info = _fit_core(x, y, params, alpha, learning_rate, tol, max_steps=max_steps,
                             fit_intercept=bool(fit_intercept), standardize=bool(standardize), precision=precision)
    _fitting.warn_if_stopped(info, where="ridge.fit")
    return params, info
