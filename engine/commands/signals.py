"""``tapedeck signals DATA... [--detectors rsi,macd,...] [--window N] [--json]``.

Loads the files with the data layer, runs the detectors over each instrument and the
aggregator over the merged stream, and prints every signal with its evidence, then a
summary: signals per kind, batches, and batches per 240 steps of the merged stream (240
candles for a single instrument: four hours of 1-minute candles).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from engine.data import load_many
from engine.data.notices import announce, data_records
from engine.data.stream import merge
from engine.fetch.store import resolve_data_args
from engine.numfmt import fmt_price
from engine.signals import SIGNAL_KINDS, SignalConfig, default_signal_config, detect_stream
from engine.signals.registry import ALIASES, DEFAULT_DETECTORS, DETECTOR_NAMES, KIND_ORDER
from engine.timeutil import to_iso
from engine.types import Signal, SignalBatch


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "signals",
        help="run the signal detectors and aggregator over candle files",
        description="Print the signals the detectors fire (with their evidence) and how "
        "the aggregator batches them.",
    )
    parser.add_argument("files", nargs="+", metavar="DATA", type=Path, help="candle files")
    parser.add_argument(
        "--detectors",
        help=f"comma-separated detectors ({', '.join((*DETECTOR_NAMES, *ALIASES))}); "
        f"default: {','.join(DEFAULT_DETECTORS)}",
    )
    parser.add_argument(
        "--window", type=int, help="aggregation window in merged steps (default 5; 1 = immediate)"
    )
    parser.add_argument("--duration", help="aggregation window as a duration, e.g. 15m")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--summary", action="store_true", help="print only the summary, not each signal"
    )
    parser.add_argument("--timeframe", help="override the inferred timeframe (e.g. 5m)")
    parser.add_argument(
        "--fill-gaps", action="store_true", help="forward-fill gaps with flat zero-volume candles"
    )
    parser.set_defaults(func=run_signals)


def config_from_args(args: argparse.Namespace) -> SignalConfig:
    config = default_signal_config()
    if args.detectors is not None:
        config = config.with_detectors(args.detectors)
    if args.window is not None:
        config = dataclasses.replace(config, window=args.window)
    if args.duration is not None:
        config = dataclasses.replace(config, window_duration=args.duration)
    return config


def _number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def signal_json(s: Signal) -> dict[str, Any]:
    return {
        "time": to_iso(s.time),
        "time_ns": s.time,
        "instrument": s.instrument,
        "kind": s.kind,
        "direction": str(s.direction),
        "strength": _number(s.strength),
        "price": _number(s.price),
        "evidence": {k: _number(v) for k, v in s.evidence.items()},
        "count": s.count,
    }


def summary(
    signals: list[Signal], batches: list[SignalBatch], candles: int, steps: int
) -> dict[str, Any]:
    per_kind = Counter(s.kind for s in signals)
    conflicts = Counter(c.kind for b in batches for c in b.conflicts)
    return {
        "signals": len(signals),
        "per_kind": {k: per_kind[k] for k in SIGNAL_KINDS if per_kind[k]},
        "batches": len(batches),
        "candles": candles,
        "steps": steps,
        "batches_per_240": round(len(batches) * 240 / steps, 2) if steps else 0.0,
        "conflicts": dict(sorted(conflicts.items())),
    }


def _text_line(s: Signal) -> str:
    evidence = " ".join(f"{k}={fmt_price(v)}" for k, v in s.evidence.items())
    when = to_iso(s.time).replace("T", " ").removesuffix("Z")
    return (
        f"{when}  {s.instrument:<12} {s.kind:<17} {s.direction!s:<7} "
        f"{s.strength:4.2f}  {fmt_price(s.price):<12} {evidence}"
    )


def run_signals(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    series = load_many(
        resolve_data_args(args.files, args.timeframe),
        timeframe=args.timeframe,
        fill_gaps=args.fill_gaps,
    )
    announce(series)
    stream = merge(series)
    per_instrument, batches = detect_stream(stream, config)
    signals = sorted(
        (s for r in per_instrument.values() for s in r.signals),
        key=lambda s: (s.time, s.instrument, KIND_ORDER[s.kind]),
    )
    candles = sum(len(s) for s in series)
    info = summary(signals, batches, candles, len(stream))
    if args.json:
        out = {"signals": [] if args.summary else [signal_json(s) for s in signals]}
        out.update({k: v for k, v in info.items() if k != "signals"})
        out["data"] = data_records(series)
        json.dump(out, sys.stdout, indent=None if not args.summary else 2)
        sys.stdout.write("\n")
        return 0
    write = sys.stdout.write
    if not args.summary:
        for s in signals:
            write(_text_line(s) + "\n")
        write("\n")
    window = config.window_duration or f"{config.window} step{'s' * (config.window != 1)}"
    write(
        f"{info['signals']} signals over {candles} candles "
        f"({len(stream.instruments)} instrument{'s' * (len(stream.instruments) != 1)}, "
        f"{len(stream)} steps; detectors: {', '.join(config.detectors)})\n"
    )
    for kind, n in info["per_kind"].items():
        write(f"  {kind:<18} {n:>7}  {n * 240 / max(len(stream), 1):6.2f} per 240 steps\n")
    conflicts = ", ".join(f"{k} {n}" for k, n in info["conflicts"].items()) or "none"
    write(
        f"batches: {info['batches']} (window {window}), "
        f"{info['batches_per_240']:.2f} per 240 steps; conflicts: {conflicts}\n"
    )
    return 0
