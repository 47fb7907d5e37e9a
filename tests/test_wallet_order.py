"""One wallet in time order (issue 12, item 1; DESIGN.md rule 6): within a step every
instrument's events at the open come first, then the events inside the candles, so
nothing inside one instrument's candle pays for a fill at another's open."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backtest import BacktestConfig, BacktestEngine
from engine.brain.factory import make_brain
from engine.brain.persona import TradingPersona, load_persona
from engine.data import load_many
from engine.types import Action, TradePlan
from tests.test_backtest_helpers import MIN, T0, ScriptedBrain, injected_analysis, series

PERSONA = TradingPersona(
    name="wallet", risk_per_trade=0.02, max_position_fraction=1.0, max_open_positions=3
)
FLAT = dict(fees_bps=0.0, slippage_bps=0.0, review_positions=False)


def _flat(name: str, price: float, low: float | None = None, step: int = 2):
    lows = [price - 1] * 4
    closes = [price] * 4
    if low is not None:
        lows[step], closes[step] = low, price - 4
    return series(name, [price] * 4, [price + 1] * 4, lows, closes)


def _run(analysis, script):
    from tests.test_backtest_helpers import signal_config

    config = BacktestConfig(signal=signal_config(), **FLAT)
    engine = BacktestEngine([], PERSONA, ScriptedBrain(script), config, analysis=analysis)
    return engine.run()


def test_an_exit_inside_one_candle_does_not_pay_for_another_instruments_open_fill() -> None:
    # AAA: bought with 90% of 10,000 at 100 (step 1 open); at step 2 its candle falls to 90
    # and stops out at 95, at the candle's close. BBB's market entry fills at step 2's
    # open, before that: only the 1,000 of cash left is there to pay for it.
    aaa = _flat("AAA", 100.0, low=90.0)
    bbb = _flat("BBB", 50.0)
    analysis = injected_analysis([aaa, bbb], {0: ["AAA"], 1: ["BBB"]})

    def script(batch, portfolio):
        if batch.step == 0:
            return [
                TradePlan("AAA", Action.OPEN_LONG, size=0.9, size_mode="equity", stop_loss=95.0)
            ]
        if batch.step == 1:
            return [
                TradePlan("BBB", Action.OPEN_LONG, size=0.9, size_mode="equity", stop_loss=40.0)
            ]
        return []

    result = _run(analysis, script)
    entry_a, entry_b, stop_a = result.fills[:3]
    assert (entry_a.instrument, entry_a.time, entry_a.price, entry_a.qty) == (
        "AAA",
        T0 + MIN,
        100.0,
        pytest.approx(90.0),
    )
    # at step 2's open: cash 1,000, equity 1,000 + 90 x 100 = 10,000: 9,000 wanted, 1,000 paid
    assert (entry_b.instrument, entry_b.time, entry_b.price) == ("BBB", T0 + 2 * MIN, 50.0)
    assert entry_b.qty == pytest.approx(1_000.0 / 50.0)
    # then AAA's stop inside its candle, recorded at its close (the old order gave BBB
    # 0.9 x 9,550 / 50 = 171.9 units paid with the stop's cash)
    assert (stop_a.instrument, stop_a.time, stop_a.price, stop_a.reason) == (
        "AAA",
        T0 + 3 * MIN,
        95.0,
        "stop",
    )


def test_a_limit_filled_inside_a_candle_does_not_take_cash_before_an_open_fill() -> None:
    # Both decided at step 1: AAA a limit buy at 95 (its step-2 candle trades down to 94),
    # BBB a market buy. BBB fills first, at the open, with 90% of 10,000; AAA's limit then
    # fills inside the candle with the 1,000 that is left.
    aaa = _flat("AAA", 100.0, low=94.0)
    bbb = _flat("BBB", 50.0)
    analysis = injected_analysis([aaa, bbb], {1: ["AAA", "BBB"]})

    def script(batch, portfolio):
        if batch.step != 1:
            return []
        return [
            TradePlan(
                "AAA",
                Action.OPEN_LONG,
                entry_price=95.0,
                size=0.9,
                size_mode="equity",
                stop_loss=80.0,
            ),
            TradePlan("BBB", Action.OPEN_LONG, size=0.9, size_mode="equity", stop_loss=40.0),
        ]

    result = _run(analysis, script)
    first, second = result.fills[:2]
    assert (first.instrument, first.time, first.price) == ("BBB", T0 + 2 * MIN, 50.0)
    assert first.qty == pytest.approx(9_000.0 / 50.0)
    # equity at AAA's fill: 1,000 + 180 x 50 = 10,000; cash caps it at 1,000 / 95 (the old
    # order gave AAA 9,000 / 95 = 94.7 units and BBB only 1,000 / 50 = 20)
    assert (second.instrument, second.time, second.price) == ("AAA", T0 + 3 * MIN, 95.0)
    assert second.qty == pytest.approx(1_000.0 / 95.0)


def _replay_cash(fills, initial: float, fee_rate: float) -> list[tuple[object, float]]:
    """Cash before each entry, rebuilding the wallet from the fills in time order (exits at
    a time before entries at the same time: both are at that instant, the open). An entry
    locks its notional plus fee; an exit returns the notional at the entry price plus the
    gain of its side, less the fee."""
    cash = initial
    entries: dict[str, object] = {}  # one position per instrument
    before = []
    for f in sorted(fills, key=lambda f: (f.time, f.reason == "entry")):
        fee = f.qty * f.price * fee_rate
        if f.reason == "entry":
            before.append((f, cash))
            cash -= f.qty * f.price + fee
            entries[f.instrument] = f
        else:
            entry = entries.pop(f.instrument)
            sign = 1.0 if entry.side == "buy" else -1.0
            cash += f.qty * entry.price + sign * (f.price - entry.price) * f.qty - fee
    return before


def test_real_eight_instruments_no_entry_is_paid_with_cash_that_was_not_there(alt_5m_files):
    series_list = load_many(alt_5m_files)
    persona = load_persona("scalper")
    config = BacktestConfig(fees_bps=10.0, slippage_bps=5.0)
    result = BacktestEngine(series_list, persona, make_brain("rules", persona), config).run()
    fills = result.fills
    assert len([f for f in fills if f.reason == "entry"]) > 400
    times = np.array([f.time for f in fills])
    assert (np.diff(times) >= 0).all()  # fills are recorded in time order
    fee_rate = config.fees_bps / 10_000
    checked = _replay_cash(fills, config.initial_cash, fee_rate)
    for entry, cash in checked:
        cost = entry.qty * entry.price * (1 + fee_rate)
        assert cost <= cash * (1 + 1e-9) + 1e-9, (entry, cash)
    # the rebuilt wallet ends where the engine's does (everything closed at the end)
    last = _replay_cash([*fills], config.initial_cash, fee_rate)
    assert last and result.final_equity == pytest.approx(
        config.initial_cash + sum(t.pnl for t in result.trades), rel=1e-9
    )
