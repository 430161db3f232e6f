"""``jaxmath bench``: the default suite on every device: eager / jit / loop / fused, speedups, and FLOP/s as a
share of the device's spec peak where known, else of a large matmul measured in the same run."""

from __future__ import annotations

import argparse
import importlib.util
import time


def register(subparsers: argparse._SubParsersAction, help_text: str) -> None:
    from jaxmath.bench.runner import MODES
    from jaxmath.bench.suite import CASES, DTYPES, SIZES
    from jaxmath.devices.precision import PRECISIONS

    parser = subparsers.add_parser(name="bench", help=help_text, description=help_text)
    parser.add_argument("--size", choices=SIZES, default="full",
                        help="full: MNIST-sized workloads (the default); small; tiny (a smoke test)")
    parser.add_argument("--quick", action="store_true", help="same as --size tiny")
    parser.add_argument("--case", dest="cases", action="append", choices=CASES, metavar="CASE",
                        help=f"run only this case (repeatable): {', '.join(CASES)}")
    parser.add_argument("--mode", dest="modes", action="append", choices=MODES, metavar="MODE",
                        help=f"run only this mode (repeatable): {', '.join(MODES)}")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="matmul precision for every matmul (default: JAX's default)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="bfloat16: the MLPs' matmuls in bfloat16, params and optimizer state float32")
    parser.add_argument("--devices", default="all",
                        help="'all' (one device of each kind, plus the CPU), or a platform: cpu, gpu, tpu")
    parser.add_argument("--json", metavar="FILE", help="write the records as JSON")
    parser.add_argument("--csv", metavar="FILE", help="write the records as CSV")
    parser.add_argument("--plot", metavar="FILE.png", help="plot speedups per device and mode (needs matplotlib)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--parity", action="store_true",
                        help="also print the precision parity report (MLP outputs and gradients vs CPU float32)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(func=run)
    from jaxmath.cli import OneLineParser

    commands = parser.add_subparsers(dest="bench_command", metavar="compare", parser_class=OneLineParser)
    compare_help = "merge `jaxmath bench --json` records from several machines into one table and plot"
    compare = commands.add_parser("compare", help=compare_help, description=compare_help)
    compare.add_argument("files", nargs="+", metavar="FILE.json", help="records written by `jaxmath bench --json`")
    compare.add_argument("--plot", metavar="FILE.png", help="plot speedups per machine, device and mode")
    compare.add_argument("--csv", metavar="FILE", help="write the merged rows as CSV")
    compare.add_argument("--markdown", action="store_true", help="print the table as markdown")
    compare.set_defaults(func=run_compare)


def _devices(spec: str):
    import jax

    from jaxmath.cli import CLIError

    if spec == "all":
        return None
    try:
        return jax.devices(spec)
    except RuntimeError:
        have = sorted({d.platform for d in jax.devices()} | {"cpu"})
        raise CLIError(f"jaxmath bench: error: --devices {spec!r}: no such devices here (available: {', '.join(have)})")


def run_compare(args: argparse.Namespace) -> int:
    from jaxmath.bench import compare as _compare
    from jaxmath.cli import CLIError

    _check_outputs("jaxmath bench compare", (("--csv", args.csv), ("--plot", args.plot)), plot=args.plot)
    try:
        sources = _compare.load_sources(args.files)
    except _compare.RecordFileError as err:
        raise CLIError(f"jaxmath bench compare: error: {err}") from None
    rows = _compare.merge(sources)
    if args.markdown:
        print(_compare.format_compare_markdown(sources, rows))
    else:
        print(_compare.format_compare(sources, rows))
    if args.csv:
        _compare.write_compare_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        _compare.plot_compare(sources, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _check_outputs(prog: str, outputs, *, plot: str | None) -> None:
    """Every output path writable and a plot possible, before any work: one-line CLIErrors."""
    from jaxmath.cli import CLIError, output_file_problem

    for flag, path in outputs:
        problem = path is not None and output_file_problem(flag, path)
        if problem:
            raise CLIError(f"{prog}: error: {problem}")
    if plot and not plot.lower().endswith(".png"):
        raise CLIError(f"{prog}: error: --plot must name a .png file, got {plot!r}")
    if plot and importlib.util.find_spec("matplotlib") is None:
        raise CLIError(f'{prog}: error: --plot needs matplotlib: pip install "jaxmath[plot]"')


def run(args: argparse.Namespace) -> int:
    _check_outputs("jaxmath bench", (("--json", args.json), ("--csv", args.csv), ("--plot", args.plot)),
                   plot=args.plot)
    devices = _devices(args.devices)

    import os
    import platform

    import jax

    from jaxmath.bench import plot as _plot
    from jaxmath.bench import records as _records
    from jaxmath.bench import suite as _suite

    size = "tiny" if args.quick else args.size
    modes = tuple(args.modes) if args.modes else _suite.MODES
    cases = _suite.default_cases(size, precision=args.precision, dtype=args.dtype, names=args.cases)
    start = time.perf_counter()
    recs = _suite.run_suite(cases, size=size, devices=devices, precision=args.precision, dtype=args.dtype,
                            modes=modes, progress=args.progress)
    elapsed = time.perf_counter() - start
    print(_records.format_markdown(recs) if args.markdown else _records.format_table(recs))
    print()
    for line in _suite.summary(recs):
        print(line)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"suite time {elapsed:.1f} s; load average {load:.2f}; jax {jax.__version__}; {platform.machine()}")
    if args.parity:
        from jaxmath.bench import parity as _parity
        from jaxmath.bench.runner import distinct_devices

        print()
        rows = [row for device in distinct_devices(devices) for row in _parity.parity_report(device=device)]
        print(_parity.format_parity(rows))
    meta = {"size": size, "precision": args.precision or "default", "dtype": args.dtype, "seconds": elapsed,
            "load_average": load, **_records.machine_meta(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    if args.json:
        _records.write_json(recs, args.json, meta=meta)
        print(f"wrote {args.json}")
    if args.csv:
        _records.write_csv(recs, args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        _plot.plot_speedups(recs, args.plot)
        print(f"wrote {args.plot}")
    return 0
