"""``tapedeck experiment``: a grid of backtests over windows, on every core or a cluster.

    tapedeck experiment EXPERIMENT.toml [--out DIR] [--workers N | --cluster ADDRESS]
    tapedeck experiment --data A.feather B.feather --persona momentum@rules \\
        --grid stop_atr=1.5,2,3 --walk-forward 10d:5d          # the short form
    tapedeck experiment --results DIR --compare A B            # statistics only

The results folder (default: ``<experiment>-results`` beside the file) holds the table
(``cells.parquet``, ``cells.csv``); running again resumes, skipping finished cells.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from engine.errors import TapedeckError
from engine.experiment.spec import OBJECTIVES, SEARCH_METHODS, Experiment

if TYPE_CHECKING:  # pandas (~0.3 s to import) only when an experiment runs: not for `run`
    import pandas as pd

SUMMARY_METRICS = ("total_return_pct", "sharpe")


class ExperimentUsageError(TapedeckError):
    """Command-line arguments that do not make an experiment."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="a grid of backtests (personas x parameters x brains x windows), with statistics",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("spec", nargs="?", metavar="EXPERIMENT.toml", help="the experiment file")
    short = p.add_argument_group("short form (instead of a file)")
    short.add_argument("--data", nargs="+", metavar="FILE", help="candle files (one set)")
    short.add_argument(
        "--persona",
        action="append",
        metavar="NAME[@BRAIN]",
        help="persona (repeatable; default momentum@rules)",
    )
    short.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="persona field and the values to try (repeatable)",
    )
    windows = short.add_mutually_exclusive_group()
    windows.add_argument(
        "--walk-forward", metavar="TRAIN:TEST[:STEP]", help="walk-forward folds, e.g. 10d:5d"
    )
    windows.add_argument("--rolling", metavar="SIZE[:STEP]", help="rolling windows, e.g. 5d")
    p.add_argument("--out", type=Path, metavar="DIR", help="results folder")
    p.add_argument("--workers", type=int, metavar="N", help="local processes (default: all cores)")
    p.add_argument("--cluster", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--search", choices=SEARCH_METHODS, help="override the file's search method")
    p.add_argument("--trials", type=int, metavar="N", help="random/optuna: configurations to try")
    p.add_argument("--objective", choices=OBJECTIVES, help="metric the search maximises")
    p.add_argument("--seed", type=int, help="seed of the random and optuna searches")
    p.add_argument(
        "--results", type=Path, metavar="DIR", help="only print the statistics of a results folder"
    )
    p.add_argument(
        "--compare",
        nargs=2,
        action="append",
        default=[],
        metavar=("A", "B"),
        help="compare two configurations (repeatable; ids or unique prefixes)",
    )
    p.add_argument(
        "--metric", default="total_return_pct", help="metric of comparisons and stability"
    )
    p.add_argument(
        "--progress", choices=("auto", "always", "never"), default="auto", help="progress bar"
    )
    p.set_defaults(func=experiment_command)


# ------------------------------------------------------------------------- building
def _short_form(args: argparse.Namespace) -> Experiment:
    from engine.experiment.spec import experiment_from_dict

    data: dict[str, Any] = {
        "name": "experiment",
        "data": [str(Path(f).resolve()) for f in args.data],
        "personas": args.persona or ["momentum@rules"],
    }
    grid: dict[str, list[Any]] = {}
    for item in args.grid:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ExperimentUsageError(f"--grid expects FIELD=V1,V2, got {item!r}")
        grid[key.strip()] = [_value(v) for v in values.split(",") if v.strip()]
    if grid:
        data["grid"] = grid
    if args.walk_forward:
        parts = args.walk_forward.split(":")
        if len(parts) not in (2, 3):
            raise ExperimentUsageError("--walk-forward expects TRAIN:TEST[:STEP], e.g. 10d:5d")
        data["windows"] = {"kind": "walk_forward", "train": parts[0], "test": parts[1]}
        if len(parts) == 3:
            data["windows"]["step"] = parts[2]
    elif args.rolling:
        parts = args.rolling.split(":")
        if len(parts) not in (1, 2):
            raise ExperimentUsageError("--rolling expects SIZE[:STEP], e.g. 5d or 5d:1d")
        data["windows"] = {"kind": "rolling", "size": parts[0], "step": parts[-1]}
    return experiment_from_dict(data, source="<command line>")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


def _with_search(exp: Experiment, args: argparse.Namespace) -> Experiment:
    from dataclasses import replace

    search = exp.search
    changes = {
        k: v
        for k, v in (
            ("method", args.search),
            ("trials", args.trials),
            ("objective", args.objective),
            ("seed", args.seed),
        )
        if v is not None
    }
    if not changes:
        return exp
    search = replace(search, **changes)
    if search.method != "grid" and search.trials <= 0:
        raise ExperimentUsageError(f"--search {search.method} needs --trials N (N > 0)")
    if search.trials < 0:
        raise ExperimentUsageError("--trials must be >= 0")
    return replace(exp, search=search)


def _out_folder(args: argparse.Namespace, exp: Experiment) -> Path:
    if args.out is not None:
        return args.out
    if args.spec:
        spec = Path(args.spec)
        return spec.with_name(f"{spec.stem}-results")
    return Path(f"{exp.name}-results")


# ------------------------------------------------------------------------- command
def experiment_command(args: argparse.Namespace) -> int:
    if args.results is not None:
        if args.spec or args.data:
            raise ExperimentUsageError("--results prints statistics only: give no experiment")
        from engine.experiment.store import read_table

        report(read_table(args.results), args.compare, args.metric, "sharpe")
        return 0
    if args.spec and args.data:
        raise ExperimentUsageError("give either EXPERIMENT.toml or the short form (--data)")
    if not args.spec and not args.data:
        raise ExperimentUsageError("give EXPERIMENT.toml, or --data FILE... for the short form")
    if args.workers is not None and args.workers < 1:
        raise ExperimentUsageError(f"--workers must be >= 1, got {args.workers}")
    if args.workers is not None and args.cluster:
        raise ExperimentUsageError("give either --workers or --cluster")
    if not args.spec and (args.persona is None and args.grid == []):
        pass  # the short form's defaults: momentum@rules, one window
    if args.spec:
        from engine.experiment.spec import load_experiment

        if args.persona or args.grid or args.walk_forward or args.rolling:
            raise ExperimentUsageError("--persona/--grid/--walk-forward belong to the short form")
        exp = load_experiment(args.spec)
    else:
        exp = _short_form(args)
    exp = _with_search(exp, args)
    out = _out_folder(args, exp)
    frame = run(exp, out, workers=args.workers, cluster=args.cluster, progress=args.progress)
    pairs = [*exp.compare, *(tuple(p) for p in args.compare)]
    report(frame, pairs, args.metric, exp.search.objective)
    return 0


def run(
    exp: Experiment,
    out: Path,
    *,
    workers: int | None,
    cluster: str | None,
    progress: str,
) -> pd.DataFrame:
    from engine.experiment.runner import ExperimentRunner
    from engine.experiment.search import run_search

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    started = time.perf_counter()
    with ExperimentRunner(exp, out, workers=workers, cluster=cluster, progress=progress) as r:
        resumed = len(r.store.done())
        where = f"cluster {cluster}" if cluster else f"{r.workers} local process(es)"
        err.print(
            f"experiment '{exp.name}': {len(r.all_cells)} cells in the grid, "
            f"{resumed} already in {out}; running on {where}",
            style="dim",
        )
        configs = run_search(r)
        ran, seconds = r.ran, r.seconds
        frame = r.store.frame()
        ids = {c.id for c in configs}
        frame = frame[frame["config"].isin(ids)].reset_index(drop=True)
    rate = f" ({ran / seconds:.2f} cells/s)" if seconds > 0 and ran else ""
    err.print(
        f"{ran} cells run{rate}, {len(frame)} in the table; "
        f"{time.perf_counter() - started:.1f} s; results: {out / 'cells.parquet'} (and .csv)",
        style="dim",
    )
    return frame


# ------------------------------------------------------------------------- report
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"
    return str(value)


# how the report's headers name the results table's metric columns
METRIC_LABELS = {
    "total_return_pct": "return %",
    "max_drawdown_pct": "max dd %",
    "win_rate_pct": "win rate %",
    "annual_return_pct": "annual return %",
}


WORD_LABELS = {
    **METRIC_LABELS,
    "is": "in-sample",
    "oos": "out-of-sample",
    "positive": "windows > 0",
}


def _label(column: str) -> str:
    return " ".join(WORD_LABELS.get(word, word) for word in column.split(" "))


def _table(title: str, frame: pd.DataFrame) -> Table:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(frame.columns):
        table.add_column(_label(str(col)), justify="left" if i == 0 else "right", no_wrap=i == 0)
    shares = [col == "positive" for col in frame.columns]
    for rec in frame.itertuples(index=False):
        cells = (f"{v:.0%}" if share else _fmt(v) for v, share in zip(rec, shares, strict=True))
        table.add_row(*(Text(c) for c in cells))  # ids hold [...]: never markup
    return table


def report(frame: pd.DataFrame, pairs: Any, metric: str, objective: str) -> None:
    """Print the statistics of a results table (stdout)."""
    from engine.experiment import stats

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    if frame.empty:
        console.print("no finished cells")
        return
    import pandas as pd

    errors = frame[frame.get("error", pd.Series("", index=frame.index)).fillna("") != ""]
    if len(errors):
        console.print(f"[red]{len(errors)} cell(s) failed[/], e.g. {errors.iloc[0]['cell']}: ")
        console.print(f"  {errors.iloc[0]['error']}")
    _, scope = stats.evaluation_rows(frame)
    console.print(
        _table(f"per configuration ({scope} windows)", stats.summary(frame, SUMMARY_METRICS))
    )
    if (frame["role"] == "is").any() and objective in frame:
        wf = stats.walk_forward(frame, objective, metric)
        if not wf.empty:
            console.print(_table(f"walk-forward: best in-sample {objective}, then {scope}", wf))
    if metric in frame and any(c.startswith("param.") for c in frame.columns):
        console.print(
            _table(
                f"parameter stability ({_label(metric)}, {scope})", stats.stability(frame, metric)
            )
        )
    compared = list(dict.fromkeys([metric, *SUMMARY_METRICS]))
    for a, b in pairs:
        for m in compared:
            try:
                comparison, scope = stats.compare(frame, a, b, m)
            except stats.StatsError as exc:
                print(f"tapedeck: compare {a} {b}: {exc}", file=sys.stderr)
                break
            console.print(Text(comparison.sentence(scope)))
