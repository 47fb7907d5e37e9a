"""What the panes show, accumulated from StepEvents and nothing else.

The model is a passive record: it never decides, sizes or fills anything. Panes read it
at render time, so any number of events can be applied between two frames.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from engine.types import Decision, Order, Position, Signal, StepEvent, Trade
from tui.chart import ChartData

OVERLAY_PATTERN = re.compile(r"^(ema|sma|wma|bb_(mid|middle)|vwap)", re.IGNORECASE)
MAX_SIGNALS = 400
MAX_DECISIONS = 100


@dataclass
class InstrumentHistory:
    name: str
    times: list[int] = field(default_factory=list)
    open: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    overlays: dict[str, list[float]] = field(default_factory=dict)
    indicators: dict[str, float] = field(default_factory=dict)
    fills: list[tuple[int, str]] = field(default_factory=list)
    signals: list[tuple[int, str]] = field(default_factory=list)
    _arrays: tuple[int, ChartData] | None = None
    _seen_keys: int = -1

    def __len__(self) -> int:
        return len(self.close)

    @property
    def last(self) -> float:
        return self.close[-1] if self.close else math.nan

    @property
    def change_pct(self) -> float:
        """Change since the first candle of the replay window, in percent."""
        if not self.close or not self.open[0]:
            return math.nan
        return (self.close[-1] / self.open[0] - 1.0) * 100.0

    def add_candle(self, candle, indicators: dict[str, float]) -> None:
        n = len(self.close)
        self.times.append(candle.open_time)
        self.open.append(candle.open)
        self.high.append(candle.high)
        self.low.append(candle.low)
        self.close.append(candle.close)
        self.indicators = indicators
        if len(indicators) != self._seen_keys:
            self._seen_keys = len(indicators)
            for key in indicators:
                if key not in self.overlays and OVERLAY_PATTERN.match(key):
                    self.overlays[key] = [math.nan] * n
        for key, series in self.overlays.items():
            value = indicators.get(key)
            series.append(math.nan if value is None else float(value))

    def chart(self, lines: list[tuple[str, float]]) -> ChartData:
        n = len(self.close)
        if self._arrays is None or self._arrays[0] != n:
            data = ChartData(
                np.asarray(self.times, dtype=np.int64),
                np.asarray(self.open, dtype=np.float64),
                np.asarray(self.high, dtype=np.float64),
                np.asarray(self.low, dtype=np.float64),
                np.asarray(self.close, dtype=np.float64),
                overlays=[
                    (k, np.asarray(v, dtype=np.float64)) for k, v in sorted(self.overlays.items())
                ],
            )
            self._arrays = (n, data)
        base = self._arrays[1]
        return ChartData(
            base.open_time,
            base.open,
            base.high,
            base.low,
            base.close,
            overlays=base.overlays,
            lines=lines,
            fills=list(self.fills[-400:]),
            signals=list(self.signals[-400:]),
        )


@dataclass
class ReplayModel:
    instruments: tuple[str, ...] = ()
    initial_equity: float = math.nan
    history: dict[str, InstrumentHistory] = field(default_factory=dict)
    step: int = -1
    time: int = 0
    cash: float = math.nan
    equity: float = math.nan
    signals: deque[Signal] = field(default_factory=lambda: deque(maxlen=MAX_SIGNALS))
    decisions: deque[Decision] = field(default_factory=lambda: deque(maxlen=MAX_DECISIONS))
    positions: tuple[Position, ...] = ()
    orders: tuple[Order, ...] = ()
    trades: list[Trade] = field(default_factory=list)
    equity_values: list[float] = field(default_factory=list)
    signal_count: int = 0
    decision_count: int = 0
    version: int = 0

    def __post_init__(self) -> None:
        for name in self.instruments:
            self.history.setdefault(name, InstrumentHistory(name))

    @property
    def steps_done(self) -> int:
        return self.step + 1

    def apply(self, ev: StepEvent) -> None:
        self.step, self.time = ev.step, ev.time
        for candle in ev.candles:
            hist = self.history.get(candle.instrument)
            if hist is None:
                hist = self.history[candle.instrument] = InstrumentHistory(candle.instrument)
                self.instruments = (*self.instruments, candle.instrument)
            hist.add_candle(candle, ev.indicators.get(candle.instrument, {}))
        for sig in ev.signals:
            self.signals.append(sig)
            hist = self.history.get(sig.instrument)
            if hist is not None and len(hist):
                hist.signals.append((len(hist) - 1, str(sig.direction)))
        self.signal_count += len(ev.signals)
        for dec in ev.decisions:
            self.decisions.append(dec)
        self.decision_count += len(ev.decisions)
        for fill in ev.fills:
            hist = self.history.get(fill.instrument)
            if hist is not None and len(hist):
                hist.fills.append((len(hist) - 1, fill.side))
        self.trades.extend(ev.trades)
        self.positions, self.orders = ev.positions, ev.orders
        self.cash, self.equity = ev.cash, ev.equity
        if math.isnan(self.initial_equity):
            self.initial_equity = ev.equity
        self.equity_values.append(ev.equity)
        self.version += 1

    def position(self, instrument: str) -> Position | None:
        return next((p for p in self.positions if p.instrument == instrument), None)

    def chart_data(self, instrument: str) -> ChartData:
        hist = self.history.get(instrument)
        if hist is None:
            return ChartData.empty()
        lines: list[tuple[str, float]] = []
        pos = self.position(instrument)
        if pos is not None:
            lines.append(("entry", pos.entry_price))
            if pos.stop_loss is not None:
                lines.append(("stop", pos.stop_loss))
            if pos.take_profit is not None:
                lines.append(("target", pos.take_profit))
            if pos.trail_stop is not None:
                lines.append(("trail", pos.trail_stop))
        else:
            for order in self.orders:
                if order.instrument == instrument and order.limit_price is not None:
                    lines.append(("entry", order.limit_price))
                    break
        return hist.chart(lines)
