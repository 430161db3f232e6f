"""Non-finite guard shared by the unsupervised fits: stop at the first non-finite step, keep the last finite state.

The fits are compiled loops (``lax.scan`` / ``lax.while_loop``), so a step cannot raise. Each guarded step
computes a candidate state and a bool ``ok`` (candidate and its loss finite); the carry keeps the current
state unless ``ok`` holds, and records the index of the first rejected step. After that step every later one
is rejected too, so the loop returns the last finite state, as ``jaxmath.training.run_epoch`` does. The host
entry point then warns (:func:`warn_nonfinite`), naming the step.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from jaxmath import _validation as V

Array = jax.Array

NO_STEP = -1  # first_nonfinite_step when every step was finite


def all_finite(*arrays) -> Array:
    """() bool: every entry of every array is finite."""
    ok = jnp.asarray(True)
    for a in arrays:
        ok = ok & jnp.all(jnp.isfinite(a))
    return ok


def keep_if(ok, first_bad, index, candidate, current):
    """Accept ``candidate`` (a pytree) only when ``ok`` and no earlier step failed; else keep ``current``.

    Returns (state, first_bad): ``first_bad`` becomes ``index`` at the first rejected step and stays there.
    """
    ok = (first_bad < 0) & ok
    state = jax.tree_util.tree_map(lambda new, old: jnp.where(ok, new, old), candidate, current)
    return state, jnp.where((first_bad < 0) & ~ok, jnp.asarray(index, jnp.int32), first_bad)


def after_stop(history, first_bad):
    """NaN from the first rejected step on: those steps did not run (axis 0 indexes steps)."""
    if first_bad is None:
        return history
    steps = jnp.arange(history.shape[0]).reshape((-1,) + (1,) * (history.ndim - 1))
    return jnp.where((first_bad >= 0) & (steps >= first_bad), jnp.asarray(jnp.nan, history.dtype), history)


def warn_nonfinite(info, *, where: str, what: str = "weights", unit: str = "step", hint: str = "",
                   stacklevel: int = 3) -> None:
    """On concrete results (not under ``jit``/``vmap``), warn when the fit stopped on a non-finite step.

    One ``RuntimeWarning`` naming the first rejected step (in the fit's own unit) and what was returned.
    """
    first = info.first_nonfinite_step
    if not V.is_concrete(first) or jnp.ndim(first) != 0:
        return
    first = int(first)
    if first < 0:
        return
    warnings.warn(
        f"{where}: {unit} {first} made the {what} non-finite (NaN or Inf); the fit stopped there and returned "
        f"the last finite {what} (info.num_steps={int(info.num_steps)}, info.nonfinite=True){hint}",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
