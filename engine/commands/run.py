"""``tapedeck run``, ``tapedeck compare`` and ``tapedeck personas``: headless backtests.

``run DATA... --persona NAME_OR_FILE`` replays the candles through one persona and
prints the metrics and the trades (``--json``: ``{"metrics", "trades", "brain"}``);
``compare DATA... --personas a,b,c`` runs several personas over the same window (the
analysis is computed once) and prints them side by side (``--json``: a list of the same
objects, each with its ``persona``); ``personas`` lists the built-ins.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.brain.factory import BrainError, brain_kinds, make_brain
from engine.brain.persona import TradingPersona, builtin_persona_names, load_persona
from engine.errors import TapedeckError
from engine.export import TRADE_COLUMNS, trade_record, write_trades_csv
from engine.timeutil import to_iso
from engine.types import InstrumentSeries, Trade

PROGRESS_MIN_STEPS = 20_000  # "auto" shows a progress bar from this many steps on
TRADE_KEYS = TRADE_COLUMNS  # the columns of run --json's trades and of --trades-csv


class RunError(TapedeckError):
    """A run asked for in a way that cannot work (the message says how to fix it)."""


# ------------------------------------------------------------------------- parsers
def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data",
        nargs="+",
        metavar="DATA",
        help="candle files (CSV, feather, ...) or EXCHANGE:SYMBOL from the data/ store",
    )
    p.add_argument(
        "--brain",
        default="rules",
        help=f"brain kind (default rules; known: {', '.join(brain_kinds())})",
    )
    p.add_argument("--model", help="LLM brains: the model (Ollama name or GGUF file)")
    p.add_argument("--host", help="Ollama brain: the server address")
    p.add_argument("--timeout", type=float, metavar="S", help="LLM brains: seconds per call")
    p.add_argument("--no-cache", action="store_true", help="LLM brains: skip the decision cache")
    p.add_argument(
        "--brain-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other brain option (repeatable; VALUE read as JSON when it parses)",
    )
    p.add_argument("--start", help="first candle open time, ISO (UTC)")
    p.add_argument("--end", help="end of the window (exclusive), ISO (UTC)")
    p.add_argument("--last", type=int, metavar="N", help="only the last N candles")
    p.add_argument("--timeframe", help="timeframe of the files when it cannot be inferred")
    p.add_argument("--cash", type=float, default=10_000.0, help="initial cash (default 10000)")
    p.add_argument("--fees", type=float, default=10.0, metavar="BPS", help="fees, bps (10)")
    p.add_argument(
        "--slippage", type=float, default=5.0, metavar="BPS", help="slippage, bps (default 5)"
    )
    p.add_argument(
        "--intrabar",
        choices=("stop_first", "open_distance"),
        default="stop_first",
        help="stop and target touched in one candle: stop first (default) or nearest to open",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: long runs on a terminal)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="backtest one persona headless and report")
    _add_common(run)
    run.add_argument("--persona", default="momentum", help="built-in name or .toml file")
    run.add_argument("--out", type=Path, metavar="RUN.JSONL", help="write the run log here")
    run.add_argument(
        "--trades-csv", type=Path, metavar="FILE", help="write the trades as CSV (ISO times)"
    )
    run.add_argument(
        "--trades", type=int, default=20, metavar="N", help="trades shown in the table (20)"
    )
    run.set_defaults(func=run_command)

    compare = subparsers.add_parser("compare", help="several personas side by side")
    _add_common(compare)
    compare.add_argument(
        "--personas",
        default="scalper,conservative,momentum,mean-reversion",
        help="comma-separated names or .toml files (default: the four built-ins)",
    )
    compare.set_defaults(func=compare_command)

    personas = subparsers.add_parser("personas", help="list the built-in personas")
    personas.add_argument("--json", action="store_true", help="print JSON")
    personas.set_defaults(func=personas_command)


# ------------------------------------------------------------------------- shared
def _load_window(args: argparse.Namespace) -> list[InstrumentSeries]:
    from engine.data import load_many, select

    if args.last is not None and (args.start or args.end):
        raise RunError("give either --start/--end or --last N, not both")
    if args.last is not None and args.last <= 0:
        raise RunError(f"--last must be a positive number of candles, got {args.last}")
    from engine.fetch.store import resolve_data_args

    args.data = resolve_data_args(args.data, args.timeframe)  # EXCHANGE:SYMBOL -> store file
    for f in args.data:
        if not Path(f).exists():
            raise RunError(f"{f}: no such file")
    series = load_many(args.data, timeframe=args.timeframe)
    if args.start or args.end or args.last:
        series = [select(s, start=args.start, end=args.end, last=args.last) for s in series]
    return series


def _check_brain_kind(kind: str) -> None:
    """Fail before loading any data when the brain kind is unknown."""
    if kind not in brain_kinds():
        raise BrainError(f"unknown brain {kind!r}: choose one of {', '.join(brain_kinds())}")


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _brain_options(args: argparse.Namespace, series: Sequence[InstrumentSeries]) -> dict[str, Any]:
    """make_brain keyword options from the command line (only those given)."""
    opts: dict[str, Any] = {}
    for key in ("model", "host", "timeout"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    if args.no_cache:
        opts["cache"] = False
    for item in args.brain_option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RunError(f"--brain-option expects KEY=VALUE, got {item!r}")
        opts[key.strip().replace("-", "_")] = _option_value(value)
    # LLM prompts count ages in candles; the rule brain takes no options at all
    if args.brain != "rules" and series:
        opts.setdefault("timeframe", series[0].timeframe)
    return opts


def _config(args: argparse.Namespace) -> Any:
    from engine.backtest import BacktestConfig

    for name in ("cash", "fees", "slippage"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0 or (name == "cash" and value <= 0):
            kind = "positive" if name == "cash" else "non-negative"
            raise RunError(f"--{name} must be a {kind} number, got {value}")
    return BacktestConfig(
        initial_cash=args.cash,
        fees_bps=args.fees,
        slippage_bps=args.slippage,
        intrabar=args.intrabar,
    )


class _Progress:
    """A rich progress bar on stderr, one task per persona; silent when not wanted."""

    def __init__(self, mode: str, total_steps: int) -> None:
        self.enabled = mode == "always" or (
            mode == "auto" and total_steps >= PROGRESS_MIN_STEPS and sys.stderr.isatty()
        )
        self._progress: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def callback(self, label: str, total: int) -> Callable[[int, int], None] | None:
        if self._progress is None:
            return None
        task = self._progress.add_task(label, total=total)

        def update(done: int, n: int) -> None:
            self._progress.update(task, completed=done, total=n)

        return update


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN/inf to null, enums to their value."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, int | float):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    return str(getattr(value, "value", value))


def result_record(result: Any) -> dict[str, Any]:
    """The JSON object of ``run --json``: metrics, trades and the brain's statistics."""
    return _plain(
        {
            "metrics": dict(result.metrics),
            "trades": [trade_record(t) for t in result.trades],
            "brain": {"kind": result.brain, "model": result.model, **dict(result.brain_stats)},
        }
    )


# ------------------------------------------------------------------------- formatting
_PERCENT_HINTS = ("return", "drawdown", "win_rate", "exposure")


def fmt_duration(ns: float) -> str:
    """Nanoseconds as '3d 04:05:06' (or '04:05:06')."""
    seconds = round(ns / 1e9)
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def fmt_metric(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and math.isfinite(value):
        if key in ("start", "end") or key.endswith("_time"):
            return _short(int(value))
        if key.endswith("_ns"):
            return fmt_duration(float(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–" if math.isnan(value) else ("∞" if value > 0 else "-∞")
        if key.endswith("_pct"):
            return f"{value:,.2f}%"
        if any(h in key for h in _PERCENT_HINTS) and not key.endswith(("_s", "_ns", "_steps")):
            return f"{value * 100:,.2f}%" if abs(value) <= 10 else f"{value:,.2f}"
        if abs(value) >= 100:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    return str(value)


def _scalar_items(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in metrics.items() if not isinstance(v, Mapping | list | tuple)]


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)  # piped: never wrap tables
    return console


def _window_text(series: Sequence[InstrumentSeries]) -> str:
    names = ", ".join(f"{s.instrument} {s.timeframe}" for s in series)
    first = min(int(s.open_time[0]) for s in series)
    last = max(int(s.close_time[-1]) for s in series)
    return f"{names} · {to_iso(first)} → {to_iso(last)}"


def _metrics_table(title: str, metrics: Mapping[str, Any]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in _scalar_items(metrics):
        table.add_row(key.replace("_", " "), fmt_metric(key, value))
    return table


def _nested_tables(metrics: Mapping[str, Any]) -> list[Table]:
    """Per-instrument (or other nested) metrics as one table: rows = keys, columns = groups."""
    tables = []
    for key, value in metrics.items():
        if not isinstance(value, Mapping) or not value:
            continue
        groups = {k: v for k, v in value.items() if isinstance(v, Mapping)}
        if len(groups) < 2:  # one instrument: the overall table already says it all
            continue
        table = Table(title=key.replace("_", " "), title_justify="left")
        table.add_column("metric")
        names = list(groups)
        for name in names:
            table.add_column(str(name), justify="right")
        keys: list[str] = []
        for g in groups.values():
            keys += [k for k, _ in _scalar_items(g) if k not in keys]
        for k in keys:
            table.add_row(k.replace("_", " "), *(fmt_metric(k, groups[n].get(k)) for n in names))
        tables.append(table)
    return tables


def _trades_table(trades: Sequence[Trade], limit: int) -> Table | None:
    if limit <= 0 or not trades:
        return None
    shown = list(trades[-limit:])
    title = (
        f"trades ({len(trades)})"
        if len(shown) == len(trades)
        else (f"trades (the last {len(shown)} of {len(trades)})")
    )
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("#", "right"),
        ("instrument", "left"),
        ("side", "left"),
        ("entry (UTC)", "left"),
        ("entry price", "right"),
        ("exit (UTC)", "left"),
        ("exit price", "right"),
        ("qty", "right"),
        ("pnl", "right"),
        ("fees", "right"),
        ("exit", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    first = len(trades) - len(shown) + 1
    for i, t in enumerate(shown, start=first):
        pnl = f"{t.pnl:,.2f}" if abs(t.pnl) >= 0.01 else f"{t.pnl:.3g}"
        style = "green" if t.pnl > 0 else "red" if t.pnl < 0 else ""
        reason = str(getattr(t.exit_reason, "value", t.exit_reason))
        table.add_row(
            str(i),
            t.instrument,
            str(getattr(t.side, "value", t.side)),
            _short(t.entry_time),
            f"{t.entry_price:.6g}",
            _short(t.exit_time),
            f"{t.exit_price:.6g}",
            f"{t.qty:.6g}",
            f"[{style}]{pnl}[/]" if style else pnl,
            f"{t.fees:.4g}",
            reason + (" (ambiguous)" if t.ambiguous else ""),
        )
    return table


def _short(ns: int) -> str:
    return to_iso(ns).replace("T", " ").removesuffix("Z")


# ------------------------------------------------------------------------- commands
def run_command(args: argparse.Namespace) -> int:
    from engine.backtest import BacktestEngine

    persona = load_persona(args.persona)
    _check_brain_kind(args.brain)
    series = _load_window(args)
    config = _config(args)
    brain = make_brain(args.brain, persona, **_brain_options(args, series))
    started = time.perf_counter()
    engine = BacktestEngine(series, persona, brain, config)
    with _Progress(args.progress, engine.total_steps) as progress:
        result = engine.run(progress.callback(persona.name, engine.total_steps))
    elapsed = time.perf_counter() - started
    if args.out is not None:
        from engine.runlog import write_run_log

        write_run_log(args.out, result, persona=persona, config=config, analysis=engine.analysis)
    if args.trades_csv is not None:
        write_trades_csv(args.trades_csv, result.trades)
    if args.json:
        print(json.dumps(result_record(result), indent=2, allow_nan=False))
        return 0
    console = _console()
    rate = f"{result.steps / elapsed:,.0f} steps/s" if elapsed > 0 else ""
    brain_text = f"{result.brain} {result.model}".strip()
    console.print(f"[bold]{persona.name}[/] · brain {brain_text} · {_window_text(series)}")
    console.print(f"{result.steps:,} steps in {elapsed:.2f} s ({rate})", style="dim")
    console.print(_metrics_table("metrics", result.metrics))
    for table in _nested_tables(result.metrics):
        console.print(table)
    console.print(_metrics_table("brain", {"kind": result.brain, **result.brain_stats}))
    trades = _trades_table(result.trades, args.trades)
    if trades is not None:
        console.print(trades)
    elif not result.trades:
        console.print("no trades")
    if args.out is not None:
        console.print(f"run log written to {args.out}", style="dim")
    if args.trades_csv is not None:
        console.print(f"trades written to {args.trades_csv}", style="dim")
    return 0


def _persona_list(text: str) -> list[TradingPersona]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise RunError("--personas needs at least one name, e.g. scalper,momentum")
    personas = [load_persona(n) for n in names]
    seen: dict[str, str] = {}
    for n, p in zip(names, personas, strict=True):
        if p.name in seen:
            raise RunError(f"persona {p.name!r} is given twice ({seen[p.name]} and {n})")
        seen[p.name] = n
    return personas


def compare_command(args: argparse.Namespace) -> int:
    from engine.backtest import Session

    personas = _persona_list(args.personas)
    kind = args.brain
    _check_brain_kind(kind)
    series = _load_window(args)
    config = _config(args)
    opts = _brain_options(args, series)
    session = Session(series, personas, lambda p: make_brain(kind, p, **opts), config)
    results: dict[str, Any] = {}
    with _Progress(args.progress, session.total_steps) as progress:
        for name, engine in session.engines.items():
            results[name] = engine.run(progress.callback(name, engine.total_steps))
    if args.json:
        records = [{"persona": name, **result_record(r)} for name, r in results.items()]
        print(json.dumps(records, indent=2, allow_nan=False))
        return 0
    console = _console()
    console.print(f"[bold]compare[/] · brain {kind} · {_window_text(series)}")
    table = Table(title="metrics", title_justify="left")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    keys: list[str] = []
    for r in results.values():
        keys += [k for k, _ in _scalar_items(r.metrics) if k not in keys]
    for k in keys:
        table.add_row(
            k.replace("_", " "), *(fmt_metric(k, r.metrics.get(k)) for r in results.values())
        )
    brain_keys: list[str] = []
    for r in results.values():
        brain_keys += [k for k in r.brain_stats if k not in brain_keys]
    for k in brain_keys:
        table.add_row(
            f"brain {k.replace('_', ' ')}",
            *(fmt_metric(k, r.brain_stats.get(k)) for r in results.values()),
        )
    console.print(table)
    return 0


def persona_record(p: TradingPersona, file_name: str) -> dict[str, Any]:
    trailing = None
    if p.trailing is not None:
        trailing = {
            "mode": p.trailing.mode,
            "distance": p.trailing.distance,
            "activation": p.trailing.activation,
        }
    return {
        "name": p.name,
        "file": file_name,
        "description": p.description,
        "allowed_directions": list(p.allowed_directions),
        "risk_per_trade": p.risk_per_trade,
        "max_open_positions": p.max_open_positions,
        "entry_threshold": p.entry_threshold,
        "stop_atr": p.stop_atr,
        "target_atr": p.target_atr,
        "trailing": trailing,
        "max_holding_candles": p.max_holding_candles,
        "cooldown_after_loss": p.cooldown_after_loss,
        "signal_weights": dict(p.signal_weights),
    }


def personas_command(args: argparse.Namespace) -> int:
    records = [persona_record(load_persona(n), f"{n}.toml") for n in builtin_persona_names()]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    table = Table(
        title="built-in personas (use a name, or any .toml file, with --persona)",
        title_justify="left",
    )
    for name in (
        "name",
        "directions",
        "threshold",
        "risk",
        "stop / target",
        "trailing",
        "hold max",
        "cooldown",
        "description",
    ):
        table.add_column(name)
    for r in records:
        t = r["trailing"]
        trail = (
            "–"
            if t is None
            else (f"{t['distance']:g} ATR" if t["mode"] == "atr" else f"{t['distance']:.2%}")
        )
        table.add_row(
            r["name"],
            "/".join(r["allowed_directions"]),
            f"{r['entry_threshold']:g}",
            f"{r['risk_per_trade']:.2%}",
            f"{r['stop_atr']:g} / {r['target_atr']:g} ATR",
            trail,
            str(r["max_holding_candles"] or "–"),
            str(r["cooldown_after_loss"] or "–"),
            r["description"],
        )
    _console().print(table)
    return 0
