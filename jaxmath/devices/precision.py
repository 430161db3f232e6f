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
  function already compiled keeps the precision it was compiled with);
* for the whole process: ``set_matmul_precision("highest")``
  (``jax.config.update("jax_default_matmul_precision", "highest")``), or before Python starts
  ``JAX_DEFAULT_MATMUL_PRECISION=highest``. ``jaxmath info`` shows the setting in effect.

Mixed precision without loss scaling. ``mlp.make(..., compute_dtype="bfloat16")`` keeps the params and the
optimizer state in float32 (the "master" copy every update is added to) and casts only the matmul inputs to
bfloat16, accumulating in float32. float16 training needs loss scaling because float16 has 5 exponent bits:
its smallest normal number is 6e-5 (2^-14), so small gradients underflow to zero unless the loss is first
multiplied by a large factor. bfloat16 has 8 exponent bits, the same as float32, so it covers the same range
(about 1e-38 to 3e38): gradients that float32 can hold do not underflow in bfloat16; they only lose mantissa
bits (8 significant bits instead of 24), and that rounding is what the float32 master params absorb: each
small update is added to a float32 weight, not to a bfloat16 one where it would round away. LeNet-5 takes the
same ``compute_dtype`` (``lenet5.make(compute_dtype="bfloat16")``: convolution and matmul inputs), and the
command line has it as ``jaxmath train mlp|cnn --compute-dtype bfloat16`` (params and optimizer state float32).
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


ENV_VARIABLE = "JAX_DEFAULT_MATMUL_PRECISION"

# What "default" does to a float32 matmul on each backend (the reason to look at the setting on a TPU).
DEFAULT_MEANING = {
    "cpu": "float32 stays float32 at every precision",
    "gpu": "TF32 on Ampere+ at default/high; highest is fp32",
    "tpu": "one bf16 pass (~3 digits); high 3, highest 6 (~fp32)",
}


def how_to_change() -> list[str]:
    """Two lines on setting the default matmul precision for the process (shown by ``jaxmath info``)."""
    return [f"{ENV_VARIABLE}=highest, or in Python:",
            'jax.config.update("jax_default_matmul_precision", "highest")']


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
