"""Gradient descent: full-batch, stochastic, mini-batch, with (Nesterov) momentum."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmath import _validation
from jaxmath.optim import base


class SGDState(NamedTuple):
    """State of :func:`sgd`.

    Attributes:
      count: int32 scalar, number of updates done so far.
      learning_rate: scalar, the learning rate the next update applies (``schedule(count)``).
      momentum_buffer: pytree like the params holding b_t (see :func:`sgd`), or ``None`` without momentum.
    """

    count: jax.Array
    learning_rate: jax.Array
    momentum_buffer: Any


def sgd(*, learning_rate: base.ScalarOrSchedule, momentum: float = 0.0, nesterov: bool = False) -> base.Optimizer:
    r"""Gradient descent, optionally with momentum or Nesterov momentum.

    Plain (full-batch, stochastic or mini-batch, depending only on which gradient you pass)::

        θ_t = θ_{t−1} − η ∇_θ J(θ_{t−1})

    Momentum, as the notes write it::

        v_t = γ v_{t−1} + η ∇_θ J(θ_{t−1}),    θ_t = θ_{t−1} − v_t

    What is computed (the convention of ``torch.optim.SGD`` and optax) keeps a buffer of gradients and
    applies η afterwards::

        b_t = γ b_{t−1} + g_t,    θ_t = θ_{t−1} − η_t b_t                      (momentum)
        b_t = γ b_{t−1} + g_t,    θ_t = θ_{t−1} − η_t (g_t + γ b_t)            (nesterov=True)

    For a constant η the two are the same method: with b_0 = v_0 = 0, if v_{t−1} = η b_{t−1} then
    v_t = γ η b_{t−1} + η g_t = η (γ b_{t−1} + g_t) = η b_t, so θ − v_t = θ − η b_t at every step. With a
    schedule they differ only in when a change of η takes effect (here: at once, on the whole step).

    Symbols → arguments: η = ``learning_rate`` (float or schedule ``count -> lr``), γ = ``momentum``,
    g_t = ∇_θ J = ``grads``, b_t = ``state.momentum_buffer``.

    Args:
      learning_rate: η ≥ 0, a float (or traced scalar under ``vmap``) or a schedule.
      momentum: γ in [0, 1); 0 gives plain gradient descent and keeps no buffer.
      nesterov: use Nesterov's look-ahead (needs ``momentum > 0``).

    Returns:
      An :class:`~jaxmath.optim.Optimizer`; its state is an :class:`SGDState`. ``update(grads, state,
      params=None)`` takes ``grads`` of the params' tree structure, shapes and dtypes and returns updates of
      the same.
    """
    base.check_learning_rate(learning_rate)
    base.check_beta(momentum, name="momentum")
    if nesterov and _validation.is_concrete(momentum) and float(momentum) == 0.0:
        raise ValueError("nesterov=True needs momentum > 0, got momentum=0.0")
    use_momentum = nesterov or not (_validation.is_concrete(momentum) and float(momentum) == 0.0)

    def init(params):
        count = base.initial_count()
        buffer = base.zeros_like_tree(params) if use_momentum else None
        return SGDState(count, base.learning_rate_leaf(learning_rate, count), buffer)

    def update(grads, state, params=None):
        if use_momentum:
            base.check_state_like(state.momentum_buffer, grads, name="state.momentum_buffer")
        if params is not None:
            base.check_state_like(params, grads, name="params", dtypes=False)
        eta = base.learning_rate_at(learning_rate, state.count)
        count = base.increment(state.count)

        if not use_momentum:
            def descend(g):
                g = jnp.asarray(g)
                dtype = base.compute_dtype(g)
                return (-jnp.asarray(eta, dtype) * g.astype(dtype)).astype(g.dtype)

            updates = jax.tree_util.tree_map(descend, grads)
            return updates, SGDState(count, base.learning_rate_leaf(learning_rate, count), None)

        def step(g, b):
            g = jnp.asarray(g)
            dtype = base.compute_dtype(g)
            gamma = jnp.asarray(momentum, dtype)
            g = g.astype(dtype)
            b_t = gamma * b.astype(dtype) + g
            direction = g + gamma * b_t if nesterov else b_t
            return (-jnp.asarray(eta, dtype) * direction).astype(b.dtype), b_t.astype(b.dtype)

        pairs = jax.tree_util.tree_map(step, grads, state.momentum_buffer)
        updates, buffer = base.unzip_tree(pairs, grads, 2)
        return updates, SGDState(count, base.learning_rate_leaf(learning_rate, count), buffer)

    return base.Optimizer(init, update)

