"""``tapedeck data info FILE... [--json]`` and ``tapedeck data sample [--seed N] [--out DIR]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.data import load_many
from engine.data.report import DataReport
from engine.data.sample import DEFAULT_SEED, SAMPLE_DIR, write_sample
from engine.fetch.store import resolve_data_args
from engine.timeutil import ns_to_timeframe, to_iso
from engine.types import InstrumentSeries


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="inspect candle files, regenerate the sample")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    info = sub.add_parser("info", help="instrument, timeframe, rows, span, gaps and repairs")
    info.add_argument("files", nargs="+", metavar="FILE", help="CSV, feather, json or parquet")
    info.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    info.add_argument("--timeframe", help="override the inferred timeframe (e.g. 5m)")
    info.add_argument(
        "--fill-gaps", action="store_true", help="forward-fill gaps with flat zero-volume candles"
    )
    info.set_defaults(func=run_info)

    sample = sub.add_parser("sample", help="regenerate the bundled SYNTHETIC sample")
    sample.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"default {DEFAULT_SEED}")
    sample.add_argument(
        "--out",
        type=Path,
        default=SAMPLE_DIR,
        help="output folder (default: the sample shipped with the package)",
    )
    sample.set_defaults(func=run_sample)


def series_info(series: InstrumentSeries) -> dict[str, Any]:
    """The JSON object of ``data info``: exactly the keys the CLI contract names."""
    report: DataReport = series.report
    return {
        "instrument": series.instrument,
        "timeframe": series.timeframe,
        "rows": len(series),
        "start": to_iso(int(series.open_time[0])),
        "end": to_iso(int(series.open_time[-1])),
        "gaps": report.gap_count,
        "repairs": [
            {"kind": r.kind, "count": r.count, "description": r.description} for r in report.repairs
        ],
    }


def _short_time(ns: int) -> str:
    return to_iso(ns).replace("T", " ").removesuffix("Z").removesuffix(":00")


def _gaps_cell(report: DataReport) -> str:
    if not report.gaps:
        return "none"
    largest = ns_to_timeframe(report.largest_gap_ns)
    return f"{report.gap_count} ({report.missing_candles} missing, largest {largest})"


def _repairs_cell(report: DataReport) -> str:
    return ", ".join(f"{r.count} {r.kind}" for r in report.repairs) or "none"


def run_info(args: argparse.Namespace) -> int:
    series = load_many(
        resolve_data_args(args.files, args.timeframe),
        timeframe=args.timeframe,
        fill_gaps=args.fill_gaps,
    )
    print_info(series, as_json=args.json)
    return 0


def print_info(series: list[InstrumentSeries], *, as_json: bool = False) -> None:
    """The validation report of ``data info`` (also printed by ``fetch`` when it ends)."""
    if as_json:
        print(json.dumps([series_info(s) for s in series], indent=2))
        return
    table = Table()
    for name, justify in (
        ("instrument", "left"),
        ("timeframe", "right"),
        ("rows", "right"),
        ("first candle (UTC)", "left"),
        ("last candle (UTC)", "left"),
        ("gaps", "left"),
        ("repairs", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in series:
        table.add_row(
            s.instrument,
            s.timeframe,
            f"{len(s):,}",
            _short_time(int(s.open_time[0])),
            _short_time(int(s.open_time[-1])),
            _gaps_cell(s.report),
            _repairs_cell(s.report),
        )
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)  # piped: never wrap the table
    console.print(table)
    for s in series:
        for note in s.report.notes:
            console.print(f"{s.instrument}: {note}")


def run_sample(args: argparse.Namespace) -> int:
    paths = write_sample(args.out, seed=args.seed)
    for p in paths:
        print(p, file=sys.stdout)
    return 0
