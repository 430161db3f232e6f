"""Side by side: ``jaxmath bench --json`` records measured on different machines (CPU, GPU, TPU runtimes).

One Colab runtime holds one kind of device, so a CPU / GPU / TPU comparison means merging files::

    jaxmath bench --json cpu.json          # in each runtime
    jaxmath bench compare cpu.json gpu.json tpu.json --plot speedups.png --csv all.csv

Each (file, device) pair becomes one labelled source ("A:cpu", "B:gpu", ...); per case the table shows the
eager, jit and fused times per step, the jit and fused speedups over eager, and the best % of the
reference (spec peak, or a matmul measured in the same run where no spec is known).
"""

from __future__ import annotations

import csv
import json
import string
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from jaxmath.bench.records import FIELDS, SCHEMA_VERSION, Record, _time, reference_label


class RecordFileError(ValueError):
    """A records file that cannot be compared (unreadable, not a records file, or an older schema)."""


class Source(NamedTuple):
    """The records of one file: its label ("A", "B", ...), path, meta dict and records."""

    label: str
    path: str
    meta: dict
    records: list[Record]


class Row(NamedTuple):
    """One (case, source, device) line of the comparison; times in seconds per step, None when not run."""

    case: str
    source: str
    path: str
    device: str
    device_kind: str
    backend: str
    dtype: str
    precision: str
    jax: str
    jaxlib: str
    date: str
    eager_s: float | None
    jit_s: float | None
    loop_s: float | None
    fused_s: float | None
    jit_speedup: float | None
    fused_speedup: float | None
    percent_of_peak: float | None
    peak_source: str


ROW_FIELDS = Row._fields


def load_source(path: str | Path, label: str) -> Source:
    """Read one ``jaxmath bench --json`` file, refusing anything but the current schema.

    Raises:
      RecordFileError: with a one-line message naming the file and what to do.
    """
    path = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise RecordFileError(f"{path}: cannot read it ({err.strerror or err})") from err
    except json.JSONDecodeError as err:
        raise RecordFileError(f"{path}: not JSON ({err.msg}, line {err.lineno})") from err
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise RecordFileError(f"{path}: not a jaxmath bench record (no \"records\" list)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        found = "no schema_version (written before versions were recorded)" if version is None else \
            f"schema_version {version!r}"
        raise RecordFileError(f"{path}: {found}; this jaxmath reads schema_version {SCHEMA_VERSION}: "
                              f"re-measure with `jaxmath bench --json {Path(path).name}`")
    try:
        recs = [Record(**{k: v for k, v in row.items() if k in FIELDS}) for row in data["records"]]
    except TypeError as err:
        raise RecordFileError(f"{path}: malformed record ({err})") from err
    return Source(label, path, dict(data.get("meta") or {}), recs)


def load_sources(paths: Sequence[str | Path]) -> list[Source]:
    """``load_source`` for each path, labelled A, B, C, ... in order (AA, AB, ... past Z)."""
    letters = string.ascii_uppercase
    labels = [letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26] for i in range(len(paths))]
    return [load_source(p, label) for p, label in zip(paths, labels)]


def _best_percent(by_mode: dict[str, Record]) -> tuple[float | None, str]:
    best = max((r for r in by_mode.values() if r.mode != "peak" and r.percent_of_peak is not None),
               key=lambda r: r.percent_of_peak, default=None)
    return (None, "") if best is None else (best.percent_of_peak, best.peak_source)


def merge(sources: Sequence[Source]) -> list[Row]:
    """One ``Row`` per (case, source, device), cases in first-seen order, then sources in order."""
    groups: dict[tuple[str, str, str], dict[str, Record]] = {}
    order: list[str] = []
    meta = {s.label: s for s in sources}
    for s in sources:
        for r in s.records:
            if r.mode == "peak":
                continue
            if r.case not in order:
                order.append(r.case)
            groups.setdefault((r.case, s.label, r.device or r.device_kind), {})[r.mode] = r
    rows = []
    for case in order:
        for (c, label, device), by_mode in groups.items():
            if c != case:
                continue
            first = next(iter(by_mode.values()))
            m = meta[label].meta

            def t(mode):
                return by_mode[mode].median_s if mode in by_mode else None

            eager = t("eager")
            percent, source = _best_percent(by_mode)
            rows.append(Row(
                case=case, source=label, path=meta[label].path, device=device, device_kind=first.device_kind,
                backend=first.backend, dtype=first.dtype, precision=first.precision, jax=str(m.get("jax", "")),
                jaxlib=str(m.get("jaxlib", "")), date=str(m.get("date", "")), eager_s=eager, jit_s=t("jit"),
                loop_s=t("loop"), fused_s=t("fused"),
                jit_speedup=eager / t("jit") if eager and t("jit") else None,
                fused_speedup=eager / t("fused") if eager and t("fused") else None,
                percent_of_peak=percent, peak_source=source,
            ))
    return rows


def _x(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}x" if value >= 100 else f"{value:.1f}x"


def _pct(row: Row) -> str:
    if row.percent_of_peak is None:
        return "-"
    mark = "" if row.peak_source == "table" else "m"
    return f"{row.percent_of_peak:.0f}%{mark}"


COLUMNS = (
    ("case", lambda r: r.case),
    ("source", lambda r: f"{r.source}:{r.backend or r.device}"),
    ("eager", lambda r: _time(r.eager_s)),
    ("jit", lambda r: _time(r.jit_s)),
    ("fused", lambda r: _time(r.fused_s)),
    ("jit x", lambda r: _x(r.jit_speedup)),
    ("fused x", lambda r: _x(r.fused_speedup)),
    ("% ref", _pct),
)


def describe_sources(sources: Sequence[Source]) -> list[str]:
    """One line per (source, device): label, device kind, dtype/precision, versions, date, file."""
    lines = []
    for s in sources:
        seen = {}
        for r in s.records:
            seen.setdefault(r.device or r.device_kind, r)
        m = s.meta
        for device, r in seen.items():
            jax_version, jaxlib_version = m.get("jax", "?"), m.get("jaxlib", "?")
            versions = jax_version if jax_version == jaxlib_version else f"{jax_version}/jaxlib {jaxlib_version}"
            lines.append(f"{s.label}:{r.backend or device}  {r.device_kind}, {r.dtype}, {r.precision}; "
                         f"jax {versions}; {m.get('date', '?')}; size {m.get('size', '?')}; {Path(s.path).name}")
    return lines


def format_compare(sources: Sequence[Source], rows: Sequence[Row] | None = None) -> str:
    """The merged table (under 100 columns): sources, then one line per case and source, then the legend."""
    rows = merge(sources) if rows is None else rows
    cells = [[name for name, _ in COLUMNS]] + [[get(r) for _, get in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]

    def line(c):
        return "  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip()

    out = describe_sources(sources) + [""]
    out += [line(cells[0]), "  ".join("-" * w for w in widths)]
    previous = None
    for r, c in zip(rows, cells[1:]):
        if r.case == previous:
            c = [""] + c[1:]
        previous = r.case
        out.append(line(c))
    out += ["", "times per step (median); jit x, fused x: speedup over eager; % ref: best of the modes, "
            "of the spec", "peak, or with m of a matmul measured in the same run (not a hardware limit)."]
    return "\n".join(out)


def format_compare_markdown(sources: Sequence[Source], rows: Sequence[Row] | None = None) -> str:
    """The merged table as GitHub markdown, one row per case and source, with device kind, versions and date."""
    rows = merge(sources) if rows is None else rows
    cols = COLUMNS[:2] + (("device kind", lambda r: r.device_kind), ("dtype", lambda r: r.dtype),
                          ("jax", lambda r: r.jax), ("date", lambda r: r.date)) + COLUMNS[2:]
    head = "| " + " | ".join(n for n, _ in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    return "\n".join([head, sep] + ["| " + " | ".join(get(r) for _, get in cols) + " |" for r in rows])


def write_compare_csv(rows: Sequence[Row], path: str | Path) -> None:
    """Every ``Row`` field, numbers in seconds / ratios / percent ('' where a mode was not run)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ROW_FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in r._asdict().items()})


def relabelled(sources: Sequence[Source]) -> list[Record]:
    """All records with ``device_kind`` prefixed by the source label, so one plot tells the machines apart."""
    import dataclasses

    out: list[Record] = []
    for s in sources:
        for r in s.records:
            out.append(dataclasses.replace(r, device_kind=f"{s.label}: {r.device_kind or r.device}"))
    return out


def plot_compare(sources: Sequence[Source], path: str | None = None) -> Any:
    """One bar chart of the speedups over eager, one bar per (source, device, mode) (``plot_speedups``)."""
    import matplotlib

    from jaxmath.bench.plot import plot_speedups

    if path is not None:
        matplotlib.use("Agg", force=False)
    fig = plot_speedups(relabelled(sources), None)
    fig.axes[0].set_title("jaxmath bench compare: speedup over eager, per machine, device and mode")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


__all__ = ["RecordFileError", "Source", "Row", "load_source", "load_sources", "merge", "format_compare",
           "format_compare_markdown", "write_compare_csv", "plot_compare", "reference_label"]
