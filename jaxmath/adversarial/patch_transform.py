"""The patch under rotation and scale: expectation over transformation beyond positions (Brown et al. 2017).

A placement puts the patch's centre at a (sub-pixel) point c of the image, turns it by θ and scales its side by
s. Pasting reads, for every image pixel r = (row, column), where that pixel falls in the patch,

    u(r) = R(θ)ᵀ (r − c) / s + ((p − 1)/2, (q − 1)/2),      R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]]

and replaces the pixel by the bilinear sample of the patch at u when u lies inside the patch's pixel square
[−½, p − ½) × [−½, q − ½) (between the outer pixel centres and that border, the edge value). With rows pointing
down, θ > 0 turns the patch counter-clockwise as displayed (θ = 90° pastes ``np.rot90(patch)``). θ = 0, s = 1
and c = l + ((p − 1)/2, (q − 1)/2) for an integer corner l is exactly :func:`apply_patch` at l.

:func:`random_placements` draws θ uniform in [−θ_max, θ_max], s uniform in [s_lo, s_hi] and then c uniform over
the centres where the turned, scaled square lies whole inside the image.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy import ndimage

from jaxmath import _validation as V

Array = jax.Array


class PatchPlacement(NamedTuple):
    """Where and how each image gets the patch.

    centers: ``(n, 2)`` float (row, column) of the patch's centre, in pixel coordinates (pixel centres are the
      integers; the image spans [−½, H − ½) × [−½, W − ½)).
    angles: ``(n,)`` float rotation θ in radians, counter-clockwise as displayed.
    scales: ``(n,)`` float s > 0, the pasted side over the patch's side.
    """

    centers: Array
    angles: Array
    scales: Array


def _coordinate_dtype(dtype):
    # bfloat16 resolves 1/8 of a pixel at 28: sample positions are computed in float32 at least
    return jnp.promote_types(dtype, jnp.float32)


def _half_extents(patch_shape, angles, scales):
    """Half the height and width of the turned, scaled patch's bounding box."""
    p, q = patch_shape
    cos, sin = jnp.abs(jnp.cos(angles)), jnp.abs(jnp.sin(angles))
    return scales * (p * cos + q * sin) / 2, scales * (q * cos + p * sin) / 2


def _paste_one(image, patch, center, angle, scale):
    p, q = patch.shape
    dtype = _coordinate_dtype(image.dtype)
    rows = jnp.arange(image.shape[0], dtype=dtype)[:, None] - center[0]
    cols = jnp.arange(image.shape[1], dtype=dtype)[None, :] - center[1]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    u_row = (cos * rows + sin * cols) / scale + (p - 1) / 2
    u_col = (-sin * rows + cos * cols) / scale + (q - 1) / 2
    inside = (u_row >= -0.5) & (u_row < p - 0.5) & (u_col >= -0.5) & (u_col < q - 0.5)
    sample = ndimage.map_coordinates(patch.astype(dtype), [jnp.clip(u_row, 0, p - 1), jnp.clip(u_col, 0, q - 1)],
                                     order=1, mode="nearest")
    return jnp.where(inside, sample.astype(image.dtype), image)


@jax.jit
def apply_transformed_patch(x: Array, patch: Array, placement: PatchPlacement) -> Array:
    """Paste ``patch`` into every image, turned and scaled: image i gets placement i (see the module's formula).

    Differentiable in ``x`` and ``patch`` (bilinear sampling is linear in the patch); the placement is data, not
    differentiated. Pixels outside the turned square keep their value, whatever the placement, so a placement
    that pokes out of the image simply loses that part of the patch.

    Args:
      x: ``(n, H, W)`` float images.
      patch: ``(p, q)`` array, cast to x's dtype.
      placement: a :class:`PatchPlacement` with ``centers (n, 2)``, ``angles (n,)``, ``scales (n,)``.

    Returns:
      ``(n, H, W)`` array of x's dtype.
    """
    V.check_ndim(x, 3, name="x")
    V.check_ndim(patch, 2, name="patch")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must be float images (scale uint8 by 1/255 first), got x.dtype={x.dtype}")
    if not (isinstance(placement, (tuple, list)) and len(placement) == 3):
        raise TypeError(f"placement must be a PatchPlacement(centers, angles, scales), got {type(placement).__name__}")
    placement = PatchPlacement(*(jnp.asarray(field) for field in placement))  # lists become arrays, not pytrees
    n = x.shape[0]
    for field, shape in zip(PatchPlacement._fields, ((n, 2), (n,), (n,))):
        got = jnp.shape(getattr(placement, field))
        if got != shape:
            raise ValueError(f"placement.{field} must have shape {shape} for x.shape={x.shape}, got {got}")
    return jax.vmap(_paste_one, in_axes=(0, None, 0, 0, 0))(x, patch.astype(x.dtype), *placement)


def check_transform_range(max_rotation_degrees, scale_range, *, image_shape, patch_shape) -> tuple[float, tuple]:
    """Validate θ_max and (s_lo, s_hi); the largest turned, scaled patch must fit in the image.

    Returns ``(max_rotation_degrees, (s_lo, s_hi))`` as Python floats.
    """
    V.check_in_range(max_rotation_degrees, name="max_rotation_degrees", low=0.0, high=180.0, high_inclusive=True)
    if not isinstance(scale_range, (tuple, list)) or len(scale_range) != 2:
        raise TypeError(f"scale_range must be a pair (low, high), got scale_range={scale_range!r}")
    low, high = scale_range
    V.check_positive(low, name="scale_range[0]")
    V.check_positive(high, name="scale_range[1]")
    low, high, max_degrees = float(low), float(high), float(max_rotation_degrees)
    if not (math.isfinite(high) and low <= high):
        raise ValueError(f"scale_range must be finite with low <= high, got scale_range={scale_range!r}")
    # |cos θ| p + |sin θ| q over |θ| ≤ θ_max peaks at θ_max or at atan2(q, p) (beyond 90° it repeats mirrored)
    p, q = patch_shape
    last = math.radians(min(max_degrees, 90.0))
    worst_rows = max(p * math.cos(t) + q * math.sin(t) for t in (0.0, last, min(math.atan2(q, p), last)))
    worst_cols = max(q * math.cos(t) + p * math.sin(t) for t in (0.0, last, min(math.atan2(p, q), last)))
    if high * worst_rows > image_shape[0] + 1e-9 or high * worst_cols > image_shape[1] + 1e-9:
        raise ValueError(
            f"the patch turned by up to max_rotation_degrees={max_degrees:g} and scaled by up to "
            f"scale_range[1]={high:g} spans {high * worst_rows:.1f}×{high * worst_cols:.1f} pixels and does not "
            f"fit in {image_shape[0]}×{image_shape[1]} images: lower either or the patch size {p}×{q}")
    return max_degrees, (low, high)


def random_placements(key: Array, *, num_images: int, image_shape: tuple, patch_shape: tuple,
                      max_rotation_degrees: float = 0.0, scale_range: tuple = (1.0, 1.0),
                      dtype=jnp.float32) -> PatchPlacement:
    """``num_images`` placements: θ ~ U[−θ_max, θ_max], s ~ U[s_lo, s_hi], then the centre uniform over the
    centres where the turned, scaled patch lies whole inside the image.

    Args:
      key: PRNG key.
      num_images: n.
      image_shape: (H, W).
      patch_shape: (p, q).
      max_rotation_degrees: θ_max in [0, 180], a Python number.
      scale_range: (s_lo, s_hi), Python numbers, 0 < s_lo ≤ s_hi; the largest turned, scaled patch must fit.
      dtype: of the centres, angles and scales (float32 at least).

    Returns:
      A :class:`PatchPlacement` of ``num_images`` placements.
    """
    check_transform_range(max_rotation_degrees, scale_range, image_shape=image_shape, patch_shape=patch_shape)
    dtype = _coordinate_dtype(dtype)
    angle_key, scale_key, center_key = jax.random.split(key, 3)
    max_angle = jnp.deg2rad(jnp.asarray(max_rotation_degrees, dtype))
    angles = jax.random.uniform(angle_key, (num_images,), dtype, -max_angle, max_angle)
    scales = jax.random.uniform(scale_key, (num_images,), dtype, scale_range[0], scale_range[1])
    half_rows, half_cols = _half_extents(patch_shape, angles, scales)
    half = jnp.stack([half_rows, half_cols], axis=-1)
    room = jnp.maximum(jnp.asarray(image_shape, dtype) - 2 * half, 0)  # rounding at an exact fit
    centers = half - 0.5 + jax.random.uniform(center_key, (num_images, 2), dtype) * room
    return PatchPlacement(centers, angles, scales)
