"""DeepDream: gradient ascent on the input image, over octaves, with roll jitter and a normalized step.

The algorithm is google/deepdream's (Mordvintsev, Olah and Tyka, 2015), written as one jitted program:

1. **Octaves.** The image is shrunk ``num_octaves - 1`` times by ``octave_scale`` (``jax.image.resize``,
   linear). The ascent starts on the smallest octave, so the first changes are coarse shapes; each larger
   octave then refines them.
2. **Detail re-injection.** After an octave, detail = (dreamed image − that octave's base); the detail is
   upscaled to the next octave and added to its base, so what was dreamed survives the change of scale while
   the next base brings back the fine pixels that shrinking removed.
3. **Steps.** Each step rolls the image by a random shift (jitter, from an explicit key), takes the gradient
   g of the objective there, unrolls g, and moves x ← clip(x + η g / mean|g|, 0, 1). Dividing by the mean
   absolute gradient makes every step the same size whatever the layer's scale (google's ``make_step``).

jaxmath's MNIST networks read 28×28 images only (LeNet-5's dense layers fix the size), unlike GoogLeNet,
which is fully convolutional. So an octave's image is resized to the input's size, differentiably, before
the forward pass: the small octaves are a coarse parameterisation of the same 28×28 input.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jaxmath import _validation as V

__all__ = ["deep_dream", "DreamInfo", "octave_shapes", "roll", "unroll", "normalized_step"]


class DreamInfo(NamedTuple):
    """What ``deep_dream`` did besides the image.

    Fields:
      objective_history: ``(num_octaves, steps_per_octave, n)``: J of each image before each step, at the
        jittered (rolled) image the step's gradient was taken at; octave 0 is the smallest.
      num_steps: ``num_octaves · steps_per_octave``, the gradient steps taken.
    """

    objective_history: jax.Array
    num_steps: int


def _check_shift(shift: Any) -> None:
    if jnp.shape(shift) != (2,):
        raise ValueError(f"shift must be a (2,) integer array (rows, columns), got shift.shape={jnp.shape(shift)}")


@jax.jit
def roll(x: jax.Array, shift: jax.Array) -> jax.Array:
    """Shift the last two axes cyclically: out[..., i, j] = x[..., (i − s₀) mod H, (j − s₁) mod W].

    Args:
      x: ``(..., H, W)`` array (images).
      shift: ``(2,)`` integers ``(s₀, s₁)``: rows down, columns right (may be traced).

    Returns:
      Array of ``x``'s shape and dtype.
    """
    _check_shift(shift)
    V.check_ndim(x, tuple(range(2, 8)), name="x")
    return jnp.roll(x, (shift[0], shift[1]), axis=(-2, -1))


@jax.jit
def unroll(x: jax.Array, shift: jax.Array) -> jax.Array:
    """The inverse of ``roll``: ``unroll(roll(x, s), s) == x``; the same as ``roll(x, −s)``."""
    _check_shift(shift)
    V.check_ndim(x, tuple(range(2, 8)), name="x")
    return jnp.roll(x, (-shift[0], -shift[1]), axis=(-2, -1))


@jax.jit
def normalized_step(grad: jax.Array) -> jax.Array:
    """google/deepdream's ascent direction: g / mean|g|, so that mean|step| = 1 whatever g's scale.

        step = g / ((1/N) Σ_i |g_i|)      (g ↔ ``grad``, N its number of entries; 0 where g is all zeros)

    Invariant to scaling: normalized_step(c·g) = normalized_step(g) for every c > 0.

    Args:
      grad: float array of any shape (one image's gradient).

    Returns:
      Array of ``grad``'s shape and dtype.
    """
    scale = jnp.mean(jnp.abs(grad))
    # A layer that is dead everywhere (ReLU) gives g = 0: no step rather than 0/0.
    return jnp.where(scale > 0, grad / jnp.where(scale > 0, scale, jnp.ones_like(scale)), jnp.zeros_like(grad))


def octave_shapes(shape: Sequence[int], *, num_octaves: int, octave_scale: float) -> tuple[tuple[int, int], ...]:
    """The (H, W) of each octave, largest first: round(H / scale^o), round(W / scale^o), at least 1."""
    height, width = shape
    return tuple((max(1, round(height / octave_scale**o)), max(1, round(width / octave_scale**o)))
                 for o in range(num_octaves))


def _check(x, num_octaves, octave_scale, steps_per_octave, step_size, jitter, objective):
    if not callable(objective):
        raise TypeError(f"objective must be a function objective(params, x) -> (n,), got {objective!r}")
    V.check_ndim(x, 3, name="x (n, H, W) images")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must be float pixels in [0, 1] (e.g. images / 255), got x.dtype={x.dtype}")
    V.check_integer(num_octaves, name="num_octaves", minimum=1)
    V.check_integer(steps_per_octave, name="steps_per_octave", minimum=1)
    V.check_integer(jitter, name="jitter", minimum=0)
    V.check_positive(step_size, name="step_size")
    V.check_real(octave_scale, name="octave_scale")
    if not octave_scale > 1:
        raise ValueError(f"octave_scale must be > 1, got octave_scale={octave_scale!r}")


@partial(jax.jit, static_argnames=("objective", "num_octaves", "octave_scale", "steps_per_octave", "step_size",
                                   "jitter"))
def deep_dream(
    objective: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x: jax.Array,
    key: jax.Array,
    *,
    num_octaves: int = 3,
    octave_scale: float = 1.4,
    steps_per_octave: int = 20,
    step_size: float = 0.02,
    jitter: int = 2,
) -> tuple[jax.Array, DreamInfo]:
    """Dream ``x`` towards what ``objective`` measures: ascent over octaves, as google/deepdream does.

        base_o = resize(base_{o−1}, shape / octave_scale)                 o = 1 .. num_octaves − 1
        from the smallest octave up:  x ← base_o + resize(detail, base_o's shape)
            repeat steps_per_octave times (s = random shift in [−jitter, jitter]², from ``key``):
                g = unroll(∇J(resize(roll(x, s), x₀'s shape)), s)
                x ← clip(x + η · g / mean|g|, 0, 1)                        (η ↔ ``step_size``)
            detail = x − base_o

    One program: the octaves (each a different shape) are unrolled at trace time and each octave's steps are
    a ``lax.scan``; every option except ``params``, ``x`` and ``key`` is static.

    Args:
      objective: ``objective(params, x) -> (n,)`` per-image values to maximise, e.g.
        ``dream.layer_objective(model, "c3", channel=5)``; it receives images of ``x``'s shape. Static: keep
        one function object across calls (a new lambda compiles anew).
      params: the network's params.
      x: ``(n, H, W)`` float pixels in [0, 1], the images to start from (digits or noise).
      key: PRNG key for the jitter.
      num_octaves: scales, ≥ 1 (1 = no octaves).
      octave_scale: ratio between successive octaves' sizes, > 1.
      steps_per_octave: gradient steps on each octave, ≥ 1.
      step_size: η, the mean absolute pixel change of one step, > 0.
      jitter: largest roll, in pixels of the current octave, ≥ 0 (0: no jitter).

    Returns:
      ``(image, info)``: image ``(n, H, W)`` in [0, 1], ``x``'s dtype; ``info`` a :class:`DreamInfo`.
    """
    _check(x, num_octaves, octave_scale, steps_per_octave, step_size, jitter, objective)
    V.check_key(key)
    dtype = x.dtype
    n = x.shape[0]
    shapes = octave_shapes(x.shape[1:], num_octaves=num_octaves, octave_scale=octave_scale)
    bases = [x]
    for shape in shapes[1:]:
        bases.append(jax.image.resize(bases[-1], (n, *shape), "linear"))

    def to_input(image):
        return image if image.shape == x.shape else jax.image.resize(image, x.shape, "linear")

    def total(image):
        values = objective(params, to_input(image))
        return jnp.sum(values), values  # images do not interact: the sum's gradient is each image's own

    grad_fn = jax.value_and_grad(total, has_aux=True)
    eta = jnp.asarray(step_size, dtype)

    def step(image, step_key):
        shift = jax.random.randint(step_key, (2,), -jitter, jitter + 1)
        (_, values), g = grad_fn(roll(image, shift))
        g = jax.vmap(normalized_step)(unroll(g, shift))
        image = jnp.clip(image + eta * g, jnp.asarray(0, dtype), jnp.asarray(1, dtype))
        return image, values

    octave_keys = jax.random.split(key, num_octaves)
    detail = jnp.zeros_like(bases[-1])
    histories = []
    image = bases[-1]
    for o, base in enumerate(reversed(bases)):
        if detail.shape != base.shape:
            detail = jax.image.resize(detail, base.shape, "linear")
        image, values = jax.lax.scan(step, base + detail, jax.random.split(octave_keys[o], steps_per_octave))
        detail = image - base
        histories.append(values)
    return image, DreamInfo(objective_history=jnp.stack(histories), num_steps=num_octaves * steps_per_octave)
