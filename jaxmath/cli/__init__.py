"""The ``jaxmath`` command line: ``jaxmath train``, ``jaxmath info``, ``jaxmath bench``.

Each subcommand lives in its own module (``jaxmath/cli/<name>.py``) that defines
``register(subparsers, help_text)``; the module is imported only when the subcommand runs,
so ``jaxmath info`` starts fast and a missing optional extra (matplotlib) only
matters to the flag that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

SUBCOMMANDS = {
    "train": "Train a model (the MNIST MLP, the Batman logo) and print a results table.",
    "info": "Show the backend, devices, versions and precision JAX is using.",
    "bench": "Time eager, jit and fused execution on every device and report speedups.",
}


class CLIError(Exception):
    """A bad flag value or a missing input: printed as one line, exit status 2."""


def output_file_problem(flag: str, path: str) -> str | None:
    """Why ``path`` cannot be written as ``flag``'s output file, or None when it can.

    Checked before any work starts, so a run is never lost to a typo in an output path.
    """
    from pathlib import Path

    target = Path(path)
    if not path or target.is_dir():
        return f"{flag} must name a file, got {path!r}"
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        return f"{flag}: directory {str(parent)!r} does not exist"
    return None


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; users asked for the error alone."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{self.prog}: error: {message}")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    from jaxmath import __version__

    parser = OneLineParser(prog="jaxmath", description="jaxmath: the bare math of machine learning in JAX.")
    parser.add_argument("--version", action="version", version=f"jaxmath {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, help_text in SUBCOMMANDS.items():
        # Import only the module of the subcommand being run (or all, for --help).
        if argv and argv[0] in SUBCOMMANDS and argv[0] != name:
            subparsers.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(f"jaxmath.cli.{name}")
        module.register(subparsers, help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if args.command is None else 2
        return int(args.func(args) or 0)
    except CLIError as err:
        print(str(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxmath: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
