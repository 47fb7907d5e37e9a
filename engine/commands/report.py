"""``tapedeck report RUN.jsonl... -o report.html``: one self-contained HTML page.

Several run logs make one page with a comparison. The candles are found by the file
names the run logs hold (beside the log, here, in the data/ store, the samples) or
given with ``--data`` (files or EXCHANGE:SYMBOL).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import TapedeckError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="an HTML report (offline, one file) of run logs")
    p.add_argument("runs", nargs="+", metavar="RUN.JSONL", help="run logs (run --out)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="FILE", help="the HTML file")
    p.add_argument(
        "--data",
        nargs="+",
        metavar="DATA",
        help="the candle files of the runs (default: found by the names in the run logs)",
    )
    p.add_argument("--title", default="tapedeck report", help="the page title")
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    from engine.fetch.store import resolve_data_args
    from engine.report import from_run_log, write_report

    data = resolve_data_args(args.data) if args.data else None
    for f in data or []:
        if not Path(f).exists():
            raise TapedeckError(f"{f}: no such file")
    runs = []
    titles: set[str] = set()
    for path in args.runs:
        title = Path(path).stem
        if title in titles:
            title = str(path)
        titles.add(title)
        runs.append(from_run_log(path, data, title=title))
    write_report(args.out, runs, args.title)
    for run in runs:
        for note in run.notes:
            print(f"{run.title}: {note}", file=sys.stderr)
    print(f"report written to {args.out}", file=sys.stderr)
    return 0
