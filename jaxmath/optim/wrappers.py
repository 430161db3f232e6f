"""Wrappers around optimizers: per-parameter groups, gradient accumulation, skipping non-finite steps."""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, NamedTuple, Union

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation
from jaxmath.optim import base


class MultiTransformState(NamedTuple):
    """State of :func:`multi_transform`: ``inner_states[label]`` is the state of that group's optimizer,
    built over the list of the group's leaves (in the params' leaf order)."""

    inner_states: dict


def multi_transform(
    transforms: Mapping[Hashable, base.Optimizer],
    param_labels: Union[Any, Callable[[Any], Any]],
) -> base.Optimizer:
    """Route each leaf to its group's optimizer: per-parameter groups, learning rates and frozen leaves.

    ``param_labels`` is a pytree with the params' structure whose leaves are labels (e.g. strings), or a
    function ``params -> labels``. Each group's optimizer sees only its own leaves (as a list, in leaf order),
    so its state holds moments only for them. Freeze a group with :func:`~jaxmath.optim.set_to_zero`::

        multi_transform({"body": adam(learning_rate=1e-3), "head": sgd(learning_rate=1e-1), "frozen": set_to_zero()}, labels)

    Args:
      transforms: label → :class:`~jaxmath.optim.Optimizer`.
      param_labels: pytree of labels (the params' structure), or a callable that builds it from the params.

    Returns:
      An :class:`~jaxmath.optim.Optimizer` whose state is a :class:`MultiTransformState`.
    """
    transforms = dict(transforms)
    for label, transform in transforms.items():
        if not isinstance(transform, base.Optimizer):
            raise TypeError(f"transforms[{label!r}] must be an Optimizer(init, update), got {type(transform).__name__}")

    def labels_for(tree):
        labels = param_labels(tree) if callable(param_labels) else param_labels
        treedef = jax.tree_util.tree_structure(tree)
        labels_def = jax.tree_util.tree_structure(labels)
        if labels_def != treedef:
            raise ValueError(
                f"param_labels and params must have the same tree structure, got param_labels: {labels_def} "
                f"and params: {treedef}"
            )
        flat = jax.tree_util.tree_leaves(labels)
        paths = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(labels)[0]]
        for path, label in zip(paths, flat):
            if label not in transforms:
                known = ", ".join(repr(k) for k in transforms)
                raise ValueError(f"param_labels{path} = {label!r} is not a key of transforms ({known})")
        return flat

    def split(tree, flat_labels):
        leaves = jax.tree_util.tree_leaves(tree)
        return {label: [x for x, l in zip(leaves, flat_labels) if l == label] for label in transforms}

    def init(params):
        flat_labels = labels_for(params)
        groups = split(params, flat_labels)
        return MultiTransformState({label: transforms[label].init(groups[label]) for label in transforms})

    def update(grads, state, params=None):
        flat_labels = labels_for(grads)
        grad_groups = split(grads, flat_labels)
        param_groups = split(params, flat_labels) if params is not None else {label: None for label in transforms}
        new_states, update_groups = {}, {}
        for label, transform in transforms.items():
            update_groups[label], new_states[label] = transform.update(
                grad_groups[label], state.inner_states[label], param_groups[label]
            )
        iterators = {label: iter(update_groups[label]) for label in transforms}
        leaves = [next(iterators[label]) for label in flat_labels]
        updates = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(grads), leaves)
        return updates, MultiTransformState(new_states)

    return base.Optimizer(init, update)


class AccumulateState(NamedTuple):
    """State of :func:`accumulate`.

    Attributes:
      mini_step: int32 scalar in [0, k), calls since the last real update.
      gradient_sum: pytree like the params, Σ of the gradients of the current window.
      inner_state: the wrapped optimizer's state (its ``count`` counts real updates only).
    """

    mini_step: jax.Array
    gradient_sum: Any
    inner_state: Any


def accumulate(optimizer: base.Optimizer, *, k: int) -> base.Optimizer:
    r"""Gradient accumulation: update only every k-th call, with the mean of the last k gradients.

    ::

        ḡ = (1/k) Σ_{j=1..k} g_j,    u = optimizer(ḡ) on calls k, 2k, ...,    u = 0 on the others

    With a mean loss over micro-batches of equal size this equals one step on a k-times-larger batch, at the
    memory of one extra gradient buffer (``state.gradient_sum``).

    Args:
      optimizer: the :class:`~jaxmath.optim.Optimizer` to wrap.
      k: number of micro-steps per update, an int ≥ 1.

    Returns:
      An :class:`~jaxmath.optim.Optimizer` whose state is an :class:`AccumulateState`.
    """
    _validation.check_integer(k, name="k", minimum=1)

    def init(params):
        return AccumulateState(jnp.zeros([], jnp.int32), base.zeros_like_tree(params), optimizer.init(params))

    def update(grads, state, params=None):
        base.check_state_like(state.gradient_sum, grads, name="state.gradient_sum")
        gradient_sum = jax.tree_util.tree_map(lambda s, g: s + g, state.gradient_sum, grads)

        def emit(operand):
            gradient_sum, inner_state = operand
            mean = jax.tree_util.tree_map(lambda s: s / k, gradient_sum)
            updates, inner_state = optimizer.update(mean, inner_state, params)
            return updates, base.zeros_like_tree(gradient_sum), inner_state

        def hold(operand):
            gradient_sum, inner_state = operand
            return base.zeros_like_tree(grads), gradient_sum, inner_state

        updates, gradient_sum, inner_state = lax.cond(
            state.mini_step == k - 1, emit, hold, (gradient_sum, state.inner_state)
        )
        mini_step = ((state.mini_step + 1) % k).astype(jnp.int32)
        return updates, AccumulateState(mini_step, gradient_sum, inner_state)

    return base.Optimizer(init, update)


class SkipNonfiniteState(NamedTuple):
    """State of :func:`skip_nonfinite`.

    Attributes:
      inner_state: the wrapped optimizer's state (unchanged by skipped steps).
      num_skipped: int32 scalar, total number of skipped steps.
      last_step_skipped: bool scalar, whether the most recent call was skipped.
    """

    inner_state: Any
    num_skipped: jax.Array
    last_step_skipped: jax.Array


def all_finite(tree: Any) -> jax.Array:
    """True when every entry of every leaf is finite (no NaN, no ±Inf)."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.asarray(True)


def skip_nonfinite(optimizer: base.Optimizer) -> base.Optimizer:
    """Skip steps whose gradients hold a NaN or an Inf: zero updates, inner state unchanged, skip counted.

    Args:
      optimizer: the :class:`~jaxmath.optim.Optimizer` to wrap.

    Returns:
      An :class:`~jaxmath.optim.Optimizer` whose state is a :class:`SkipNonfiniteState`.
    """

    def init(params):
        return SkipNonfiniteState(optimizer.init(params), jnp.zeros([], jnp.int32), jnp.asarray(False))

    def update(grads, state, params=None):
        finite = all_finite(grads)

        def step(inner_state):
            return optimizer.update(grads, inner_state, params)

        def skip(inner_state):
            return base.zeros_like_tree(grads), inner_state

        updates, inner_state = lax.cond(finite, step, skip, state.inner_state)
        skipped = jnp.logical_not(finite)
        return updates, SkipNonfiniteState(inner_state, state.num_skipped + skipped.astype(jnp.int32), skipped)

    return base.Optimizer(init, update)
