"""Builders shared by the engine tests: hand-made series, injected batches, scripted brains."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from engine.backtest.analysis import MarketAnalysis, assemble_analysis
from engine.data.stream import merge
from engine.types import (
    Action,
    Decision,
    Direction,
    InstrumentContext,
    InstrumentSeries,
    PortfolioState,
    Signal,
    SignalBatch,
    TradePlan,
    TrailingSpec,
)

T0 = 1_640_995_200_000_000_000  # 2022-01-01 00:00 UTC
MIN = 60_000_000_000


def series(
    name: str,
    opens: Sequence[float],
    highs: Sequence[float],
    lows: Sequence[float],
    closes: Sequence[float],
    *,
    t0: int = T0,
    step_ns: int = MIN,
    drop: Sequence[int] = (),
) -> InstrumentSeries:
    n = len(opens)
    keep = np.setdiff1d(np.arange(n), np.asarray(drop, dtype=np.int64))
    return InstrumentSeries(
        instrument=name,
        timeframe="1m",
        timeframe_ns=step_ns,
        open_time=(t0 + np.arange(n, dtype=np.int64) * step_ns)[keep],
        open=np.asarray(opens, dtype=np.float64)[keep],
        high=np.asarray(highs, dtype=np.float64)[keep],
        low=np.asarray(lows, dtype=np.float64)[keep],
        close=np.asarray(closes, dtype=np.float64)[keep],
        volume=np.ones(len(keep)),
        filled=np.zeros(len(keep), dtype=bool),
    )


def random_walk(name: str, n: int, seed: int, *, start: float = 100.0, drop=()) -> InstrumentSeries:
    rng = np.random.default_rng(seed)
    closes = start * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    opens = np.concatenate([[start], closes[:-1]]) * np.exp(rng.normal(0, 0.0005, n))
    span = np.abs(rng.normal(0, 0.003, n)) * closes
    highs = np.maximum(opens, closes) + span * rng.random(n)
    lows = np.minimum(opens, closes) - span * rng.random(n)
    return series(name, opens, highs, lows, closes, drop=drop)


def signal_config(window: int = 3, lookback: int = 5) -> SimpleNamespace:
    return SimpleNamespace(window=window, context_lookback=lookback)


def injected_analysis(
    series_list: Sequence[InstrumentSeries],
    batch_steps: Mapping[int, Sequence[str]],
    *,
    atr: Mapping[str, float | np.ndarray] | None = None,
    window: int = 3,
) -> MarketAnalysis:
    """An analysis whose batches are given by hand: at each step, a long signal per named
    instrument (that must have a candle there). ATR is a constant per instrument."""
    stream = merge(list(series_list))
    atr = atr or {}
    per = {}
    for name in stream.instruments:
        s = stream.series[name]
        values = np.broadcast_to(np.asarray(atr.get(name, 1.0), dtype=np.float64), len(s)).copy()
        per[name] = FakeSeriesSignals(name, [], {"atr": values, "close": s.close.copy()})
    batches = []
    for step, names in sorted(batch_steps.items()):
        time = int(stream.times[step])
        sigs = []
        context = {}
        for name in stream.instruments:
            row = stream.instruments.index(name)
            k = int(stream.candle_index[row, step])
            s = stream.series[name]
            if name in names:
                assert k >= 0, f"{name} has no candle at step {step}"
                sig = Signal(name, time, "ema_cross_up", Direction.LONG, 0.8, float(s.close[k]))
                sigs.append(sig)
                per[name].signals.append(sig)
            last = int(np.searchsorted(stream.step_of(name), step, "right")) - 1
            if last >= 0:
                value = float(per[name].indicators["atr"][last])
                context[name] = InstrumentContext(name, float(s.close[last]), value, 0.0, 1, {})
        batches.append(SignalBatch(time, time, step, tuple(sigs), context))
    return assemble_analysis(stream, signal_config(window), per, batches)


@dataclass
class FakeSeriesSignals:
    """What the engine uses of engine.signals.SeriesSignals, with hand-made contents."""

    instrument: str
    signals: list[Signal]
    indicators: dict[str, np.ndarray]

    def context(self, index: int, lookback: int) -> InstrumentContext:
        close = self.indicators["close"]
        back = min(lookback, index)
        change = (close[index] / close[index - back] - 1.0) * 100.0
        values = {k: float(v[index]) for k, v in self.indicators.items()}
        return InstrumentContext(
            self.instrument, float(close[index]), values["atr"], change, back, values
        )


@dataclass
class ScriptedBrain:
    """Answers with the plans a function returns for (batch, portfolio); records its calls."""

    script: Callable[[SignalBatch, PortfolioState], Sequence[TradePlan]]
    name: str = "script"
    model: str = ""
    calls: list[tuple[int, PortfolioState]] = field(default_factory=list)

    def decide(self, batch, portfolio, persona, on_reasoning=None) -> Decision:
        self.calls.append((batch.step, portfolio))
        plans = tuple(self.script(batch, portfolio))
        text = f"step {batch.step}: {len(plans)} plan(s)"
        if on_reasoning is not None:
            on_reasoning(text)
        return Decision(batch.time, self.name, self.model, plans, text)


def chaos_script(seed: int) -> Callable[[SignalBatch, PortfolioState], list[TradePlan]]:
    """A deterministic brain that exercises every action: market and limit entries both
    ways, stops, targets, percent and ATR trails, closes, adjusts and holds."""

    def script(batch: SignalBatch, portfolio: PortfolioState) -> list[TradePlan]:
        held = {p.instrument: p for p in portfolio.positions}
        plans = []
        for i, (name, ctx) in enumerate(sorted(batch.context.items())):
            rng = np.random.default_rng([seed, batch.step, i])
            roll = rng.random()
            price, atr = ctx.price, max(ctx.atr, 1e-9)
            if name in held:
                if roll < 0.25:
                    plans.append(TradePlan(name, Action.CLOSE))
                elif roll < 0.45:
                    long = held[name].side == "long"
                    stop = price - 1.5 * atr if long else price + 1.5 * atr
                    plans.append(TradePlan(name, Action.ADJUST, stop_loss=stop))
                elif roll < 0.55:  # a new trail starts from the position's extreme so far
                    trail = TrailingSpec("percent", 0.003, 0.0)
                    plans.append(TradePlan(name, Action.ADJUST, trailing=trail))
                continue
            if roll < 0.5:
                long = rng.random() < 0.6
                sign = 1.0 if long else -1.0
                limit = rng.random() < 0.3
                entry = price - sign * 0.3 * atr if limit else None
                ref = entry if entry is not None else price
                trail = None
                pick = rng.random()
                if pick < 0.3:
                    trail = TrailingSpec("percent", 0.004, 0.002)
                elif pick < 0.6:
                    trail = TrailingSpec("atr", 1.2, 0.5)
                plans.append(
                    TradePlan(
                        name,
                        Action.OPEN_LONG if long else Action.OPEN_SHORT,
                        entry_price=entry,
                        size=float(rng.uniform(0.002, 0.02)),
                        size_mode="risk",
                        stop_loss=ref - sign * float(rng.uniform(0.8, 2.5)) * atr,
                        take_profit=(
                            ref + sign * float(rng.uniform(1.0, 4.0)) * atr
                            if rng.random() < 0.7
                            else None
                        ),
                        trailing=trail,
                        expiry_candles=int(rng.integers(1, 6)) if limit else None,
                    )
                )
        return plans

    return script
