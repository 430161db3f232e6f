"""Linear regression: least squares in closed form, by full-batch gradient descent, and by mini-batch SGD.

The notes' model and objective (seed 000, the costume-price example):

    f(x, Θ) = Θ1 x + Θ0                       (here f(x, Θ) = x·w + b for x with d features)
    Q(Θ)    = 1/(2N) Σ_j (f(x_j, Θ) − y_j)²
    Θ0(t+1) = Θ0(t) − α 1/N Σ_j (f(x_j, Θ) − y_j)
    Θ1(t+1) = Θ1(t) − α 1/N Σ_j (f(x_j, Θ) − y_j) x_j

Symbols: x_j → row j of ``x`` (n, d), y_j → ``y[j]``, N → n, Θ1 → ``params["w"]`` (d,) (or (d, k) for a
(n, k) ``y``), Θ0 → ``params["b"]`` () (or (k,)), α → ``learning_rate``, t → the step.

* :func:`fit_closed_form` solves min_Θ Q(Θ) directly: with an intercept it centres x and y (the intercept is
  then b = ȳ − x̄·w) and solves the least-squares problem by SVD (``jnp.linalg.lstsq``, for n > d after a QR
  factorisation x = QR, on the small R), never forming an inverse; a rank-deficient x gives the minimum-norm
  w, like ``numpy.linalg.lstsq``. ``solver="normal"`` solves the centred normal equations from the moments
  xᵀx, xᵀy, x̄ (``jaxmath.models._normal_equations``: fast for n ≫ d, but it squares the condition number).
* :func:`fit` runs the update rules above (full batch) in one ``lax.while_loop``. By default it runs them on
  standardised features and centred targets and maps the answer back to raw units, with the step 1/L taken
  from the data, so the notes' raw-unit example converges with the defaults (``standardize=False`` runs the
  notes' rule on the raw data exactly).
* :func:`fit_sgd` runs mini-batches through any ``jaxmath.optim`` optimizer in one ``lax.while_loop``.

Every ``fit*`` checks its input on the host (shapes, then NaN/Inf with one device reduction), then calls a
private jitted core; the value checks skip tracers, so ``jax.vmap(fit_closed_form)(xs, ys)`` fits a batch of
independent regressions in one call.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath import _validation as v
from jaxmath.models import _fitting
from jaxmath.models._fitting import FitInfo
from jaxmath.models._normal_equations import normal_equations

__all__ = ["FitInfo", "init", "apply", "loss", "fit_closed_form", "fit", "fit_sgd"]


def init(key, num_features: int, *, num_outputs: int | None = None, dtype=jnp.float32) -> dict:
    """Zero parameters: {"w": (d,) or (d, k), "b": () or (k,)} in ``dtype``.

    Args:
      key: a PRNG key, unused (least squares has one minimum, zeros are the notes' start); taken so that
        every model is built as ``init(key, ...)``.
      num_features: d >= 1. num_outputs: k, or None for a scalar target (y of shape (n,)).
    """
    v.check_key(key)
    v.check_integer(num_features, name="num_features", minimum=1)
    if num_outputs is None:
        return {"w": jnp.zeros((num_features,), dtype), "b": jnp.zeros((), dtype)}
    v.check_integer(num_outputs, name="num_outputs", minimum=1)
    return {"w": jnp.zeros((num_features, num_outputs), dtype), "b": jnp.zeros((num_outputs,), dtype)}


@partial(jax.jit, static_argnames=("precision",))
def apply(params: dict, x: jax.Array, *, precision=None) -> jax.Array:
    """f(x, Θ) = x w + b: x (n, d) -> (n,) (or (n, k) for a (d, k) w)."""
    _fitting.check_features(params, x)
    return _fitting.linear(params, x, precision=precision)


@partial(jax.jit, static_argnames=("precision",))
def loss(params: dict, x: jax.Array, y: jax.Array, *, precision=None) -> jax.Array:
    """Q(Θ) = 1/(2N) Σ_j (f(x_j, Θ) − y_j)² (summed over outputs for a (n, k) y): a scalar."""
    _fitting.check_features(params, x)
    r = _fitting.linear(params, x, precision=precision) - y
    return 0.5 * jnp.sum(r * r) / x.shape[0]


def _center(x, y, fit_intercept: bool):
    if not fit_intercept:
        return x, y, jnp.zeros(x.shape[1:], x.dtype), jnp.zeros(y.shape[1:], y.dtype)
    x_mean = jnp.mean(x, axis=0)
    y_mean = jnp.mean(y, axis=0)
    return x - x_mean, y - y_mean, x_mean, y_mean


@partial(jax.jit, static_argnames=("fit_intercept", "solver", "rcond", "precision"))
def _closed_form(x, y, *, fit_intercept: bool, solver: str, rcond, precision):
    out_dtype = _fitting.float_dtype(x)
    dtype = _fitting.solve_dtype(out_dtype)
    x = x.astype(dtype)
    y = y.astype(dtype)
    if solver == "normal":
        w, x_mean, y_mean = normal_equations(x, y, fit_intercept, rcond=rcond, precision=precision)
    else:
        xc, yc, x_mean, y_mean = _center(x, y, fit_intercept)
        n, d = xc.shape
        rc = jnp.finfo(dtype).eps * max(n, d) if rcond is None else rcond  # numpy's default
        if n > d:
            # x = QR with orthonormal Q: ‖xw − y‖² = ‖Rw − Qᵀy‖² + const, so the minimum-norm solutions agree;
            # the SVD then runs on the small d×d R instead of the tall x.
            Q, R = jnp.linalg.qr(xc, mode="reduced")
            w = jnp.linalg.lstsq(R, jnp.matmul(Q.T, yc, precision=precision), rcond=rc)[0]
        else:
            w = jnp.linalg.lstsq(xc, yc, rcond=rc)[0]
    b = y_mean - jnp.dot(x_mean, w, precision=precision)
    params = {"w": w, "b": b}
    info = _fitting.closed_form_info(loss(params, x, y, precision=precision).astype(out_dtype))
    return jax.tree_util.tree_map(lambda a: a.astype(out_dtype), params), info


def fit_closed_form(x, y, *, fit_intercept: bool = True, solver: str = "lstsq", rcond=None, precision=None):
    """Least squares in closed form: argmin_Θ Q(Θ), the minimum-norm w when x is rank deficient.

    Args:
      x: (n, d) float array.
      y: (n,) or (n, k) float array.
      fit_intercept: learn b (by centring x and y); False fixes b = 0.
      solver: "lstsq" (SVD of x, robust) or "normal" (normal equations, fast for n ≫ d).
      rcond: relative cutoff below which singular values (eigenvalues for "normal") count as zero; None uses
        machine epsilon times the size (numpy's default).
      precision: passed to every matmul.

    Returns:
      (params, info): params {"w": (d,) or (d, k), "b": () or (k,)} in x's float dtype (bfloat16 input is
      solved in float32); ``info`` a :class:`FitInfo` of one step: converged True, num_steps 1, loss_history
      (1,) holding Q at the solution.
    """
    _fitting.check_xy(x, y)
    v.check_choice(solver, ("lstsq", "normal"), name="solver")
    return _closed_form(jnp.asarray(x), jnp.asarray(y), fit_intercept=bool(fit_intercept), solver=solver,
                        rcond=rcond, precision=precision)


@partial(jax.jit, static_argnames=("max_steps", "fit_intercept", "standardize", "precision"))
def _fit_core(x, y, params, learning_rate, tol, *, max_steps, fit_intercept, standardize, precision):
    return _fitting.linear_descent(x, y, params, alpha=0.0, learning_rate=learning_rate, tol=tol,
                                   max_steps=max_steps, fit_intercept=fit_intercept, standardize=standardize,
                                   precision=precision)


def _default_tol(dtype) -> float:
    """100 ε of the working dtype (about 1e-5 in float32, 2e-14 in float64)."""
    return float(100 * jnp.finfo(_fitting.solve_dtype(dtype)).eps)


def _start_params(params, x, y, dtype):
    """Given params cast to ``dtype``, or zeros shaped for x and y."""
    if params is None:
        return init(jax.random.key(0), np.shape(x)[1], num_outputs=None if np.ndim(y) == 1 else np.shape(y)[1],
                    dtype=dtype)
    params = {"w": jnp.asarray(params["w"], dtype), "b": jnp.asarray(params.get("b", 0), dtype)}
    want = (np.shape(x)[1],) + tuple(np.shape(y)[1:])
    if params["w"].shape != want:
        raise ValueError(f"params['w'] must have shape {want} for x.shape={np.shape(x)} and "
                         f"y.shape={np.shape(y)}, got {params['w'].shape}")
    return {"w": params["w"], "b": jnp.broadcast_to(params["b"], want[1:])}


def fit(x, y, *, learning_rate=None, max_steps: int = 1000, tol=None, fit_intercept: bool = True,
        standardize: bool = True, params=None, precision=None):
    """Full-batch gradient descent on Q(Θ) with the notes' update rules, in one compiled loop.

    One step is one update of every parameter from the gradient over all N rows. With ``standardize`` (the
    default) the rule runs on x̃ = (x − x̄)/s and y − ȳ (s: the columns' standard deviations) and the answer
    is mapped back to raw units (w = w̃ / s, b = ȳ + b̃ − x̄·w): the same Q, with residuals unchanged, but a
    Hessian whose eigenvalues no longer spread with the squares of the features' units, so one step size
    suits every parameter. ``standardize=False`` is the notes' rule on the raw data.

    Args:
      x: (n, d) float array; y: (n,) or (n, k).
      learning_rate: α > 0 in the coordinates the descent runs (standardised ones by default); None takes
        1/L, L the largest eigenvalue of Q's Hessian there (may be a traced value under vmap).
      max_steps: static int, the most updates.
      tol: stop when max |∂Q/∂θ| ≤ tol · rms(y − ȳ) · max(1, rms of the largest column), in the descent's
        coordinates; None: 100 ε of the working dtype; 0 runs all ``max_steps``.
      fit_intercept: learn Θ0 (b); False keeps b = 0 (and centres nothing).
      standardize: precondition by standardising (see above).
      params: raw-unit starting point (warm start); zeros in x's float dtype when None.
      precision: passed to every matmul.

    Returns:
      (params, info): params {"w", "b"} in raw units; ``info`` a :class:`FitInfo` whose ``loss_history``
      (max_steps,) holds Q(Θ(t)) after t updates (the same Q in either coordinates). A non-finite Q (α too
      large) stops the loop and returns the last finite Θ with a ``RuntimeWarning``.
    """
    _fitting.check_xy(x, y)
    if learning_rate is not None:
        v.check_positive(learning_rate, name="learning_rate")
    _fitting.check_max_steps(max_steps)
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    dtype = _fitting.float_dtype(x)
    tol = _default_tol(dtype) if tol is None else tol
    v.check_positive(tol, name="tol", allow_zero=True)
    params = _start_params(params, x, y, dtype)
    params, info = _fit_core(x, y, params, learning_rate, tol, max_steps=max_steps,
                             fit_intercept=bool(fit_intercept), standardize=bool(standardize), precision=precision)
    _fitting.warn_if_stopped(info, where="linear_regression.fit")
    return params, info


@partial(jax.jit, static_argnames=("optimizer", "batch_size", "num_epochs", "fit_intercept", "precision"))
def _sgd_core(x, y, params, key, *, optimizer, batch_size: int, num_epochs: int, fit_intercept: bool, precision):
    dtype = params["w"].dtype
    x = x.astype(dtype)
    y = y.astype(dtype)
    n = x.shape[0]
    num_batches = n // batch_size

    def objective(p, xb, yb):
        if not fit_intercept:
            p = {**p, "b": jnp.zeros_like(p["b"])}
        r = _fitting.linear(p, xb, precision=precision) - yb
        return 0.5 * jnp.sum(r * r) / xb.shape[0]

    grad_fn = jax.grad(objective)

    def batch_step(carry, idx):
        p, opt_state = carry
        g = grad_fn(p, x[idx], y[idx])
        updates, opt_state = optimizer.update(g, opt_state, p)
        p = jax.tree_util.tree_map(lambda a, u: a + u, p, updates)
        return (p, opt_state), None

    def cond(state):
        epoch, _, _, _, _, stop = state
        return (epoch < num_epochs) & ~stop

    def body(state):
        epoch, p, opt_state, key, hist, _ = state
        key, sub = jax.random.split(key)
        order = jax.random.permutation(sub, n)[: num_batches * batch_size].reshape(num_batches, batch_size)
        (new_p, new_opt), _ = lax.scan(batch_step, (p, opt_state), order)
        q = objective(new_p, x, y)
        finite = jnp.isfinite(q)
        hist = hist.at[epoch].set(q)
        keep = lambda a, b: jnp.where(finite, a, b)  # noqa: E731  (the last finite params survive)
        new_p = jax.tree_util.tree_map(keep, new_p, p)
        new_opt = jax.tree_util.tree_map(keep, new_opt, opt_state)
        return epoch + 1, new_p, new_opt, key, hist, ~finite

    hist = jnp.full((num_epochs,), jnp.nan, dtype)
    state = (jnp.int32(0), params, optimizer.init(params), key, hist, jnp.bool_(False))
    epoch, params, _, _, hist, stopped = lax.while_loop(cond, body, state)
    if not fit_intercept:
        params = {**params, "b": jnp.zeros_like(params["b"])}
    epochs_kept = jnp.where(stopped, epoch - 1, epoch)
    return params, FitInfo(jnp.bool_(False), (epochs_kept * num_batches).astype(jnp.int32), hist, stopped)


def fit_sgd(x, y, *, optimizer, key, batch_size: int = 32, num_epochs: int = 10, fit_intercept: bool = True,
            params=None, precision=None):
    """Mini-batch SGD on Q(Θ) with any ``jaxmath.optim`` optimizer, in one compiled loop (raw units).

    A mini-batch trainer, so its budget is ``num_epochs`` (as ``jaxmath.training.fit``): each epoch shuffles
    the rows with ``key`` and takes ⌊n / batch_size⌋ optimizer steps on batches of ``batch_size`` rows (the
    remainder is left out that epoch), each step on the batch's Q.

    Args:
      x: (n, d) float array; y: (n,) or (n, k).
      optimizer: a ``jaxmath.optim.Optimizer`` (``init``, ``update``); it must be hashable (it is static).
      key: PRNG key for the shuffles.
      batch_size: static int in [1, n]; num_epochs: static int >= 1.
      fit_intercept, params, precision: as in :func:`fit`.

    Returns:
      (params, info): ``info.loss_history`` (num_epochs,) holds the full-data Q after each epoch,
      ``info.num_steps`` the optimizer steps kept, ``info.converged`` is False (there is no stopping test). An
      epoch ending on a non-finite Q stops the loop and keeps the parameters from before it.
    """
    _fitting.check_xy(x, y)
    v.check_key(key)
    v.check_integer(batch_size, name="batch_size", minimum=1)
    if batch_size > np.shape(x)[0]:
        raise ValueError(f"batch_size must be <= the number of rows of x, got batch_size={batch_size} and "
                         f"x.shape={np.shape(x)}")
    _fitting.check_max_steps(num_epochs, name="num_epochs")
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    params = _start_params(params, x, y, _fitting.float_dtype(x))
    params, info = _sgd_core(x, y, params, key, optimizer=optimizer, batch_size=batch_size, num_epochs=num_epochs,
                             fit_intercept=bool(fit_intercept), precision=precision)
    _fitting.warn_if_stopped(info, where="linear_regression.fit_sgd")
    return params, info
