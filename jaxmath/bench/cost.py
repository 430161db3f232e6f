"""FLOPs and bytes from XLA's compiled cost analysis, and the rates they imply.

``compiled.cost_analysis()`` has returned a list of dicts (one per program),
a dict, or ``None`` (backends that do not implement it) across jax versions;
``cost_of`` accepts all three. A matmul of (m, k) by (k, n) reports 2·m·k·n FLOPs.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax


class Cost(NamedTuple):
    """XLA's estimate for one execution: ``flops`` and ``bytes_accessed`` (None when not reported)."""

    flops: float | None
    bytes_accessed: float | None


def _first_mapping(analysis: Any) -> Mapping | None:
    if analysis is None:
        return None
    if isinstance(analysis, Mapping):
        return analysis
    if isinstance(analysis, (list, tuple)):
        maps = [a for a in analysis if isinstance(a, Mapping)]
        if not maps:
            return None
        if len(maps) == 1:
            return maps[0]
        # One dict per program/partition: the totals are the sums.
        merged: dict[str, float] = {}
        for m in maps:
            for key, value in m.items():
                if isinstance(value, (int, float)):
                    merged[key] = merged.get(key, 0.0) + float(value)
        return merged
    return None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    # Some backends report -1 or 0 for "unknown".
    return value if value > 0 else None


def cost_of(analysis_or_compiled: Any) -> Cost:
    """The ``Cost`` of a compiled executable, or of the raw ``cost_analysis()`` result.

    Args:
      analysis_or_compiled: a ``jax.stages.Compiled`` or what its ``cost_analysis()``
        returned (a dict, a list of dicts, or None).
    """
    analysis = analysis_or_compiled
    if hasattr(analysis_or_compiled, "cost_analysis"):
        try:
            analysis = analysis_or_compiled.cost_analysis()
        except Exception:  # backends without cost analysis raise NotImplementedError/XlaRuntimeError
            analysis = None
    found = _first_mapping(analysis)
    if found is None:
        return Cost(None, None)
    return Cost(_number(found.get("flops")), _number(found.get("bytes accessed")))


def compiled_cost(fn: Callable, *args: Any) -> Cost:
    """Compile ``fn`` for ``args`` and return XLA's FLOPs / bytes estimate for one call."""
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    return cost_of(jitted.lower(*args).compile())


def rate(amount: float | None, seconds: float | None) -> float | None:
    """``amount / seconds`` (FLOP/s or bytes/s), None when either is unknown or seconds <= 0."""
    if amount is None or seconds is None or seconds <= 0:
        return None
    return amount / seconds


def fraction_of_peak(achieved: float | None, peak: float | None) -> float | None:
    """``achieved / peak`` (e.g. 0.42 for 42%), None when either is unknown."""
    if achieved is None or peak is None or peak <= 0:
        return None
    return achieved / peak
