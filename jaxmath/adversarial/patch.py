"""The adversarial patch (Brown et al. 2017, arXiv 1712.09665): a sticker that turns any digit into one class.

Where an attack perturbs each image a little, the patch replaces a small square of any image with the same
pixels, at any place. It is trained by expectation over transformation: each step pastes the patch at random
positions into a random batch of digits and descends the batch's mean cross-entropy of the target class,

    P ← clip(Adam step on  E_{x ~ data, l ~ positions} [−log softmax(f(A(x, P, l)))_t],  0, 1)

where A(x, P, l) pastes P into x with its top-left corner at l (:func:`apply_patch`). With
``max_rotation_degrees`` or ``scale_range`` the placements l also turn and scale the patch, as in the paper
(:mod:`~jaxmath.adversarial.patch_transform`), and the patch learns to work whichever way it is stuck on. Its
targeted success rate on held-out digits of other classes (:func:`patch_success_rate`, under the same
transformations) is the paper's measure; a patch of uniform noise of the same size is the baseline.

Images are ``(n, H, W)``, uint8 (scaled by 1/255) or floats in [0, 1]; with ``flatten=True`` (default) the
model sees ``(n, H·W)`` rows, which the MLP and LeNet-5 both accept.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxmath import _validation as V
from jaxmath import optim
from jaxmath.adversarial.fooling import _params_dtype, check_rate, check_target, num_classes_of
from jaxmath.adversarial.losses import cross_entropy
from jaxmath.adversarial.patch_transform import (PatchPlacement, apply_transformed_patch, check_transform_range,
                                                 random_placements)
from jaxmath.training.objectives import prepare_images
from jaxmath.unsupervised import _guard as _g

Array = jax.Array


class PatchInfo(NamedTuple):
    """What :func:`fit_patch` did.

    converged: () bool, always False: the fit has no stopping test and runs all ``max_steps`` steps.
    num_steps: () int32, Adam steps kept.
    loss_history: (max_steps,) mean cross-entropy of the target on each step's batch, at the patch the step
      starts from (NaN from a rejected step on).
    nonfinite: () bool, a step gave a non-finite loss or patch: it and every later step were rejected, the last
      finite patch is returned.
    first_nonfinite_step: () int32, that step's index, -1 when every step was finite.
    """

    converged: Array
    num_steps: Array
    loss_history: Array
    nonfinite: Array
    first_nonfinite_step: Array


def _check_patch_shapes(x, patch):
    V.check_ndim(x, 3, name="x")
    V.check_ndim(patch, 2, name="patch")
    if patch.shape[0] > x.shape[1] or patch.shape[1] > x.shape[2]:
        raise ValueError(f"patch must fit in the images, got patch.shape={patch.shape} and x.shape={x.shape}")


@jax.jit
def apply_patch(x: Array, patch: Array, positions: Array) -> Array:
    """Paste ``patch`` into every image, image i with its top-left corner at ``positions[i]``.

        A(x, P, l)_{r,c} = P_{r−l₀, c−l₁}  if 0 ≤ r − l₀ < p and 0 ≤ c − l₁ < q,  else x_{r,c}

    One ``lax.dynamic_update_slice`` per image under ``vmap``; differentiable in ``x`` and ``patch``. As with
    every JAX dynamic slice, a negative position counts from the end (−k → H − k) and the result is clamped to
    [0, H − p] × [0, W − q], so the patch always lies whole inside the image (:func:`random_positions` draws
    only places that fit).

    Args:
      x: ``(n, H, W)`` float images.
      patch: ``(p, q)`` array, p ≤ H, q ≤ W, cast to x's dtype.
      positions: ``(n, 2)`` integer (row l₀, column l₁) of each image's patch corner.

    Returns:
      ``(n, H, W)`` array of x's dtype.
    """
    _check_patch_shapes(x, patch)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must be float images (scale uint8 by 1/255 first), got x.dtype={x.dtype}")
    if jnp.ndim(positions) != 2 or jnp.shape(positions) != (x.shape[0], 2):
        raise ValueError(f"positions must be (n, 2) = ({x.shape[0]}, 2), got positions.shape={jnp.shape(positions)}")
    if not jnp.issubdtype(positions.dtype, jnp.integer):
        raise TypeError(f"positions must be integers, got positions.dtype={positions.dtype}")
    patch = patch.astype(x.dtype)
    return jax.vmap(lambda image, at: lax.dynamic_update_slice(image, patch, (at[0], at[1])))(x, positions)


def random_positions(key: Array, *, num_images: int, image_shape: tuple, patch_shape: tuple) -> Array:
    """``(num_images, 2)`` int32 top-left corners, uniform over the (H − p + 1)(W − q + 1) places that fit."""
    high = jnp.asarray([image_shape[0] - patch_shape[0] + 1, image_shape[1] - patch_shape[1] + 1], jnp.int32)
    return jax.random.randint(key, (num_images, 2), 0, high, dtype=jnp.int32)


def _paste(x, patch, positions):
    if isinstance(positions, PatchPlacement):
        return apply_transformed_patch(x, patch, positions)
    return apply_patch(x, patch, positions)


def _draw(key, num_images, image_shape, patch_shape, transform):
    """Integer corners when the patch only moves (``transform`` None), else placements that turn and scale."""
    if transform is None:
        return random_positions(key, num_images=num_images, image_shape=image_shape, patch_shape=patch_shape)
    max_rotation_degrees, scale_range = transform
    return random_placements(key, num_images=num_images, image_shape=image_shape, patch_shape=patch_shape,
                             max_rotation_degrees=max_rotation_degrees, scale_range=scale_range)


def _transform(max_rotation_degrees, scale_range, *, image_shape, patch_shape):
    """The static (θ_max, (s_lo, s_hi)) of a fit or a rate, None for positions only (the exact integer paste)."""
    max_degrees, scales = check_transform_range(max_rotation_degrees, scale_range, image_shape=image_shape,
                                                patch_shape=patch_shape)
    return None if max_degrees == 0.0 and scales == (1.0, 1.0) else (max_degrees, scales)


def _logits(apply_fn, params, x, flatten):
    return apply_fn(params, x.reshape(x.shape[0], -1) if flatten else x)


@partial(jax.jit, static_argnames=("apply_fn", "flatten"))
def patch_loss(apply_fn: Callable, params: Any, x: Array, patch: Array, positions: Array, *, target: Any,
               flatten: bool = True) -> Array:
    """Mean cross-entropy of the target class over the patched images: (1/n) Σ_i −log softmax(f(A(x_i, P, l_i)))_t.

    f ↔ ``apply_fn(params, ·)``, P ↔ ``patch``, l ↔ ``positions``, t ↔ ``target``, A ↔ :func:`apply_patch`
    (:func:`~jaxmath.adversarial.patch_transform.apply_transformed_patch` for a placement).

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, num_classes)`` logits (static).
      params: the model's params.
      x: ``(n, H, W)`` float images.
      patch: ``(p, q)`` float array.
      positions: ``(n, 2)`` integer corners, or a
        :class:`~jaxmath.adversarial.patch_transform.PatchPlacement` (centres, angles, scales).
      target: integer class t (a traced scalar is fine).
      flatten: give the model ``(n, H·W)`` rows.

    Returns:
      () scalar in the logits' dtype.
    """
    logits = _logits(apply_fn, params, _paste(x, patch, positions), flatten)
    return jnp.mean(cross_entropy(logits, jnp.full((x.shape[0],), target, jnp.int32)))


@partial(jax.jit, static_argnames=("apply_fn", "patch_size", "max_steps", "batch_size", "flatten", "transform"))
def _fit_patch(apply_fn, params, x, key, target, learning_rate, *, patch_size, max_steps, batch_size, flatten,
               transform):
    dtype = _params_dtype(params)
    init_key, key = jax.random.split(key)
    patch = jax.random.uniform(init_key, (patch_size, patch_size), dtype)
    optimizer = optim.adam(learning_rate=learning_rate)
    zero, one = jnp.asarray(0, dtype), jnp.asarray(1, dtype)
    rows = x.reshape(x.shape[0], -1)  # gather whole rows (cheaper on CPU), restore (H, W) after

    def step(carry, i):
        patch, opt_state, first_bad = carry
        batch_key, position_key = jax.random.split(jax.random.fold_in(key, i))
        idx = jax.random.randint(batch_key, (batch_size,), 0, x.shape[0])
        batch = prepare_images(rows[idx], dtype, flatten=False).reshape((batch_size,) + x.shape[1:])
        positions = _draw(position_key, batch_size, x.shape[1:], patch.shape, transform)
        loss, grad = jax.value_and_grad(
            lambda p: patch_loss(apply_fn, params, batch, p, positions, target=target, flatten=flatten))(patch)
        updates, new_state = optimizer.update(grad, opt_state, patch)
        candidate = jnp.clip(optim.apply_updates(patch, updates), zero, one)
        ok = _g.all_finite(loss, candidate)
        (patch, opt_state), first_bad = _g.keep_if(ok, first_bad, i, (candidate, new_state), (patch, opt_state))
        return (patch, opt_state, first_bad), loss

    init = (patch, optimizer.init(patch), jnp.asarray(_g.NO_STEP, jnp.int32))
    (patch, _, first_bad), losses = lax.scan(step, init, jnp.arange(max_steps, dtype=jnp.int32))
    bad = first_bad >= 0
    info = PatchInfo(jnp.zeros((), bool), jnp.where(bad, first_bad, max_steps).astype(jnp.int32),
                     _g.after_stop(losses, first_bad), bad, first_bad)
    return patch, info


def _check_images(x, *, name="x"):
    V.check_ndim(x, 3, name=name)
    if x.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one image, got {name}.shape={x.shape}")
    V.check_finite(x, name=name)


def fit_patch(
    apply_fn: Callable, params: Any, x: Any, key: Array, *, target: int, patch_size: int = 8, max_steps: int,
    batch_size: int, learning_rate: Any, max_rotation_degrees: float = 0.0, scale_range: tuple = (1.0, 1.0),
    flatten: bool = True,
) -> tuple[Array, PatchInfo]:
    """A universal square patch that makes the model read any digit as ``target``, wherever it is pasted.

        P⁰ ~ U[0, 1]^{p×p};   each step k: batch x_i (i < b) drawn from ``x`` with replacement, corners l_i
        uniform over the places that fit (or placements turned and scaled at random),
        g = ∇_P (1/b) Σ_i −log softmax(f(A(x_i, P, l_i)))_t,
        P ← clip(Adam_η(P, g), 0, 1)

    One step is one Adam step on one random batch; the loop is a jitted ``lax.scan`` over ``max_steps`` with
    per-step keys ``fold_in(key, k)``. A step with a non-finite loss or patch is rejected with every later one
    (the last finite patch comes back, ``info.nonfinite`` set, a ``RuntimeWarning``).

    f ↔ ``apply_fn(params, ·)``, t ↔ ``target``, p ↔ ``patch_size``, b ↔ ``batch_size``, η ↔ ``learning_rate``.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, num_classes)`` logits, e.g. ``model.apply`` (hashable: static).
      params: the model's params (the patch takes their dtype).
      x: ``(n, H, W)`` uint8 (scaled by 1/255 per batch) or float images in [0, 1]: the training digits.
      key: PRNG key (the starting patch, the batches, the positions).
      target: the class t to turn every digit into.
      patch_size: p, 1 ≤ p ≤ min(H, W).
      max_steps: Adam steps, >= 1.
      batch_size: b >= 1 images per step.
      learning_rate: η > 0, finite.
      max_rotation_degrees: θ_max in [0, 180]: each placement turns the patch by θ ~ U[−θ_max, θ_max].
      scale_range: (s_lo, s_hi), 0 < s_lo ≤ s_hi: each placement scales the patch's side by s ~ U[s_lo, s_hi].
        With the defaults (0 and (1, 1)) the patch is pasted whole at integer corners (:func:`apply_patch`);
        otherwise by bilinear sampling at sub-pixel centres (:func:`random_placements`). The largest turned,
        scaled patch must fit in the image.
      flatten: give the model ``(n, H·W)`` rows.

    Returns:
      ``(patch, info)``: patch ``(p, p)`` in [0, 1], info a :class:`PatchInfo`.
    """
    V.check_key(key)
    x = jnp.asarray(x)
    _check_images(x)
    V.check_integer(patch_size, name="patch_size", minimum=1)
    if patch_size > min(x.shape[1:]):
        raise ValueError(f"patch_size must be <= the image side {min(x.shape[1:])}, got patch_size={patch_size} "
                         f"for x.shape={x.shape}")
    V.check_integer(max_steps, name="max_steps", minimum=1)
    V.check_integer(batch_size, name="batch_size", minimum=1)
    check_rate(learning_rate, name="learning_rate")
    transform = _transform(max_rotation_degrees, scale_range, image_shape=x.shape[1:],
                           patch_shape=(patch_size, patch_size))
    target = _scalar_target(target, apply_fn, params, x, flatten)
    patch, info = _fit_patch(apply_fn, params, x, key, target, learning_rate, patch_size=patch_size,
                             max_steps=max_steps, batch_size=batch_size, flatten=flatten, transform=transform)
    _g.warn_nonfinite(info, where="fit_patch", what="patch", hint="; lower learning_rate")
    return patch, info


def _scalar_target(target, apply_fn, params, x, flatten):
    target = check_target(target, num_classes_of(apply_fn, params, x.shape[1:], flatten=flatten))
    if target.ndim != 0:
        raise ValueError(f"target must be one class index, got target.shape={target.shape}")
    return target


@partial(jax.jit, static_argnames=("apply_fn", "batch_size", "flatten", "transform"))
def _success_counts(apply_fn, params, x, labels, patch, key, target, *, batch_size, flatten, transform):
    n = x.shape[0]
    dtype = _params_dtype(params)
    positions = _draw(key, n, x.shape[1:], patch.shape, transform)
    num_batches = -(-n // batch_size)
    pad = num_batches * batch_size - n
    # Fixed-size batches (the last one padded and masked out): one compiled forward pass for any n.
    counted = jnp.pad(labels != target, (0, pad))
    x = jnp.pad(x, ((0, pad), (0, 0), (0, 0)))
    positions = jax.tree.map(lambda a: jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1), mode="edge"), positions)

    def one_batch(args):
        xb, pb, cb = args
        patched = _paste(prepare_images(xb, dtype, flatten=False), patch, pb)
        hits = jnp.argmax(_logits(apply_fn, params, patched, flatten), axis=-1) == target
        return jnp.sum(hits & cb)

    split = (x.reshape((num_batches, batch_size) + x.shape[1:]),
             jax.tree.map(lambda a: a.reshape((num_batches, batch_size) + a.shape[1:]), positions),
             counted.reshape(num_batches, batch_size))
    return jnp.sum(lax.map(one_batch, split)), jnp.sum(counted)


def patch_success_rate(
    apply_fn: Callable, params: Any, x: Any, labels: Any, patch: Any, key: Array, *, target: int,
    batch_size: int = 1000, max_rotation_degrees: float = 0.0, scale_range: tuple = (1.0, 1.0),
    flatten: bool = True,
) -> float:
    """Targeted success of a patch: the fraction of digits of other classes read as ``target`` once patched.

        rate = Σ_i [y_i ≠ t] [argmax f(A(x_i, P, l_i)) = t]  /  Σ_i [y_i ≠ t],   l_i uniform (from ``key``)

    The placements l_i come from :func:`random_positions` (defaults) or :func:`random_placements` with the
    given rotation and scale ranges, as in :func:`fit_patch`.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, num_classes)`` logits.
      params: the model's params.
      x: ``(n, H, W)`` uint8 or float images in [0, 1] (held-out test digits).
      labels: ``(n,)`` integer labels y.
      patch: ``(p, q)`` float array in [0, 1] (from :func:`fit_patch`, or noise for the baseline).
      key: PRNG key of the positions.
      target: the class t.
      batch_size: images per forward pass.
      max_rotation_degrees: θ_max of the placements (see :func:`fit_patch`).
      scale_range: (s_lo, s_hi) of the placements (see :func:`fit_patch`).
      flatten: give the model ``(n, H·W)`` rows.

    Returns:
      The rate as a Python float in [0, 1].
    """
    V.check_key(key)
    x, labels, patch = jnp.asarray(x), jnp.asarray(labels), jnp.asarray(patch)
    _check_images(x)
    V.check_ndim(labels, 1, name="labels")
    V.check_same_length(x, labels, names=("x", "labels"))
    V.check_ndim(patch, 2, name="patch")
    _check_patch_shapes(x, patch)
    V.check_finite(patch, name="patch")
    V.check_integer(batch_size, name="batch_size", minimum=1)
    transform = _transform(max_rotation_degrees, scale_range, image_shape=x.shape[1:], patch_shape=patch.shape)
    target = _scalar_target(target, apply_fn, params, x, flatten)
    num_classes = num_classes_of(apply_fn, params, x.shape[1:], flatten=flatten)
    V.check_labels(labels, num_classes, name="labels")
    hits, count = _success_counts(apply_fn, params, x, labels, patch.astype(_params_dtype(params)), key, target,
                                  batch_size=min(batch_size, x.shape[0]), flatten=flatten, transform=transform)
    if int(count) == 0:
        raise ValueError(f"labels has no digit of a class other than target={int(target)}: the rate is undefined")
    return float(np.asarray(hits) / np.asarray(count))
