"""Argument checks shared by every jaxmath module.

Each check raises a ``ValueError`` (or ``TypeError``) whose message names the argument and the offending
shape or value. Two kinds, used in two places (docs/conventions.md):

- *static* checks (shape, rank, integer options, choices) only read shapes and Python values, so they run at
  trace time inside jitted public functions and raise before any compiled work, under an outer ``jit`` too;
- *value* checks (``check_finite``, ``check_labels``) read the data. They belong to host entry points
  (``fit``, ``run_epoch``, ``evaluate``, the CLI), look at the dtype first (integers are always finite), reduce
  on the device and bring back one bool; only when that bool says something is wrong do they copy data to
  the host to say where. On tracers they do nothing: the values are not known yet.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds real values (not a tracer inside ``jit``/``vmap``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def shape_of(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))


def check_same_shape(a: Any, b: Any, *, names: Sequence[str] = ("predictions", "targets")) -> None:
    """Refuse silent broadcasting: ``a`` and ``b`` must have identical shapes."""
    sa, sb = shape_of(a), shape_of(b)
    if sa != sb:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got "
            f"{names[0]}.shape={sa} and {names[1]}.shape={sb}"
        )


def _abstract(x: Any) -> jax.ShapeDtypeStruct:
    # chex reads only shapes here; an abstract value keeps it from copying lists or host arrays.
    return jax.ShapeDtypeStruct(shape_of(x), np.float32)


def check_same_length(a: Any, b: Any, *, names: Sequence[str] = ("x", "y")) -> None:
    """``a`` and ``b`` must have the same number of rows (leading axis)."""
    sa, sb = shape_of(a), shape_of(b)
    try:
        if not sa or not sb:
            raise AssertionError("a scalar has no rows")
        chex.assert_equal_shape_prefix([_abstract(a), _abstract(b)], prefix_len=1)
    except AssertionError:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of rows, got "
            f"{names[0]}.shape={sa} and {names[1]}.shape={sb}"
        ) from None


def check_ndim(x: Any, ndim: int | Sequence[int], *, name: str) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    try:
        chex.assert_rank(_abstract(x), set(allowed))
    except AssertionError:
        want = " or ".join(str(n) for n in allowed)
        raise ValueError(f"{name} must be {want}-dimensional, got {name}.shape={shape_of(x)}") from None


def check_finite(x: Any, *, name: str) -> None:
    """Raise if a concrete float array holds NaN or Inf, naming how many and the first position.

    Integer and bool arrays are accepted without touching their data. For floats the test is one reduction
    on the array's own device; the data come to the host only to write the error message.
    """
    if not is_concrete(x):
        return
    dtype = np.result_type(x) if not hasattr(x, "dtype") else x.dtype
    # jnp, not np: NumPy does not count bfloat16 (an ml_dtypes type) as inexact.
    if not jnp.issubdtype(dtype, jnp.inexact):
        return
    # A concrete array checked while an outer jit traces (a closed-over constant) must still be reduced
    # now, not turned into a tracer.
    with jax.ensure_compile_time_eval():
        ok = bool(_all_finite(x))
    if ok:
        return
    arr = np.asarray(x)
    bad = ~np.isfinite(arr.astype(np.float32) if arr.dtype.itemsize < 4 else arr)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(
        f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or Inf); "
        f"first at index {first} (= {arr[first]!r}) in {name}.shape={arr.shape}"
    )


@jax.jit
def _all_finite(x):
    return jnp.all(jnp.isfinite(x))


@jax.jit
def _min_max(x):
    return jnp.min(x), jnp.max(x)


def check_tree_finite(tree: Any, *, name: str) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        check_finite(leaf, name=f"{name}{jax.tree_util.keystr(path)}")


def _as_float(value: Any, name: str) -> float | None:
    """The Python float of a scalar hyperparameter, or None when it is traced."""
    check_real(value, name=name)
    if not is_concrete(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def check_real(value: Any, *, name: str) -> None:
    """A hyperparameter used in arithmetic is a real number: a Python int/float or a real array, traced or not.

    Reads only the Python type and the dtype, so it runs at trace time inside jitted functions. Strings
    (``float("0.1")`` would parse), bools, ``None`` and complex numbers are refused with a TypeError.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    else:
        ok = jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)
    if not ok:
        kind = f"dtype {dtype}" if dtype is not None else f"{type(value).__name__}"
        raise TypeError(f"{name} must be a real number, got {name}={value!r} ({kind})")


def check_positive(value: Any, *, name: str, allow_zero: bool = False) -> None:
    v = _as_float(value, name)
    if v is None:
        return
    if math.isnan(v) or v < 0 or (v == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {need}, got {name}={value!r}")


def check_in_range(
    value: Any,
    *,
    name: str,
    low: float,
    high: float,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
) -> None:
    v = _as_float(value, name)
    if v is None:
        return
    above_low = v >= low if low_inclusive else v > low
    below_high = v <= high if high_inclusive else v < high
    if math.isnan(v) or not (above_low and below_high):
        lo = "[" if low_inclusive else "("
        hi = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in {lo}{low}, {high}{hi}, got {name}={value!r}")


def check_integer(value: Any, *, name: str, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value!r}")


def check_choice(value: Any, choices: Sequence[Any], *, name: str) -> None:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {name}={value!r}")


def check_labels(labels: Any, num_classes: int, *, name: str = "labels") -> None:
    """Integer class labels must lie in [0, num_classes): one min/max reduction on the device."""
    if not is_concrete(labels):
        return
    dtype = labels.dtype if hasattr(labels, "dtype") else np.result_type(labels)
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.bool_)):
        raise TypeError(f"{name} must be integer class labels, got {name}.dtype={np.dtype(dtype).name}")
    if np.size(labels) == 0:
        return
    with jax.ensure_compile_time_eval():
        lo, hi = (int(v) for v in _min_max(labels))
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{name} must lie in [0, {num_classes}), got values from {lo} to {hi} in {name}.shape={shape_of(labels)}"
        )


def float_dtype_name(dtype: Any, *, name: str = "dtype", optional: bool = False) -> str | None:
    """The name of a floating dtype ("float32", "bfloat16"); None for None when ``optional``; else a TypeError."""
    if dtype is None and optional:
        return None
    try:
        resolved = None if dtype is None else jnp.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or not jnp.issubdtype(resolved, jnp.floating):
        raise TypeError(f"{name} must be a floating dtype, got {name}={dtype!r}")
    return resolved.name


def check_key(key: Any, *, name: str = "key") -> None:
    """A PRNG key: a typed key (``jax.random.key``) or a raw uint32 ``(2,)`` key (``jax.random.PRNGKey``)."""
    if isinstance(key, jax.core.Tracer) or isinstance(key, jax.Array):
        dtype = key.dtype
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            return
        if dtype == jnp.uint32 and key.shape[-1:] == (2,):
            return
    raise TypeError(
        f"{name} must be a JAX PRNG key such as jax.random.key(0), got {name}={key!r}"
        + (f" (shape {shape_of(key)}, dtype {key.dtype})" if hasattr(key, "dtype") else "")
    )
