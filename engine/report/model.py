"""What a report shows of one run: its trades (each with the decision that opened it),
equity, metrics, persona, brain and the candles of its window.

A run comes from a run log (``tapedeck report RUN.jsonl``) or straight from a backtest
(``run --html``). The run log names its data files (file names only), so the candles are
looked up: the files given with ``--data``, else a file of that name beside the run log,
in the current folder, in the ``data/`` store or among the bundled samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.types import Action, Decision, InstrumentSeries, Side, Trade, TradePlan

OPENING = {Side.LONG: Action.OPEN_LONG, Side.SHORT: Action.OPEN_SHORT}


@dataclass(frozen=True)
class Candles:
    """The candles of one instrument over the run's window (columnar)."""

    instrument: str
    timeframe: str
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def from_series(cls, s: InstrumentSeries, start: int | None, end: int | None) -> Candles:
        t = np.asarray(s.open_time)
        lo = 0 if start is None else int(np.searchsorted(t, start, side="left"))
        hi = len(t) if end is None else int(np.searchsorted(t, end, side="right"))
        return cls(
            s.instrument,
            s.timeframe,
            t[lo:hi],
            np.asarray(s.open)[lo:hi],
            np.asarray(s.high)[lo:hi],
            np.asarray(s.low)[lo:hi],
            np.asarray(s.close)[lo:hi],
        )


@dataclass(frozen=True)
class TradeView:
    """A closed trade with the plan and the decision that opened it (when found)."""

    number: int
    trade: Trade
    plan: TradePlan | None
    decision: Decision | None

    @property
    def stop(self) -> float | None:
        return None if self.plan is None else self.plan.stop_loss

    @property
    def target(self) -> float | None:
        return None if self.plan is None else self.plan.take_profit


@dataclass
class ReportRun:
    title: str
    persona: str
    brain: str
    model: str
    metrics: Mapping[str, Any]
    brain_stats: Mapping[str, Any]
    trades: list[TradeView]
    equity_times: np.ndarray
    equity_values: np.ndarray
    candles: list[Candles] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def brain_label(self) -> str:
        return f"{self.brain} {self.model}".strip()


def opening_plans(
    trades: Sequence[Trade], decisions: Sequence[Decision]
) -> list[tuple[TradePlan | None, Decision | None]]:
    """For each trade, the latest opening plan for its instrument and side at or before entry."""
    opens: dict[tuple[str, Action], list[tuple[int, TradePlan, Decision]]] = {}
    for d in decisions:
        for p in d.plans:
            if p.action in (Action.OPEN_LONG, Action.OPEN_SHORT):
                opens.setdefault((p.instrument, Action(p.action)), []).append((d.time, p, d))
    out: list[tuple[TradePlan | None, Decision | None]] = []
    for t in trades:
        candidates = opens.get((t.instrument, OPENING[Side(t.side)]), [])
        times = [c[0] for c in candidates]
        i = int(np.searchsorted(times, t.entry_time, side="right")) - 1
        out.append((candidates[i][1], candidates[i][2]) if i >= 0 else (None, None))
    return out


def trade_views(trades: Sequence[Trade], decisions: Sequence[Decision]) -> list[TradeView]:
    return [
        TradeView(i, t, plan, decision)
        for i, (t, (plan, decision)) in enumerate(
            zip(trades, opening_plans(trades, decisions), strict=True), start=1
        )
    ]


def find_data_file(name: str, near: Sequence[Path] = ()) -> Path | None:
    """A candle file named ``name``: beside the run log, here, in the store or the samples."""
    from engine.data.sample import SAMPLE_DIR
    from engine.fetch.store import default_datadir

    if not name:
        return None
    for folder in [*near, Path.cwd(), SAMPLE_DIR]:
        if (folder / name).is_file():
            return folder / name
    store = default_datadir()
    if store.is_dir():
        for hit in sorted(store.rglob(name)):
            return hit
    return None


def _candles_for(
    windows: Sequence[Mapping[str, Any]], series: Sequence[InstrumentSeries]
) -> list[Candles]:
    by_name = {s.instrument: s for s in series}
    out = []
    for w in windows:
        s = by_name.get(w.get("instrument", ""))
        if s is not None:
            out.append(Candles.from_series(s, w.get("first_open"), w.get("last_open")))
    return out


def from_run_log(
    path: str | Path, data: Sequence[str] | None = None, *, title: str | None = None
) -> ReportRun:
    """A report run from a run log; candles from ``data`` or found by the logged file names."""
    from engine.data import load_many
    from engine.runlog import read_run_log

    path = Path(path)
    log = read_run_log(path)
    cfg = log.config
    persona = cfg.get("persona") or {}
    persona_name = persona.get("name", "?") if isinstance(persona, Mapping) else str(persona)
    brain = cfg.get("brain") or {}
    windows = cfg.get("data") or []
    notes: list[str] = []
    files: list[str] = list(data or [])
    if not files:
        for w in windows:
            hit = find_data_file(w.get("source", ""), near=[path.parent])
            if hit is None:
                notes.append(
                    f"candles of {w.get('instrument')} not found ({w.get('source')}): "
                    "give them with --data"
                )
            else:
                files.append(str(hit))
    series = load_many(files) if files else []
    return ReportRun(
        title=title or path.stem,
        persona=persona_name,
        brain=str(brain.get("name", "")),
        model=str(brain.get("model", "")),
        metrics=log.metrics,
        brain_stats=log.brain_stats,
        trades=trade_views(log.trades, log.decisions),
        equity_times=log.equity_times,
        equity_values=log.equity_values,
        candles=_candles_for(windows, series),
        notes=notes,
    )


def from_result(
    result: Any,
    persona_name: str,
    series: Sequence[InstrumentSeries],
    *,
    title: str | None = None,
    until: int | None = None,
) -> ReportRun:
    """A report run straight from a BacktestResult and the series it ran on; ``until``
    (ns) leaves out the candles that open after it (a replay exported part way)."""
    return ReportRun(
        title=title or persona_name,
        persona=persona_name,
        brain=str(result.brain),
        model=str(result.model),
        metrics=dict(result.metrics),
        brain_stats=dict(result.brain_stats),
        trades=trade_views(list(result.trades), list(result.decisions)),
        equity_times=np.asarray(result.equity_times),
        equity_values=np.asarray(result.equity_values, dtype=np.float64),
        candles=[Candles.from_series(s, None, until) for s in series],
    )
