"""Benchmark result records: one row per (case, device, mode); print as a table, write JSON and CSV."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Iterable, Sequence


@dataclasses.dataclass
class Record:
    """One measurement.

    Times are seconds per step (per call for ``eager``/``jit``, the slope for
    ``loop``/``fused``); rates are per second; ``percent_of_peak`` is 0..100.
    ``speedup`` is relative to the case's ``baseline`` mode on the same device
    (jit vs eager, fused vs loop).
    """

    case: str
    mode: str
    device: str = ""
    device_kind: str = ""
    backend: str = ""
    dtype: str = "float32"
    precision: str = "default"
    median_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    repeats: int | None = None
    compile_s: float | None = None
    flops: float | None = None
    bytes_accessed: float | None = None
    flops_per_s: float | None = None
    bytes_per_s: float | None = None
    peak_flops_per_s: float | None = None
    peak_source: str = ""
    percent_of_peak: float | None = None
    speedup: float | None = None
    baseline: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(Record))
_TYPES = {f.name: f.type for f in dataclasses.fields(Record)}


def _parse(name: str, text: str) -> Any:
    """A CSV cell back to the field's type ('' is None for optional numbers)."""
    kind = str(_TYPES[name])
    if "float" in kind:
        return None if text == "" else float(text)
    if "int" in kind:
        return None if text == "" else int(text)
    return text


# The version of the JSON layout written by ``write_json``. Records written before it existed carry none
# (version 1: no versions, date or machine in "meta"); ``jaxmath bench compare`` refuses those, since it cannot
# say what they were measured with. Bump it whenever a field changes meaning.
SCHEMA_VERSION = 2


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_meta() -> dict:
    """What a record was measured with: versions, date (UTC), CPU, core count, backend and its devices."""
    import jax
    import jaxlib

    from jaxmath import __version__

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "jaxmath": __version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "machine": platform.machine(), "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "backend": jax.default_backend(), "device_kinds": sorted({d.device_kind for d in jax.devices()})}


def write_json(records: Sequence[Record], path: str | Path, *, meta: dict | None = None) -> None:
    """Write ``{"schema_version": 2, "meta": {...}, "records": [...]}`` (NaN/inf written as null)."""

    def clean(value):
        return None if isinstance(value, float) and not math.isfinite(value) else value

    rows = [{k: clean(v) for k, v in r.as_dict().items()} for r in records]
    data = {"schema_version": SCHEMA_VERSION, "meta": meta or {}, "records": rows}
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def read_json(path: str | Path) -> list[Record]:
    data = json.loads(Path(path).read_text())
    rows = data["records"] if isinstance(data, dict) else data
    return [Record(**{k: v for k, v in row.items() if k in FIELDS}) for row in rows]


def write_csv(records: Sequence[Record], path: str | Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for r in records:
            writer.writerow({k: ("" if v is None else v) for k, v in r.as_dict().items()})


def read_csv(path: str | Path) -> list[Record]:
    with open(path, newline="") as f:
        return [Record(**{k: _parse(k, v) for k, v in row.items()}) for row in csv.DictReader(f)]


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.1f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def reference_label(source: str) -> str:
    """What "% of ..." is measured against: ``"spec peak"`` (datasheet) or ``"measured matmul"`` (timed here).

    A measured matmul is the best this device did on a large matmul in this run, not a hardware limit: a fused
    kernel may well exceed 100% of it.
    """
    if source == "table":
        return "spec peak"
    if source in ("measured matmul", "matmul alongside"):
        return "measured matmul"
    return "peak"


def _timed_once(r: Record) -> bool:
    return r.mode == "eager" and r.repeats == 1


# The columns of the terminal table: device, dtype and precision go into each device's header line instead.
COLUMNS = (
    ("case", lambda r: r.case),
    ("mode", lambda r: r.mode),
    ("time/step", lambda r: _time(r.median_s) + ("*" if _timed_once(r) else "")),
    ("compile", lambda r: _time(r.compile_s)),
    ("speedup", lambda r: "-" if r.speedup is None else f"{r.speedup:.1f}x"),
    ("FLOP/s", lambda r: _si(r.flops_per_s, "").strip() or "-"),
    ("% ref", lambda r: "-" if r.percent_of_peak is None else f"{r.percent_of_peak:.0f}%"),
)

# The markdown table (RESULTS.md) keeps every field worth reading.
MARKDOWN_COLUMNS = (
    ("case", lambda r: r.case),
    ("device", lambda r: r.device_kind or r.device),
    ("mode", lambda r: r.mode),
    ("dtype", lambda r: r.dtype),
    ("precision", lambda r: r.precision),
    ("median/step", lambda r: _time(r.median_s) + ("*" if _timed_once(r) else "")),
    ("min", lambda r: _time(r.min_s)),
    ("max", lambda r: _time(r.max_s)),
    ("compile", lambda r: _time(r.compile_s)),
    ("speedup", lambda r: "-" if r.speedup is None else f"{r.speedup:.1f}x vs {r.baseline}"),
    ("FLOP/s", lambda r: _si(r.flops_per_s, "FLOP/s")),
    ("% of", lambda r: "-" if r.percent_of_peak is None else
     f"{r.percent_of_peak:.0f}% of {reference_label(r.peak_source)}"),
    ("bandwidth", lambda r: _si(r.bytes_per_s, "B/s")),
)


def _device_header(device: str, recs: list[Record]) -> list[str]:
    """Two lines per device: what ran there, and what "% ref" is measured against."""
    first = recs[0]
    peak = next((r for r in recs if r.mode == "peak"), None)
    head = f"{device} ({first.device_kind or first.backend or '?'}), {first.dtype}, precision {first.precision}"
    source = next((r.peak_source for r in recs if r.mode != "peak" and r.peak_source), "")
    if peak is None:
        return [head] if not source else [head, f"  % ref: % of {reference_label(source)}"]
    measured = _si(peak.flops_per_s, "FLOP/s")
    if peak.peak_source == "table":
        spec = _si(peak.peak_flops_per_s, "FLOP/s")
        share = "" if peak.percent_of_peak is None else f", {peak.percent_of_peak:.0f}% of it"
        line = f"  % ref: % of the spec peak {spec}; {peak.case} measured {measured}{share}"
    else:
        line = f"  % ref: % of a {peak.case.removeprefix('matmul ')} matmul measured here, {measured} (no spec peak)"
    return [head, line]


def format_table(records: Iterable[Record]) -> str:
    """A text table within 80 columns: per device a header (device, dtype, precision, the "% ref" reference)
    and one line per case and mode; then what the marks mean."""
    records = list(records)
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.device or r.device_kind or "?", []).append(r)
    rows = [[name for name, _ in COLUMNS]] + [[get(r) for _, get in COLUMNS] for r in records if r.mode != "peak"]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def line(cells):
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip()

    out = []
    for device, recs in groups.items():
        if out:
            out.append("")
        out += _device_header(device, recs)
        out += [line(rows[0]), "  ".join("-" * w for w in widths)]
        out += [line([get(r) for _, get in COLUMNS]) for r in recs if r.mode != "peak"]
    out.append("")
    out.append("speedup: jit and loop vs eager, fused vs loop; FLOP/s from XLA's cost analysis.")
    if any(_timed_once(r) for r in records):
        out.append("* eager timed once (one call after warm-up): a rough figure.")
    return "\n".join(out)


def format_markdown(records: Iterable[Record]) -> str:
    """The table as GitHub markdown with every field (for RESULTS.md)."""
    rows = [[get(r) for _, get in MARKDOWN_COLUMNS] for r in records]
    head = "| " + " | ".join(name for name, _ in MARKDOWN_COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in MARKDOWN_COLUMNS) + "|"
    return "\n".join([head, sep] + ["| " + " | ".join(row) + " |" for row in rows])
