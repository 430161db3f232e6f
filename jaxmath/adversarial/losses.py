"""Per-example attack objectives computed from logits: cross-entropy and the Carlini-Wagner margin.

An attack needs one number per input that grows as the classifier moves away from the label, so both
functions return shape ``(n,)`` (no reduction): the attacks ascend them example by example, and compare
them across restarts input by input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmath import _validation as V
from jaxmath.activations import _float

__all__ = ["cross_entropy", "cw_margin", "LOSSES"]


def _check_logits_labels(logits, labels, *, min_classes):
    """Trace-time checks: logits ``(n, k)`` float, labels ``(n,)`` integers, ``k >= min_classes``."""
    z = _float(logits, name="logits")
    V.check_ndim(z, 2, name="logits")
    labels = jnp.asarray(labels)
    V.check_ndim(labels, 1, name="labels")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got labels.dtype={labels.dtype.name}")
    V.check_same_length(z, labels, names=("logits", "labels"))
    if z.shape[1] < min_classes:
        raise ValueError(f"logits must have at least {min_classes} classes on axis 1, got logits.shape={z.shape}")
    return z, labels


def _true_logit(z, labels):
    return jnp.take_along_axis(z, labels[:, None], axis=1)[:, 0]


@jax.jit
def cross_entropy(logits, labels):
    """Softmax cross-entropy of each example, from its logits.

        L_i = −log softmax(z_i)_{y_i} = log Σ_j e^{z_ij} − z_{i y_i}
            = m_i + log Σ_j e^{z_ij − m_i} − z_{i y_i},      m_i = max_j z_ij

    Symbols: ``z`` → ``logits``, ``y`` → ``labels``, ``i`` the example, ``j`` the class. The max shift
    (log-sum-exp) keeps logits up to the dtype's range finite. Equal to
    ``jaxmath.losses.softmax_cross_entropy(logits, labels, reduction="none")`` for integer labels.

    Args:
      logits: ``(n, k)`` float array.
      labels: ``(n,)`` integer array in ``[0, k)`` (the range is checked by the host entry points).

    Returns:
      ``(n,)`` array in the dtype of ``logits``, each entry ``>= 0``.
    """
    z, labels = _check_logits_labels(logits, labels, min_classes=1)
    m = jax.lax.stop_gradient(jnp.max(z, axis=1))
    lse = m + jnp.log(jnp.sum(jnp.exp(z - m[:, None]), axis=1))
    return lse - _true_logit(z, labels)


@jax.jit
def cw_margin(logits, labels):
    """The Carlini-Wagner margin of each example: how far the best wrong class is above the true one.

        M_i = max_{j ≠ y_i} z_ij − z_{i y_i}

    Symbols: ``z`` → ``logits``, ``y`` → ``labels``. ``M_i > 0`` exactly when example ``i`` is
    misclassified (ties aside), so an untargeted attack ascends it and a targeted one descends it with ``y``
    the target class.

    The true class is excluded from the max by setting its logit to −∞, not to 0. Masking with 0 (as
    torchattacks and foolbox do, multiplying by a one-hot complement) is wrong whenever every logit is
    negative: the masked 0 is then the largest "wrong" logit, so the margin becomes ``0 − z_y`` whatever
    the other classes say, and its gradient ignores them. With z = (−1, −3, −2) and y = 1 the margin is
    max(−1, −2) − (−3) = 2; the 0 mask gives 0 − (−3) = 3.

    Args:
      logits: ``(n, k)`` float array with ``k >= 2``.
      labels: ``(n,)`` integer array in ``[0, k)``.

    Returns:
      ``(n,)`` array in the dtype of ``logits``.
    """
    z, labels = _check_logits_labels(logits, labels, min_classes=2)
    true_class = jnp.arange(z.shape[1])[None, :] == labels[:, None]
    best_other = jnp.max(jnp.where(true_class, -jnp.inf, z), axis=1)
    return best_other - _true_logit(z, labels)


# The names the attacks' ``loss=`` option accepts.
LOSSES = {"cross_entropy": cross_entropy, "cw_margin": cw_margin}
