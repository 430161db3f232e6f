"""``jaxmath info``: the backend, devices, memory, versions, matmul precision and x64 JAX is using."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction, help_text: str) -> None:
    parser = subparsers.add_parser(name="info", help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true", help="print the information as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, accelerators: dict | None = None) -> int:
    """Print the report; the fallback warning (accelerator present, JAX on CPU) goes to stderr.

    ``accelerators`` overrides detection (tests).
    """
    from jaxmath.devices import info as _info

    data = _info.collect_info(accelerators=accelerators)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(_info.format_info(data))
    warning = _info.fallback_warning(data)
    if warning:
        bar = "!" * 78
        print(f"{bar}\n{warning}\n{bar}", file=sys.stderr)
    return 0
