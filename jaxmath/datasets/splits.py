"""Split strings in the familiar ``"test[:8000]"`` / ``"train[90%:]"`` form.

A split is a name, optionally followed by one slice in brackets. Each bound is
an integer index or a percentage of the split's length (``"90%"``), negative
values count from the end, and an omitted bound means the start or the end,
exactly as Python slicing does: ``"test[100:200]"`` selects ``images[100:200]``
and ``"train[-10%:]"`` the last tenth. Percent bounds round to the nearest
example, so ``"train[:90%]"`` and ``"train[90%:]"`` never overlap or leave a gap.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

_SPLIT = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(?P<slice>[^\]]*)\])?\s*$")
_BOUND = re.compile(r"^\s*(?P<value>[+-]?\d+(?:\.\d*)?)\s*(?P<percent>%?)\s*$")


class Split(NamedTuple):
    """A parsed split: ``name`` plus optional ``start``/``stop`` bounds.

    Each bound is ``None`` (open), ``(int, False)`` for an index or
    ``(float, True)`` for a percentage.
    """

    name: str
    start: tuple[float, bool] | None
    stop: tuple[float, bool] | None


def _parse_bound(text: str, split: str) -> tuple[float, bool] | None:
    if not text.strip():
        return None
    match = _BOUND.match(text)
    if match is None:
        raise ValueError(
            f"split={split!r}: bound {text.strip()!r} is neither an integer index nor a percentage like '90%'"
        )
    is_percent = bool(match["percent"])
    value = float(match["value"])
    if not is_percent:
        if "." in match["value"]:
            raise ValueError(f"split={split!r}: index bound {text.strip()!r} must be an integer")
        return int(value), False
    if not -100.0 <= value <= 100.0:
        raise ValueError(f"split={split!r}: percentage {text.strip()!r} must lie in [-100%, 100%]")
    return value, True


def parse_split(split: str, *, names: Sequence[str] | None = None) -> Split:
    """Parse ``"name"`` or ``"name[start:stop]"``; ``names`` lists the allowed split names."""
    if not isinstance(split, str):
        raise TypeError(f"split must be a string like 'test' or 'train[:90%]', got split={split!r}")
    match = _SPLIT.match(split)
    if match is None:
        raise ValueError(f"split={split!r} is not of the form 'name' or 'name[start:stop]' (e.g. 'test[:8000]')")
    name = match["name"]
    if names is not None and name not in names:
        options = ", ".join(repr(n) for n in names)
        raise ValueError(f"split={split!r}: unknown split name {name!r}; choose one of {options}")
    body = match["slice"]
    if body is None:
        return Split(name, None, None)
    parts = body.split(":")
    if len(parts) != 2:
        raise ValueError(f"split={split!r}: the brackets must hold one 'start:stop' slice (no step), got [{body}]")
    return Split(name, _parse_bound(parts[0], split), _parse_bound(parts[1], split))


def _resolve_bound(bound: tuple[float, bool] | None, length: int) -> int | None:
    if bound is None:
        return None
    value, is_percent = bound
    if is_percent:
        # Round half away from zero, so "[:50%]" of 5 examples is 3, like TFDS's "closest" rounding.
        scaled = abs(value) * length / 100.0
        index = int(scaled + 0.5)
        return -index if value < 0 else index
    return int(value)


def split_slice(split: str | Split, length: int, *, names: Sequence[str] | None = None) -> slice:
    """The Python ``slice`` a split selects from a sequence of ``length`` examples.

    Args:
      split: a split string (``"train[90%:]"``) or a parsed :class:`Split`.
      length: number of examples in the named split.

    Returns:
      ``slice(start, stop)`` with integer (possibly negative) or ``None`` bounds,
      to be applied with ordinary Python/NumPy slicing.
    """
    parsed = split if isinstance(split, Split) else parse_split(split, names=names)
    return slice(_resolve_bound(parsed.start, length), _resolve_bound(parsed.stop, length))


def overlap(a: str | Split, b: str | Split, lengths: dict[str, int]) -> int:
    """How many examples two splits share: 0 for different names or disjoint slices.

    ``overlap("train[:50000]", "train[-10000:]", {"train": 60000})`` is 0; ``overlap("test", "test[5000:]",
    {"test": 10000})`` is 5000. Used to refuse training on the examples a model is evaluated on.

    Args:
      a, b: split strings or parsed splits.
      lengths: number of examples of each split name.
    """
    a = a if isinstance(a, Split) else parse_split(a, names=tuple(lengths))
    b = b if isinstance(b, Split) else parse_split(b, names=tuple(lengths))
    if a.name != b.name:
        return 0
    length = lengths[a.name]
    start_a, stop_a, _ = split_slice(a, length).indices(length)
    start_b, stop_b, _ = split_slice(b, length).indices(length)
    return max(0, min(stop_a, stop_b) - max(start_a, start_b))
