"""The headless command line: ``python -m engine.cli`` (the ``tapedeck`` script adds the TUI).

Each command lives in a module of ``engine.commands`` exposing ``register(subparsers)``,
which adds its parser and sets ``func`` (taking the parsed args, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from engine.errors import TapedeckError
from engine.runtime import program_main

COMMAND_MODULES: tuple[str, ...] = (
    "engine.commands.data",
    "engine.commands.signals",
    "engine.commands.run",
    "engine.commands.compare",
    "engine.commands.personas",
    "engine.commands.cache",
    "engine.commands.fetch",
    "engine.commands.experiment",
    "engine.commands.report",
    "engine.commands.serve",
)

EXIT_USAGE = 2


def build_parser(prog: str = "tapedeck") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Interactive backtest replay of crypto trading strategies.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command; user errors become one line on stderr and exit status 2."""
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (``tapedeck signals FILE | head``): that is how it says
        # "enough", so stop quietly; stdout goes to /dev/null so the exit flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (TapedeckError, ValueError, OSError) as exc:
        print(f"tapedeck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tapedeck: interrupted", file=sys.stderr)
        return 130


@program_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
