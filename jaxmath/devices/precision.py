"""Matmul precision: names, ``jax.lax.Precision`` values, and a global setting.

Every matmul in jaxmath's models takes ``precision=None`` and passes it to
``jnp.dot``/``jnp.matmul``/``lax.dot_general``. ``None`` means "JAX's default",
which on each backend is:

* CPU: float32 matmuls are float32 whatever the precision.
* GPU (Ampere and later): ``default``/``high`` allow TensorFloat-32 (10-bit mantissa
  inputs, fp32 accumulation); ``highest`` is full fp32.
* TPU: the matrix unit multiplies bfloat16. ``default`` is one bf16 pass (about
  3 significant digits!), ``high`` three passes (bf16_3x), ``highest`` six (about fp32).

Two ways to choose:

* per model: ``mlp.make(sizes, precision="highest")`` (its ``model.apply`` passes it to every matmul);
* for everything traced inside a block: ``with matmul_precision("highest"): ...``
  (``jax.default_matmul_precision``; it applies when a function is *traced*, so a
  function already compiled keeps the precision it was compiled with).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import jax
from jax import lax

PRECISIONS = ("default", "high", "highest")

_BY_NAME = {
    "default": lax.Precision.DEFAULT,
    "high": lax.Precision.HIGH,
    "highest": lax.Precision.HIGHEST,
}


def as_precision(precision: Any) -> lax.Precision | None:
    """``None`` or a name ("default", "high", "highest") or a ``lax.Precision`` → ``lax.Precision | None``.

    Raises:
      ValueError: for any other value, naming it.
    """
    if precision is None or isinstance(precision, lax.Precision):
        return precision
    if isinstance(precision, str) and precision.lower() in _BY_NAME:
        return _BY_NAME[precision.lower()]
    raise ValueError(
        f"precision must be None or one of {PRECISIONS} (or a jax.lax.Precision), got precision={precision!r}"
    )


def precision_name(precision: Any) -> str:
    """The lower-case name of a precision; ``None`` → the global default in effect (usually "default")."""
    if precision is None:
        return current_precision()
    p = as_precision(precision)
    return {v: k for k, v in _BY_NAME.items()}[p]


def current_precision() -> str:
    """The default matmul precision in effect (``jax_default_matmul_precision``), "default" when unset."""
    value = jax.config.jax_default_matmul_precision
    return "default" if value is None else str(value)


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[str]:
    """Set the default precision of every matmul traced inside the block.

    Example::

        with matmul_precision("highest"):
            step = jax.jit(train_step)   # traced and compiled on first call, inside the block
            state, metrics = step(state, batch)

    Args:
      precision: "default", "high" or "highest".
    """
    if precision is None:
        raise ValueError(f"precision must be one of {PRECISIONS}, got precision=None")
    name = precision_name(precision)
    with jax.default_matmul_precision(name):
        yield name


def set_matmul_precision(precision: str | None) -> None:
    """Set the default matmul precision for the rest of the process (None restores JAX's default)."""
    name = None if precision is None else precision_name(as_precision(precision))
    jax.config.update("jax_default_matmul_precision", name)
