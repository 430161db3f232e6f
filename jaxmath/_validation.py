"""Argument checks shared by every jaxmath module.

Every check runs on the host, before any compiled work starts, and raises a
``ValueError`` (or ``TypeError``) whose message names the argument and the
offending shape or value. Under ``jit`` the arrays are tracers: value checks
(finiteness, ranges of array entries) are skipped there because the values are
not known yet, while shape checks still run because shapes are static.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
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


def check_same_length(a: Any, b: Any, *, names: Sequence[str] = ("X", "y")) -> None:
    """``a`` and ``b`` must have the same number of rows (leading axis)."""
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb or sa[0] != sb[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of rows, got "
            f"{names[0]}.shape={sa} and {names[1]}.shape={sb}"
        )


def check_ndim(x: Any, ndim: int | Sequence[int], *, name: str) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if np.ndim(x) not in allowed:
        want = " or ".join(str(n) for n in allowed)
        raise ValueError(f"{name} must be {want}-dimensional, got {name}.shape={shape_of(x)}")


def check_finite(x: Any, *, name: str) -> None:
    """Raise if a concrete array holds NaN or Inf, naming how many and the first position."""
    if not is_concrete(x):
        return
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.inexact):
        return
    bad = ~np.isfinite(arr.astype(np.float32) if arr.dtype.itemsize < 4 else arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or Inf); "
            f"first at index {first} (= {arr[first]!r}) in {name}.shape={arr.shape}"
        )


def check_tree_finite(tree: Any, *, name: str) -> None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        check_finite(leaf, name=f"{name}{jax.tree_util.keystr(path)}")


def _as_float(value: Any, name: str) -> float | None:
    """The Python float of a scalar hyperparameter, or None when it is traced."""
    if not is_concrete(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


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
    """Integer class labels must lie in [0, num_classes)."""
    if not is_concrete(labels):
        return
    arr = np.asarray(labels)
    if arr.size == 0:
        return
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{name} must lie in [0, {num_classes}), got values from {lo} to {hi} in {name}.shape={arr.shape}"
        )
