"""The McCulloch-Pitts neuron (1943): binary inputs, excitatory and inhibitory synapses, a threshold.

    g(x) = Σ_{i excitatory} x_i
    y    = 1  if g(x) ≥ θ and no inhibitory input is on,
           0  otherwise                                   (absolute inhibition)

Symbols: x_i → ``x[..., i]`` (0/1), θ → ``params["threshold"]``, the excitatory and inhibitory sets →
``params["excitatory"]`` / ``params["inhibitory"]`` (boolean masks). There is nothing to learn: the unit is
wired by hand, and the ready-made gates :func:`and_gate`, :func:`or_gate`, :func:`not_gate` show how.

:func:`threshold_unit` is the weighted generalisation y = 1[Σ w_i x_i ≥ θ]; with any weights and threshold it
still draws one straight line through input space, which is why no single unit computes XOR.

The one model whose ``init`` takes no key: a McCulloch-Pitts unit has no random parameters, it is wired by
hand (which inputs excite, which inhibit, the threshold), and ``init`` builds that wiring. ``apply`` is one
jitted function: its shape check runs at trace time, and inputs are read as on (nonzero) or off (0).
"""

from __future__ import annotations

import itertools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as v

__all__ = ["init", "apply", "threshold_unit", "and_gate", "or_gate", "not_gate", "truth_table"]


def init(num_inputs: int, *, threshold: int, inhibitory: Sequence[int] = ()) -> dict:
    """A McCulloch-Pitts unit with ``num_inputs`` inputs; the ones listed in ``inhibitory`` inhibit, the rest excite.

    The exception to ``init(key, ...)``: the unit is wired, not drawn, so there is no key to take.

    Args:
      num_inputs: number of binary inputs n (>= 1).
      threshold: θ, the number of active excitatory inputs needed to fire (an integer).
      inhibitory: indices (in ``[0, num_inputs)``) of the inhibitory inputs.

    Returns:
      params: {"excitatory": (n,) bool, "inhibitory": (n,) bool, "threshold": () int32}.
    """
    v.check_integer(num_inputs, name="num_inputs", minimum=1)
    v.check_integer(threshold, name="threshold")
    inhibitory = tuple(inhibitory)
    for idx in inhibitory:
        v.check_integer(idx, name="inhibitory index")
        if not 0 <= idx < num_inputs:
            raise ValueError(f"inhibitory indices must lie in [0, {num_inputs}), got inhibitory={inhibitory}")
    inhib = np.zeros(num_inputs, bool)
    inhib[list(inhibitory)] = True
    return {
        "excitatory": jnp.asarray(~inhib),
        "inhibitory": jnp.asarray(inhib),
        "threshold": jnp.asarray(threshold, jnp.int32),
    }


@jax.jit
def apply(params: dict, x: jax.Array) -> jax.Array:
    """Fire (1) or not (0): y = 1[Σ_excitatory x_i ≥ θ and no inhibitory x_i is on].

    Args:
      params: from :func:`init` or a ready-made gate.
      x: (..., n) array of 0/1 (int or bool); any nonzero value counts as an active input (1).

    Returns:
      (...,) int32 array of 0/1.
    """
    n = params["excitatory"].shape[-1]
    if x.ndim < 1 or x.shape[-1] != n:
        raise ValueError(f"x must have {n} inputs on its last axis, got x.shape={x.shape}")
    on = x != 0
    g = jnp.sum((on & params["excitatory"]).astype(jnp.int32), axis=-1)
    inhibited = jnp.any(on & params["inhibitory"], axis=-1)
    return ((g >= params["threshold"]) & ~inhibited).astype(jnp.int32)


@jax.jit
def threshold_unit(weights: jax.Array, threshold: jax.Array, x: jax.Array) -> jax.Array:
    """The weighted threshold unit y = 1[Σ_i w_i x_i ≥ θ] (negative w_i inhibit).

    Broadcasts: ``weights`` (..., n), ``threshold`` (...), ``x`` (..., n) -> (...,) int32 0/1. Integer inputs
    give exact sums, so it can enumerate every integer unit at once (see the XOR test).
    """
    s = jnp.sum(jnp.asarray(weights) * jnp.asarray(x), axis=-1)
    return (s >= threshold).astype(jnp.int32)


def and_gate(num_inputs: int = 2) -> dict:
    """AND: fires only when all n inputs are on (θ = n, all excitatory)."""
    return init(num_inputs, threshold=num_inputs)


def or_gate(num_inputs: int = 2) -> dict:
    """OR: fires when at least one input is on (θ = 1, all excitatory)."""
    return init(num_inputs, threshold=1)


def not_gate() -> dict:
    """NOT: one inhibitory input and θ = 0, so it fires exactly when its input is off."""
    return init(1, threshold=0, inhibitory=(0,))


def truth_table(num_inputs: int) -> jax.Array:
    """Every binary input pattern of length n, in counting order: (2**n, n) int32."""
    v.check_integer(num_inputs, name="num_inputs", minimum=1)
    return jnp.asarray(list(itertools.product((0, 1), repeat=num_inputs)), jnp.int32)
