"""Gradient transforms that compose with optimizers through :func:`chain`.

Each is an :class:`~jaxmath.optim.Optimizer` too (``init``/``update``), so
``chain(clip_by_global_norm(max_norm=1.0), adam(learning_rate=1e-3))`` clips the gradient, then runs Adam on it.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmath import _validation
from jaxmath.optim import base


def scale(*, step_size: float) -> base.Optimizer:
    """u = s · g, leaf by leaf (``scale(-η)`` is plain gradient descent as a transform).

    Args:
      step_size: s, a finite float (or traced scalar).
    """
    if _validation.is_concrete(step_size) and not math.isfinite(float(step_size)):
        raise ValueError(f"step_size must be finite, got step_size={step_size!r}")

    def init(params):
        del params
        return base.EmptyState()

    def update(grads, state, params=None):
        del params
        return jax.tree_util.tree_map(lambda g: (jnp.asarray(g) * step_size).astype(jnp.asarray(g).dtype), grads), state

    return base.Optimizer(init, update)


def set_to_zero() -> base.Optimizer:
    """u = 0: the transform for frozen parameters (route them to it with :func:`multi_transform`)."""

    def init(params):
        del params
        return base.EmptyState()

    def update(grads, state, params=None):
        del params
        return base.zeros_like_tree(grads), state

    return base.Optimizer(init, update)


def clip_by_value(*, clip_value: float) -> base.Optimizer:
    """g ← clip(g, −c, c) elementwise (``torch.nn.utils.clip_grad_value_``).

    Args:
      clip_value: c > 0.
    """
    _validation.check_positive(clip_value, name="clip_value")

    def init(params):
        del params
        return base.EmptyState()

    def update(grads, state, params=None):
        del params
        return jax.tree_util.tree_map(lambda g: jnp.clip(g, -clip_value, clip_value), grads), state

    return base.Optimizer(init, update)


def global_norm(tree: Any) -> jax.Array:
    """‖g‖ = √(Σ_leaves Σ_i g_i²), the Euclidean norm of all leaves taken together.

    Args:
      tree: pytree of arrays.

    Returns:
      Scalar in the leaves' promoted dtype (at least float32).
    """
    leaves = [jnp.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    if not leaves:
        return jnp.zeros([], jnp.float32)
    dtype = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(dtype))) for x in leaves))


def clip_by_global_norm(*, max_norm: float) -> base.Optimizer:
    r"""g ← g · min(1, c / ‖g‖), with ‖g‖ the :func:`global_norm` over all leaves.

    The direction is kept; only the length is capped at c. (PyTorch's ``clip_grad_norm_`` divides by
    ‖g‖ + 1e-6; this uses ‖g‖ exactly, as optax.)

    Symbols → arguments: c = ``max_norm`` (> 0).
    """
    _validation.check_positive(max_norm, name="max_norm")

    def init(params):
        del params
        return base.EmptyState()

    def update(grads, state, params=None):
        del params
        norm = global_norm(grads)
        # Where the norm is within bounds the factor is exactly 1 (no division, so a zero gradient is fine).
        factor = jnp.where(norm > max_norm, max_norm / jnp.where(norm > max_norm, norm, 1), 1)
        clipped = jax.tree_util.tree_map(lambda g: (g * factor.astype(jnp.asarray(g).dtype)), grads)
        return clipped, state

    return base.Optimizer(init, update)


def add_decayed_weights(*, weight_decay: float) -> base.Optimizer:
    r"""g ← g + λ θ: the gradient of the L2 penalty (λ/2)‖θ‖², added before the optimizer sees it.

    ``chain(add_decayed_weights(weight_decay=λ), sgd(learning_rate=η))`` is SGD on J + (λ/2)‖θ‖² (PyTorch's
    ``weight_decay=λ`` on SGD/Adam); ``adamw`` decouples the decay instead. ``update`` needs ``params``.

    Symbols → arguments: λ = ``weight_decay`` (≥ 0), θ = ``params``.
    """
    _validation.check_positive(weight_decay, name="weight_decay", allow_zero=True)

    def init(params):
        del params
        return base.EmptyState()

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights.update needs params, got params=None")
        base.check_state_like(params, grads, name="params", dtypes=False)
        decayed = jax.tree_util.tree_map(
            lambda g, p: (g + weight_decay * jnp.asarray(p)).astype(jnp.asarray(g).dtype), grads, params
        )
        return decayed, state

    return base.Optimizer(init, update)


class ChainState(NamedTuple):
    """State of :func:`chain`: ``inner_states[i]`` belongs to the i-th transform."""

    inner_states: tuple


def chain(*transforms: base.Optimizer) -> base.Optimizer:
    """Apply transforms one after another: the updates of one are the gradients of the next.

    Args:
      *transforms: :class:`~jaxmath.optim.Optimizer` values, applied left to right.

    Returns:
      An :class:`~jaxmath.optim.Optimizer` whose state is a :class:`ChainState`.
    """
    for i, transform in enumerate(transforms):
        if not isinstance(transform, base.Optimizer):
            raise TypeError(f"chain argument {i} must be an Optimizer(init, update), got {type(transform).__name__}")

    def init(params):
        return ChainState(tuple(t.init(params) for t in transforms))

    def update(grads, state, params=None):
        if len(state.inner_states) != len(transforms):
            raise ValueError(
                f"state holds {len(state.inner_states)} inner states but chain has {len(transforms)} transforms"
            )
        new_states = []
        for transform, inner in zip(transforms, state.inner_states):
            grads, inner = transform.update(grads, inner, params)
            new_states.append(inner)
        return grads, ChainState(tuple(new_states))

    return base.Optimizer(init, update)
