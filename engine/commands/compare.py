"""``tapedeck compare DATA... --personas a,b,c``: several personas over one window.

The analysis (indicators, signals) is computed once by a Session; the personas' metrics
are printed side by side (``--json``: a list of ``run --json`` objects, each with its
``persona``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.brain.factory import make_brain
from engine.commands import tables
from engine.commands.options import (
    add_backtest_arguments,
    backtest_config,
    brain_options,
    check_brain_kind,
    check_options,
    persona_list,
    window_from_args,
)
from engine.commands.progress import Progress
from engine.commands.records import result_record
from engine.data.notices import data_records


def register(subparsers: argparse._SubParsersAction) -> None:
    compare = subparsers.add_parser("compare", help="several personas side by side")
    add_backtest_arguments(compare)
    compare.add_argument(
        "--personas",
        default="scalper,conservative,momentum,mean-reversion",
        help="comma-separated names or .toml files (default: the four built-ins)",
    )
    compare.add_argument(
        "--html", type=Path, metavar="FILE", help="write the comparison as an HTML report"
    )
    compare.set_defaults(func=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from engine.backtest import Session

    check_options(args)
    personas = persona_list(args.personas)
    kind = args.brain
    check_brain_kind(kind)
    series = window_from_args(args)
    config = backtest_config(args)
    opts = brain_options(args, series)
    session = Session(series, personas, lambda p: make_brain(kind, p, **opts), config)
    results: dict[str, Any] = {}
    with Progress(args.progress, session.total_steps) as progress:
        for name, engine in session.engines.items():
            results[name] = engine.run(progress.callback(name, engine.total_steps))
    if args.html is not None:
        from engine.report import from_result, write_report

        runs = [from_result(r, name, series) for name, r in results.items()]
        write_report(args.html, runs, title="tapedeck compare")
    if args.json:
        data = data_records(series)
        records = [
            {"persona": name, **result_record(r), "data": data} for name, r in results.items()
        ]
        print(json.dumps(records, indent=2, allow_nan=False))
        return 0
    console = tables.console()
    console.print(f"[bold]compare[/] · brain {kind} · {tables.window_text(series)}")
    console.print(tables.compare_table(results))
    return 0
