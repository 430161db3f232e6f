"""Adam (adaptive moment estimation), its AMSGrad variant, and AdamW (decoupled weight decay)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmath import _validation
from jaxmath.optim import base


class AdamState(NamedTuple):
    """State of :func:`adam` and :func:`adamw`.

    Attributes:
      count: int32 scalar t, number of updates done so far.
      learning_rate: scalar, the learning rate the next update applies (``schedule(count)``).
      mu: pytree like the params, first moment m_t (running mean of gradients).
      nu: pytree like the params, second moment v_t (running mean of squared gradients).
      nu_max: pytree like the params, max_{s≤t} v_s when ``amsgrad=True``, else ``None``.
    """

    count: jax.Array
    learning_rate: jax.Array
    mu: Any
    nu: Any
    nu_max: Any


def adam(
    *,
    learning_rate: base.ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    amsgrad: bool = False,
) -> base.Optimizer:
    r"""Adam: momentum on the gradient, RMSprop on its scale, both bias-corrected.

    ::

        m_t = β₁ m_{t−1} + (1 − β₁) g_t            m̂_t = m_t / (1 − β₁ᵗ)
        v_t = β₂ v_{t−1} + (1 − β₂) g_t²           v̂_t = v_t / (1 − β₂ᵗ)
        θ_t = θ_{t−1} − η m̂_t / (√(v̂_t + ε_root) + ε)

    With ``amsgrad=True`` v̂_t uses v_t^max = max(v_{t−1}^max, v_t) instead of v_t (as ``torch.optim.Adam``).

    Symbols → arguments: η = ``learning_rate``, β₁ = ``b1``, β₂ = ``b2``, ε = ``eps``, ε_root = ``eps_root``,
    g_t = ``grads``, m = ``state.mu``, v = ``state.nu``, v^max = ``state.nu_max``, t = ``state.count`` + 1.

    Conventions: ε is added *outside* the square root, to the bias-corrected √v̂ (PyTorch, optax, the Adam
    paper). TensorFlow's Adam adds ε to √v_t before the bias correction (the paper's "ε̂" form), i.e. its ε
    equals ours times √(1 − β₂ᵗ); for ε ≪ √v̂ the two agree. For ε inside the root (√(v̂ + ε)), pass that ε as
    ``eps_root`` and a negligible ``eps``.

    Args:
      learning_rate: η ≥ 0, a float (or traced scalar under ``vmap``) or a schedule ``count -> lr``.
      b1, b2: β₁, β₂ in [0, 1).
      eps: ε > 0.
      eps_root: ε_root ≥ 0.
      amsgrad: keep the running maximum of v_t.

    Returns:
      An :class:`~jaxmath.optim.Optimizer` whose state is an :class:`AdamState`; updates have the params'
      structure, shapes and dtypes.
    """
    return _adam(learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root, amsgrad=amsgrad, weight_decay=None)


def adamw(
    *,
    learning_rate: base.ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
) -> base.Optimizer:
    r"""AdamW: Adam with weight decay decoupled from the gradient (Loshchilov & Hutter).

    ::

        θ_t = θ_{t−1} − η (m̂_t / (√(v̂_t + ε_root) + ε) + λ θ_{t−1})

    with m̂_t, v̂_t as in :func:`adam`. The decay λθ is not fed through the moments (that would be Adam
    with an L2 penalty, ``chain(add_decayed_weights(...), adam(learning_rate=...))``). As ``torch.optim.AdamW``, λ is
    multiplied by η (optax's ``adamw`` does the same).

    Symbols → arguments: λ = ``weight_decay`` (≥ 0), the rest as in :func:`adam`. ``update`` needs ``params``.

    Returns:
      An :class:`~jaxmath.optim.Optimizer` whose state is an :class:`AdamState`.
    """
    _validation.check_positive(weight_decay, name="weight_decay", allow_zero=True)
    return _adam(
        learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root, amsgrad=amsgrad, weight_decay=weight_decay
    )


def _adam(learning_rate, *, b1, b2, eps, eps_root, amsgrad, weight_decay) -> base.Optimizer:
    base.check_learning_rate(learning_rate)
    base.check_beta(b1, name="b1")
    base.check_beta(b2, name="b2")
    base.check_eps(eps, name="eps")
    _validation.check_positive(eps_root, name="eps_root", allow_zero=True)
    name = "adam" if weight_decay is None else "adamw"

    def init(params):
        count = base.initial_count()
        mu = base.zeros_like_tree(params)
        nu = base.zeros_like_tree(params)
        nu_max = base.zeros_like_tree(params) if amsgrad else None
        return AdamState(count, base.learning_rate_leaf(learning_rate, count), mu, nu, nu_max)

    def update(grads, state, params=None):
        base.check_state_like(state.mu, grads, name="state.mu")
        base.check_state_like(state.nu, grads, name="state.nu")
        if amsgrad:
            base.check_state_like(state.nu_max, grads, name="state.nu_max")
        if params is not None:
            base.check_state_like(params, grads, name="params", dtypes=False)
        elif weight_decay is not None:
            raise ValueError(f"{name}.update needs params for the decoupled weight decay, got params=None")
        eta = base.learning_rate_at(learning_rate, state.count)
        count = base.increment(state.count)

        def step(g, m, v, v_max, theta):
            g = jnp.asarray(g)
            dtype = base.compute_dtype(g)
            beta1, beta2 = jnp.asarray(b1, dtype), jnp.asarray(b2, dtype)
            t = count.astype(dtype)
            g = g.astype(dtype)
            mu = beta1 * m.astype(dtype) + (1 - beta1) * g
            nu = beta2 * v.astype(dtype) + (1 - beta2) * g * g
            nu_max = jnp.maximum(v_max.astype(dtype), nu) if amsgrad else None
            mu_hat = mu / (1 - beta1**t)
            nu_hat = (nu_max if amsgrad else nu) / (1 - beta2**t)
            direction = mu_hat / (jnp.sqrt(nu_hat + jnp.asarray(eps_root, dtype)) + jnp.asarray(eps, dtype))
            if weight_decay is not None:
                direction = direction + jnp.asarray(weight_decay, dtype) * jnp.asarray(theta).astype(dtype)
            u = -jnp.asarray(eta, dtype) * direction
            new_max = nu_max.astype(m.dtype) if amsgrad else None
            return u.astype(m.dtype), mu.astype(m.dtype), nu.astype(m.dtype), new_max

        leaves_g, treedef = jax.tree_util.tree_flatten(grads)
        leaves_m = treedef.flatten_up_to(state.mu)
        leaves_v = treedef.flatten_up_to(state.nu)
        leaves_max = treedef.flatten_up_to(state.nu_max) if amsgrad else [None] * len(leaves_g)
        leaves_p = treedef.flatten_up_to(params) if params is not None else [None] * len(leaves_g)
        rows = [step(*args) for args in zip(leaves_g, leaves_m, leaves_v, leaves_max, leaves_p)]
        unflatten = lambda i: jax.tree_util.tree_unflatten(treedef, [row[i] for row in rows])  # noqa: E731
        new_state = AdamState(
            count,
            base.learning_rate_leaf(learning_rate, count),
            unflatten(1),
            unflatten(2),
            unflatten(3) if amsgrad else None,
        )
        return unflatten(0), new_state

    return base.Optimizer(init, update)
