"""When the LLM brain asks its model and when it holds without a call."""

from __future__ import annotations

import dataclasses

from engine.brain.gate import skip_reason
from engine.types import Direction
from tests.test_ai_support import MINUTE, batch, context, long_position, persona, portfolio

WEIGHTS = {"ema_cross_up": 1.2, "rsi_oversold": 0.0, "volume_spike": 0.6}


def test_signal_batches_are_asked_when_they_weigh_enough_for_the_persona():
    p = persona(signal_weights=WEIGHTS, entry_threshold=1.0)
    strong = batch(kinds=(("BTC", "ema_cross_up", Direction.LONG),))  # 1.2 x 0.72 = 0.86
    assert skip_reason(strong, portfolio(), p) is None
    weightless = batch(kinds=(("BTC", "rsi_oversold", Direction.LONG),))  # weight 0
    assert skip_reason(weightless, portfolio(), p) == (
        "no model call: the signals weigh 0.00 for tester, under 0.5 (half its entry threshold)"
    )
    weak = batch(kinds=(("BTC", "volume_spike", Direction.NEUTRAL),))  # 0.6 x 0.72 = 0.43
    assert "weigh 0.43" in skip_reason(weak, portfolio(), p)
    # a signal on an instrument with a position, or a persona without weights: asked
    held = portfolio(positions=(long_position(),))
    assert skip_reason(weightless, held, p) is None
    assert skip_reason(weightless, portfolio(), persona()) is None


def test_reviews_only_when_a_position_needs_one():
    p = persona(max_holding_candles=100)
    review = batch(kinds=())
    # price 46210.5, ATR 35.2, long from 46000: stop 7.4 ATR, target 3.1 ATR away
    quiet = long_position(entry=46_000.0)
    assert skip_reason(review, portfolio(positions=(quiet,)), p, MINUTE) == (
        "no model call: no open position needs a review"
    )
    against = dataclasses.replace(quiet, entry_price=46_250.0, take_profit=None)  # 1.1 ATR
    assert skip_reason(review, portfolio(positions=(against,)), p, MINUTE) is None
    near_stop = dataclasses.replace(quiet, stop_loss=46_180.0)  # 0.87 ATR
    assert skip_reason(review, portfolio(positions=(near_stop,)), p, MINUTE) is None
    old = dataclasses.replace(quiet, entry_time=quiet.entry_time - 40 * MINUTE)  # 52 >= 50
    assert skip_reason(review, portfolio(positions=(old,)), p, MINUTE) is None
    no_atr = batch(kinds=(), contexts={"BTC": context(atr=float("nan"))})
    assert skip_reason(no_atr, portfolio(positions=(quiet,)), p, MINUTE) is None
