"""Shared pieces of the neuron and regression models: the fit record, input checks, dtypes, one compiled
descent loop, and the standardised gradient descent of the linear models.

Private to ``jaxmath.models``: the public models (``linear_regression``, ``ridge``, ``lasso``,
``logistic_regression``, ``sigmoid_neuron``) re-use these so every ``fit`` validates the same way and
returns the same :class:`FitInfo`.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath import _validation as v


class FitInfo(NamedTuple):
    """What a fit did.

    Attributes:
      converged: bool scalar, the stopping tolerance was met (False when the loop ran out of steps or stopped
        on a non-finite objective).
      num_steps: int32 scalar, how many updates led to the parameters returned.
      loss_history: (max_steps,) float array; entry ``i`` is the objective at the parameters after ``i``
        updates. Entries after the last evaluation are NaN (nothing was computed there).
      nonfinite: bool scalar, the loop stopped because the objective became NaN/Inf; the parameters returned
        are then the last ones with a finite objective.
    """

    converged: jax.Array
    num_steps: jax.Array
    loss_history: jax.Array
    nonfinite: jax.Array


def closed_form_info(objective: jax.Array) -> FitInfo:
    """The record of a closed-form solve: one step, converged, the objective at the solution."""
    objective = jnp.asarray(objective)
    return FitInfo(jnp.bool_(True), jnp.int32(1), objective[None], ~jnp.isfinite(objective))


def float_dtype(x: Any) -> jnp.dtype:
    """The floating dtype to compute in: ``x``'s own if it is floating, float32 for integer/bool input."""
    dt = jnp.result_type(x)
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.dtype(jnp.float32)


def solve_dtype(dtype: Any) -> jnp.dtype:
    """Dense linear algebra (SVD, Cholesky) needs at least float32: bfloat16/float16 are upcast."""
    dtype = jnp.dtype(dtype)
    return dtype if jnp.finfo(dtype).bits >= 32 else jnp.dtype(jnp.float32)


def check_features(params: dict, x: Any) -> None:
    """Static check (trace time): x is (n, d) or (d,) with d = params["w"].shape[0]."""
    v.check_ndim(x, (1, 2), name="x")
    d = params["w"].shape[0]
    if np.shape(x)[-1] != d:
        raise ValueError(f"x must have {d} features on its last axis (params['w'].shape={params['w'].shape}), "
                         f"got x.shape={np.shape(x)}")


def check_xy(x: Any, y: Any, *, y_ndim=(1, 2), y_name: str = "y", check_y_finite: bool = True) -> None:
    """Host entry check: x (n, d) with n >= 1, y (n,) or (n, k), same rows; then no NaN/Inf (one reduction each)."""
    v.check_ndim(x, 2, name="x")
    v.check_ndim(y, y_ndim, name=y_name)
    v.check_same_length(x, y, names=("x", y_name))
    if np.shape(x)[0] == 0:
        # Nothing to fit: the means over no rows would be NaN params reported as converged.
        raise ValueError(f"x must hold at least one example, got x.shape={np.shape(x)}")
    v.check_finite(x, name="x")
    if check_y_finite:
        v.check_finite(y, name=y_name)


def check_max_steps(value: Any, *, name: str = "max_steps") -> None:
    v.check_integer(value, name=name, minimum=1)


def check_in_unit_interval(values: Any, *, name: str, binary: bool = False) -> None:
    """Host value check: 0/1 labels (``binary``) or soft labels in [0, 1], one device reduction."""
    if not v.is_concrete(values) or np.size(values) == 0:
        return
    arr = jnp.asarray(values)
    bad = ((arr != 0) & (arr != 1)) if binary else ((arr < 0) | (arr > 1))
    if not bool(jnp.any(bad)):
        return
    first = int(np.argwhere(np.asarray(bad))[0][0])
    want = "0/1" if binary else "in [0, 1]"
    raise ValueError(f"{name} must be {want}, got {name}[{first}]={np.asarray(arr)[first]!r} in "
                     f"{name}.shape={arr.shape}")


def warn_if_stopped(info: FitInfo, *, where: str) -> None:
    """On concrete results, say where a loop stopped on a non-finite objective (silent under jit/vmap)."""
    if not v.is_concrete(info.nonfinite):
        return
    flags = jnp.asarray(info.nonfinite)
    if flags.ndim == 0 and bool(flags):
        step = int(np.argmax(~np.isfinite(np.asarray(info.loss_history, np.float32))))
        warnings.warn(
            f"{where}: the objective became non-finite after {step} updates; returning the last parameters "
            f"with a finite objective (after {int(info.num_steps)} updates)",
            RuntimeWarning,
            stacklevel=3,
        )


def descent_loop(
    objective: Callable[[Any], jax.Array],
    step: Callable[[Any, Any, jax.Array], Any],
    params: Any,
    *,
    max_steps: int,
    stop: Callable[[jax.Array, jax.Array, Any], jax.Array],
    dtype: Any,
) -> tuple[Any, FitInfo]:
    """Run ``params <- step(params, grads, i)`` in one ``lax.while_loop``.

    Each iteration evaluates the objective and its gradient at the current parameters, then either stops
    (``stop(loss, previous_loss, grads)`` is true: converged; or the objective is non-finite: the parameters
    before the last update are kept) or updates. After ``max_steps`` updates it stops unconverged. Works
    under ``vmap``: a batched stopping condition keeps finished members fixed while the others go on.

    Args:
      objective: params -> scalar objective.
      step: (params, grads, iteration) -> new params.
      params: initial parameter pytree.
      max_steps: static Python int, the most updates.
      stop: (loss, previous loss (inf at first), grads) -> bool, the convergence test.
      dtype: dtype of the loss history.
    """
    value_and_grad = jax.value_and_grad(objective)
    history = jnp.full((max_steps,), jnp.nan, dtype)

    def cond(state):
        i, _, _, _, done, _ = state
        return (i < max_steps) & ~done

    def body(state):
        i, params, previous, hist, _, prev_loss = state
        loss, grads = value_and_grad(params)
        finite = jnp.isfinite(loss)
        hist = hist.at[i].set(loss.astype(dtype))
        converged = finite & stop(loss, prev_loss, grads)
        new_params = step(params, grads, i)
        advance = finite & ~converged
        params_out = jax.tree_util.tree_map(lambda n, p: jnp.where(advance, n, p), new_params, params)
        previous = jax.tree_util.tree_map(lambda p, q: jnp.where(finite, p, q), params, previous)
        return i + 1, params_out, previous, hist, ~advance, loss.astype(dtype)

    init = (jnp.int32(0), params, params, history, jnp.bool_(False), jnp.asarray(jnp.inf, dtype))
    i, params, previous, history, stopped, _ = lax.while_loop(cond, body, init)
    last = history[jnp.maximum(i - 1, 0)]
    nonfinite = stopped & ~jnp.isfinite(last)
    converged = stopped & ~nonfinite
    params = jax.tree_util.tree_map(lambda p, q: jnp.where(nonfinite, q, p), params, previous)
    # A stopping evaluation made no update; a non-finite one also undoes the update that led to it.
    num_steps = jnp.where(converged, i - 1, jnp.where(nonfinite, jnp.maximum(i - 2, 0), i))
    return params, FitInfo(converged, num_steps.astype(jnp.int32), history, nonfinite)


def linear(params: dict, x: jax.Array, *, precision=None) -> jax.Array:
    """f(x, Θ) = x w + b for params {"w": (d,) or (d, k), "b": () or (k,)}; returns (n,) or (n, k)."""
    return jnp.dot(x, params["w"], precision=precision) + params["b"]


# ---- gradient descent for the linear models (linear_regression.fit, ridge.fit) ----


def linear_descent(x, y, params, *, alpha, learning_rate, tol, max_steps: int, fit_intercept: bool,
                   standardize: bool, precision=None):
    """Full-batch gradient descent on Q(w, b) = 1/(2N) ‖x w + b − y‖² + α/(2N) ‖w‖², in raw units.

    With ``standardize`` the descent runs on x̃ = (x − x̄) / s and ỹ = y − ȳ with w̃ = s w and
    b̃ = b + x̄·w − ȳ, where s_k = √(σ_k² + α/N) (σ_k the column's standard deviation, or its root mean
    square when there is no intercept; s_k = σ_k for plain least squares). The residuals are unchanged, and
    the penalty becomes α/(2N) Σ_k (w̃_k / s_k)²: it is the same objective in other coordinates, with the
    same minimiser, so ridge's α keeps its meaning in raw units. The new coordinates only precondition:
    every diagonal entry of their Hessian is 1 (the correlation matrix for least squares), where the raw
    Hessian's entries spread with the squares of the features' units.

    ``learning_rate=None`` takes 1/L, L the largest eigenvalue of the objective's Hessian in the coordinates
    the descent runs (a safe step that is exact along the stiffest direction). It stops when
    max |∂Q/∂θ| ≤ tol · rms(ỹ) · max(1, max_k rms(x̃_k)), a test on the gradient scaled by the data's units.

    Args:
      x: (n, d); y: (n,) or (n, k); params: raw-unit start {"w", "b"}.
      alpha: α >= 0 (0 for plain least squares).
    Returns:
      (params in raw units, FitInfo).
    """
    dtype = params["w"].dtype
    x = x.astype(dtype)
    y = y.astype(dtype)
    n, d = x.shape
    alpha = jnp.asarray(alpha, dtype)
    if fit_intercept:
        x_mean = jnp.mean(x, axis=0)
        y_mean = jnp.mean(y, axis=0)
    else:
        x_mean = jnp.zeros((d,), dtype)
        y_mean = jnp.zeros(y.shape[1:], dtype)
    if standardize:
        # Jacobi preconditioning: every coordinate gets curvature 1 (the column's variance plus ridge's α/N).
        scale = jnp.sqrt(jnp.mean(jnp.square(x - x_mean), axis=0) + alpha / n)
        scale = jnp.where(scale > 0, scale, jnp.ones_like(scale))  # a constant column stays as it is
        xw, yw = (x - x_mean) / scale, y - y_mean
    else:
        scale = jnp.ones((d,), dtype)
        x_mean = jnp.zeros((d,), dtype)
        y_mean = jnp.zeros(y.shape[1:], dtype)
        xw, yw = x, y
    col = scale if params["w"].ndim == 1 else scale[:, None]
    start = {"w": params["w"] * col}
    if fit_intercept:
        start["b"] = params["b"] + jnp.dot(x_mean, params["w"], precision=precision) - y_mean
    zero_b = jnp.zeros(y.shape[1:], dtype)
    penalty_weight = alpha / jnp.square(col)

    def objective(p):
        r = jnp.dot(xw, p["w"], precision=precision) + p.get("b", zero_b) - yw
        return 0.5 * (jnp.sum(r * r) + jnp.sum(penalty_weight * p["w"] * p["w"])) / n

    if learning_rate is None:
        a = jnp.concatenate([xw, jnp.ones((n, 1), dtype)], axis=1) if fit_intercept else xw
        hess = jnp.matmul(a.T, a, precision=precision) / n
        diag = jnp.broadcast_to(penalty_weight, (d,) + penalty_weight.shape[1:])
        diag = diag if diag.ndim == 1 else jnp.max(diag, axis=1)
        hess = hess + jnp.diag(jnp.pad(diag, (0, 1)) if fit_intercept else diag) / n
        lr = 1 / jnp.linalg.eigvalsh(hess.astype(solve_dtype(dtype)))[-1].astype(dtype)
    else:
        lr = jnp.asarray(learning_rate, dtype)
    x_rms = jnp.max(jnp.sqrt(jnp.mean(jnp.square(xw), axis=0)))
    grad_scale = jnp.sqrt(jnp.mean(jnp.square(yw))) * jnp.maximum(x_rms, 1)
    tol = jnp.asarray(tol, dtype) * grad_scale

    def stop(loss, prev_loss, grads):
        largest = jnp.max(jnp.stack([jnp.max(jnp.abs(g)) for g in jax.tree_util.tree_leaves(grads)]))
        return largest <= tol

    def step(p, g, i):
        return jax.tree_util.tree_map(lambda a_, ga: a_ - lr * ga, p, g)

    found, info = descent_loop(objective, step, start, max_steps=max_steps, stop=stop, dtype=dtype)
    w = found["w"] / col
    b = y_mean + found["b"] - jnp.dot(x_mean, w, precision=precision) if fit_intercept else zero_b
    return {"w": w, "b": b}, info
