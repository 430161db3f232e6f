"""Adversarial training (Madry et al. 2018): train on the attack's examples instead of the clean batch.

    min_θ  E_{(x, y)}  max_{‖δ‖ ≤ ε}  C(θ; x + δ, y)

The inner max is approximated by an attack (PGD, FGSM) at the current params; the outer min is the usual
training step. ``adversarial_loss`` turns any training loss into this objective, for
``training.make_train_step`` and ``training.fit`` unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from jaxmath import _validation as V
from jaxmath.adversarial.attacks import fgsm, pgd
from jaxmath.training.objectives import prepare_images

ATTACK_METHODS = ("pgd", "fgsm")


def adversarial_loss(loss_fn: Callable, attack: Callable, *, flatten: bool = False) -> Callable:
    """Madry's adversarial training loss: ``loss_fn`` at the attack's examples, at the current params.

        C_adv(θ; x, y, k) = C(θ; x*, y),    x* = stop_gradient(attack(stop_gradient(θ), x / 255, y, k))

    C ↔ ``loss_fn``, θ ↔ ``params``, (x, y) ↔ ``batch``, k ↔ ``key`` (a new one every training step),
    attack ↔ ``attack`` (it approximates argmax_{x' ∈ B_ε(x) ∩ [0, 1]^d} L(θ; x', y)).

    Why the attack is not differentiated: by Danskin's theorem the gradient of the inner maximum
    φ(θ) = max_{δ ∈ S} C(θ; x + δ, y) is the gradient of C at a maximiser δ*, holding δ* fixed:
    ∇φ(θ) = ∇_θ C(θ; x + δ*, y) (S compact, C continuously differentiable in θ; with several maximisers,
    any one gives a subgradient direction). So x* is a constant for the outer step, and back-propagating
    through the attack's 40 steps would be wrong (it differentiates the approximate maximiser's path, not
    the max) as well as 40 times more expensive and memory hungry. Madry et al. (2018, section 2) use
    exactly this.

    The wrapped loss declares ``takes_key = True``: ``make_train_step`` calls it as
    ``loss_fn(params, batch, key=k_t)`` with a fresh key every step (see its docstring), so PGD's random start
    differs between steps and is reproducible from the state's key. ``training.evaluate`` and ``fit``'s
    validation evaluate it with fixed keys, i.e. they report the robust loss and accuracy under this attack;
    ``wrapped.clean_loss`` is ``loss_fn`` itself, for clean figures.

    Args:
      loss_fn: ``loss_fn(params, (x, labels)) -> loss | (loss, metrics)`` (e.g.
        ``training.make_classifier_loss(model, num_classes=10)``); it receives the adversarial x as floats
        in [0, 1] (``prepare_images`` passes floats through).
      attack: ``attack(params, x, labels, key) -> x_adv`` on float pixels in [0, 1] of the batch's shape
        (``(n, 28, 28)`` MNIST) or, with ``flatten``, ``(n, d)``; labels are int32. Build one with
        ``make_attack(model.apply, method="pgd", eps=0.3, step_size=0.01, num_steps=40)``.
      flatten: hand the attack ``(n, d)`` vectors (for apply functions such as the MLP's, which take
        ``(n, 784)``); the loss still gets the batch's shape.

    Returns:
      ``wrapped(params, batch, *, key) -> loss_fn's output``, with the attributes ``takes_key`` (True),
      ``clean_loss`` (``loss_fn``), ``attack``, and ``num_classes``, ``loss``, ``model`` copied from
      ``loss_fn`` when it has them.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {loss_fn!r}")
    if not callable(attack):
        raise TypeError(f"attack must be callable as attack(params, x, labels, key) -> x_adv, got {attack!r}")
    if getattr(loss_fn, "takes_key", False):
        raise ValueError("loss_fn already takes a key (an adversarial loss?): wrap the clean loss, not a wrapped one")

    def wrapped(params, batch, *, key):
        x, labels = batch
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        # Attacks work on pixels in [0, 1] in the params' dtype: uint8 batches are scaled here (once),
        # the clean loss then passes the float images through unchanged.
        x = prepare_images(x, dtype, flatten=False)
        shape = x.shape
        x_in = x.reshape(shape[0], -1) if flatten else x
        labels = labels.astype(jnp.int32)
        x_adv = attack(lax.stop_gradient(params), x_in, labels, key)
        # Danskin: the maximiser is a constant for the outer gradient (see above).
        x_adv = lax.stop_gradient(jnp.asarray(x_adv, dtype)).reshape(shape)
        return loss_fn(params, (x_adv, labels))

    wrapped.takes_key = True
    wrapped.clean_loss = loss_fn
    wrapped.attack = attack
    for name in ("num_classes", "loss", "model"):
        if hasattr(loss_fn, name):
            setattr(wrapped, name, getattr(loss_fn, name))
    wrapped.__name__ = f"adversarial_{getattr(loss_fn, '__name__', 'loss')}"
    return wrapped


def make_attack(apply_fn: Callable, *, method: str = "pgd", **attack_options: Any) -> Callable:
    """``attack(params, x, labels, key) -> x_adv`` for ``adversarial_loss``, from ``adversarial.pgd`` or ``fgsm``.

        pgd:   x_adv = adversarial.pgd(apply_fn, params, x, labels, key, **attack_options)
        fgsm:  x_adv = adversarial.fgsm(apply_fn, params, x, labels, **attack_options)   (key unused)

    Args:
      apply_fn: the model's ``apply(params, x) -> logits`` (e.g. ``model.apply``).
      method: "pgd" or "fgsm".
      **attack_options: keyword options of that attack (``eps``, ``step_size``, ``num_steps``, ``norm``,
        ``random_start``, ``loss``, ...), checked when the attack is first traced.

    Returns:
      the attack function, with the attributes ``method`` and ``options``.
    """
    if not callable(apply_fn):
        raise TypeError(f"apply_fn must be callable, got {apply_fn!r}")
    V.check_choice(method, ATTACK_METHODS, name="method")
    if method == "pgd":

        def attack(params, x, labels, key):
            return pgd(apply_fn, params, x, labels, key, **attack_options)

    else:

        def attack(params, x, labels, key):
            del key  # FGSM is deterministic
            return fgsm(apply_fn, params, x, labels, **attack_options)

    attack.method = method
    attack.options = dict(attack_options)
    return attack
