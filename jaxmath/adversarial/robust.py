"""Robust accuracy over a list of ε: a whole robustness curve from one compiled program.

The attack is ``jax.vmap``-ed over the ε values (and over per-ε step sizes when given), or, on CPU, mapped
over them with ``lax.map`` inside the same program; the data go through in fixed-size batches, so every batch
and every ε reuses the one program compiled for the first batch.
The last, ragged batch is padded to the same size and its padding rows are masked out of the counts: no
input is dropped and nothing recompiles.
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import _validation as V
from jaxmath.adversarial.attacks import fgsm, pgd

__all__ = ["robust_accuracy", "RobustAccuracy", "ATTACKS"]

ATTACKS = {"pgd": pgd, "fgsm": fgsm}
# Options of each attack that robust_accuracy fixes itself: the data, the key, the radius, and the
# direction (robust accuracy is about the true labels, so the attack is untargeted).
_FIXED = {"apply_fn", "params", "x", "labels", "key", "eps", "targeted"}


class RobustAccuracy(NamedTuple):
    """A robustness curve: ``accuracy[i]`` is the accuracy under the attack of radius ``eps[i]``.

    Fields:
      eps: ``(k,)`` float64 NumPy array, the radii as given.
      accuracy: ``(k,)`` float64 NumPy array in [0, 1].
      clean_accuracy: float, the accuracy on the unperturbed inputs.
    """

    eps: np.ndarray
    accuracy: np.ndarray
    clean_accuracy: float


def _real_array(value, *, name):
    """A host float64 array of real numbers; strings and other objects are refused, not parsed."""
    array = np.asarray(value)
    if not (jnp.issubdtype(array.dtype, jnp.integer) or jnp.issubdtype(array.dtype, jnp.floating)):
        raise TypeError(f"{name} must be a real number or a sequence of them, got {name}={value!r}")
    return array.astype(np.float64)


def _attack_options(attack, options):
    names = [p for p in inspect.signature(ATTACKS[attack]).parameters if p not in _FIXED]
    for name in options:
        if name == "targeted":
            raise ValueError(
                "robust_accuracy measures accuracy on the true labels, so its attack is untargeted; "
                "for targeted attacks call adversarial.pgd(..., targeted=True) and count the hits"
            )
        if name not in names:
            raise TypeError(f"attack={attack!r} has no option {name!r}; its options are {', '.join(names)}")
    if attack == "pgd":
        for name in ("step_size", "num_steps"):
            if name not in options:
                raise TypeError(f"attack='pgd' needs {name}=... (e.g. step_size=0.01, num_steps=40)")
    return options


@partial(jax.jit, static_argnames=("apply_fn", "attack", "options", "vectorize_eps"))
def _batch_counts(params, x, labels, mask, key, eps, step_size, *, apply_fn, attack, options, vectorize_eps):
    """Correct counts of one padded batch: clean (scalar) and under the attack at every ε (shape (k,))."""
    options = dict(options)

    def attacked(e, alpha):
        if attack == "pgd":
            return pgd(apply_fn, params, x, labels, key, eps=e, step_size=alpha, **options)
        return fgsm(apply_fn, params, x, labels, eps=e, **options)

    def correct(images):
        # Success is recomputed here from the logits of the returned images, whatever the attack says.
        return jnp.argmax(apply_fn(params, images), axis=-1) == labels

    clean = correct(x) & mask
    if vectorize_eps:
        x_adv = jax.vmap(attacked)(eps, step_size)                    # (k, b, ...)
    else:
        x_adv = jax.lax.map(lambda radius: attacked(*radius), (eps, step_size))
    # A robust input is classified correctly both clean and attacked: a clean error is not robust.
    robust = jax.vmap(correct)(x_adv) & clean
    return jnp.sum(clean), jnp.sum(robust, axis=1)


def robust_accuracy(
    apply_fn, params, x, labels, key, *, eps, attack="pgd", batch_size=1000, vectorize_eps=None,
    **attack_options: Any
) -> RobustAccuracy:
    """Accuracy of a classifier under an attack, for each radius ε in ``eps``.

        acc(ε) = 1/n Σ_i [ argmax f(x_i) = y_i  and  argmax f(A_ε(x_i)) = y_i ]

    Symbols: ``f`` → ``apply_fn(params, ·)``, ``x_i``/``y_i`` → rows of ``x``/``labels``, ``A_ε`` the
    untargeted attack named by ``attack`` with radius ``eps[j]`` and ``attack_options``. An input counts as
    robust only when it is also classified correctly without the attack, so ``acc(ε) ≤ clean accuracy``.
    Correctness is always recomputed from the logits of the returned images.

    The attack runs over the k radii inside one program (vmapped, or ``lax.map``-ped: see ``vectorize_eps``)
    and batch by batch with that same compiled program: one compile for the whole curve. Batch ``b`` (rows
    ``b·B`` to ``(b+1)·B``) attacks with key ``jax.random.fold_in(key, b)``, the same key for every ε (so the
    curve's points differ only by ε).

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, k)`` logits.
      params: the model's params.
      x: ``(n, ...)`` float array in the attack's clip range (default [0, 1]).
      labels: ``(n,)`` integer true classes.
      key: PRNG key for the attack's random starts (unused by FGSM).
      eps: a radius ε ≥ 0 or a sequence of k of them.
      attack: ``"pgd"`` or ``"fgsm"``.
      batch_size: B ≥ 1 rows per batch (memory grows with k·B when the radii are vectorized).
      vectorize_eps: True: ``jax.vmap`` over the radii, one attack on k·B rows at a time; False: ``lax.map``,
        one radius after the other in the same program (the same attack). None (default): True on GPU and
        TPU, where k·B rows fill the device better; False on CPU, where the compute is the same either way
        and batching the ε axis through the convolutions' reshapes costs extra copies (LeNet-5, PGD-40, 8
        radii: ``benchmarks/RESULTS.md``).
      **attack_options: keyword options of the attack (``step_size`` and ``num_steps`` for PGD, ``norm``,
        ``random_start``, ``num_restarts``, ``loss``, ``clip``); PGD's ``step_size`` may also be a sequence of
        k values, one per ε (e.g. 2.5·ε/num_steps). ``targeted`` is refused.

    Returns:
      ``RobustAccuracy(eps (k,), accuracy (k,), clean_accuracy)`` on the host.
    """
    V.check_choice(attack, tuple(ATTACKS), name="attack")
    options = _attack_options(attack, dict(attack_options))
    V.check_key(key)
    V.check_integer(batch_size, name="batch_size", minimum=1)
    if vectorize_eps is None:
        vectorize_eps = jax.default_backend() != "cpu"
    elif not isinstance(vectorize_eps, bool):
        raise TypeError(f"vectorize_eps must be True, False or None, got vectorize_eps={vectorize_eps!r}")
    eps_host = np.atleast_1d(_real_array(eps, name="eps"))
    if eps_host.ndim != 1 or eps_host.size == 0:
        raise ValueError(f"eps must be a radius or a non-empty 1-D sequence of radii, got eps={eps!r}")
    if not np.all(np.isfinite(eps_host)) or np.any(eps_host < 0):
        raise ValueError(f"eps must be finite and >= 0, got eps={eps!r}")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must be a float array (scale uint8 images by 1/255 first), got x.dtype={x.dtype.name}")
    labels = jnp.asarray(labels)
    V.check_ndim(labels, 1, name="labels")
    V.check_same_length(x, labels, names=("x", "labels"))
    n = x.shape[0]
    if n == 0:
        raise ValueError(f"x must hold at least one example, got x.shape={x.shape}")
    V.check_finite(x, name="x")
    num_classes = jax.eval_shape(apply_fn, params, x[:1]).shape[-1]
    V.check_labels(labels, num_classes)

    k = eps_host.size
    step_size = options.pop("step_size", 0.0)
    step_host = _real_array(step_size, name="step_size")
    if step_host.ndim > 1 or (step_host.ndim == 1 and step_host.size != k):
        raise ValueError(f"step_size must be a scalar or one value per eps ({k}), got step_size={step_size!r}")
    step_host = np.broadcast_to(step_host, (k,))
    if np.any(~np.isfinite(step_host)) or np.any(step_host < 0):
        raise ValueError(f"step_size must be finite and >= 0, got step_size={step_size!r}")
    eps_dev = jnp.asarray(eps_host, x.dtype)
    step_dev = jnp.asarray(step_host, x.dtype)
    static_options = tuple(sorted(options.items()))

    size = min(batch_size, n)
    clean_count, robust_count = 0, np.zeros(k, np.int64)
    for b, start in enumerate(range(0, n, size)):
        xb, lb = x[start:start + size], labels[start:start + size]
        rows = xb.shape[0]
        if rows < size:  # pad the ragged last batch with copies of its first row, masked out below
            pad = size - rows
            xb = jnp.concatenate([xb, jnp.repeat(xb[:1], pad, axis=0)])
            lb = jnp.concatenate([lb, jnp.repeat(lb[:1], pad, axis=0)])
        mask = jnp.arange(size) < rows
        c, r = _batch_counts(
            params, xb, lb, mask, jax.random.fold_in(key, b), eps_dev, step_dev,
            apply_fn=apply_fn, attack=attack, options=static_options, vectorize_eps=vectorize_eps,
        )
        clean_count += int(c)
        robust_count += np.asarray(r, np.int64)
    return RobustAccuracy(eps=eps_host, accuracy=robust_count / n, clean_accuracy=clean_count / n)
