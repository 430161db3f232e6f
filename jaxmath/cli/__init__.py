"""The ``jaxmath`` command line: ``jaxmath train``, ``info``, ``bench``, ``attack``, ``dream``.

Each subcommand lives in its own module (``jaxmath/cli/<name>.py``) that defines
``register(subparsers, help_text)``; the module is imported only when the subcommand runs,
so ``jaxmath info`` starts fast and a missing optional extra (matplotlib) only
matters to the flag that needs it.

Ctrl-C and SIGTERM end every command the same way: one line on stderr and exit status 130. The
process leaves with ``os._exit`` after flushing its streams, because letting the interpreter shut down
normally while XLA is compiling or running can crash inside jaxlib (a segfault instead of 130).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
from typing import Sequence

SUBCOMMANDS = {
    "train": "Train a model (the MNIST MLP or LeNet-5, the Batman logo) and print a results table.",
    "info": "Show the backend, devices, versions and precision JAX is using.",
    "bench": "Time eager, jit and fused execution on every device and report speedups.",
    "attack": "Attack a saved model with FGSM or PGD and print its robust accuracy per eps.",
    "dream": "DeepDream: excite one layer of a saved model and write the dreamed image.",
}


INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class CLIError(Exception):
    """A bad flag value or a missing input: printed as one line, exit status 2."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, with the one line to print (what was saved, and where)."""


def _why(err: OSError) -> str:
    return err.strerror or errno.errorcode.get(err.errno or 0, "") or str(err)


def writable_problem(flag: str, directory, *, target=None) -> str | None:
    """Why files cannot be created in ``directory`` (probed by writing and removing a file), or None.

    A permission check alone misses a full disk and a read-only mount, and says yes to root everywhere; a
    probe written, fsynced and removed catches all three. An existing ``target`` that is not a regular file
    (``/dev/null``, ``/dev/full``, a pipe) is written in place, so it gets an empty write instead: the
    kernel already answers that with ENOSPC for ``/dev/full``.
    """
    import tempfile
    from pathlib import Path

    if target is not None and Path(target).exists() and not Path(target).is_file():
        try:
            fd = os.open(target, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, b"")
            finally:
                os.close(fd)
        except OSError as err:
            return f"{flag}: cannot write {str(target)!r}: {_why(err)}"
        return None
    if target is not None and Path(target).is_file():
        try:  # opening to append, writing nothing, leaves the file as it was
            with open(target, "ab"):
                pass
        except OSError as err:
            return f"{flag}: cannot write {str(target)!r}: {_why(err)}"
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".jaxmath-probe-") as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as err:
        return f"{flag}: cannot write in {str(directory)!r}: {_why(err)}"
    return None


def output_file_problem(flag: str, path: str) -> str | None:
    """Why ``path`` cannot be written as ``flag``'s output file, or None when it can.

    Checked before any work starts, so a run is never lost to a typo, a read-only folder or a full disk.
    """
    from pathlib import Path

    target = Path(path)
    if not path or target.is_dir():
        return f"{flag} must name a file, got {path!r}"
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        return f"{flag}: directory {str(parent)!r} does not exist"
    return writable_problem(flag, parent, target=target)


def output_directory_problem(flag: str, path: str) -> str | None:
    """Why ``path`` cannot be ``flag``'s output directory (created if missing), or None when it can."""
    from pathlib import Path

    target = Path(path)
    if not path:
        return f"{flag} must name a directory, got {path!r}"
    if target.exists() and not target.is_dir():
        return f"{flag} must name a directory, but {path!r} is a file"
    existing = target
    while not existing.exists():  # the nearest folder that exists is where the new ones will be made
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{flag}: {str(existing)!r} is a file, so {path!r} cannot be created"
    return writable_problem(flag, existing)


def _leave(status: int, message: str | None = None) -> None:
    """Print ``message``, flush, and end the process at once (no interpreter shutdown inside jaxlib)."""
    for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the line short
        try:
            signal.signal(signum, signal.SIG_IGN)
        except ValueError:
            pass
    if message:
        print(message, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def _redeliver_interrupts(previous):
    """An ``sys.unraisablehook`` that re-sends an interrupt swallowed where exceptions cannot propagate.

    Python raises KeyboardInterrupt at whatever bytecode runs next; when that is a finalizer (``__del__``, a
    weakref callback, which the garbage collector may run in the middle of anything) Python only prints
    "Exception ignored" and carries on, and the run would finish as if Ctrl-C had never been pressed. Sending
    the signal again lands it in ordinary code a moment later.
    """
    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # From another thread, so that the handler runs after this hook, in the main thread's own code.
            import threading

            resend = threading.Timer(0.01, os.kill, args=(os.getpid(), signal.SIGINT))
            resend.daemon = True
            resend.start()
            return
        previous(unraisable)

    return hook


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
    """Run one command; returns its exit status. Ctrl-C or SIGTERM ends the process itself with status 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    previous, previous_hook = None, sys.unraisablehook
    try:
        # SIGTERM takes the Ctrl-C path: the same checkpoint, line and status.
        previous = signal.signal(signal.SIGTERM, _sigterm)
        sys.unraisablehook = _redeliver_interrupts(previous_hook)
    except ValueError:  # not the main thread: leave signals alone
        pass
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
    except KeyboardInterrupt as err:
        _leave(INTERRUPTED, str(err) if isinstance(err, Interrupted) else "jaxmath: interrupted")
        raise  # not reached
    finally:
        sys.unraisablehook = previous_hook
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
