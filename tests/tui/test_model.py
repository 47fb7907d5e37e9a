"""The panes' model is a record of StepEvents: hand-made events, hand-checked results."""

from __future__ import annotations

import math

import pytest

from engine.types import (
    Candle,
    Decision,
    Direction,
    ExitReason,
    Fill,
    Position,
    Side,
    Signal,
    StepEvent,
    Trade,
)
from tui.model import ReplayModel

M = 60_000_000_000


def event(step: int, candles, *, equity: float, **kw) -> StepEvent:
    base = dict(
        step=step,
        total_steps=4,
        time=(step + 1) * M,
        candles=tuple(candles),
        indicators={},
        signals=(),
        batch=None,
        decisions=(),
        fills=(),
        trades=(),
        positions=(),
        orders=(),
        cash=equity,
        equity=equity,
    )
    base.update(kw)
    return StepEvent(**base)


def candle(inst: str, i: int, o: float, c: float) -> Candle:
    return Candle(inst, i * M, (i + 1) * M, o, max(o, c) + 1, min(o, c) - 1, c, 10.0)


def test_events_accumulate_per_instrument_with_gaps() -> None:
    m = ReplayModel(instruments=("AAA", "BBB"), initial_equity=1000.0)
    m.apply(
        event(
            0,
            [candle("AAA", 0, 100, 101), candle("BBB", 0, 5, 5.5)],
            equity=1000.0,
            indicators={"AAA": {"ema_fast": 100.5, "rsi": 55.0}, "BBB": {"ema_fast": 5.1}},
        )
    )
    # BBB has no candle at step 1 (a gap): it is simply absent.
    sig = Signal("AAA", 2 * M, "rsi_oversold", Direction.LONG, 0.8, 99.0, {"rsi": 25.0})
    m.apply(
        event(
            1,
            [candle("AAA", 1, 101, 99)],
            equity=990.0,
            indicators={"AAA": {"ema_fast": 100.0, "rsi": 25.0}},
            signals=(sig,),
        )
    )
    assert m.steps_done == 2 and m.time == 2 * M
    a, b = m.history["AAA"], m.history["BBB"]
    assert a.close.tolist() == [101, 99] and b.close.tolist() == [5.5]
    assert a.indicator_series("ema_fast").tolist() == [100.5, 100.0]
    assert a.indicators == {"ema_fast": 100.0, "rsi": 25.0}
    assert a.values_at(0) == {"ema_fast": 100.5, "rsi": 55.0}
    assert a.signals_at == {1: [sig]}
    assert a.change_pct == pytest.approx(-1.0)  # 99 / 100 - 1
    assert a.signals == [(1, "long")] and list(m.signals) == [sig]
    assert m.equity_values == [1000.0, 990.0]
    chart = m.chart_data("AAA")
    assert chart.close.tolist() == [101, 99] and chart.signals == [(1, "long")]
    assert chart.volume.tolist() == [10.0, 10.0] and chart.instrument == "AAA"
    assert [k for k, _ in chart.overlays] == ["ema_fast"]
    assert chart.indicators["rsi"].tolist() == [55.0, 25.0]


def test_columns_grow_and_a_late_column_reads_nan_before_its_first_value() -> None:
    from tui.model import Columns

    cols = Columns(capacity=2)
    for i in range(5):
        cols.append({"a": float(i)} if i < 3 else {"a": float(i), "b": i * 10.0})
    assert cols.view("a").tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    b = cols.view("b")
    assert math.isnan(b[0]) and math.isnan(b[2]) and b[3:].tolist() == [30.0, 40.0]
    assert len(cols.view("missing")) == 5


def test_display_extras_are_shown_up_to_the_candles_seen() -> None:
    import numpy as np

    extras = {"AAA": {"adx": np.array([1.0, 2.0, 3.0])}}
    m = ReplayModel(instruments=("AAA",), initial_equity=1000.0, extras=extras)
    m.apply(event(0, [candle("AAA", 0, 100, 101)], equity=1000.0))
    m.apply(event(1, [candle("AAA", 1, 101, 102)], equity=1000.0))
    assert m.chart_data("AAA").indicators["adx"].tolist() == [1.0, 2.0]
    assert m.history["AAA"].values_at(1) == {"adx": 2.0}


def test_fills_positions_and_trades() -> None:
    m = ReplayModel(instruments=("AAA",), initial_equity=1000.0)
    m.apply(event(0, [candle("AAA", 0, 100, 100)], equity=1000.0))
    pos = Position("AAA", Side.LONG, 2.0, 100.0, M, 95.0, 110.0, None, 97.0, 104.0, 8.0, 0.2)
    buy = Fill(2 * M, "AAA", 1, "buy", 2.0, 100.0, 0.2, "entry")
    dec = Decision(M, "rules", "", (), "two signals agree", latency_s=0.001)
    m.apply(
        event(
            1,
            [candle("AAA", 1, 100, 104)],
            equity=1008.0,
            fills=(buy,),
            positions=(pos,),
            decisions=(dec,),
        )
    )
    lines = dict(m.chart_data("AAA").lines)
    assert lines == {"entry": 100.0, "stop": 95.0, "target": 110.0, "trail": 97.0}
    assert m.history["AAA"].fills == [(1, "buy")]
    assert m.history["AAA"].fills_at == {1: [buy]} and m.history["AAA"].decisions_at == {1: [dec]}
    assert m.decision_count == 1 and m.decisions[-1].reasoning == "two signals agree"
    sell = Fill(3 * M, "AAA", 1, "sell", 2.0, 95.0, 0.19, "stop")
    loss = Trade("AAA", Side.LONG, M, 100.0, 3 * M, 95.0, 2.0, -10.39, 0.39, ExitReason.STOP)
    m.apply(event(2, [candle("AAA", 2, 104, 96)], equity=989.61, fills=(sell,), trades=(loss,)))
    win = Trade("AAA", Side.LONG, M, 90.0, 4 * M, 100.0, 1.0, 20.0, 0.2, ExitReason.TAKE_PROFIT)
    m.apply(event(3, [candle("AAA", 3, 96, 100)], equity=1009.61, trades=(win,)))
    assert m.chart_data("AAA").lines == []  # no position any more
    assert m.trades == [loss, win]
