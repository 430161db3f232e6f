"""Shared pieces of the neuron and regression models: input checks, dtypes, and one compiled descent loop.

Private to ``jaxmath.models``: the public models (``linear_regression``, ``ridge``, ``lasso``,
``logistic_regression``, ``sigmoid_neuron``) re-use these so every ``fit`` validates the same way and
returns the same :class:`FitInfo`.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as v


class FitInfo(NamedTuple):
    """What a compiled fitting loop did.

    Attributes:
      loss_history: (max_iterations,) float array; entry ``i`` is the objective at the parameters after ``i``
        updates. Entries after the last iteration run are NaN (nothing was computed there).
      num_iterations: int32 scalar, how many iterations ran.
      converged: bool scalar, the stopping tolerance was met (False when the loop ran out of iterations or
        stopped on a non-finite objective).
      nonfinite: bool scalar, the loop stopped because the objective became NaN/Inf; the parameters returned
        are then the last ones with a finite objective.
    """

    loss_history: jax.Array
    num_iterations: jax.Array
    converged: jax.Array
    nonfinite: jax.Array


def float_dtype(x: Any) -> jnp.dtype:
    """The floating dtype to compute in: ``x``'s own if it is floating, float32 for integer/bool input."""
    dt = jnp.result_type(x)
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.dtype(jnp.float32)


def solve_dtype(dtype: Any) -> jnp.dtype:
    """Dense linear algebra (SVD, Cholesky) needs at least float32: bfloat16/float16 are upcast."""
    dtype = jnp.dtype(dtype)
    return dtype if jnp.finfo(dtype).bits >= 32 else jnp.dtype(jnp.float32)


def check_xy(X: Any, y: Any, *, y_ndim=(1, 2), y_name: str = "y", check_y_finite: bool = True) -> None:
    """X must be (n, d), y (n,) or (n, k), same number of rows, no NaN/Inf (values checked only when concrete)."""
    v.check_ndim(X, 2, name="X")
    v.check_ndim(y, y_ndim, name=y_name)
    v.check_same_length(X, y, names=("X", y_name))
    v.check_finite(X, name="X")
    if check_y_finite:
        v.check_finite(y, name=y_name)


def check_max_iterations(value: Any, *, name: str) -> None:
    v.check_integer(value, name=name, minimum=1)


def warn_if_stopped(info: FitInfo, *, where: str) -> None:
    """On concrete results, say where a loop stopped on a non-finite objective (silent under jit/vmap)."""
    if not v.is_concrete(info.nonfinite):
        return
    flags = jnp.asarray(info.nonfinite)
    if flags.ndim == 0 and bool(flags):
        step = int(info.num_iterations) - 1
        warnings.warn(
            f"{where}: the objective became non-finite at iteration {step}; "
            f"returning the last parameters with a finite objective (iteration {max(step - 1, 0)})",
            RuntimeWarning,
            stacklevel=3,
        )


def descent_loop(
    objective: Callable[[Any], jax.Array],
    step: Callable[[Any, Any, jax.Array], Any],
    params: Any,
    *,
    max_iterations: int,
    tol: Any,
    dtype: Any,
) -> tuple[Any, FitInfo]:
    """Run ``params <- step(params, grad, i)`` in one ``lax.while_loop``.

    Stops after ``max_iterations`` updates, when the objective changes by less than ``tol`` between two
    iterations (``tol=0`` never stops early), or when the objective becomes non-finite (then the last
    parameters with a finite objective are returned). Works under ``vmap``: a batched stopping condition keeps
    finished members fixed while the others go on.

    Args:
      objective: params -> scalar objective.
      step: (params, grads, iteration) -> new params.
      params: initial parameter pytree.
      max_iterations: static Python int.
      tol: scalar tolerance on the change of the objective.
      dtype: dtype of the loss history.
    """
    value_and_grad = jax.value_and_grad(objective)
    history = jnp.full((max_iterations,), jnp.nan, dtype)
    tol = jnp.asarray(tol, dtype)

    def cond(state):
        i, _, _, _, stop, _, _ = state
        return (i < max_iterations) & ~stop

    def body(state):
        i, params, good, hist, _, prev_loss, _ = state
        loss, grads = value_and_grad(params)
        finite = jnp.isfinite(loss)
        hist = hist.at[i].set(loss.astype(dtype))
        converged = finite & (i > 0) & (jnp.abs(prev_loss - loss) < tol)
        new_params = step(params, grads, i)
        # Keep the current params when converged (their objective was just measured) or not finite.
        advance = finite & ~converged
        params_out = jax.tree_util.tree_map(lambda n, p: jnp.where(advance, n, p), new_params, params)
        good = jax.tree_util.tree_map(lambda p, g: jnp.where(finite, p, g), params, good)
        return i + 1, params_out, good, hist, ~advance, loss.astype(dtype), converged

    init = (jnp.int32(0), params, params, history, jnp.bool_(False), jnp.asarray(jnp.inf, dtype), jnp.bool_(False))
    i, params, good, history, stopped, last_loss, converged = lax.while_loop(cond, body, init)
    nonfinite = stopped & ~converged
    params = jax.tree_util.tree_map(lambda p, g: jnp.where(nonfinite, g, p), params, good)
    return params, FitInfo(history, i, converged, nonfinite)


def gradient_descent(objective: Callable, params: dict, learning_rate, tol, *, num_steps: int, intercept_shape):
    """Full-batch θ ← θ − η ∇Q(θ) in one ``descent_loop`` (the notes' update rules, shared by every GD fit).

    ``params`` without a "b" entry fit no intercept: ``b`` is held at 0 and added back at the end.

    Args:
      objective: ``Q(params) -> scalar``, called with full params (``w`` and ``b``).
      params: initial ``{"w": ..., "b": ...}`` (or without "b").
      learning_rate: η. tol, num_steps: as for ``descent_loop``.
      intercept_shape: shape of ``b`` (``y.shape[1:]``).
    """
    dtype = params["w"].dtype
    lr = jnp.asarray(learning_rate, dtype)
    fit_b = "b" in params

    def with_intercept(p):
        return p if fit_b else {**p, "b": jnp.zeros(intercept_shape, dtype)}

    def step(p, g, i):
        return jax.tree_util.tree_map(lambda a, ga: a - lr * ga, p, g)

    params, info = descent_loop(
        lambda p: objective(with_intercept(p)), step, params, max_iterations=num_steps, tol=tol, dtype=dtype
    )
    return with_intercept(params), info


def linear(params: dict, X: jax.Array, *, precision=None) -> jax.Array:
    """f(x, Θ) = X w + b for params {"w": (d,) or (d, k), "b": () or (k,)}; returns (n,) or (n, k)."""
    return jnp.dot(X, params["w"], precision=precision) + params["b"]
