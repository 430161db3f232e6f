"""Learning-rate schedules: pure functions ``count -> learning rate`` of the step counter kept in the state.

Pass one wherever a ``learning_rate`` is taken: ``adam(learning_rate=cosine_decay(init_value=1e-3, decay_steps=1000))``. The
optimizer evaluates it at ``state.count`` (the number of updates done so far, so the first update uses
``schedule(0)``) and keeps the value for the next step in ``state.learning_rate``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from jaxmath import _validation
from jaxmath.optim.base import Schedule


def _check_value(value: Any, *, name: str) -> None:
    """A learning-rate value: a finite float ≥ 0."""
    _validation.check_positive(value, name=name, allow_zero=True)
    if _validation.is_concrete(value) and math.isinf(float(value)):
        raise ValueError(f"{name} must be finite, got {name}={value!r}")


def _as_float_count(count: Any) -> jax.Array:
    # The count is int32; schedules compute in JAX's default float dtype.
    return jnp.asarray(count).astype(jnp.result_type(float))


def constant(*, value: float) -> Schedule:
    """η_t = η₀ for every t.

    Args:
      value: η₀ ≥ 0.

    Returns:
      A schedule ``count -> lr`` (scalar of JAX's default float dtype).
    """
    _check_value(value, name="value")

    def schedule(count):
        return jnp.full(jnp.shape(count), value, dtype=jnp.result_type(float))

    return schedule


def exponential_decay(
    *,
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    staircase: bool = False,
    transition_begin: int = 0,
    end_value: float | None = None,
) -> Schedule:
    r"""η_t = η₀ · r^{(t − t₀)/T} for t ≥ t₀ (η₀ before), with the exponent floored when ``staircase``.

    Symbols → arguments: η₀ = ``init_value``, r = ``decay_rate``, T = ``transition_steps``,
    t₀ = ``transition_begin``, t = the optimizer's ``count``. ``end_value`` clips the result from below when
    r < 1 (from above when r > 1). With ``staircase=True`` this is step decay: η drops by r every T steps.

    Returns:
      A schedule ``count -> lr``.
    """
    _check_value(init_value, name="init_value")
    _validation.check_integer(transition_steps, name="transition_steps", minimum=1)
    _validation.check_positive(decay_rate, name="decay_rate")
    _validation.check_integer(transition_begin, name="transition_begin", minimum=0)
    if end_value is not None:
        _check_value(end_value, name="end_value")

    def schedule(count):
        t = jnp.maximum(_as_float_count(count) - transition_begin, 0)
        exponent = t / transition_steps
        if staircase:
            exponent = jnp.floor(exponent)
        value = init_value * decay_rate**exponent
        if end_value is not None:
            # A decay (r < 1) is floored at end_value, a growth (r > 1) capped; r may be traced under vmap.
            value = jnp.where(decay_rate < 1, jnp.maximum(value, end_value), jnp.minimum(value, end_value))
        return value

    return schedule


def piecewise_constant(*, init_value: float, boundaries_and_scales: Mapping[int, float]) -> Schedule:
    r"""Step decay: η_t = η₀ · Π_{b_i ≤ t} s_i.

    From step b_i on (``count >= b_i``) the learning rate is multiplied by s_i; e.g.
    ``piecewise_constant(init_value=0.1, boundaries_and_scales={100: 0.1, 200: 0.1})`` gives 0.1, then 0.01 from step
    100, then 0.001 from step 200.

    Symbols → arguments: η₀ = ``init_value``, {b_i: s_i} = ``boundaries_and_scales`` (integer steps ≥ 0 to
    scales ≥ 0).

    Returns:
      A schedule ``count -> lr``.
    """
    _check_value(init_value, name="init_value")
    items = sorted(dict(boundaries_and_scales).items())
    for boundary, scale in items:
        _validation.check_integer(boundary, name="boundaries_and_scales key")
        if boundary < 0:
            raise ValueError(f"boundaries_and_scales keys must be >= 0, got {boundary}")
        _check_value(scale, name=f"boundaries_and_scales[{boundary}]")

    def schedule(count):
        t = jnp.asarray(count)
        value = jnp.full(jnp.shape(t), init_value, dtype=jnp.result_type(float))
        for boundary, scale in items:
            value = jnp.where(t >= boundary, value * scale, value)
        return value

    return schedule


def cosine_decay(*, init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    r"""η_t = η₀ ((1 − α) · ½ (1 + cos(π min(t, T)/T)) + α).

    Falls from η₀ at t = 0 to α·η₀ at t = T and stays there.

    Symbols → arguments: η₀ = ``init_value``, T = ``decay_steps`` (≥ 1), α = ``alpha`` in [0, 1].

    Returns:
      A schedule ``count -> lr``.
    """
    _check_value(init_value, name="init_value")
    _validation.check_integer(decay_steps, name="decay_steps", minimum=1)
    _validation.check_in_range(alpha, name="alpha", low=0.0, high=1.0, high_inclusive=True)

    def schedule(count):
        t = jnp.minimum(_as_float_count(count), decay_steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t / decay_steps))
        return init_value * ((1 - alpha) * cosine + alpha)

    return schedule


def warmup_cosine_decay(
    *,
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
) -> Schedule:
    r"""Linear warmup from η₀ to η_peak over W steps, then cosine decay to η_end at step T.

    ::

        η_t = η₀ + (η_peak − η₀) t / W                                       for t < W
        η_t = η_end + (η_peak − η_end) · ½ (1 + cos(π min(t − W, T − W)/(T − W)))  for t ≥ W

    Symbols → arguments: η₀ = ``init_value``, η_peak = ``peak_value``, W = ``warmup_steps`` (≥ 0),
    T = ``decay_steps`` (> W, the total length, warmup included, as optax), η_end = ``end_value``.

    Returns:
      A schedule ``count -> lr``.
    """
    _check_value(init_value, name="init_value")
    _check_value(peak_value, name="peak_value")
    _check_value(end_value, name="end_value")
    _validation.check_integer(warmup_steps, name="warmup_steps", minimum=0)
    _validation.check_integer(decay_steps, name="decay_steps", minimum=1)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps must be > warmup_steps (it counts the warmup too), got decay_steps={decay_steps} "
            f"and warmup_steps={warmup_steps}"
        )
    cosine_steps = decay_steps - warmup_steps

    def schedule(count):
        t = _as_float_count(count)
        warm = init_value + (peak_value - init_value) * t / max(warmup_steps, 1)
        s = jnp.clip(t - warmup_steps, 0, cosine_steps)
        cosine = end_value + (peak_value - end_value) * 0.5 * (1 + jnp.cos(jnp.pi * s / cosine_steps))
        return jnp.where(t < warmup_steps, warm, cosine)

    return schedule
