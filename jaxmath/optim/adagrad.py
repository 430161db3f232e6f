"""Adagrad: a learning rate per parameter, shrinking with that parameter's accumulated squared gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmath import _validation
from jaxmath.optim import base


class AdagradState(NamedTuple):
    """State of :func:`adagrad`.

    Attributes:
      count: int32 scalar, number of updates done so far.
      learning_rate: scalar, the learning rate the next update applies (``schedule(count)``).
      sum_of_squares: pytree like the params, G_t = G_0 + Σ_{s≤t} g_s².
    """

    count: jax.Array
    learning_rate: jax.Array
    sum_of_squares: Any


def adagrad(
    *,
    learning_rate: base.ScalarOrSchedule = 1e-2,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
) -> base.Optimizer:
    r"""Adagrad: divide each coordinate's step by the root of its summed squared gradients.

    ::

        G_t = G_{t−1} + g_t²,        θ_t = θ_{t−1} − η g_t / (√G_t + ε)

    Frequent (large-gradient) features get small steps, rare ones large steps, which suits sparse data; as G_t
    only grows, the effective learning rate η/√G_t decays towards zero (the notes' "problem").

    Symbols → arguments: η = ``learning_rate``, G_0 = ``initial_accumulator_value``, ε = ``eps``,
    g_t = ``grads``, G_t = ``state.sum_of_squares``.

    Conventions: ε outside the square root and G_0 = 0, as ``torch.optim.Adagrad``. TensorFlow 2's Keras uses
    G_0 = 0.1, ε = 1e-7 (also outside): pass ``initial_accumulator_value=0.1, eps=1e-7``. optax uses G_0 = 0.1
    with ε inside the root, √(G_t + ε) = √((G_0 + ε) + Σ g²): pass ``initial_accumulator_value=0.1 + ε`` and a
    negligible ``eps``. PyTorch's ``lr_decay`` is a schedule here: ``learning_rate=lambda t: η / (1 + t·decay)``.

    Args:
      learning_rate: η ≥ 0, a float (or traced scalar) or a schedule ``count -> lr``.
      initial_accumulator_value: G_0 ≥ 0.
      eps: ε > 0.

    Returns:
      An :class:`~jaxmath.optim.Optimizer` whose state is an :class:`AdagradState`.
    """
    base.check_learning_rate(learning_rate)
    _validation.check_positive(initial_accumulator_value, name="initial_accumulator_value", allow_zero=True)
    base.check_eps(eps)

    def init(params):
        count = base.initial_count()
        sum_of_squares = jax.tree_util.tree_map(
            lambda p: jnp.full_like(jnp.asarray(p), initial_accumulator_value), params
        )
        return AdagradState(count, base.learning_rate_leaf(learning_rate, count), sum_of_squares)

    def update(grads, state, params=None):
        base.check_state_like(state.sum_of_squares, grads, name="state.sum_of_squares")
        if params is not None:
            base.check_state_like(params, grads, name="params", dtypes=False)
        eta = base.learning_rate_at(learning_rate, state.count)
        count = base.increment(state.count)

        def step(g, G):
            g = jnp.asarray(g)
            dtype = base.compute_dtype(g)
            g = g.astype(dtype)
            G_t = G.astype(dtype) + g * g
            u = -jnp.asarray(eta, dtype) * g / (jnp.sqrt(G_t) + jnp.asarray(eps, dtype))
            return u.astype(G.dtype), G_t.astype(G.dtype)

        pairs = jax.tree_util.tree_map(step, grads, state.sum_of_squares)
        updates, sum_of_squares = base.unzip_tree(pairs, grads, 2)
        return updates, AdagradState(count, base.learning_rate_leaf(learning_rate, count), sum_of_squares)

    return base.Optimizer(init, update)
