"""Why no trade: for one step, one line per instrument saying why nothing was opened.

Read only from what the step produced (its :class:`StepEvent`), the window's analysis
(signals and batch windows) and the persona; nothing is re-decided. The first reason that
applies, in this order: a fill at this step; an open position; an order rejected or
expired at this step; a pending order; the decision taken at this step (refused by the
risk guard, cooldown, maximum positions, score below the threshold, or another hold);
signals waiting for their batch window to close; no candle; no signal.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass

from engine.backtest.analysis import MarketAnalysis
from engine.brain.persona import TradingPersona
from engine.brain.rules import RuleBrain, score_signals
from engine.numfmt import fmt_price
from engine.types import Action, Decision, StepEvent, TradePlan

REFUSED_PREFIX = "refused by risk guard: "


@dataclass(frozen=True)
class WhyLine:
    instrument: str
    reason: str  # one of REASONS
    text: str


REASONS = (
    "filled",
    "in_position",
    "order_rejected",
    "order_expired",
    "order_pending",
    "refused",
    "cooldown",
    "max_positions",
    "below_threshold",
    "held",
    "no_plan",
    "waiting_batch",
    "no_candle",
    "no_signal",
)


def why_no_trade(
    analysis: MarketAnalysis, persona: TradingPersona, event: StepEvent
) -> tuple[WhyLine, ...]:
    """One :class:`WhyLine` per instrument of the window for the step of ``event``."""
    return tuple(
        WhyLine(name, *_why(analysis, persona, event, name)) for name in analysis.instruments
    )


def _why(
    analysis: MarketAnalysis, persona: TradingPersona, event: StepEvent, inst: str
) -> tuple[str, str]:
    fills = [f for f in event.fills if f.instrument == inst]
    if fills:
        f = fills[-1]
        what = "entry filled" if f.reason == "entry" else f"closed ({f.reason})"
        return "filled", f"{what} at {fmt_price(f.price, grouping=True)}"
    pos = next((p for p in event.positions if p.instrument == inst), None)
    if pos is not None:
        side = str(getattr(pos.side, "value", pos.side))
        return "in_position", (
            f"in a {side} position (stop {fmt_price(pos.stop_loss, grouping=True)}, "
            f"target {fmt_price(pos.take_profit, grouping=True)})"
        )
    rejected = [r for r in event.rejections if r.instrument == inst]
    if rejected:
        reason = rejected[-1].reason
        kind = "order_expired" if "expire" in reason.lower() else "order_rejected"
        return kind, f"order {'expired' if kind == 'order_expired' else 'rejected'}: {reason}"
    order = next((o for o in event.orders if o.instrument == inst), None)
    if order is not None:
        at = (
            "next open"
            if order.limit_price is None
            else fmt_price(order.limit_price, grouping=True)
        )
        return "order_pending", f"entry order pending ({order.kind} at {at})"
    found = _plan_for(event, inst)
    signals = [s for s in event.batch.signals if s.instrument == inst] if event.batch else []
    if found is not None:
        return _why_plan(persona, *found, signals)
    if signals:
        return "no_plan", f"{len(signals)} signal(s) at this batch, but the brain made no plan"
    waiting = _waiting(analysis, event.step, inst)
    if waiting is not None:
        count, candles = waiting
        return "waiting_batch", (
            f"{count} signal(s) wait for the batch window: decision in {candles} candle(s)"
        )
    if not any(c.instrument == inst for c in event.candles):
        return "no_candle", "no candle at this step"
    return "no_signal", "no signal"


LOOK_BACK_DECISIONS = 500  # how far back ``with_last_decision`` looks for an instrument's plan


def with_last_decision(
    lines: tuple[WhyLine, ...],
    analysis: MarketAnalysis,
    persona: TradingPersona,
    steps: Sequence[int],
    decisions: Sequence[Decision],
) -> tuple[WhyLine, ...]:
    """``lines`` where a line says only "no signal" also says what the last decision on its
    instrument was (``decisions`` taken at ``steps``, oldest first). Played fast, the latest
    step is rarely the one a decision was taken at, and "no signal" alone hides why the
    signal before it did not trade."""
    out = []
    for line in lines:
        if line.reason == "no_signal":
            found = _last_plan(steps, decisions, line.instrument)
            if found is not None:
                step, decision, plan = found
                batch = analysis.batch_by_step.get(step)
                signals = (
                    [s for s in batch.signals if s.instrument == line.instrument] if batch else []
                )
                if plan.action is Action.HOLD:
                    _, text = _why_plan(persona, decision, plan, signals)
                else:  # long filled or refused since; the step's own lines said which
                    text = f"{plan.action.value} decided"
                clock = time.strftime("%H:%M", time.gmtime(decision.time // 1_000_000_000))
                line = WhyLine(line.instrument, line.reason, f"no signal since {clock}: {text}")
        out.append(line)
    return tuple(out)


def _last_plan(
    steps: Sequence[int], decisions: Sequence[Decision], inst: str
) -> tuple[int, Decision, TradePlan] | None:
    for i in range(len(decisions) - 1, max(-1, len(decisions) - 1 - LOOK_BACK_DECISIONS), -1):
        decision = decisions[i]
        for plan in decision.plans:
            if plan.instrument == inst:
                return int(steps[i]), decision, plan
    return None


def _plan_for(event: StepEvent, inst: str) -> tuple[Decision, TradePlan] | None:
    for decision in reversed(event.decisions):
        for plan in decision.plans:
            if plan.instrument == inst:
                return decision, plan
    return None


def _why_plan(
    persona: TradingPersona, decision: Decision, plan: TradePlan, signals: list
) -> tuple[str, str]:
    if plan.action is not Action.HOLD:
        return "order_pending", f"{plan.action.value} decided: fills at the next open"
    why = plan.rationale or ""
    if why.startswith(REFUSED_PREFIX):
        why = why.removeprefix(REFUSED_PREFIX)
        return _classify(why, "refused", f"refused by the risk guard: {why}")
    kind, text = _classify(why, "", "")
    if kind:
        return kind, text
    threshold = persona.entry_threshold
    if signals and decision.brain == RuleBrain.name:  # an LLM weighs them its own way
        score = score_signals(plan.instrument, signals, persona.signal_weights).score
        if abs(score) < threshold or score == 0.0:
            return "below_threshold", f"score {score:+.2f} under threshold {threshold:g}"
    return "held", f"the brain held: {why or '(no reason given)'}"


def _classify(why: str, kind: str, text: str) -> tuple[str, str]:
    lowered = why.lower()
    if "cooling down" in lowered:
        return "cooldown", f"cooldown: {why}"
    if "max reached" in lowered or "open position(s)" in lowered:
        return "max_positions", f"max positions: {why}"
    return kind, text


def _waiting(analysis: MarketAnalysis, t: int, inst: str) -> tuple[int, int] | None:
    """(signals, candles until the decision) when ``inst`` has signals in a batch window
    still open at step ``t``."""
    steps = analysis.batch_steps
    i = bisect.bisect_left(steps, t)
    if i >= len(steps) or int(steps[i]) == t:
        return None  # no batch closes later, or it closed here (a decision covers it)
    start = int(steps[i - 1]) + 1 if i > 0 else 0
    count = sum(
        1 for s in range(start, t + 1) for sig in analysis.signals_at(s) if sig.instrument == inst
    )
    return (count, int(steps[i]) - t) if count else None
