"""RMSprop: Adagrad with a decaying (windowed) average of squared gradients instead of their sum."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmath import _validation
from jaxmath.optim import base


class RMSpropState(NamedTuple):
    """State of :func:`rmsprop`.

    Attributes:
      count: int32 scalar, number of updates done so far.
      learning_rate: scalar, the learning rate the next update applies (``schedule(count)``).
      nu: pytree like the params, E[g²]_t, the running mean of squared gradients.
      mu: pytree like the params, E[g]_t, the running mean of gradients (``centered=True``), else ``None``.
      momentum_buffer: pytree like the params, b_t (``momentum > 0``), else ``None``.
    """

    count: jax.Array
    learning_rate: jax.Array
    nu: Any
    mu: Any
    momentum_buffer: Any


def rmsprop(
    *,
    learning_rate: base.ScalarOrSchedule = 1e-2,
    decay: float = 0.99,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> base.Optimizer:
    r"""RMSprop (Hinton): scale each step by a running root-mean-square of recent gradients.

    ::

        E[g²]_t = ρ E[g²]_{t−1} + (1 − ρ) g_t²
        E[g]_t  = ρ E[g]_{t−1} + (1 − ρ) g_t                     (centered only)
        s_t     = √(E[g²]_t − E[g]_t² + ε_root) + ε               (centered; else √(E[g²]_t + ε_root) + ε)
        θ_t = θ_{t−1} − η g_t / s_t                               (momentum = 0)
        b_t = γ b_{t−1} + g_t / s_t,   θ_t = θ_{t−1} − η b_t      (momentum γ > 0)

    The decaying average forgets old gradients (the notes' "fixed window" of about 1/(1 − ρ) steps), so the
    step size does not die out as in Adagrad. ``centered`` divides by an estimate of the gradient's standard
    deviation instead of its root mean square.

    Symbols → arguments: η = ``learning_rate``, ρ = ``decay`` (PyTorch's ``alpha``, Keras' ``rho``),
    ε = ``eps``, ε_root = ``eps_root``, γ = ``momentum``, E[g²] = ``state.nu``, E[g] = ``state.mu``,
    b = ``state.momentum_buffer``.

    Conventions: defaults and ε outside the root follow ``torch.optim.RMSprop`` (ρ = 0.99, ε = 1e-8).
    TensorFlow 1's ``RMSPropOptimizer`` and optax put ε inside the root (√(E[g²] + ε)): pass that ε as
    ``eps_root`` with a negligible ``eps``. Keras' defaults are ρ = 0.9, ε = 1e-7.

    Args:
      learning_rate: η ≥ 0, a float (or traced scalar) or a schedule ``count -> lr``.
      decay: ρ in [0, 1).
      eps: ε > 0.
      eps_root: ε_root ≥ 0.
      momentum: γ in [0, 1).
      centered: subtract the squared running mean of gradients.

    Returns:
      An :class:`~jaxmath.optim.Optimizer` whose state is an :class:`RMSpropState`.
    """
    base.check_learning_rate(learning_rate)
    base.check_beta(decay, name="decay")
    base.check_eps(eps)
    _validation.check_positive(eps_root, name="eps_root", allow_zero=True)
    base.check_beta(momentum, name="momentum")
    use_momentum = not (_validation.is_concrete(momentum) and float(momentum) == 0.0)

    def init(params):
        count = base.initial_count()
        return RMSpropState(
            count,
            base.learning_rate_leaf(learning_rate, count),
            base.zeros_like_tree(params),
            base.zeros_like_tree(params) if centered else None,
            base.zeros_like_tree(params) if use_momentum else None,
        )

    def update(grads, state, params=None):
        base.check_state_like(state.nu, grads, name="state.nu")
        if centered:
            base.check_state_like(state.mu, grads, name="state.mu")
        if use_momentum:
            base.check_state_like(state.momentum_buffer, grads, name="state.momentum_buffer")
        if params is not None:
            base.check_state_like(params, grads, name="params", dtypes=False)
        eta = base.learning_rate_at(learning_rate, state.count)
        count = base.increment(state.count)

        def step(g, nu, mu, b):
            g = jnp.asarray(g)
            dtype = base.compute_dtype(g)
            rho = jnp.asarray(decay, dtype)
            g = g.astype(dtype)
            nu_t = rho * nu.astype(dtype) + (1 - rho) * g * g
            mean_square = nu_t
            mu_t = None
            if centered:
                mu_t = rho * mu.astype(dtype) + (1 - rho) * g
                mean_square = nu_t - mu_t * mu_t
            s_t = jnp.sqrt(mean_square + jnp.asarray(eps_root, dtype)) + jnp.asarray(eps, dtype)
            direction = g / s_t
            b_t = None
            if use_momentum:
                b_t = jnp.asarray(momentum, dtype) * b.astype(dtype) + direction
                direction = b_t
            u = -jnp.asarray(eta, dtype) * direction
            cast = lambda x: None if x is None else x.astype(nu.dtype)  # noqa: E731
            return cast(u), cast(nu_t), cast(mu_t), cast(b_t)

        leaves_g, treedef = jax.tree_util.tree_flatten(grads)
        none = [None] * len(leaves_g)
        leaves_nu = treedef.flatten_up_to(state.nu)
        leaves_mu = treedef.flatten_up_to(state.mu) if centered else none
        leaves_b = treedef.flatten_up_to(state.momentum_buffer) if use_momentum else none
        rows = [step(*args) for args in zip(leaves_g, leaves_nu, leaves_mu, leaves_b)]
        column = lambda i: jax.tree_util.tree_unflatten(treedef, [row[i] for row in rows])  # noqa: E731
        new_state = RMSpropState(
            count,
            base.learning_rate_leaf(learning_rate, count),
            column(1),
            column(2) if centered else None,
            column(3) if use_momentum else None,
        )
        return column(0), new_state

    return base.Optimizer(init, update)
