"""Entry point of the ``phicalc`` command.

Each subcommand is a module ``phicalc.cli.<name>`` exposing ``add_parser(subparsers)`` and
``run(args) -> int``. Modules import heavy dependencies inside ``run`` so ``phicalc --help`` is fast.
Exit codes: 0 success, 1 the work failed, 2 bad input (config, file, option).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from phicalc import __version__
from phicalc.errors import PhicalcError

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except (PhicalcError, FileNotFoundError, IsADirectoryError) as error:
        print(f"phicalc {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"phicalc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
