"""Adadelta: RMSprop whose step carries its own units, the running RMS of past steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmath.optim import base


class AdadeltaState(NamedTuple):
    """State of :func:`adadelta`.

    Attributes:
      count: int32 scalar, number of updates done so far.
      learning_rate: scalar, the learning rate the next update applies (``schedule(count)``).
      mean_square_grad: pytree like the params, E[g²]_t.
      mean_square_delta: pytree like the params, E[Δθ²]_t.
    """

    count: jax.Array
    learning_rate: jax.Array
    mean_square_grad: Any
    mean_square_delta: Any


def adadelta(*, learning_rate: base.ScalarOrSchedule = 1.0, rho: float = 0.9, eps: float = 1e-6) -> base.Optimizer:
    r"""Adadelta (Zeiler, 2012).

    ::

        E[g²]_t  = ρ E[g²]_{t−1} + (1 − ρ) g_t²
        Δθ_t     = √(E[Δθ²]_{t−1} + ε) / √(E[g²]_t + ε) · g_t
        E[Δθ²]_t = ρ E[Δθ²]_{t−1} + (1 − ρ) Δθ_t²
        θ_t      = θ_{t−1} − η Δθ_t

    Symbols → arguments: η = ``learning_rate`` (1.0 is the paper's method; PyTorch scales Δθ by it),
    ρ = ``rho``, ε = ``eps`` (inside both roots, as the paper, PyTorch and Keras), g_t = ``grads``,
    E[g²] = ``state.mean_square_grad``, E[Δθ²] = ``state.mean_square_delta``. Defaults are PyTorch's
    (Keras uses ρ = 0.95, ε = 1e-7, η = 0.001).

    Args:
      learning_rate: η ≥ 0, a float (or traced scalar) or a schedule ``count -> lr``.
      rho: ρ in [0, 1).
      eps: ε > 0.

    Returns:
      An :class:`~jaxmath.optim.Optimizer` whose state is an :class:`AdadeltaState`.
    """
    base.check_learning_rate(learning_rate)
    base.check_beta(rho, name="rho")
    base.check_eps(eps)

    def init(params):
        count = base.initial_count()
        return AdadeltaState(
            count,
            base.learning_rate_leaf(learning_rate, count),
            base.zeros_like_tree(params),
            base.zeros_like_tree(params),
        )

    def update(grads, state, params=None):
        base.check_state_like(state.mean_square_grad, grads, name="state.mean_square_grad")
        base.check_state_like(state.mean_square_delta, grads, name="state.mean_square_delta")
        if params is not None:
            base.check_state_like(params, grads, name="params", dtypes=False)
        eta = base.learning_rate_at(learning_rate, state.count)
        count = base.increment(state.count)

        def step(g, square_grad, square_delta):
            g = jnp.asarray(g)
            dtype = base.compute_dtype(g)
            r, e = jnp.asarray(rho, dtype), jnp.asarray(eps, dtype)
            g = g.astype(dtype)
            square_grad_t = r * square_grad.astype(dtype) + (1 - r) * g * g
            square_delta_prev = square_delta.astype(dtype)
            delta = jnp.sqrt(square_delta_prev + e) / jnp.sqrt(square_grad_t + e) * g
            square_delta_t = r * square_delta_prev + (1 - r) * delta * delta
            u = -jnp.asarray(eta, dtype) * delta
            dt = square_grad.dtype
            return u.astype(dt), square_grad_t.astype(dt), square_delta_t.astype(dt)

        triples = jax.tree_util.tree_map(step, grads, state.mean_square_grad, state.mean_square_delta)
        updates, square_grad, square_delta = base.unzip_tree(triples, grads, 3)
        new_state = AdadeltaState(count, base.learning_rate_leaf(learning_rate, count), square_grad, square_delta)
        return updates, new_state

    return base.Optimizer(init, update)
