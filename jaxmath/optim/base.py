"""The optimizer contract: a pair of pure functions over pytrees.

An optimizer (optax calls it a gradient transformation) is the NamedTuple
``Optimizer(init, update)``:

* ``init(params) -> state`` builds the state (a NamedTuple with named fields:
  ``count``, the moments, ...) from the parameter pytree;
* ``update(grads, state, params=None) -> (updates, new_state)`` turns the
  gradients into updates that already carry the minus sign;
* ``apply_updates(params, updates)`` adds them: θ ← θ + u.

Both functions are pure, so an optimizer runs unchanged under ``jit``,
``vmap`` and ``lax.scan`` on CPU, GPU and TPU.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp

from jaxmath import _validation

Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[jax.Array], jax.Array]
ScalarOrSchedule = Union[float, jax.Array, Schedule]


class Optimizer(NamedTuple):
    """A pair of pure functions ``init(params) -> state`` and ``update(grads, state, params=None)``."""

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


# optax's name for the same contract; clip/chain/... transforms are Optimizers too.
GradientTransformation = Optimizer


class EmptyState(NamedTuple):
    """The state of a stateless transform."""


def apply_updates(params: Params, updates: Updates) -> Params:
    """θ ← θ + u, leaf by leaf, keeping each parameter's dtype.

    Args:
      params: pytree of arrays (any shapes, any float dtypes).
      updates: pytree of the same structure and shapes, as returned by ``update``
        (the minus sign of descent is already in it).

    Returns:
      The new parameters, same structure, shapes and dtypes as ``params``.
    """
    check_same_structure(updates, params, names=("updates", "params"))
    return jax.tree_util.tree_map(
        lambda p, u: (jnp.asarray(p) + u).astype(jnp.asarray(p).dtype), params, updates
    )


def check_same_structure(tree: Any, reference: Any, *, names: tuple[str, str]) -> None:
    """Raise ``ValueError`` naming both tree structures when ``tree`` and ``reference`` differ.

    The check compares tree definitions only, which are static, so it also runs under ``jit``/``vmap``.
    """
    tree_def = jax.tree_util.tree_structure(tree)
    reference_def = jax.tree_util.tree_structure(reference)
    if tree_def != reference_def:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same tree structure, got "
            f"{names[0]}: {tree_def} and {names[1]}: {reference_def}"
        )


def check_learning_rate(learning_rate: ScalarOrSchedule, *, name: str = "learning_rate") -> None:
    """A learning rate is a finite number ≥ 0 (skipped when traced, e.g. under vmap) or a schedule."""
    if callable(learning_rate):
        return
    _validation.check_positive(learning_rate, name=name, allow_zero=True)
    if _validation.is_concrete(learning_rate) and jnp.ndim(learning_rate) == 0:
        if math.isinf(float(learning_rate)):
            raise ValueError(f"{name} must be finite, got {name}={learning_rate!r}")


def check_beta(value: Any, *, name: str) -> None:
    """Decay rates (β₁, β₂, ρ, γ) lie in [0, 1)."""
    _validation.check_in_range(value, name=name, low=0.0, high=1.0)


def check_eps(value: Any, *, name: str = "eps") -> None:
    _validation.check_positive(value, name=name)


def learning_rate_at(learning_rate: ScalarOrSchedule, count: jax.Array) -> Any:
    """η at step ``count``: the constant itself, or ``schedule(count)``."""
    return learning_rate(count) if callable(learning_rate) else learning_rate


def learning_rate_leaf(learning_rate: ScalarOrSchedule, count: jax.Array) -> jax.Array:
    """The learning rate as kept in a state's ``learning_rate`` field: a float32 scalar.

    A fixed dtype keeps the state's leaves identical from step to step (so ``lax.scan`` carries it) and
    independent of ``jax_enable_x64``, so a checkpoint written with x64 off resumes with it on and the
    other way round; the update itself uses the unrounded value, cast to each leaf's dtype.
    """
    return jnp.asarray(learning_rate_at(learning_rate, count), dtype=jnp.float32)


def compute_dtype(leaf: Any) -> Any:
    """The dtype an update is computed in: the leaf's, but at least float32.

    bfloat16 rounds β₂ = 0.999 to 1, which would make the bias correction 1 − β₂ᵗ vanish; computing in
    float32 and casting the update back keeps bfloat16 parameters finite.
    """
    return jnp.promote_types(jnp.asarray(leaf).dtype, jnp.float32)


def zeros_like_tree(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: jnp.zeros_like(jnp.asarray(x)), tree)


def increment(count: jax.Array) -> jax.Array:
    """count + 1 in int32, saturating instead of wrapping around."""
    max_int = jnp.iinfo(jnp.int32).max
    return jnp.where(count < max_int, count + 1, max_int).astype(jnp.int32)


def initial_count() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def unzip_tree(pairs: Any, like: Any, n: int) -> tuple[Any, ...]:
    """Split a tree whose leaves (at the positions of ``like``'s leaves) are n-tuples into n trees."""
    treedef = jax.tree_util.tree_structure(like)
    rows = treedef.flatten_up_to(pairs)
    columns = list(zip(*rows)) if rows else [()] * n
    return tuple(jax.tree_util.tree_unflatten(treedef, list(column)) for column in columns)


def current_learning_rate(state: OptState) -> jax.Array:
    """The learning rate the next update applies, read from a state (also one nested in chain/wrappers).

    Returns the ``learning_rate`` field of the first optimizer state found (depth first); raises
    ``ValueError`` when the state holds none (e.g. a chain of stateless transforms only).
    """
    found = _find_learning_rate(state)
    if found is None:
        raise ValueError(f"no learning_rate field found in a state of type {type(state).__name__}")
    return found


def _find_learning_rate(state: Any) -> Any:
    if hasattr(state, "_fields") and "learning_rate" in state._fields:
        return state.learning_rate
    children = state.values() if isinstance(state, dict) else state if isinstance(state, (tuple, list)) else ()
    for child in children:
        found = _find_learning_rate(child)
        if found is not None:
            return found
    return None


def learning_rates_in(state: OptState) -> list:
    """Every ``learning_rate`` field of a state, nested ones (chain, wrappers, groups) included.

    ``fit`` checks them before each step: a NaN or negative rate rejects the step.
    """
    found = []

    def walk(node):
        if hasattr(node, "_fields") and "learning_rate" in node._fields:
            found.append(node.learning_rate)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (tuple, list)) else ()
        for child in children:
            walk(child)

    walk(state)
    return found


def check_state_like(state_tree: Any, grads: Any, *, name: str, dtypes: bool = True) -> None:
    """Refuse a state tree whose leaves differ from the grads' in structure, shape or dtype.

    Static (shapes and dtypes are known at trace time), so it raises under ``jit``/``vmap`` before anything
    runs, naming the first differing leaf: a state leaf of shape (3, 1) beside a (3,) gradient would
    otherwise broadcast silently into (3, 3) params.

    Args:
      state_tree: a per-parameter part of an optimizer state (moments, buffers).
      grads: the gradients, the params' structure.
      name: what to call ``state_tree`` in the message (``"state.mu"``).
      dtypes: compare dtypes too (False for ``params``, which may be kept in another dtype than the grads).
    """
    check_same_structure(grads, state_tree, names=("grads", name))
    with_paths = jax.tree_util.tree_flatten_with_path(grads)[0]
    for (path, g), s in zip(with_paths, jax.tree_util.tree_leaves(state_tree)):
        g_shape, s_shape = jnp.shape(g), jnp.shape(s)
        g_dtype, s_dtype = jnp.result_type(g), jnp.result_type(s)
        if g_shape != s_shape or (dtypes and g_dtype != s_dtype):
            where = jax.tree_util.keystr(path)
            raise ValueError(
                f"{name}{where} has shape {s_shape} and dtype {s_dtype} but grads{where} has shape {g_shape} "
                f"and dtype {g_dtype}: the optimizer state does not belong to these params (build it with "
                "optimizer.init(params))"
            )


def checked_schedule(schedule: Schedule) -> Schedule:
    """Wrap a schedule so that a NaN, infinite or negative rate comes out as NaN, never as a usable number.

    A negative rate is gradient ascent and a NaN rate poisons the params; both would otherwise train
    silently in a hand-written loop. With the wrapper the update becomes NaN, which
    ``optim.skip_nonfinite``, ``run_epoch`` and ``fit`` reject (``fit`` stops and names the rate). ``fit``
    itself also checks every state's ``learning_rate`` before each step, wrapped or not.

    Args:
      schedule: ``count -> learning rate``.

    Returns:
      A schedule ``count -> learning rate`` (NaN where ``schedule`` gave NaN, ±inf or a value < 0).
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be callable (count -> learning rate), got {schedule!r}")

    def checked(count):
        rate = jnp.asarray(schedule(count))
        good = jnp.isfinite(rate) & (rate >= 0)
        return jnp.where(good, rate, jnp.full_like(rate, jnp.nan))

    return checked
