"""What the panes show, accumulated from StepEvents and nothing else.

The model is a passive record: it never decides, sizes or fills anything. Panes read it
at render time, so any number of events can be applied between two frames.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace

import numpy as np

from engine.types import Decision, Fill, Order, Position, Signal, StepEvent, Trade
from tui.chart import ChartData
from tui.hints import default_hints

MARKS_SHOWN = 400  # fill and signal markers handed to the chart (the latest ones)


class Columns:
    """Float columns that grow by appending one row at a time (amortised O(1));
    ``view(name)`` is the filled part, without a copy. A column that appears late reads
    NaN before its first value."""

    def __init__(self, capacity: int = 512) -> None:
        self._n = 0
        self._cap = capacity
        self._cols: dict[str, np.ndarray] = {}
        self._born: dict[str, int] = {}  # the row each column first had a value at

    def __len__(self) -> int:
        return self._n

    def __contains__(self, name: str) -> bool:
        return name in self._cols

    def names(self) -> list[str]:
        return list(self._cols)

    def append(self, row: dict[str, float]) -> None:
        n = self._n
        if n == self._cap:
            self._cap *= 2
            for name, col in self._cols.items():
                grown = np.full(self._cap, np.nan)
                grown[:n] = col[:n]
                self._cols[name] = grown
        cols = self._cols
        for name, value in row.items():
            col = cols.get(name)
            if col is None:
                col = cols[name] = np.full(self._cap, np.nan)
                self._born[name] = n
            col[n] = np.nan if value is None else value
        self._n = n + 1

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` rows, as if the later ones had never been appended."""
        n = max(0, min(n, self._n))
        for name in [k for k, row in self._born.items() if row >= n]:
            del self._cols[name], self._born[name]
        for col in self._cols.values():
            col[n : self._n] = np.nan
        self._n = n

    def view(self, name: str) -> np.ndarray:
        col = self._cols.get(name)
        return col[: self._n] if col is not None else np.full(self._n, np.nan)


@dataclass
class InstrumentHistory:
    """One instrument's candles, indicator values and the events at each of its candles."""

    name: str
    candles: Columns = field(default_factory=Columns)
    indicator_columns: Columns = field(default_factory=Columns)
    times: list[int] = field(default_factory=list)
    indicators: dict[str, float] = field(default_factory=dict)
    fills: list[tuple[int, str]] = field(default_factory=list)
    signals: list[tuple[int, str]] = field(default_factory=list)
    # candle index -> what happened there, for the inspect cursor
    signals_at: dict[int, list[Signal]] = field(default_factory=dict)
    decisions_at: dict[int, list[Decision]] = field(default_factory=dict)
    fills_at: dict[int, list[Fill]] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    steps: list[int] = field(default_factory=list)  # the step of each candle
    indicator_rows: list[dict[str, float]] = field(default_factory=list)  # per candle
    _arrays: tuple[int, ChartData] | None = None

    def __len__(self) -> int:
        return len(self.candles)

    @property
    def close(self) -> np.ndarray:
        return self.candles.view("close")

    @property
    def open(self) -> np.ndarray:
        return self.candles.view("open")

    @property
    def last(self) -> float:
        return float(self.close[-1]) if len(self) else math.nan

    @property
    def change_pct(self) -> float:
        """Change since the first candle of the replay window, in percent."""
        if not len(self) or not self.open[0]:
            return math.nan
        return (float(self.close[-1]) / float(self.open[0]) - 1.0) * 100.0

    def add_candle(self, candle, indicators: dict[str, float], step: int = -1) -> None:
        self.steps.append(step)
        self.indicator_rows.append(indicators)
        self.times.append(candle.open_time)
        self.candles.append(
            {
                "open": candle.open,
                "high": candle.high,
                "low": candle.low,
                "close": candle.close,
                "volume": candle.volume,
            }
        )
        self.indicator_columns.append(indicators)
        self.indicators = indicators

    def indicator_series(self, name: str) -> np.ndarray:
        """Values of indicator ``name`` at every candle so far (NaN where unknown)."""
        if name in self.indicator_columns or name not in self.extras:
            return self.indicator_columns.view(name)
        return self.extras[name][: len(self)]

    def values_at(self, candle: int) -> dict[str, float]:
        """Every indicator's value at ``candle`` (the events' ones, then the extras)."""
        out = {
            k: float(self.indicator_columns.view(k)[candle]) for k in self.indicator_columns.names()
        }
        for k, v in self.extras.items():
            if k not in out and candle < len(v):
                out[k] = float(v[candle])
        return out

    def truncate(self, steps: int, dropped: set[int]) -> None:
        """Forget the candles of step ``steps`` and later, and the signals and decisions
        whose ``id`` is in ``dropped`` (after a step back)."""
        keep = bisect.bisect_left(self.steps, steps)
        for values in (self.steps, self.indicator_rows, self.times):
            del values[keep:]
        self.candles.truncate(keep)
        self.indicator_columns.truncate(keep)
        for markers in (self.fills, self.signals):
            while markers and markers[-1][0] >= keep:
                markers.pop()
        for at in (self.signals_at, self.decisions_at, self.fills_at):
            for i in [i for i in at if i >= keep]:
                del at[i]
        for at in (self.signals_at, self.decisions_at):  # a decision can sit on an older candle
            for i, items in list(at.items()):
                kept = [x for x in items if id(x) not in dropped]
                if len(kept) != len(items):
                    if kept:
                        at[i] = kept
                    else:
                        del at[i]
        self.indicators = self.indicator_rows[-1] if keep else {}
        self._arrays = None

    def chart(self, lines: list[tuple[str, float]]) -> ChartData:
        n = len(self)
        if self._arrays is None or self._arrays[0] != n:
            names = set(self.indicator_columns.names()) | set(self.extras)
            data = ChartData(
                np.asarray(self.times, dtype=np.int64),
                self.candles.view("open"),
                self.candles.view("high"),
                self.candles.view("low"),
                self.candles.view("close"),
                volume=self.candles.view("volume"),
                overlays=[
                    (k, self.indicator_columns.view(k))
                    for k in (o.key for o in default_hints().overlays)
                    if k in self.indicator_columns
                ],
                indicators={k: self.indicator_series(k) for k in sorted(names)},
                instrument=self.name,
            )
            self._arrays = (n, data)
        base = self._arrays[1]
        return replace(
            base,
            lines=lines,
            fills=list(self.fills[-MARKS_SHOWN:]),
            signals=list(self.signals[-MARKS_SHOWN:]),
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
    # Whole histories (a step back must find them as they were); panes read the ends.
    signals: list[Signal] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    # the step of each item above and of each trade, so that a step back can drop them
    signal_steps: list[int] = field(default_factory=list)
    decision_steps: list[int] = field(default_factory=list)
    trade_steps: list[int] = field(default_factory=list)
    fill_log: list[Fill] = field(default_factory=list)
    fill_steps: list[int] = field(default_factory=list)
    positions: tuple[Position, ...] = ()
    orders: tuple[Order, ...] = ()
    trades: list[Trade] = field(default_factory=list)
    equity_values: list[float] = field(default_factory=list)
    signal_count: int = 0
    decision_count: int = 0
    version: int = 0
    last_event: StepEvent | None = None  # the latest step's event, as it came
    # display-only indicators per instrument (tui.hints.display_extras), full length
    extras: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.instruments:
            self.history.setdefault(name, InstrumentHistory(name, extras=self.extras.get(name, {})))

    @property
    def steps_done(self) -> int:
        return self.step + 1

    def apply(self, ev: StepEvent) -> None:
        self.step, self.time = ev.step, ev.time
        self.last_event = ev
        for candle in ev.candles:
            hist = self.history.get(candle.instrument)
            if hist is None:
                hist = self.history[candle.instrument] = InstrumentHistory(
                    candle.instrument, extras=self.extras.get(candle.instrument, {})
                )
                self.instruments = (*self.instruments, candle.instrument)
            hist.add_candle(candle, ev.indicators.get(candle.instrument, {}), ev.step)
        for sig in ev.signals:
            self.signals.append(sig)
            self.signal_steps.append(ev.step)
            hist = self.history.get(sig.instrument)
            if hist is not None and len(hist):
                i = len(hist) - 1
                hist.signals.append((i, str(sig.direction)))
                hist.signals_at.setdefault(i, []).append(sig)
        self.signal_count += len(ev.signals)
        for dec in ev.decisions:
            self.decisions.append(dec)
            self.decision_steps.append(ev.step)
            for name in {p.instrument for p in dec.plans} or self.history:
                hist = self.history.get(name)
                if hist is not None and len(hist):
                    hist.decisions_at.setdefault(len(hist) - 1, []).append(dec)
        self.decision_count += len(ev.decisions)
        for fill in ev.fills:
            self.fill_log.append(fill)
            self.fill_steps.append(ev.step)
            hist = self.history.get(fill.instrument)
            if hist is not None and len(hist):
                i = len(hist) - 1
                hist.fills.append((i, fill.side))
                hist.fills_at.setdefault(i, []).append(fill)
        self.trades.extend(ev.trades)
        self.trade_steps.extend([ev.step] * len(ev.trades))
        self.positions, self.orders = ev.positions, ev.orders
        self.cash, self.equity = ev.cash, ev.equity
        if math.isnan(self.initial_equity):
            self.initial_equity = ev.equity
        self.equity_values.append(ev.equity)
        self.version += 1

    def rewind(self, event: StepEvent) -> None:
        """Back to the state after ``event``, an earlier step as stepping forward made it:
        everything of that step and later is dropped, then ``event`` is applied again."""
        n = event.step
        dropped: set[int] = set()
        for items, steps in (
            (self.signals, self.signal_steps),
            (self.decisions, self.decision_steps),
            (self.trades, self.trade_steps),
            (self.fill_log, self.fill_steps),
        ):
            keep = bisect.bisect_left(steps, n)
            dropped.update(id(x) for x in items[keep:])
            del items[keep:], steps[keep:]
        for hist in self.history.values():
            hist.truncate(n, dropped)
        self.signal_count, self.decision_count = len(self.signals), len(self.decisions)
        del self.equity_values[n:]
        self.apply(event)

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
