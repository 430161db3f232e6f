"""Seed 000's "let's generate a superhero logo": points labelled inside/outside the Batman curve.

The curve is the classic piecewise Batman equation (J. Matthew Register's, the
one in the notes' desmos link), symmetric in x, spanning |x| <= 7, |y| <= 3.
For each |x| the logo is the band ``lower(x) < y < upper(x)``:

    upper(x) = 3·sqrt(1 − (x/7)²)                                 3 < |x| ≤ 7  (wings)
             = 6√10/7 + (1.5 − 0.5|x|) − (6√10/14)·sqrt(4 − (|x| − 1)²)   1 < |x| ≤ 3  (shoulders)
             = 9 − 8|x|                                          0.75 < |x| ≤ 1  (outer ear)
             = 3|x| + 0.75                                       0.5 < |x| ≤ 0.75 (inner ear)
             = 2.25                                              |x| ≤ 0.5  (head)
    lower(x) = −3·sqrt(1 − (x/7)²)                                4 < |x| ≤ 7  (wings)
             = |x/2| − ((3√33 − 7)/112)·x² − 3 + sqrt(1 − (||x| − 2| − 1)²)   |x| ≤ 4  (tail)

The pieces meet continuously (e.g. both shoulder and wing give 6√10/7 at |x| = 3).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation

X_EXTENT = 7.0
Y_EXTENT = 3.0
BOX = (-8.0, 8.0, -4.0, 4.0)  # (x_min, x_max, y_min, y_max) the points are drawn from
# Networks see points divided by this: the box mapped onto [-1, 1]^2, where tanh and ReLU units start
# in their useful range.
INPUT_SCALE = (8.0, 4.0)


def _sqrt0(x):
    # Branches not selected by `where` may see negative arguments; clamp so no NaN is produced at all.
    return jnp.sqrt(jnp.maximum(x, 0))


def batman_bounds(x):
    """``(upper(x), lower(x))`` of the Batman curve, elementwise (NaN-free; meaningful for |x| <= 7).

    Args:
      x: float array of any shape.

    Returns:
      ``(upper, lower)``, each the shape and dtype of ``x``.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    ax = jnp.abs(x)
    wing = 3 * _sqrt0(1 - (x / 7) ** 2)
    c = 6 * math.sqrt(10) / 7
    shoulder = c + (1.5 - 0.5 * ax) - (c / 2) * _sqrt0(4 - (ax - 1) ** 2)
    upper = jnp.where(
        ax > 3, wing,
        jnp.where(ax > 1, shoulder,
                  jnp.where(ax > 0.75, 9 - 8 * ax,
                            jnp.where(ax > 0.5, 3 * ax + 0.75, jnp.full_like(x, 2.25)))))
    tail = (ax / 2 - ((3 * math.sqrt(33) - 7) / 112) * x**2 - 3
            + _sqrt0(1 - (jnp.abs(ax - 2) - 1) ** 2))
    lower = jnp.where(ax > 4, -wing, tail)
    return upper.astype(x.dtype), lower.astype(x.dtype)


def batman_inside(points):
    """Whether each point lies inside the Batman logo: |x| < 7 and lower(x) < y < upper(x).

    Args:
      points: (..., 2) float array of (x, y) coordinates.

    Returns:
      (...,) bool array.
    """
    points = jnp.asarray(points)
    if points.ndim < 1 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got points.shape={points.shape}")
    x, y = points[..., 0], points[..., 1]
    upper, lower = batman_bounds(x)
    return (jnp.abs(x) < X_EXTENT) & (y > lower) & (y < upper)


@partial(jax.jit, static_argnums=1)
def _sample(key, n):
    x_min, x_max, y_min, y_max = BOX
    unit = jax.random.uniform(key, (n, 2), dtype=jnp.float32)
    scale = jnp.array([x_max - x_min, y_max - y_min], jnp.float32)
    offset = jnp.array([x_min, y_min], jnp.float32)
    points = unit * scale + offset
    return points, batman_inside(points).astype(jnp.int32)


def batman_logo(n, key):
    """``n`` points drawn uniformly from the box [−8, 8] × [−4, 4], labelled 1 inside the Batman logo.

    About 38 % of the points fall inside (logo area ≈ 48.4 of the box's 128).
    A classifier learning these labels must learn the non-linear curve of the
    notes' "generate a superhero logo" slide; no download is involved.

    Args:
      n: number of points, a positive int.
      key: a ``jax.random`` PRNG key.

    Returns:
      ``(points, labels)``: points float32 (n, 2) as (x, y); labels int32 (n,) in {0, 1}.
    """
    _validation.check_integer(n, name="n", minimum=1)
    return _sample(key, int(n))


def logo_grid(resolution: int = 200):
    """A ``(resolution, 2·resolution)`` grid of points over the box [−8, 8] × [−4, 4].

    Args:
      resolution: rows of the grid (pixels per 8 units of height); the grid has twice as many columns.

    Returns:
      ``(xs, ys, points)``: xs float32 (2R,), ys float32 (R,), points float32 (R·2R, 2) in row-major order
      (row i is ``ys[i]``), so a per-point result reshapes to ``(R, 2R)`` with y running up the rows.
    """
    _validation.check_integer(resolution, name="resolution", minimum=1)
    x_min, x_max, y_min, y_max = BOX
    xs = np.linspace(x_min, x_max, 2 * resolution, dtype=np.float32)
    ys = np.linspace(y_min, y_max, resolution, dtype=np.float32)
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return xs, ys, points


def logo_image(apply_fn, params, *, resolution: int = 200, input_scale=INPUT_SCALE):
    """The class a trained network predicts at every grid point, beside the true logo.

    Args:
      apply_fn: ``apply(params, x) -> (n, 2) logits``, e.g. ``model.apply`` of ``mlp.make((2, 64, 64, 2), ...)``.
      params: the network's params.
      resolution: rows of the grid (see :func:`logo_grid`).
      input_scale: the points are divided by this before the network sees them, as in training.

    Returns:
      ``(predicted, truth)``: predicted int (R, 2R) with 1 where the network says "inside", truth bool (R, 2R)
      from :func:`batman_inside`. Row 0 is y = −4 (draw with ``origin="lower"``).
    """
    _, _, points = logo_grid(resolution)
    scaled = jnp.asarray(points / np.asarray(input_scale, np.float32))
    predicted = np.asarray(jnp.argmax(apply_fn(params, scaled), axis=-1))
    truth = np.asarray(batman_inside(points))
    shape = (resolution, 2 * resolution)
    return predicted.reshape(shape), truth.reshape(shape)
