"""Speedup bar charts of benchmark records (matplotlib, imported only when plotting)."""

from __future__ import annotations

from typing import Sequence

from jaxmath.bench.records import Record

SPEEDUP_MODES = ("jit", "loop", "fused")


def speedups_vs_eager(records: Sequence[Record]) -> dict[str, dict[str, dict[str, float]]]:
    """``{device: {case: {mode: eager_time / mode_time}}}`` for the jit, loop and fused modes."""
    eager = {(r.device_kind, r.case): r.median_s for r in records if r.mode == "eager" and r.median_s}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in records:
        base = eager.get((r.device_kind, r.case))
        if r.mode in SPEEDUP_MODES and base and r.median_s:
            out.setdefault(r.device_kind, {}).setdefault(r.case, {})[r.mode] = base / r.median_s
    return out


def plot_speedups(records: Sequence[Record], path: str | None = None, *, ax=None):
    """Bars of the speedup over eager per case, one group per case, one bar per (device, mode); log scale.

    Args:
      records: from ``run_suite``/``benchmark``.
      path: save the figure there (PNG) when given.
      ax: draw into this matplotlib Axes (default: a new figure).

    Returns:
      The matplotlib Figure.
    """
    import matplotlib

    if ax is None and path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    data = speedups_vs_eager(records)
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 4.5))
    else:
        fig = ax.figure
    cases = sorted({c for dev in data.values() for c in dev}, key=lambda c: [r.case for r in records].index(c))
    bars = [(dev, mode) for dev in data for mode in SPEEDUP_MODES]
    width = 0.8 / max(len(bars), 1)
    for b, (dev, mode) in enumerate(bars):
        xs = [i + b * width for i in range(len(cases))]
        ys = [data[dev].get(c, {}).get(mode, 0.0) for c in cases]
        ax.bar(xs, ys, width, label=f"{dev}: {mode}")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))])
    ax.set_xticklabels(cases, fontsize=8)
    ax.set_yscale("log")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_ylabel("speedup over eager (x)")
    ax.set_title("jaxmath bench: speedup over op-by-op eager, per device and mode")
    ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
