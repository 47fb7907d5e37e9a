"""The run log: one JSON object per line, written so that the same inputs give the same bytes.

Layout (the ``type`` key says what a line is), in this order:

1. ``config``: format version, persona (its fields and fingerprint), brain name and
   model, the backtest settings and the data window (instrument, timeframe, candles,
   first and last open time, source file name);
2. ``decision`` lines, in the order the brain was asked;
3. ``fill`` lines, then ``trade`` lines, then ``rejection`` lines (orders the broker
   refused or dropped, with the reason), in the broker's order;
4. ``equity`` lines: samples of the equity curve (every step when there are at most
   ``max_equity_samples`` steps, else an even stride that always keeps the last step);
5. ``metrics``: the final metrics and the brain statistics.

Determinism: keys are sorted, floats are written by ``repr`` (shortest round-trip), NaN
and infinities become ``null``. Wall-clock measurements would make two identical runs
differ, so by default they are left out: a decision's ``latency_s`` is written as 0.0
and the brain statistics lose ``mean_latency_s``. Pass ``timing=True`` to keep them
(the file is then no longer reproducible byte for byte). The data's source is the file
name only, so the same files in another folder give the same log.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_path
from engine.data.notices import data_records
from engine.errors import TapedeckError
from engine.plain import plain as _plain
from engine.types import (
    Action,
    Decision,
    ExitReason,
    Fill,
    FillSide,
    Rejection,
    Side,
    SizeMode,
    Trade,
    TradePlan,
    TrailingMode,
    TrailingSpec,
)

FORMAT_VERSION = 1
MAX_EQUITY_SAMPLES = 10_000
TIMING_KEYS = ("mean_latency_s",)


class RunLogError(TapedeckError):
    """A run log that cannot be read back."""


@dataclass(frozen=True, eq=False)
class RunLog:
    config: dict[str, Any]
    decisions: list[Decision]
    fills: list[Fill]
    trades: list[Trade]
    equity_times: np.ndarray
    equity_values: np.ndarray
    metrics: dict[str, Any]
    brain_stats: dict[str, Any]
    rejections: list[Rejection] = field(default_factory=list)


def _line(kind: str, payload: Mapping[str, Any]) -> str:
    record = {"type": kind, **_plain(payload)}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _equity_stride(n: int, max_samples: int) -> np.ndarray:
    if n <= max_samples:
        return np.arange(n)
    stride = math.ceil(n / max_samples)
    idx = np.arange(0, n, stride)
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return idx


def _data_window(analysis: Any) -> list[dict[str, Any]]:
    out = []
    if analysis is None:
        return out
    for name in analysis.instruments:
        series = analysis.stream.series[name]
        repaired = data_records([series])[0]
        out.append(
            {
                "instrument": name,
                "timeframe": series.timeframe,
                "candles": len(series),
                "first_open": int(series.open_time[0]) if len(series) else None,
                "last_open": int(series.open_time[-1]) if len(series) else None,
                "source": Path(series.source).name if series.source else "",
                "repairs": repaired.get("repairs", []),
                "gaps": repaired.get("gaps", 0),
            }
        )
    return out


def _decision_record(decision: Decision, timing: bool) -> dict[str, Any]:
    record = _plain(decision)
    if not timing:
        record["latency_s"] = 0.0
    return record


def run_log_lines(
    result: Any,
    *,
    persona: Any = None,
    config: Any = None,
    analysis: Any = None,
    timing: bool = False,
    max_equity_samples: int = MAX_EQUITY_SAMPLES,
) -> Iterable[str]:
    """The lines of a run log for a BacktestResult (without newlines)."""
    persona_record = None
    if persona is not None:
        persona_record = persona.record()
        persona_record["fingerprint"] = persona.fingerprint()
    settings = None
    if config is not None:
        settings = {f.name: getattr(config, f.name) for f in fields(config)}
        if analysis is not None:  # the signal settings the market was analysed with
            settings["signal"] = analysis.signal_config
    yield _line(
        "config",
        {
            "version": FORMAT_VERSION,
            "persona": persona_record if persona_record is not None else result.persona,
            "brain": {"name": result.brain, "model": result.model},
            "settings": settings,
            "data": _data_window(analysis),
            "steps": result.steps,
        },
    )
    for decision in result.decisions:
        yield _line("decision", _decision_record(decision, timing))
    for fill in result.fills:
        yield _line("fill", _plain(fill))
    for trade in result.trades:
        yield _line("trade", _plain(trade))
    for rejection in getattr(result, "rejections", ()):
        yield _line("rejection", _plain(rejection))
    times = np.asarray(result.equity_times)
    values = np.asarray(result.equity_values)
    for i in _equity_stride(len(times), max_equity_samples).tolist():
        yield _line("equity", {"time": int(times[i]), "equity": float(values[i])})
    stats = dict(result.brain_stats)
    if not timing:
        for key in TIMING_KEYS:
            stats.pop(key, None)
    metrics = dict(result.metrics)
    if not timing:
        metrics = _strip_timing(metrics)
    yield _line("metrics", {"metrics": metrics, "brain": stats})


def _strip_timing(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if key in TIMING_KEYS or "latency" in str(key):
            continue
        out[key] = _strip_timing(value) if isinstance(value, Mapping) else value
    return out


def write_run_log(
    path: str | Path,
    result: Any,
    *,
    persona: Any = None,
    config: Any = None,
    analysis: Any = None,
    timing: bool = False,
    max_equity_samples: int = MAX_EQUITY_SAMPLES,
) -> Path:
    """Write the run log of ``result`` (a BacktestResult) to ``path`` as JSONL."""
    path = Path(path)
    lines = run_log_lines(
        result,
        persona=persona,
        config=config,
        analysis=analysis,
        timing=timing,
        max_equity_samples=max_equity_samples,
    )
    # Atomic: an interrupted run leaves the previous file as it was and no partial one.
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as fh:
        for line in lines:
            fh.write(line)
            fh.write("\n")
    return path


# ---------------------------------------------------------------------------- reading
def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _trailing(d: Mapping[str, Any] | None) -> TrailingSpec | None:
    if d is None:
        return None
    return TrailingSpec(
        mode=TrailingMode(d["mode"]),
        distance=_float(d["distance"]),
        activation=_float(d.get("activation", 0.0)),
        atr=_opt_float(d.get("atr")),
    )


def _plan(d: Mapping[str, Any]) -> TradePlan:
    return TradePlan(
        instrument=d["instrument"],
        action=Action(d["action"]),
        entry_price=_opt_float(d.get("entry_price")),
        size=_float(d.get("size", 0.0)),
        size_mode=SizeMode(d.get("size_mode", "risk")),
        stop_loss=_opt_float(d.get("stop_loss")),
        take_profit=_opt_float(d.get("take_profit")),
        trailing=_trailing(d.get("trailing")),
        confidence=_float(d.get("confidence", 0.0)),
        rationale=d.get("rationale", ""),
        expiry_candles=d.get("expiry_candles"),
    )


def _decision(d: Mapping[str, Any]) -> Decision:
    return Decision(
        time=int(d["time"]),
        brain=d["brain"],
        model=d["model"],
        plans=tuple(_plan(p) for p in d["plans"]),
        reasoning=d["reasoning"],
        latency_s=_float(d.get("latency_s", 0.0)),
        tokens=int(d.get("tokens", 0)),
        cache_hit=bool(d.get("cache_hit", False)),
        corrections=tuple(d.get("corrections", ())),
        errors=tuple(d.get("errors", ())),
        prompt=d.get("prompt"),
        raw_answer=d.get("raw_answer"),
        grounded=d.get("grounded"),
        grounding=tuple(d.get("grounding", ())),
    )


def _fill(d: Mapping[str, Any]) -> Fill:
    return Fill(
        time=int(d["time"]),
        instrument=d["instrument"],
        order_id=int(d["order_id"]),
        side=FillSide(d["side"]),
        qty=_float(d["qty"]),
        price=_float(d["price"]),
        fee=_float(d["fee"]),
        reason=d["reason"],
        ambiguous=bool(d.get("ambiguous", False)),
    )


def _trade(d: Mapping[str, Any]) -> Trade:
    return Trade(
        instrument=d["instrument"],
        side=Side(d["side"]),
        entry_time=int(d["entry_time"]),
        entry_price=_float(d["entry_price"]),
        exit_time=int(d["exit_time"]),
        exit_price=_float(d["exit_price"]),
        qty=_float(d["qty"]),
        pnl=_float(d["pnl"]),
        fees=_float(d["fees"]),
        exit_reason=ExitReason(d["exit_reason"]),
        ambiguous=bool(d.get("ambiguous", False)),
    )


def _rejection(d: Mapping[str, Any]) -> Rejection:
    return Rejection(
        time=int(d["time"]),
        instrument=d["instrument"],
        order_id=int(d["order_id"]),
        reason=d["reason"],
    )


def read_run_log(path: str | Path) -> RunLog:
    """Read a run log back; raises RunLogError naming the line that is wrong."""
    path = Path(path)
    config: dict[str, Any] | None = None
    decisions: list[Decision] = []
    fills: list[Fill] = []
    trades: list[Trade] = []
    rejections: list[Rejection] = []
    times: list[int] = []
    values: list[float] = []
    metrics: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise RunLogError(f"{path}: cannot read run log: {exc.strerror or exc}") from None
    closed = False
    with handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            if not text.endswith("\n"):
                raise RunLogError(f"{path}: truncated: line {number} is cut off")
            try:
                record = json.loads(text)
                kind = record.pop("type")
                if kind == "config":
                    config = record
                elif kind == "decision":
                    decisions.append(_decision(record))
                elif kind == "fill":
                    fills.append(_fill(record))
                elif kind == "trade":
                    trades.append(_trade(record))
                elif kind == "rejection":
                    rejections.append(_rejection(record))
                elif kind == "equity":
                    times.append(int(record["time"]))
                    values.append(_float(record["equity"]))
                elif kind == "metrics":
                    metrics = record.get("metrics", {})
                    stats = record.get("brain", {})
                    closed = True
                else:
                    raise ValueError(f"unknown record type {kind!r}")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise RunLogError(f"{path}, line {number}: {exc}") from None
    if config is None:
        raise RunLogError(f"{path}: not a run log (no config line)")
    if not closed:
        raise RunLogError(f"{path}: truncated: the closing metrics record is missing")
    return RunLog(
        config=config,
        decisions=decisions,
        fills=fills,
        trades=trades,
        equity_times=np.asarray(times, dtype=np.int64),
        equity_values=np.asarray(values, dtype=np.float64),
        metrics=metrics,
        brain_stats=stats,
        rejections=rejections,
    )
