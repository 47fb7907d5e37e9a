"""Hand-computed broker cases: one rule per test, the arithmetic written out.

Candle ``i`` opens at ``60 * i`` and closes at ``60 * (i + 1)``; a plan decided at the
close of candle ``i`` is submitted with ``time = 60 * (i + 1)``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from engine.broker import Broker, BrokerConfig
from engine.types import Action, ExitReason, Side, TradePlan, TrailingSpec

X, Y = "XUSD", "YUSD"


def broker(fees=0.0, slip=0.0, intrabar="stop_first", cash=10_000.0, **kw) -> Broker:
    cfg = BrokerConfig(initial_cash=cash, fees_bps=fees, slippage_bps=slip, intrabar=intrabar, **kw)
    return Broker(cfg, [X, Y])


def candle(b: Broker, i: int, o: float, h: float, lo: float, c: float, inst: str = X, atr=1.0):
    return b.on_candle(inst, i, 60 * i, 60 * (i + 1), o, h, lo, c, atr)


def long_plan(**kw) -> TradePlan:
    kw.setdefault("size", 0.5)
    kw.setdefault("size_mode", "equity")
    return TradePlan(kw.pop("instrument", X), Action.OPEN_LONG, **kw)


def short_plan(**kw) -> TradePlan:
    kw.setdefault("size", 0.5)
    kw.setdefault("size_mode", "equity")
    return TradePlan(kw.pop("instrument", X), Action.OPEN_SHORT, **kw)


def close_plan(inst: str = X) -> TradePlan:
    return TradePlan(inst, Action.CLOSE)


# ---------------------------------------------------------------- entries
def test_market_entry_fills_at_next_open_never_inside_signal_candle():
    b = broker()
    candle(b, 0, 100, 101, 99, 100)
    order = b.submit(long_plan(), time=60, step=0)
    assert order.kind == "market" and order.side == Side.LONG
    # a candle that opened before the decision (still running at 60) cannot fill it
    assert b.on_candle(X, 0, 30, 90, 100, 101, 99, 100) == []
    fills = candle(b, 1, 102, 103, 101, 102)
    # qty = equity * size / open = 10000 * 0.5 / 102
    assert len(fills) == 1 and fills[0].price == 102 and fills[0].time == 60
    assert fills[0].qty == pytest.approx(10_000 * 0.5 / 102)
    assert fills[0].reason == "entry"


def test_fees_on_both_sides():
    b = broker(fees=10)  # 10 bps = 0.001
    b.submit(long_plan(), 60)
    candle(b, 1, 100, 101, 99, 100)
    # qty = 10000 * 0.5 / 100 = 50; entry fee = 50 * 100 * 0.001 = 5
    # cash = 10000 - 5000 (cost) - 5 (fee) = 4995
    assert b.cash == pytest.approx(4995.0)
    b.submit(close_plan(), 120)
    (fill,) = candle(b, 2, 110, 111, 109, 110)
    # exit fee = 50 * 110 * 0.001 = 5.5; pnl = 50 * (110 - 100) - 5 - 5.5 = 489.5
    assert fill.fee == pytest.approx(5.5) and fill.reason == "signal" and fill.time == 120
    (trade,) = b.trades
    assert trade.pnl == pytest.approx(489.5)
    assert trade.fees == pytest.approx(10.5)
    assert trade.exit_reason == ExitReason.SIGNAL
    assert b.cash == pytest.approx(10_489.5)
    assert b.equity() == pytest.approx(10_489.5)


def test_slippage_on_market_and_stop_fills_not_on_limit_or_target():
    b = broker(slip=50)  # 50 bps = 0.005
    b.submit(long_plan(stop_loss=90.0, take_profit=130.0), 60)
    (entry,) = candle(b, 1, 100, 101, 99, 100)
    assert entry.price == pytest.approx(100.5)  # buy at 100 * 1.005
    (stop,) = candle(b, 2, 95, 96, 89, 90)
    assert stop.price == pytest.approx(89.55)  # sell at 90 * 0.995
    assert stop.reason == "stop"
    # limit entry at 95 and a take profit at 105: both fill at their own price exactly
    b.submit(long_plan(entry_price=95.0, take_profit=105.0), 180)
    (lim,) = candle(b, 3, 97, 98, 94, 96)
    assert lim.price == 95.0
    (tp,) = candle(b, 4, 100, 106, 99, 104)
    assert tp.price == 105.0 and tp.reason == "take_profit"


def test_entry_refused_when_open_is_beyond_the_stop():
    b = broker()
    order = b.submit(long_plan(stop_loss=95.0), 60)
    assert candle(b, 1, 94, 96, 93, 95) == []  # opens at 94 <= stop 95
    assert not b.has_position(X) and b.orders() == ()
    assert b.rejections[-1].order_id == order.id
    assert "beyond the stop" in b.rejections[-1].reason
    b.submit(short_plan(stop_loss=105.0), 120)
    assert candle(b, 2, 106, 107, 104, 105) == []  # short opens at 106 >= stop 105
    assert "beyond the stop" in b.rejections[-1].reason and b.fills == []


def test_entry_refusal_uses_the_open_not_the_slipped_price():
    b = broker(slip=100)  # 1%
    b.submit(long_plan(stop_loss=99.5), 60)
    # open 99.4 <= stop 99.5, although the slipped fill 99.4 * 1.01 = 100.394 would not be
    assert candle(b, 1, 99.4, 100, 99, 99.8) == []
    assert "already beyond the stop" in b.rejections[-1].reason
    b.submit(short_plan(take_profit=95.0), 120)
    assert candle(b, 2, 94.0, 96, 93, 95) == []  # a short opening below its target
    assert "beyond the take profit" in b.rejections[-1].reason


def test_submit_refusals_are_reasons():
    b = broker()
    assert "unknown instrument" in b.submit(TradePlan("ZZZ", Action.OPEN_LONG, size=0.1), 60)
    assert "hold" in b.submit(TradePlan(X, Action.HOLD), 60)
    assert "needs a stop" in b.submit(long_plan(size_mode="risk"), 60)
    assert "wrong side" in b.submit(long_plan(entry_price=100.0, stop_loss=101.0), 60)
    assert "wrong side" in b.submit(short_plan(entry_price=100.0, take_profit=101.0), 60)
    assert "size" in b.submit(long_plan(size=math.nan), 60)
    assert "no open position" in b.submit(close_plan(), 60)
    b.submit(long_plan(), 60)
    candle(b, 1, 100, 101, 99, 100)
    assert "already open" in b.submit(long_plan(), 120)


# ---------------------------------------------------------------- stops and targets
def test_gap_through_stop_fills_at_the_open():
    b = broker(slip=10)  # 0.001
    b.submit(long_plan(stop_loss=95.0), 60)
    candle(b, 1, 100, 101, 99, 100)  # entry at 100.1
    (fill,) = candle(b, 2, 90, 92, 88, 91)  # opens at 90, below the stop 95
    assert fill.price == pytest.approx(90 * 0.999)  # the open, minus slippage
    assert fill.time == 120 and fill.reason == "stop" and not fill.ambiguous


def test_gap_through_stop_short():
    b = broker()
    b.submit(short_plan(stop_loss=105.0), 60)
    candle(b, 1, 100, 101, 99, 100)
    (fill,) = candle(b, 2, 110, 112, 108, 111)
    assert fill.price == 110 and fill.side == "buy" and fill.reason == "stop"
    # short pnl = qty * (entry - exit) = 50 * (100 - 110) = -500
    assert b.trades[0].pnl == pytest.approx(-500.0)


def test_stop_fills_at_stop_price_without_gap():
    b = broker()
    b.submit(long_plan(stop_loss=95.0), 60)
    candle(b, 1, 100, 101, 99, 100)
    (fill,) = candle(b, 2, 98, 99, 94, 96)
    assert fill.price == 95.0 and fill.time == 180  # inside the candle: its close time


@pytest.mark.parametrize(
    ("intrabar", "o", "expected_price", "expected_reason"),
    [
        # stop_first: both touched -> the stop, whatever the open
        ("stop_first", 108.0, 95.0, "stop"),
        ("stop_first", 100.0, 95.0, "stop"),
        # open_distance: open 108, high 111 (3 away), low 94 (14 away) -> high first -> target
        ("open_distance", 108.0, 110.0, "take_profit"),
        # open 100: high 11 away, low 6 away -> low first -> stop
        ("open_distance", 100.0, 95.0, "stop"),
        # open 102.5: high 8.5 away, low 8.5 away -> tie -> stop (pessimistic)
        ("open_distance", 102.5, 95.0, "stop"),
    ],
)
def test_stop_and_target_in_one_candle_long(intrabar, o, expected_price, expected_reason):
    b = broker(intrabar=intrabar)
    b.submit(long_plan(stop_loss=95.0, take_profit=110.0), 60)
    candle(b, 1, 100, 101, 99, 100)
    (fill,) = candle(b, 2, o, 111, 94, 100)
    assert fill.price == expected_price and fill.reason == expected_reason
    assert fill.ambiguous and b.trades[0].ambiguous


@pytest.mark.parametrize(
    ("intrabar", "o", "expected_price", "expected_reason"),
    [
        ("stop_first", 92.0, 105.0, "stop"),
        # short: target 90 below, stop 105 above; open 92: low 89 is 3 away, high 106 is 14
        ("open_distance", 92.0, 90.0, "take_profit"),
        ("open_distance", 104.0, 105.0, "stop"),
    ],
)
def test_stop_and_target_in_one_candle_short(intrabar, o, expected_price, expected_reason):
    b = broker(intrabar=intrabar)
    b.submit(short_plan(stop_loss=105.0, take_profit=90.0), 60)
    candle(b, 1, 100, 101, 99, 100)
    (fill,) = candle(b, 2, o, 106, 89, 100)
    assert fill.price == expected_price and fill.reason == expected_reason and fill.ambiguous


def test_gap_through_target_fills_at_the_open_unambiguous():
    b = broker(slip=100)
    b.submit(long_plan(stop_loss=95.0, take_profit=110.0), 60)
    candle(b, 1, 100, 101, 99, 100)
    (fill,) = candle(b, 2, 112, 113, 94, 100)  # opens above the target: the open, no slippage
    assert fill.price == 112 and fill.reason == "take_profit" and not fill.ambiguous


def test_short_pnl_and_cash():
    b = broker(fees=10)
    b.submit(short_plan(take_profit=90.0), 60)
    candle(b, 1, 100, 101, 99, 100)
    # qty = 10000 * 0.5 / 100 = 50; margin 5000 and fee 5 leave cash 4995
    assert b.cash == pytest.approx(4995.0)
    # marked at 95 the short is worth margin + 50 * (100 - 95) = 5250
    assert b.equity({X: 95.0}) == pytest.approx(4995 + 5250)
    (fill,) = candle(b, 2, 95, 96, 89, 91)
    assert fill.price == 90.0 and fill.side == "buy"
    # pnl = 50 * (100 - 90) - 5 - 50 * 90 * 0.001 = 500 - 5 - 4.5 = 490.5
    (trade,) = b.trades
    assert trade.side == Side.SHORT and trade.pnl == pytest.approx(490.5)
    assert b.cash == pytest.approx(10_490.5)


# ---------------------------------------------------------------- trailing
def test_trailing_percent_activation_and_ratchet():
    b = broker()
    trail = TrailingSpec("percent", 0.05, activation=0.02)  # activates once high >= 102
    b.submit(long_plan(trailing=trail), 60)
    candle(b, 1, 100, 101, 99, 100)  # extreme 101 < 102: not active
    assert b.positions()[0].trail_stop is None
    # high 110: the candle's own low 100 is below 110 * 0.95 = 104.5 but the trail only
    # ratchets after the candle's checks, so no exit here
    assert candle(b, 2, 100, 110, 100, 108) == []
    assert b.positions()[0].trail_stop == pytest.approx(104.5)
    assert candle(b, 3, 108, 109, 105, 106) == []  # low 105 > 104.5; high 109 < 110
    assert b.positions()[0].trail_stop == pytest.approx(104.5)  # never moves back
    (fill,) = candle(b, 4, 106, 107, 104, 105)
    assert fill.price == pytest.approx(104.5) and fill.reason == "trailing"
    # qty 50, pnl = 50 * (104.5 - 100) = 225
    assert b.trades[0].pnl == pytest.approx(225.0)
    assert b.trades[0].exit_reason == ExitReason.TRAILING


def test_trailing_atr_short_uses_atr_at_fill():
    b = broker()
    b.submit(short_plan(trailing=TrailingSpec("atr", 2.0)), 60)
    candle(b, 1, 100, 100.5, 95, 96, atr=1.5)  # atr frozen at 1.5: distance 3
    pos = b.positions()[0]
    assert pos.trailing.atr == 1.5
    assert pos.trail_stop == pytest.approx(98.0)  # low 95 + 3
    candle(b, 2, 96, 97, 94, 95, atr=9.0)  # later ATRs do not matter: 94 + 3 = 97
    assert b.positions()[0].trail_stop == pytest.approx(97.0)
    (fill,) = candle(b, 3, 96, 97.5, 95, 97)
    assert fill.price == pytest.approx(97.0) and fill.reason == "trailing"
    # short pnl = 50 * (100 - 97) = 150
    assert b.trades[0].pnl == pytest.approx(150.0)


def test_trailing_below_fixed_stop_keeps_reason_stop():
    b = broker()
    b.submit(long_plan(stop_loss=99.0, trailing=TrailingSpec("percent", 0.1)), 60)
    candle(b, 1, 100, 102, 99.5, 101)  # trail 102 * 0.9 = 91.8 < stop 99
    (fill,) = candle(b, 2, 100, 100, 98, 99)
    assert fill.price == 99.0 and fill.reason == "stop"


# ---------------------------------------------------------------- limit orders
def test_limit_fill_at_limit_and_at_gap_open():
    b = broker()
    b.submit(long_plan(entry_price=95.0), 60)
    assert candle(b, 1, 100, 101, 96, 97) == []  # low 96 > 95
    (fill,) = candle(b, 2, 97, 98, 94, 96)
    assert fill.price == 95.0 and fill.time == 180
    b.close_position(X, 180, 96.0)
    b.submit(long_plan(entry_price=95.0), 180)
    (gap,) = candle(b, 3, 93, 94, 92, 93)  # opens below the buy limit: better price
    assert gap.price == 93.0 and gap.time == 180
    b.close_position(X, 240, 93.0)
    b.submit(short_plan(entry_price=105.0), 240)
    (short,) = candle(b, 4, 100, 106, 99, 101)
    assert short.price == 105.0 and short.side == "sell"


def test_limit_expiry_in_candles():
    b = broker()
    order = b.submit(long_plan(entry_price=95.0, expiry_candles=2), 60)
    assert candle(b, 1, 100, 101, 96, 97) == []
    assert candle(b, 2, 100, 101, 96, 97) == []
    # live in candles 1 and 2; candle 3 opens at 180
    assert b.orders() == (replace(order, expiry_time=180),)
    assert candle(b, 3, 96, 97, 90, 91) == []  # touches 95, but the order lived 2 candles
    assert b.orders() == () and not b.has_position(X)
    assert b.rejections[-1].reason == "expired after 2 candles"


def test_limit_filled_inside_candle_checks_stop_not_target():
    b = broker()
    b.submit(long_plan(entry_price=95.0, stop_loss=90.0, take_profit=99.0), 60)
    # falls from 100 through 95 (fill) to 89 (stop): the stop is surely after the fill
    entry, stop = candle(b, 1, 100, 101, 89, 92)
    assert entry.price == 95.0 and stop.price == 90.0 and stop.reason == "stop"
    assert not stop.ambiguous
    b.submit(long_plan(entry_price=95.0, stop_loss=90.0, take_profit=99.0), 120)
    # high 101 came before or after the fill? unknowable, so no target in the entry candle
    (entry2,) = candle(b, 2, 100, 101, 94, 97)
    assert entry2.price == 95.0 and b.has_position(X)
    (tp,) = candle(b, 3, 97, 100, 96, 99)
    assert tp.price == 99.0 and tp.reason == "take_profit"


# ---------------------------------------------------------------- sizing
def test_risk_sizing_and_caps():
    b = broker()
    # risk: qty = 10000 * 0.01 / |100 - 98| = 50 -> notional 5000 under all caps
    b.submit(long_plan(size=0.01, size_mode="risk", stop_loss=98.0), 60, 0, 1.0)
    (f,) = candle(b, 1, 100, 101, 99, 100)
    assert f.qty == pytest.approx(50.0)
    b.close_position(X, 120, 100.0)
    # risk qty = 10000 * 0.01 / 1 = 100 (notional 10000) > max fraction 0.25: 25 units
    b.submit(long_plan(size=0.01, size_mode="risk", stop_loss=99.0), 120, 0, 0.25)
    (f,) = candle(b, 2, 100, 101, 99.5, 100)
    assert f.qty == pytest.approx(0.25 * 10_000 / 100)
    b.close_position(X, 180, 100.0)


def test_cash_cap_includes_entry_fee_and_shared_wallet():
    b = broker(fees=10)
    # fraction cap 3.0 would allow 300 units; cash allows 10000 / (100 * 1.001)
    b.submit(long_plan(size=2.0), 60, 0, 3.0)
    (f,) = candle(b, 1, 100, 101, 99, 100)
    assert f.qty == pytest.approx(10_000 / 100.1)
    assert b.cash == pytest.approx(0.0, abs=1e-9)
    # the wallet is shared: nothing left for the other instrument
    b.submit(long_plan(instrument=Y), 60)
    assert candle(b, 1, 50, 51, 49, 50, inst=Y) == []
    assert "no cash" in b.rejections[-1].reason


def test_equity_sizing_shares_wallet_between_instruments():
    b = broker()
    b.submit(long_plan(size=0.5), 60)
    b.submit(long_plan(instrument=Y, size=0.5), 60)
    (fx,) = candle(b, 1, 100, 101, 99, 100)
    # X: 10000 * 0.5 / 100 = 50 units, cash 5000; X closes at 100 (mark)
    (fy,) = candle(b, 1, 50, 51, 49, 50, inst=Y)
    # Y: equity = 5000 cash + 50 * 100 = 10000 -> 10000 * 0.5 / 50 = 100 units, cash 0
    assert fx.qty == pytest.approx(50.0) and fy.qty == pytest.approx(100.0)
    assert b.cash == pytest.approx(0.0)
    assert b.equity({X: 110.0, Y: 45.0}) == pytest.approx(50 * 110 + 100 * 45)


# ---------------------------------------------------------------- closing
def test_close_all_end_of_data_with_slippage():
    b = broker(slip=10, fees=10)
    b.submit(long_plan(), 60)
    b.submit(short_plan(instrument=Y), 60)
    candle(b, 1, 100, 101, 99, 100)
    candle(b, 1, 50, 51, 49, 50, inst=Y)
    b.submit(long_plan(instrument=X, entry_price=50.0), 120)  # refused: position open
    fills = b.close_all(120, {X: 110.0, Y: 40.0})
    assert [f.instrument for f in fills] == [X, Y]
    assert all(f.reason == "end_of_data" for f in fills)
    assert fills[0].price == pytest.approx(110 * 0.999)  # sell minus slippage
    assert fills[1].price == pytest.approx(40 * 1.001)  # buy back plus slippage
    assert all(t.exit_reason == ExitReason.END_OF_DATA for t in b.trades)
    assert b.positions() == () and b.orders() == ()


def test_time_limit_closes_at_open():
    b = broker(max_holding_candles=2)
    b.submit(long_plan(), 60)
    candle(b, 1, 100, 101, 99, 100)  # entered in candle 1
    assert candle(b, 2, 101, 102, 100, 101) == []  # held 1 candle
    (fill,) = candle(b, 3, 103, 104, 102, 103)  # 2 candles held: out at the open of 3
    assert fill.price == 103 and fill.reason == "time_limit" and fill.time == 180
    # the per-order holding limit overrides the config
    b.submit(long_plan(), 240, max_holding_candles=1)
    candle(b, 4, 100, 101, 99, 100)
    (fill,) = candle(b, 5, 98, 99, 97, 98)
    assert fill.reason == "time_limit"


def test_adjust_moves_stop_and_refuses_wrong_side():
    b = broker()
    b.submit(long_plan(stop_loss=90.0, take_profit=130.0), 60)
    candle(b, 1, 100, 106, 99, 105)
    adj = b.submit(TradePlan(X, Action.ADJUST, stop_loss=103.0), 120)
    assert adj.kind == "adjust"
    assert b.positions()[0].stop_loss == 103.0 and b.positions()[0].take_profit == 130.0
    assert "wrong side" in b.submit(TradePlan(X, Action.ADJUST, stop_loss=106.0), 120)
    assert "wrong side" in b.submit(TradePlan(X, Action.ADJUST, take_profit=100.0), 120)
    (fill,) = candle(b, 2, 104, 105, 102, 103)
    assert fill.price == 103.0 and fill.reason == "stop"


def test_close_plan_fills_at_next_open_and_flip():
    b = broker()
    b.submit(long_plan(), 60)
    candle(b, 1, 100, 101, 99, 100)
    b.submit(close_plan(), 120)
    b.submit(short_plan(), 120)  # accepted: the close goes first
    out, entry = candle(b, 2, 104, 105, 103, 104)
    assert out.reason == "signal" and out.price == 104 and out.side == "sell"
    # after the close cash = 10000 + 50 * 4 = 10200; short qty = 10200 * 0.5 / 104
    assert entry.side == "sell" and entry.qty == pytest.approx(10_200 * 0.5 / 104)
    assert b.positions()[0].side == Side.SHORT


def test_close_plan_cancels_pending_entry():
    b = broker()
    b.submit(long_plan(entry_price=90.0), 60)
    reason = b.submit(close_plan(), 120)
    assert "cancelled" in reason and b.orders() == ()


def test_market_entry_candle_checks_stop_and_target():
    b = broker()
    b.submit(long_plan(stop_loss=97.0, take_profit=110.0), 60)
    entry, stop = candle(b, 1, 100, 101, 96, 98)  # in at the open 100, down to 96
    assert entry.price == 100 and stop.price == 97.0 and stop.reason == "stop"
    # qty 50: pnl = 50 * (97 - 100) = -150
    assert b.trades[0].pnl == pytest.approx(-150.0)


def test_adjust_trailing_starts_from_the_extreme_so_far():
    b = broker()
    b.submit(long_plan(stop_loss=90.0), 60)
    candle(b, 1, 100, 108, 99, 107)  # extreme 108
    b.submit(TradePlan(X, Action.ADJUST, trailing=TrailingSpec("percent", 0.02)), 120)
    # trail = 108 - 0.02 * 108 = 105.84, effective at once
    assert b.positions()[0].trail_stop == pytest.approx(105.84)
    (fill,) = candle(b, 2, 107, 107.5, 105, 106)
    assert fill.price == pytest.approx(105.84) and fill.reason == "trailing"
    atr_adjust = TradePlan(X, Action.ADJUST, trailing=TrailingSpec("atr", 2.0))
    assert "no open position" in b.submit(atr_adjust, 180)
    b.submit(short_plan(stop_loss=110.0), 180)
    candle(b, 3, 100, 101, 99, 100)
    # refused as a whole: an ATR trail without its ATR leaves the stop unchanged too
    both = TradePlan(X, Action.ADJUST, stop_loss=105.0, trailing=TrailingSpec("atr", 2.0))
    assert "needs its atr" in b.submit(both, 240)
    assert b.positions()[0].stop_loss == 110.0
    order = b.submit(TradePlan(X, Action.ADJUST, stop_loss=105.0), 240)
    assert order.side == Side.SHORT and b.positions()[0].stop_loss == 105.0


def test_adjust_pending_order_and_refusal_without_anything():
    b = broker()
    assert "no open position or pending order" in b.apply_adjust(
        TradePlan(X, Action.ADJUST, stop_loss=90.0)
    )
    b.submit(long_plan(entry_price=95.0, stop_loss=90.0), 60)
    assert b.apply_adjust(TradePlan(X, Action.ADJUST, stop_loss=93.0)) is None
    assert b.orders()[0].plan.stop_loss == 93.0
    # a stop above the limit would be on the wrong side: refused, order unchanged
    assert "wrong side" in b.apply_adjust(TradePlan(X, Action.ADJUST, stop_loss=96.0))
    entry, stop = candle(b, 1, 100, 100, 92, 94)
    assert entry.price == 95.0 and stop.price == 93.0


def test_leverage_margin_and_cash_cap():
    b = broker(leverage=2.0)
    # fraction cap 5 allows 500 units; margin per unit 100 / 2 = 50 -> cash allows 200
    b.submit(long_plan(size=5.0), 60, 0, 5.0)
    (f,) = candle(b, 1, 100, 101, 99, 100)
    assert f.qty == pytest.approx(200.0) and b.cash == pytest.approx(0.0)
    # equity at 95: margin 10000 + 200 * (95 - 100) = 9000
    assert b.equity({X: 95.0}) == pytest.approx(9_000.0)


def test_close_position_now_and_when_flat():
    b = broker(slip=100)  # 1%
    assert b.close_position(X, 60, 100.0) is None
    b.submit(short_plan(), 60)
    candle(b, 1, 100, 101, 99, 100)  # sell at 99 (100 minus 1%)
    fill = b.close_position(X, 120, 100.0, ExitReason.SIGNAL)
    assert fill.price == pytest.approx(101.0) and fill.side == "buy"
    # qty = 10000 * 0.5 / 99; pnl = qty * (99 - 101)
    assert b.trades[0].pnl == pytest.approx(10_000 * 0.5 / 99 * -2)


@pytest.mark.parametrize(
    "kw",
    [{"intrabar": "worst"}, {"fees_bps": -1.0}, {"leverage": 0.0}, {"initial_cash": math.inf}],
)
def test_config_validation(kw):
    with pytest.raises(ValueError):
        BrokerConfig(**kw)


def test_an_adjust_never_loosens_a_trail_hand_computed():
    # DESIGN.md rule 4: an adjust may tighten a trail, never loosen it.
    b = broker()
    b.submit(long_plan(stop_loss=90.0, trailing=TrailingSpec("percent", 0.02)), 60)
    candle(b, 1, 100, 110, 99, 109)  # extreme 110: trail 110 - 2.2 = 107.8
    assert b.positions()[0].trail_stop == pytest.approx(107.8)
    # 5% would put it at 110 - 5.5 = 104.5: looser, refused and nothing changes
    loosen = TradePlan(X, Action.ADJUST, stop_loss=95.0, trailing=TrailingSpec("percent", 0.05))
    why = b.submit(loosen, 120)
    assert why == "a trail never moves back: the new trailing would give a looser trail"
    pos = b.positions()[0]
    assert pos.trail_stop == pytest.approx(107.8) and pos.stop_loss == 90.0
    # an activation the price has not reached would drop the trail: refused too
    later = TradePlan(X, Action.ADJUST, trailing=TrailingSpec("percent", 0.01, activation=0.2))
    assert b.submit(later, 120) == (
        "a trail never moves back: the new trailing would give no trail yet"
    )
    # 1% tightens it to 110 - 1.1 = 108.9: applied
    tighten = TradePlan(X, Action.ADJUST, trailing=TrailingSpec("percent", 0.01))
    assert not isinstance(b.submit(tighten, 120), str)
    assert b.positions()[0].trail_stop == pytest.approx(108.9)
    (fill,) = candle(b, 2, 109.5, 109.6, 108, 108.5)
    assert fill.price == pytest.approx(108.9) and fill.reason == "trailing"


def test_a_short_trail_never_moves_back_either():
    b = broker()
    b.submit(short_plan(stop_loss=110.0, trailing=TrailingSpec("percent", 0.02)), 60)
    candle(b, 1, 100, 101, 90, 91)  # extreme 90: trail 90 + 1.8 = 91.8
    assert b.positions()[0].trail_stop == pytest.approx(91.8)
    assert "would give a looser trail" in b.submit(
        TradePlan(X, Action.ADJUST, trailing=TrailingSpec("percent", 0.03)), 120
    )  # 92.7 would be looser
    b.submit(TradePlan(X, Action.ADJUST, trailing=TrailingSpec("percent", 0.01)), 120)
    assert b.positions()[0].trail_stop == pytest.approx(90.9)
