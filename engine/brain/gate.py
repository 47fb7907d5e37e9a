"""When an LLM brain asks its model, and when a hold needs no model at all.

A call costs seconds; most batches of a quiet market do not change what a persona
would do. The model is asked when

- an instrument's signals, weighed with the persona's own signal weights (as the rule
  brain weighs them), reach half its entry threshold; or a signal concerns an
  instrument where a position is open; or the persona weighs no signal at all;
- for a position review (a batch without signals), when a position needs one: its
  price has moved at least one ATR against the entry, it is within one ATR of its stop
  or target, or it has been held for half the persona's holding limit.

Otherwise the brain holds without a call, and says why.
"""

from __future__ import annotations

import math

from engine.brain.persona import TradingPersona
from engine.brain.rules import score_signals
from engine.types import PortfolioState, SignalBatch

SIGNAL_SHARE = 0.5  # of the entry threshold a batch's weighted signals must reach
REVIEW_ATR = 1.0


def skip_reason(
    batch: SignalBatch,
    portfolio: PortfolioState,
    persona: TradingPersona,
    timeframe_ns: int | None = None,
) -> str | None:
    """None when the model should be asked; else why a hold without a call is enough."""
    held = {p.instrument: p for p in portfolio.positions}
    if batch.signals:
        if any(s.instrument in held for s in batch.signals) or not persona.signal_weights:
            return None  # (a persona without weights has no opinion on signals)
        bar = SIGNAL_SHARE * persona.entry_threshold
        best = 0.0
        for name in {s.instrument for s in batch.signals}:
            sc = score_signals(
                name, [s for s in batch.signals if s.instrument == name], persona.signal_weights
            )
            best = max(best, sc.long + sc.short + sc.neutral)
        if best >= bar:
            return None
        return (
            f"no model call: the signals weigh {best:.2f} for {persona.name}, "
            f"under {bar:g} (half its entry threshold)"
        )
    for pos in held.values():
        ctx = batch.context.get(pos.instrument)
        if ctx is None or not (math.isfinite(ctx.atr) and ctx.atr > 0):
            return None
        sign = 1.0 if pos.side.value == "long" else -1.0
        against = (pos.entry_price - ctx.price) * sign / ctx.atr
        near = [
            abs(level - ctx.price) / ctx.atr
            for level in (pos.stop_loss, pos.take_profit)
            if level is not None
        ]
        if against >= REVIEW_ATR or any(d <= REVIEW_ATR for d in near):
            return None
        limit = persona.max_holding_candles
        if limit and timeframe_ns and (batch.time - pos.entry_time) / timeframe_ns >= limit / 2:
            return None
    return "no model call: no open position needs a review"
