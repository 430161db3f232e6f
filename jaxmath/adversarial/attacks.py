"""Gradient attacks on a classifier's input: FGSM and projected gradient descent (PGD), L∞ and L2.

Both attacks take ``(apply_fn, params, x, labels)``: ``apply_fn(params, x)`` returns logits ``(n, k)``, ``x``
is a float batch ``(n, ...)`` inside the clip range, ``labels`` are ``(n,)`` integers. They maximise the
per-example objective

    J(x') = L(f(x'), y)            untargeted: ``labels`` are the true classes, move away from them
    J(x') = −L(f(x'), t)           targeted:   ``labels`` are the target classes t, move towards them

with ``L`` the loss named by ``loss`` (``jaxmath.adversarial.cross_entropy`` or ``cw_margin``) and ``f`` →
``apply_fn(params, ·)``. ``params`` pass through ``lax.stop_gradient``: an attack is a function of the input
only, so training through it (Madry et al.'s min-max, by Danskin's theorem) differentiates the loss at the
attack's output, never through the attack.

The gradient of Σ_i J_i is taken once for the whole batch, which is each example's own gradient as long as
``apply_fn`` treats rows independently (true of jaxmath's models; not of batch statistics computed in the
forward pass). The ball guarantees assume x lies in the clip range: clipping then never moves a pixel away from
x, so it cannot push x' out of the ball.

Both are jitted with ``apply_fn`` and the options static. ``eps`` and ``step_size`` are traced, so
``jax.vmap`` over ``eps`` gives a whole robustness curve from one compile. A negative ``eps`` (no ball) turns
the output into NaN so it cannot pass unnoticed; host entry points (``robust_accuracy``, the CLI) refuse it
before any compiled work.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from jaxmath import _validation as V
from jaxmath.adversarial.losses import LOSSES

__all__ = ["fgsm", "pgd", "NORMS"]

NORMS = ("linf", "l2")


# --------------------------------------------------------------------------- shared pieces


def _check_common(x, labels, *, loss, targeted, clip):
    """Trace-time checks shared by the attacks; returns x as an array."""
    V.check_choice(loss, tuple(LOSSES), name="loss")
    if not isinstance(targeted, bool):
        raise TypeError(f"targeted must be True or False, got targeted={targeted!r}")
    if clip is not None:
        if not (isinstance(clip, tuple) and len(clip) == 2):
            raise TypeError(f"clip must be a tuple (low, high) or None, got clip={clip!r}")
        V.check_real(clip[0], name="clip[0]")
        V.check_real(clip[1], name="clip[1]")
        if not clip[0] < clip[1]:
            raise ValueError(f"clip must satisfy low < high, got clip={clip!r}")
    if x is None or isinstance(x, str):
        raise TypeError(f"x must be a float array, got {type(x).__name__}")
    # A weakly typed x (e.g. from jnp.full) would let the params' dtype win in the forward pass, and the
    # attack's loop carries must keep one dtype: pin x's dtype.
    x = jnp.asarray(x)
    x = x.astype(x.dtype)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"x must be a float array in the clip range (scale uint8 images by 1/255 first), got x.dtype={x.dtype.name}"
        )
    if x.ndim < 1:
        raise ValueError(f"x must be a batch (n, ...) with one row per label, got x.shape={x.shape}")
    labels = jnp.asarray(labels)
    V.check_ndim(labels, 1, name="labels")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got labels.dtype={labels.dtype.name}")
    V.check_same_length(x, labels, names=("x", "labels"))
    return x, labels


def _scalar(value, dtype, *, name):
    """A traced or concrete scalar hyperparameter as a 0-d array of the input's dtype."""
    V.check_real(value, name=name)
    if jnp.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar (vmap over it for several values), got {name}.shape={jnp.shape(value)}")
    return jnp.asarray(value).astype(dtype)


def _nan_unless_ball(x_adv, eps):
    """NaN everywhere when ε < 0 (or NaN): there is no ball to stay in, and a quiet wrong image would mislead."""
    return jnp.where(eps >= 0, x_adv, jnp.asarray(jnp.nan, x_adv.dtype))


def _clip_range(x_adv, clip):
    if clip is None:
        return x_adv
    return jnp.clip(x_adv, jnp.asarray(clip[0], x_adv.dtype), jnp.asarray(clip[1], x_adv.dtype))


def _objective_and_logits(apply_fn, params, x_adv, labels, *, loss, targeted):
    logits = apply_fn(params, x_adv)
    if jnp.ndim(logits) != 2 or jnp.shape(logits)[0] != x_adv.shape[0]:
        raise ValueError(
            f"apply_fn(params, x) must return logits of shape (n, k) with n = x.shape[0] = {x_adv.shape[0]}, "
            f"got shape {jnp.shape(logits)}"
        )
    value = LOSSES[loss](logits, labels)
    return (-value if targeted else value), logits


def _objective_grad(apply_fn, params, x_adv, labels, *, loss, targeted):
    """∇ₓ J for every example at once (rows are independent, so ∇ of Σ_i J_i is each row's own gradient)."""

    def total(xa):
        value, logits = _objective_and_logits(apply_fn, params, xa, labels, loss=loss, targeted=targeted)
        return jnp.sum(value), (value, logits)

    grad, (value, logits) = jax.grad(total, has_aux=True)(x_adv)
    return grad, value, logits


def _success(logits, labels, targeted):
    """Success from the logits themselves: the target is predicted, or the true class no longer is."""
    predicted = jnp.argmax(logits, axis=1)
    return predicted == labels if targeted else predicted != labels


def _row_norms(v):
    """L2 norm of each row of ``v`` (over all axes but the first), accumulated in at least float32."""
    wide = v.astype(jnp.promote_types(v.dtype, jnp.float32))
    axes = tuple(range(1, v.ndim))
    return jnp.sqrt(jnp.sum(wide * wide, axis=axes)).astype(v.dtype)


def _per_row(s, like):
    return s.reshape(s.shape + (1,) * (like.ndim - 1))


# --------------------------------------------------------------------------- FGSM


@partial(jax.jit, static_argnames=("apply_fn", "loss", "targeted", "clip"))
def fgsm(apply_fn, params, x, labels, *, eps, loss="cross_entropy", targeted=False, clip=(0.0, 1.0)):
    """The fast gradient sign method (Goodfellow et al. 2015): one signed gradient step of size ε.

        x' = clip_[a, b]( x + ε · sign(∇ₓ J(x)) ),     J = L(f(x), y)  or  −L(f(x), t) when targeted

    Symbols: ``x`` → ``x``, ``ε`` → ``eps``, ``f`` → ``apply_fn(params, ·)``, ``L`` → ``loss``,
    ``y``/``t`` → ``labels``, ``[a, b]`` → ``clip``. ``sign(0) = 0``: an input with a zero gradient is
    returned unchanged. Every pixel moves by ε (before clipping), the largest step inside the L∞ ball.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, k)`` logits (static: a new function object compiles anew).
      params: the model's params (gradients do not flow into them).
      x: ``(n, ...)`` float array in the clip range.
      labels: ``(n,)`` integers: the true classes, or the target classes when ``targeted``.
      eps: scalar ε ≥ 0 (may be traced, e.g. under ``vmap``).
      loss: ``"cross_entropy"`` or ``"cw_margin"``.
      targeted: descend the loss of ``labels`` instead of ascending it.
      clip: ``(low, high)`` pixel range, or None for no clipping.

    Returns:
      ``x_adv`` with the shape and dtype of ``x``.
    """
    x, labels = _check_common(x, labels, loss=loss, targeted=targeted, clip=clip)
    eps = _scalar(eps, x.dtype, name="eps")
    params = jax.lax.stop_gradient(params)
    grad, _, _ = _objective_grad(apply_fn, params, x, labels, loss=loss, targeted=targeted)
    return _nan_unless_ball(_clip_range(x + eps * jnp.sign(grad), clip), eps)


# --------------------------------------------------------------------------- PGD


def _random_start(key, x, eps, norm):
    """A uniform draw from the ε-ball around each row of ``x``, in at least float32 then cast to x's dtype."""
    wide = jnp.promote_types(x.dtype, jnp.float32)
    eps_w = eps.astype(wide)
    if norm == "linf":
        return (jax.random.uniform(key, x.shape, wide, minval=-1.0, maxval=1.0) * eps_w).astype(x.dtype)
    # Uniform in the d-ball from one Gaussian draw: normalise g ~ N(0, I_{d+2}) onto the unit sphere of
    # R^{d+2} and keep its first d coordinates (Voelker, Gosmann and Stewart 2017). One draw instead of a
    # direction plus a radius ε·U^{1/d}, which gives the same distribution.
    n, d = x.shape[0], math.prod(x.shape[1:])
    g = jax.random.normal(key, (n, d + 2), wide)
    on_sphere = g / jnp.sqrt(jnp.sum(g * g, axis=1, keepdims=True))
    return (eps_w * on_sphere[:, :d]).reshape(x.shape).astype(x.dtype)


def _pgd_step(x_adv, grad, x, eps, step_size, norm, clip):
    """One ascent step, then projection onto the ε-ball around x, then the clip range."""
    if norm == "linf":
        moved = x_adv + step_size * jnp.sign(grad)
        projected = jnp.clip(moved, x - eps, x + eps)
    else:
        tiny = jnp.asarray(jnp.finfo(x.dtype).tiny, x.dtype)
        direction = grad / _per_row(jnp.maximum(_row_norms(grad), tiny), grad)
        delta = x_adv + step_size * direction - x
        shrink = jnp.minimum(jnp.asarray(1, x.dtype), eps / jnp.maximum(_row_norms(delta), tiny))
        projected = x + delta * _per_row(shrink, delta)
    # Clipping after the projection keeps the ball: for x inside [low, high], clipping moves no coordinate
    # of x' − x away from 0.
    return _clip_range(projected, clip)


@partial(
    jax.jit,
    static_argnames=("apply_fn", "num_steps", "norm", "random_start", "num_restarts", "loss", "targeted", "clip"),
)
def pgd(
    apply_fn,
    params,
    x,
    labels,
    key,
    *,
    eps,
    step_size,
    num_steps,
    norm="linf",
    random_start=True,
    num_restarts=1,
    loss="cross_entropy",
    targeted=False,
    clip=(0.0, 1.0),
):
    """Projected gradient ascent on the attack objective inside the ε-ball (Madry et al. 2018).

    Starting from x⁰ = clip(x + δ) (δ drawn uniformly from the ball when ``random_start``, else 0), each of
    the T steps is

        L∞:  x^{s+1} = clip_[a,b]( Π_∞( x^s + α · sign(∇ₓ J(x^s)) ) ),   Π_∞(v) = min(max(v, x − ε), x + ε)
        L2:  x^{s+1} = clip_[a,b]( Π_2( x^s + α · g / ‖g‖₂ ) ),  g = ∇ₓ J(x^s),  Π_2(v) = x + (v − x)·min(1, ε / ‖v − x‖₂)

    with J = L(f(x'), y) (untargeted) or −L(f(x'), t) (targeted), and norms taken per example over all its
    pixels. Symbols: ``ε`` → ``eps``, ``α`` → ``step_size``, ``T`` → ``num_steps``, ``f`` →
    ``apply_fn(params, ·)``, ``L`` → ``loss``, ``y``/``t`` → ``labels``, ``[a, b]`` → ``clip``. The steps
    run in a ``lax.fori_loop``; the last iterate is returned.

    Why a random start and restarts: the loss surface around x is not concave, and at x itself the gradient
    can be tiny or misleading (gradient masking, e.g. a saturated softmax), so a single run from x can stall
    in a poor local maximum. Madry et al. (2018) start each run from a uniform point in the ball and restart
    several times; the maxima found are many but of similar value, which is the evidence that PGD is close
    to the strongest first-order attack. With ``num_restarts = R``, run r draws its start from key
    ``k_r = jax.random.fold_in(key, r)`` (so run 0 is the single run with the same key); per input the kept
    example is the strongest: a successful one (from its own logits: the target predicted, or the true class
    no longer predicted) before an unsuccessful one, then the highest objective J. So R restarts are never
    weaker than one run with the same key.

    Random start (drawn in at least float32, then cast to x's dtype, then clipped to the clip range): L∞
    draws δ ~ U[−ε, ε]^d as ``ε · jax.random.uniform(k_r, x.shape, minval=-1, maxval=1)``; L2 draws δ
    uniform in the d-ball of radius ε (d = pixels per example): ``g = jax.random.normal(k_r, (n, d + 2))``
    is normalised onto the unit sphere of R^{d+2} and its first d coordinates, times ε, are δ (a uniform
    point on the sphere S^{d+1} projects to a uniform point of the d-ball; Voelker et al. 2017). The density
    of ‖δ‖ grows as r^{d−1}, so in high dimension nearly all starts lie near the sphere.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, k)`` logits (static).
      params: the model's params (gradients do not flow into them).
      x: ``(n, ...)`` float array in the clip range.
      labels: ``(n,)`` integers: true classes, or target classes when ``targeted``.
      key: PRNG key for the random starts (unused when ``random_start=False``).
      eps: scalar radius ε ≥ 0 of the ball (may be traced).
      step_size: scalar α (may be traced).
      num_steps: T ≥ 0 (static int).
      norm: ``"linf"`` or ``"l2"``.
      random_start: start from a uniform point of the ball instead of x.
      num_restarts: R ≥ 1 runs (needs ``random_start`` when R > 1: without it every run is the same).
      loss: ``"cross_entropy"`` or ``"cw_margin"``.
      targeted: descend the loss of the target ``labels`` instead of ascending that of the true ones.
      clip: ``(low, high)`` pixel range, or None.

    Returns:
      ``x_adv`` with the shape and dtype of ``x``, within ε of x in the chosen norm and inside ``clip``.
    """
    x, labels = _check_common(x, labels, loss=loss, targeted=targeted, clip=clip)
    V.check_choice(norm, NORMS, name="norm")
    V.check_integer(num_steps, name="num_steps", minimum=0)
    V.check_integer(num_restarts, name="num_restarts", minimum=1)
    if not isinstance(random_start, bool):
        raise TypeError(f"random_start must be True or False, got random_start={random_start!r}")
    if num_restarts > 1 and not random_start:
        raise ValueError(
            f"num_restarts={num_restarts} needs random_start=True: without a random start every restart is the same run"
        )
    V.check_key(key)
    eps = _scalar(eps, x.dtype, name="eps")
    step_size = _scalar(step_size, x.dtype, name="step_size")
    params = jax.lax.stop_gradient(params)
    options = dict(loss=loss, targeted=targeted)

    def run(run_key):
        start = _clip_range(x + _random_start(run_key, x, eps, norm), clip) if random_start else x

        def body(_, x_adv):
            grad, _, _ = _objective_grad(apply_fn, params, x_adv, labels, **options)
            return _pgd_step(x_adv, grad, x, eps, step_size, norm, clip)

        x_adv = jax.lax.fori_loop(0, num_steps, body, start)
        value, logits = _objective_and_logits(apply_fn, params, x_adv, labels, **options)
        return x_adv, _success(logits, labels, targeted), value

    if num_restarts == 1:
        return _nan_unless_ball(run(jax.random.fold_in(key, 0))[0], eps)

    # Run r starts from fold_in(key, r): run 0 is the single run with the same key, so adding restarts can
    # only keep or improve what one run finds. The runs go through one scan, so the attack is traced once.
    def restart(best, r):
        best_x, best_success, best_value = best
        x_adv, success, value = run(jax.random.fold_in(key, r))
        better = (r == 0) | (success & ~best_success) | ((success == best_success) & (value > best_value))
        return (
            jnp.where(_per_row(better, x_adv), x_adv, best_x),
            jnp.where(better, success, best_success),
            jnp.where(better, value, best_value),
        ), None

    value_dtype = jax.eval_shape(lambda xa: _objective_and_logits(apply_fn, params, xa, labels, **options)[0], x).dtype
    first = (x, jnp.zeros(x.shape[:1], bool), jnp.zeros(x.shape[:1], value_dtype))
    best, _ = jax.lax.scan(restart, first, jnp.arange(num_restarts))
    return _nan_unless_ball(best[0], eps)
