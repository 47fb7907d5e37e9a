"""What the backtest commands and the TUI share: options, window loading, brain options.

``add_backtest_arguments`` adds the options of ``run`` and ``compare`` (data files and
window, brain, backtest settings, output); ``load_window`` loads the files and cuts the
window for the CLI (``window_from_args``) and for the TUI (``tui.sources``) alike, with
the same checks and the same one-line errors.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.brain.factory import BrainError, brain_kinds
from engine.brain.persona import TradingPersona, load_persona
from engine.data.notices import announce
from engine.errors import TapedeckError
from engine.types import InstrumentSeries


class RunError(TapedeckError):
    """A run asked for in a way that cannot work (the message says how to fix it)."""


# ------------------------------------------------------------------------- options
def add_window_arguments(p: argparse.ArgumentParser) -> None:
    """Data files and the window cut of them (``window_from_args`` reads them)."""
    p.add_argument(
        "data",
        nargs="+",
        metavar="DATA",
        help="candle files (CSV, feather, ...) or EXCHANGE:SYMBOL from the data/ store",
    )
    p.add_argument("--start", help="first candle open time, ISO (UTC)")
    p.add_argument("--end", help="end of the window (exclusive), ISO (UTC)")
    p.add_argument("--last", type=int, metavar="N", help="only the last N candles")
    p.add_argument("--timeframe", help="timeframe of the files when it cannot be inferred")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Which model an LLM brain asks, where, and how long it waits (``model_arguments``
    reads them); run, compare and replay take them."""
    p.add_argument(
        "--model", help="LLM brains: the model (Ollama or server model name, or GGUF file)"
    )
    p.add_argument(
        "--host",
        help="Ollama or OpenAI-compatible brain: the server address (openai: http://HOST:PORT/v1)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="LLM brains: seconds one call may take (a server that never answers costs at "
        "most three: then the circuit breaker holds without asking)",
    )
    p.add_argument(
        "--first-call-timeout",
        type=float,
        metavar="S",
        help="Ollama/OpenAI brains: seconds for the calls before the server's first answer, "
        "which may load the model (default twice --timeout; counted in the three timeouts "
        "a dead server may cost)",
    )


MODEL_OPTIONS = ("model", "host", "timeout", "first_call_timeout")


def model_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``add_model_arguments`` that were given, as make_brain options."""
    return {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k, None) is not None}


def add_brain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--brain",
        default="rules",
        help=f"brain kind (default rules; known: {', '.join(brain_kinds())})",
    )
    add_model_arguments(p)
    p.add_argument("--no-cache", action="store_true", help="LLM brains: skip the decision cache")
    p.add_argument(
        "--anonymise",
        action="store_true",
        help="LLM brains: instruments renamed A, B, ... and prices rebased to 100 in prompts",
    )
    p.add_argument(
        "--brain-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other brain option (repeatable; VALUE read as JSON when it parses)",
    )


def add_config_arguments(p: argparse.ArgumentParser) -> None:
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


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: long runs on a terminal)",
    )


def add_backtest_arguments(p: argparse.ArgumentParser) -> None:
    """The options ``run`` and ``compare`` share."""
    add_window_arguments(p)
    add_brain_arguments(p)
    add_config_arguments(p)
    add_output_arguments(p)


# ------------------------------------------------------------------------- window
def load_window(
    paths: Sequence[str | Path],
    *,
    start: str | int | None = None,
    end: str | int | None = None,
    last: int | None = None,
    timeframe: str | None = None,
) -> list[InstrumentSeries]:
    """Load the files and cut the window (``start <= open < end``, then the last N candles).

    A path may be an ``EXCHANGE:SYMBOL`` reference to the data/ store. Raises a
    TapedeckError with a one-line message on bad input: no files, a missing file, both
    a start/end and a count, a non-positive count, an empty window.
    """
    from engine.data import load_many, select
    from engine.data.stream import check_overlap
    from engine.fetch.store import resolve_data_args

    if not paths:
        raise RunError("no data files given")
    if last is not None and (start or end):
        raise RunError("give either --start/--end or --last N, not both")
    if last is not None and last <= 0:
        raise RunError(f"--last must be a positive number of candles, got {last}")
    paths = resolve_data_args([str(p) for p in paths], timeframe)  # EXCHANGE:SYMBOL -> file
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise RunError(f"data file not found: {missing[0]}")
    series = load_many(paths, timeframe=timeframe)
    if start or end or last:
        series = [select(s, start=start, end=end, last=last) for s in series]
    check_overlap(series)
    return series


def window_from_args(args: argparse.Namespace) -> list[InstrumentSeries]:
    """The window that ``add_window_arguments``' options name; what loading repaired is
    said on stderr (``engine.data.notices``)."""
    series = load_window(
        args.data, start=args.start, end=args.end, last=args.last, timeframe=args.timeframe
    )
    announce(series)
    return series


# ------------------------------------------------------------------------- brain, config
def check_brain_kind(kind: str) -> None:
    """Fail before loading any data when the brain kind is unknown."""
    if kind not in brain_kinds():
        raise BrainError(f"unknown brain {kind!r}: choose one of {', '.join(brain_kinds())}")


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def brain_options(args: argparse.Namespace, series: Sequence[InstrumentSeries]) -> dict[str, Any]:
    """make_brain keyword options from the command line (only those given)."""
    opts = model_arguments(args)
    if args.no_cache:
        opts["cache"] = False
    if getattr(args, "anonymise", False) and args.brain != "rules":
        opts["anonymise"] = True
    for item in args.brain_option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RunError(f"--brain-option expects KEY=VALUE, got {item!r}")
        opts[key.strip().replace("-", "_")] = _option_value(value)
    # LLM prompts count ages in candles; the rule brain takes no options at all
    if args.brain != "rules" and series:
        opts.setdefault("timeframe", series[0].timeframe)
    return opts


# Accepted ranges of the numeric options (name: low, high, whether low itself is allowed):
# fees or slippage above 10% a side are a typo for bps, cash beyond 1e12 loses cents to
# float rounding, and a timeout must end.
OPTION_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "cash": (0.0, 1e12, False, "a positive amount up to 1e12"),
    "fees": (0.0, 1000.0, True, "basis points from 0 to 1000 (10%)"),
    "slippage": (0.0, 1000.0, True, "basis points from 0 to 1000 (10%)"),
    "timeout": (0.0, 86_400.0, False, "seconds, more than 0 and at most 86400"),
    "first_call_timeout": (0.0, 86_400.0, False, "seconds, more than 0 and at most 86400"),
}


def check_options(args: argparse.Namespace) -> None:
    """RunError naming the option for a number out of its range (call before loading data)."""
    for name, (lo, hi, low_ok, want) in OPTION_RANGES.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        inside = math.isfinite(value) and (lo <= value if low_ok else lo < value) and value <= hi
        if not inside:
            raise RunError(f"--{name.replace('_', '-')} must be {want}, got {value}")


def backtest_config(args: argparse.Namespace) -> Any:
    """The BacktestConfig of ``add_config_arguments``' options (checked: one-line errors)."""
    from engine.backtest import BacktestConfig

    check_options(args)
    return BacktestConfig(
        initial_cash=args.cash,
        fees_bps=args.fees,
        slippage_bps=args.slippage,
        intrabar=args.intrabar,
    )


def persona_list(text: str) -> list[TradingPersona]:
    """Personas of a comma-separated list of names or files; each at most once."""
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


def refuse_to_overwrite_inputs(
    outputs: Sequence[tuple[str, Path | None]], series: Sequence[InstrumentSeries]
) -> None:
    """RunError when an output option names one of the run's data files."""
    inputs = [Path(s.source) for s in series if s.source]
    for option, out in outputs:
        if out is None or not out.exists():
            continue
        for data in inputs:
            if data.exists() and out.samefile(data):
                raise RunError(
                    f"{option} {out} is one of the run's data files; choose another path"
                )
