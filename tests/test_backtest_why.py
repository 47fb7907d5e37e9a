"""Why no trade: each reason, on the sample window's real steps and on edited ones."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from engine.backtest import BacktestConfig, BacktestEngine
from engine.backtest.analysis import analyse
from engine.backtest.why import REASONS, why_no_trade
from engine.brain.factory import make_brain
from engine.brain.persona import load_persona
from engine.brain.rules import score_signals
from engine.data import load_many
from engine.data.sample import SAMPLE_PATHS
from engine.types import Action, Decision, Order, OrderKind, Rejection, Side, TradePlan


@pytest.fixture(scope="module")
def run():
    series = load_many([str(p) for p in SAMPLE_PATHS])
    analysis = analyse(series, BacktestConfig().signal)
    persona = load_persona("momentum")
    engine = BacktestEngine(series, persona, make_brain("rules", persona), analysis=analysis)
    events = [engine.step() for _ in range(1500)]
    return analysis, persona, events


def lines_of(run, event):
    analysis, persona, _ = run
    return {w.instrument: w for w in why_no_trade(analysis, persona, event)}


def test_every_instrument_gets_one_known_reason_at_every_step(run) -> None:
    analysis, persona, events = run
    seen = Counter()
    for ev in events:
        lines = why_no_trade(analysis, persona, ev)
        assert [w.instrument for w in lines] == list(analysis.instruments)
        for w in lines:
            assert w.reason in REASONS and w.text
            seen[w.reason] += 1
    for reason in ("filled", "in_position", "below_threshold", "waiting_batch", "no_signal"):
        assert seen[reason] > 0, seen


def test_below_threshold_gives_the_rule_brains_score(run) -> None:
    analysis, persona, events = run
    found = 0
    for ev in events:
        for w in why_no_trade(analysis, persona, ev):
            if w.reason != "below_threshold":
                continue
            sigs = [s for s in ev.batch.signals if s.instrument == w.instrument]
            score = score_signals(w.instrument, sigs, persona.signal_weights).score
            assert abs(score) < persona.entry_threshold
            assert w.text == f"score {score:+.2f} under threshold {persona.entry_threshold:g}"
            found += 1
    assert found > 5


def test_waiting_batch_counts_the_candles_to_the_decision(run) -> None:
    analysis, persona, events = run
    found = 0
    steps = [int(s) for s in analysis.batch_steps]
    for ev in events:
        for w in why_no_trade(analysis, persona, ev):
            if w.reason == "waiting_batch":
                close = next(s for s in steps if s > ev.step)
                assert w.text.endswith(f"decision in {close - ev.step} candle(s)")
                # and the decision does come at that step
                assert events[close].decisions
                found += 1
    assert found > 5


def quiet_event(run, inst: str):
    """A real step where ``inst`` had nothing going on, to edit."""
    events = run[2]
    for ev in events[200:]:
        if lines_of(run, ev)[inst].reason == "no_signal":
            return ev
    raise AssertionError("no quiet step")


def hold_decision(ev, inst: str, rationale: str):
    plan = TradePlan(inst, Action.HOLD, rationale=rationale)
    return dataclasses.replace(ev, decisions=(Decision(ev.time, "rules", "", (plan,), ""),))


@pytest.mark.parametrize(
    "rationale,reason",
    [
        ("refused by risk guard: cooling down after a loss (3 more step(s))", "cooldown"),
        ("long score passes but 2 position(s) max reached", "max_positions"),
        ("refused by risk guard: would exceed the persona's 2 open position(s)", "max_positions"),
        ("refused by risk guard: stop on the wrong side of the entry", "refused"),
        ("long signal but persona trades short only", "held"),
    ],
)
def test_a_hold_says_why(run, rationale, reason) -> None:
    inst = run[0].instruments[0]
    ev = hold_decision(quiet_event(run, inst), inst, rationale)
    line = lines_of(run, ev)[inst]
    assert line.reason == reason
    assert rationale.removeprefix("refused by risk guard: ") in line.text


def test_orders_pending_expired_and_rejected(run) -> None:
    inst = run[0].instruments[1]
    ev = quiet_event(run, inst)
    plan = TradePlan(inst, Action.OPEN_LONG)
    order = Order(7, inst, Side.LONG, OrderKind.LIMIT, ev.time, plan, limit_price=101.5)
    pending = lines_of(run, dataclasses.replace(ev, orders=(order,)))[inst]
    assert pending.reason == "order_pending" and "101.5" in pending.text
    expired = dataclasses.replace(ev, rejections=(Rejection(ev.time, inst, 7, "expired"),))
    assert lines_of(run, expired)[inst].reason == "order_expired"
    refused = Rejection(ev.time, inst, 0, "no cash to open")
    line = lines_of(run, dataclasses.replace(ev, rejections=(refused,)))[inst]
    assert line.reason == "order_rejected" and "no cash to open" in line.text


def test_no_candle_and_no_plan(run) -> None:
    inst = run[0].instruments[2]
    ev = quiet_event(run, inst)
    gone = dataclasses.replace(ev, candles=tuple(c for c in ev.candles if c.instrument != inst))
    assert lines_of(run, gone)[inst].reason == "no_candle"
    _, _, events = run
    with_batch = next(e for e in events if e.batch is not None and e.batch.signals)
    sig_inst = with_batch.batch.signals[0].instrument
    no_plan = dataclasses.replace(with_batch, decisions=(), fills=(), positions=(), orders=())
    assert lines_of(run, no_plan)[sig_inst].reason == "no_plan"


def test_no_signal_names_the_last_decision_on_its_instrument(run) -> None:
    from engine.backtest.why import with_last_decision

    analysis, persona, events = run
    steps = [ev.step for ev in events for _ in ev.decisions]
    decisions = [d for ev in events for d in ev.decisions]
    held = next(  # the first cooldown hold of the window, then a step with no signal on it
        (ev.step, p.instrument, p.rationale)
        for ev in events
        for d in ev.decisions
        for p in d.plans
        if "cooling down" in (p.rationale or "")
    )
    step, inst, rationale = held
    later = next(ev for ev in events[step + 1 :] if lines_of(run, ev)[inst].reason == "no_signal")
    upto = sum(1 for s in steps if s <= later.step)
    # nothing decided on inst between the hold and the later step
    between = [d for s, d in zip(steps, decisions, strict=True) if step < s <= later.step]
    assert all(p.instrument != inst for d in between for p in d.plans)
    lines = with_last_decision(
        why_no_trade(analysis, persona, later), analysis, persona, steps[:upto], decisions[:upto]
    )
    line = next(w for w in lines if w.instrument == inst)
    clock = str(np.datetime64(int(analysis.times[step]), "ns"))[11:16]
    assert line.reason == "no_signal"
    assert line.text == f"no signal since {clock}: cooldown: {rationale}"
    # a decision that acted is named by its action (what became of it the step's lines said)
    i = max(k for k, s in enumerate(steps[:upto]) if s == step)
    acted = dataclasses.replace(
        decisions[i],
        plans=tuple(
            dataclasses.replace(p, action=Action.OPEN_LONG) if p.instrument == inst else p
            for p in decisions[i].plans
        ),
    )
    edited = [*decisions[:i], acted, *decisions[i + 1 : upto]]
    lines = with_last_decision(
        why_no_trade(analysis, persona, later), analysis, persona, steps[:upto], edited
    )
    line = next(w for w in lines if w.instrument == inst)
    assert line.text == f"no signal since {clock}: open_long decided"
    # other lines are untouched; without decisions "no signal" stays as it was
    plain = why_no_trade(analysis, persona, later)
    assert with_last_decision(plain, analysis, persona, [], []) == plain


def test_an_llm_hold_says_the_models_reason_not_the_rule_score(run) -> None:
    analysis, persona, events = run
    ev, inst = next(
        (ev, w.instrument)
        for ev in events
        for w in why_no_trade(analysis, persona, ev)
        if w.reason == "below_threshold"
    )
    cited = "short: EMA 9 below EMA 21 by 0.51 ATR"

    def by_llm(d: Decision) -> Decision:
        plans = tuple(
            dataclasses.replace(p, rationale=cited) if p.instrument == inst else p for p in d.plans
        )
        return dataclasses.replace(d, brain="llamacpp", plans=plans)

    edited = dataclasses.replace(ev, decisions=tuple(by_llm(d) for d in ev.decisions))
    line = lines_of(run, edited)[inst]
    assert (line.reason, line.text) == ("held", f"the brain held: {cited}")


def test_an_open_positions_stop_and_target_read_as_the_screen_prints_prices(run) -> None:
    """Grouped by thousands, with every digit the engine prints (BTC near 62,000)."""
    from engine.numfmt import fmt_price

    analysis, persona, events = run
    found = 0
    for ev in events:
        for w in why_no_trade(analysis, persona, ev):
            pos = next((p for p in ev.positions if p.instrument == w.instrument), None)
            if w.reason != "in_position" or pos is None or pos.stop_loss is None:
                continue
            stop = fmt_price(pos.stop_loss, grouping=True)
            assert f"(stop {stop}, " in w.text
            if pos.stop_loss >= 1000:
                assert "," in stop and stop.replace(",", "") == fmt_price(pos.stop_loss)
                found += 1
    assert found > 0
