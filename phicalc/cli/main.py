"""Entry point of the ``phicalc`` command.

Each subcommand is a module ``phicalc.cli.<name>`` exposing ``add_parser(subparsers)`` and
``run(args) -> int``. Modules import heavy dependencies inside ``run`` so ``phicalc --help`` is fast.
Exit codes: 0 success, 1 the work failed, 2 bad input (config, file, option). The command keeps
freed memory in the process (:mod:`phicalc.allocator`; ``PHICALC_MALLOC=default`` to not).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from phicalc import __version__
from phicalc.allocator import keep_freed_memory_unless_told
from phicalc.errors import PhicalcError, SimulationError

COMMANDS = ("label", "train", "eval", "md", "analyze", "models", "ipi")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phicalc", description="Φ-Module neural potentials for ASE"
    )
    parser.add_argument("--version", action="version", version=f"phicalc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"phicalc.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"phicalc.cli.{name}":
                continue  # command not built yet
            raise
        module.add_parser(subparsers)
    return parser


#: OS errors that mean a path given on the command line is unusable (bad input, exit 2).
_BAD_PATH = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    FileExistsError,
)


def _one_line(error: BaseException) -> str:
    """The error's message on one line (the first non-empty one)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    keep_freed_memory_unless_told()  # large tensors stay mapped between calls (phicalc.allocator)
    try:
        return int(args.run(args) or 0)
    except SimulationError as error:  # the work ran and failed
        print(f"phicalc {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except (PhicalcError, *_BAD_PATH) as error:
        print(f"phicalc {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, I/O error: the work failed, say so in one line
        print(f"phicalc {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"phicalc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
