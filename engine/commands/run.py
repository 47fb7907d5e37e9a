"""``tapedeck run DATA... --persona NAME_OR_FILE``: one persona headless, then a report.

Prints the metrics and the trades (``--json``: ``{"metrics", "trades", "brain"}``);
``--out`` writes the run log, ``--trades-csv`` the trades. The options are shared with
``compare`` (``engine.commands.options``), the tables with every command
(``engine.commands.tables``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from engine.brain.factory import make_brain
from engine.brain.persona import load_persona
from engine.commands import tables
from engine.commands.options import (
    RunError,
    add_backtest_arguments,
    backtest_config,
    brain_options,
    check_brain_kind,
    check_options,
    refuse_to_overwrite_inputs,
    window_from_args,
)
from engine.commands.progress import Progress
from engine.commands.records import TRADE_KEYS, result_record
from engine.data.notices import data_records
from engine.export import write_trades_csv

__all__ = ["TRADE_KEYS", "RunError", "register", "result_record", "run_command"]


METRICS_CONVENTION = (
    "Metrics: per-bar returns, risk-free rate 0; annual return, volatility, Sharpe, Sortino "
    "and Calmar are annualised by the calendar time the window covers (first candle's open "
    "to last candle's close, 365-day year), not by the number of samples."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="backtest one persona headless and report",
        description="Backtest one persona headless and report its metrics and trades.",
        epilog=METRICS_CONVENTION,
    )
    add_backtest_arguments(run)
    run.add_argument("--persona", default="momentum", help="built-in name or .toml file")
    run.add_argument("--out", type=Path, metavar="RUN.JSONL", help="write the run log here")
    run.add_argument(
        "--trades-csv", type=Path, metavar="FILE", help="write the trades as CSV (ISO times)"
    )
    run.add_argument(
        "--html", type=Path, metavar="FILE", help="write a self-contained HTML report here"
    )
    run.add_argument(
        "--trades", type=int, default=20, metavar="N", help="trades shown in the table (20)"
    )
    run.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from engine.backtest import BacktestEngine

    check_options(args)
    persona = load_persona(args.persona)
    check_brain_kind(args.brain)
    series = window_from_args(args)
    outputs = [("--out", args.out), ("--trades-csv", args.trades_csv), ("--html", args.html)]
    refuse_to_overwrite_inputs(outputs, series)
    config = backtest_config(args)
    brain = make_brain(args.brain, persona, **brain_options(args, series))
    started = time.perf_counter()
    engine = BacktestEngine(series, persona, brain, config)
    with Progress(args.progress, engine.total_steps) as progress:
        result = engine.run(progress.callback(persona.name, engine.total_steps))
    elapsed = time.perf_counter() - started
    if args.out is not None:
        from engine.runlog import write_run_log

        write_run_log(
            args.out,
            result,
            persona=persona,
            config=config,
            analysis=engine.analysis,
            # An LLM's latency is worth keeping (the rule brain's is noise, left out so
            # that its run logs stay byte-identical).
            timing=args.brain != "rules",
        )
    if args.trades_csv is not None:
        write_trades_csv(args.trades_csv, result.trades)
    if args.html is not None:
        from engine.report import from_result, write_report

        write_report(args.html, [from_result(result, persona.name, series)])
    if args.json:
        record = {**result_record(result), "data": data_records(series)}
        print(json.dumps(record, indent=2, allow_nan=False))
        return 0
    console = tables.console()
    rate = f"{result.steps / elapsed:,.0f} steps/s" if elapsed > 0 else ""
    brain_text = f"{result.brain} {result.model}".strip()
    console.print(f"[bold]{persona.name}[/] · brain {brain_text} · {tables.window_text(series)}")
    console.print(f"{result.steps:,} steps in {elapsed:.2f} s ({rate})", style="dim")
    console.print(tables.metrics_table("metrics", result.metrics))
    for table in tables.nested_tables(result.metrics):
        console.print(table)
    console.print(tables.metrics_table("brain", {"kind": result.brain, **result.brain_stats}))
    trades = tables.trades_table(result.trades, args.trades)
    if trades is not None:
        console.print(trades)
    elif not result.trades:
        console.print("no trades")
    if args.out is not None:
        console.print(f"run log written to {args.out}", style="dim")
    if args.trades_csv is not None:
        console.print(f"trades written to {args.trades_csv}", style="dim")
    if args.html is not None:
        console.print(f"report written to {args.html}", style="dim")
    return 0
