"""The ``tapedeck`` console script: the replay TUI in front of the headless CLI.

``tapedeck`` with no argument opens the replay on the bundled sample;
``tapedeck replay DATA... [--persona] [--brain] [--speed] [--start --end]`` opens files;
every other command is the headless CLI's (``engine.cli``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine import cli
from engine.commands.options import add_model_arguments, model_arguments
from engine.errors import TapedeckError
from engine.runtime import program_main

if TYPE_CHECKING:
    from tui.sources import ReplaySpec

REPLAY_HELP = "open the interactive replay TUI (no command: the bundled sample)"


def add_replay_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("replay", help=REPLAY_HELP, description=REPLAY_HELP)
    p.add_argument(
        "data",
        nargs="*",
        help="candle files (CSV, feather, parquet, JSON) or EXCHANGE:SYMBOL; default: the sample",
    )
    p.add_argument("--persona", default=None, help="built-in persona name or a .toml path")
    p.add_argument(
        "--brain",
        default="rules",
        help="rules, ollama, llamacpp, openai or auto (default rules)",
    )
    add_model_arguments(p)  # --model, --host, --timeout, ... as run and compare take them
    p.add_argument("--speed", default="100x", help="1x, 10x, 100x, 1000x or max (default 100x)")
    p.add_argument("--start", default=None, help="window start (UTC time)")
    p.add_argument("--end", default=None, help="window end (UTC time)")
    p.add_argument("--theme", default=None, help="tapedeck-dark, tapedeck-light, tapedeck-amber")
    p.add_argument("--play", action="store_true", help="start playing at once")
    p.add_argument(
        "--experiment", metavar="RESULTS", help="an experiment's results folder (with --cell)"
    )
    p.add_argument("--cell", metavar="ID", help="the cell to replay: its id or row number")
    p.add_argument(
        "--best",
        type=int,
        metavar="N",
        help="with --experiment: compare the N best configurations (2-4) on one window",
    )
    p.add_argument(
        "--metric", default="sharpe", help="with --best: the metric that ranks (default sharpe)"
    )
    p.set_defaults(func=run_replay)
    return p


def replay_spec(args: argparse.Namespace) -> ReplaySpec:
    """What ``replay DATA... [--persona --brain --model --host --timeout ...]`` asks for;
    the model options go to the brain kind they were given with."""
    from engine.commands.options import check_options
    from engine.data.sample import SAMPLE_PATHS
    from engine.fetch.store import resolve_data_args
    from tui.clock import parse_speed
    from tui.sources import ReplaySpec, default_persona

    check_options(args)  # --timeout in its range, as run and compare check it
    given = model_arguments(args)
    return ReplaySpec(
        paths=resolve_data_args([str(p) for p in (args.data or SAMPLE_PATHS)]),
        persona=args.persona or default_persona(),
        brain=args.brain,
        speed=parse_speed(args.speed),
        start=args.start,
        end=args.end,
        brain_options={args.brain: given} if given else {},
    )


def run_replay(args: argparse.Namespace) -> int:
    from tui.sources import ReplaySource

    compare = None
    if args.experiment or args.cell or args.best:
        spec, compare = experiment_cell_spec(args)
    else:
        spec = replay_spec(args)
    # Everything that can fail on the user's input fails here, before the screen opens.
    from engine.brain.persona import load_persona
    from engine.data.notices import announce
    from tui.theming import check_theme_name

    if args.theme is not None:
        check_theme_name(args.theme)
    load_persona(spec.persona)
    source = ReplaySource.from_spec(spec)
    announce(source.series)
    from tui.app import TapedeckApp

    app = TapedeckApp(spec, source=source, theme=args.theme, autoplay=args.play, compare=compare)
    app.run()
    # A crash inside the app ends run() with the traceback printed and a return code set.
    return app.return_code or 0


def experiment_cell_spec(args: argparse.Namespace) -> tuple[ReplaySpec, list[str] | None]:
    """``--experiment RESULTS --cell ID``: the cell's files, window, persona, brain and
    model, brain options and backtest settings; with ``--best N`` also the N best
    configurations to compare (of any brain: ``persona@brain[:model]`` when they differ)."""
    from engine.experiment.replay import cell_replay, compare_cells
    from tui.clock import parse_speed
    from tui.sources import ReplaySpec

    if not args.experiment or not (args.cell or args.best):
        raise TapedeckError("--experiment RESULTS goes with --cell ID and/or --best N")
    if args.data or args.persona or args.start or args.end:
        raise TapedeckError("--experiment sets the data, persona and window: give none")
    compare = None
    if args.best:
        cell, cells = compare_cells(args.experiment, args.best, args.metric, args.cell)
    else:
        cell, cells = cell_replay(args.experiment, args.cell), []
    options = {cell.brain: cell.brain_options}
    if cells:
        one_brain = {(c.brain, c.model) for c in cells} == {(cell.brain, cell.model)}
        compare = [c.persona if one_brain else c.entry for c in cells]
        options.update({entry: c.brain_options for entry, c in zip(compare, cells, strict=True)})
    spec = ReplaySpec(
        paths=cell.paths,
        persona=cell.persona,
        brain=cell.brain,
        speed=parse_speed(args.speed),
        start=cell.start,
        end=cell.end,
        backtest=cell.backtest,
        brain_options=options,
        timeframe=cell.timeframe,
    )
    return spec, compare


def build_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            add_replay_parser(action)
    return parser


@program_main
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["replay"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return cli.EXIT_USAGE
    if args.func is run_replay:
        try:
            return run_replay(args)
        except (TapedeckError, ValueError, OSError) as exc:
            print(f"tapedeck: error: {exc}", file=sys.stderr)
            return cli.EXIT_USAGE
    return cli.run_command(args)


if __name__ == "__main__":
    sys.exit(main())
