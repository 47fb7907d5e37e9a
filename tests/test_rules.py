"""RuleBrain: persona-weighted scoring, hand-computed on hand-built batches."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.brain.base import Brain
from engine.brain.persona import (
    TradingPersona,
    builtin_personas,
    persona_from_dict,
)
from engine.brain.rules import RuleBrain, fmt_price, score_signals
from engine.signals import SIGNAL_KINDS
from engine.types import (
    Action,
    Conflict,
    Direction,
    InstrumentContext,
    Order,
    PortfolioState,
    Position,
    Side,
    Signal,
    SignalBatch,
    TradePlan,
    TrailingSpec,
)

T0 = 1_640_995_200_000_000_000  # 2022-01-01T00:00:00Z
MIN = 60_000_000_000

DIRECTION_OF = {
    "rsi_oversold": Direction.LONG,
    "rsi_overbought": Direction.SHORT,
    "macd_cross_up": Direction.LONG,
    "macd_cross_down": Direction.SHORT,
    "ema_cross_up": Direction.LONG,
    "ema_cross_down": Direction.SHORT,
    "bb_breakout_up": Direction.LONG,
    "bb_breakout_down": Direction.SHORT,
    "bb_touch_lower": Direction.LONG,
    "bb_touch_upper": Direction.SHORT,
    "atr_expansion": Direction.NEUTRAL,
    "volume_spike": Direction.NEUTRAL,
    "stoch_cross_up": Direction.LONG,
    "stoch_cross_down": Direction.SHORT,
}


def make_persona(**overrides: Any) -> TradingPersona:
    data: dict[str, Any] = {
        "name": "test",
        "risk_per_trade": 0.01,
        "max_position_fraction": 0.5,
        "max_open_positions": 2,
        "allowed_directions": ["long", "short"],
        "entry_threshold": 1.0,
        "stop_atr": 2.0,
        "target_atr": 3.0,
        "cooldown_after_loss": 5,
        "signal_weights": {
            "rsi_oversold": 1.5,
            "rsi_overbought": 1.5,
            "macd_cross_up": 0.5,
            "macd_cross_down": 0.5,
            "ema_cross_up": 0.8,
            "ema_cross_down": 0.8,
            "volume_spike": 0.4,
            "atr_expansion": -0.5,
            "bb_breakout_up": -0.6,
        },
        "trailing": {"mode": "atr", "distance": 1.0, "activation": 0.5},
    }
    data.update(overrides)
    return persona_from_dict({k: v for k, v in data.items() if v is not None})


def sig(inst: str, kind: str, strength: float, count: int = 1, time: int = T0) -> Signal:
    return Signal(inst, time, kind, DIRECTION_OF[kind], strength, 100.0, {}, count)


def ctx(inst: str, price: float = 100.0, atr: float = 2.0) -> InstrumentContext:
    return InstrumentContext(inst, price, atr, 0.0, 20, {"atr": atr})


def batch(
    signals: list[Signal],
    contexts: Mapping[str, InstrumentContext] | None = None,
    step: int = 50,
    conflicts: tuple[Conflict, ...] = (),
) -> SignalBatch:
    if contexts is None:
        contexts = {s.instrument: ctx(s.instrument) for s in signals}
    return SignalBatch(T0, T0 - 5 * MIN, step, tuple(signals), contexts, conflicts)


def portfolio(
    positions: tuple[Position, ...] = (),
    orders: tuple[Order, ...] = (),
    step: int = 50,
    last_loss_step: int | None = None,
) -> PortfolioState:
    return PortfolioState(T0, step, 10_000.0, 10_000.0, positions, orders, last_loss_step)


def position(
    inst: str,
    side: Side,
    stop: float | None,
    target: float | None = None,
    price: float = 100.0,
    trailing: TrailingSpec | None = None,
    trail_stop: float | None = None,
) -> Position:
    return Position(
        inst, side, 1.0, 100.0, T0 - 10 * MIN, stop, target, trailing, trail_stop, price, 0.0, 0.1
    )


def pending_order(inst: str) -> Order:
    plan = TradePlan(inst, Action.OPEN_LONG, entry_price=95.0, size=0.01, stop_loss=90.0)
    return Order(1, inst, Side.LONG, "limit", T0 - MIN, plan, 95.0, None)


def plan_for(decision: Any, inst: str) -> TradePlan:
    (plan,) = [p for p in decision.plans if p.instrument == inst]
    return plan


# -- scoring arithmetic ---------------------------------------------------------------


def test_score_is_long_minus_short_plus_confirmation_by_hand() -> None:
    signals = [
        sig("BTC", "rsi_oversold", 0.9),  # long 0.9 x 1.5 = 1.35
        sig("BTC", "macd_cross_up", 0.6),  # long 0.6 x 0.5 = 0.30
        sig("BTC", "ema_cross_down", 0.5),  # short 0.5 x 0.8 = 0.40
        sig("BTC", "volume_spike", 0.5),  # neutral 0.5 x 0.4 = 0.20, confirms the lead
    ]
    sc = score_signals("BTC", signals, make_persona().signal_weights)
    assert sc.long == pytest.approx(1.65)
    assert sc.short == pytest.approx(0.40)
    assert sc.net == pytest.approx(1.25)
    assert sc.neutral == pytest.approx(0.20)
    assert sc.score == pytest.approx(1.45)
    assert sc.agreement == pytest.approx(1.25 / 2.05)


def test_count_multiplies_and_negative_weight_fades_the_signal() -> None:
    w = make_persona().signal_weights
    # 3 merged ema_cross_up at 0.4: 0.4 x 0.8 x 3 = 0.96 long
    sc = score_signals("X", [sig("X", "ema_cross_up", 0.4, count=3)], w)
    assert sc.long == pytest.approx(0.96) and sc.score == pytest.approx(0.96)
    # a long breakout with weight -0.6 counts as 0.6 of short pressure
    sc = score_signals("X", [sig("X", "bb_breakout_up", 1.0)], w)
    assert (sc.long, sc.short, sc.score) == (0.0, pytest.approx(0.6), pytest.approx(-0.6))


def test_neutral_signals_never_create_a_direction_and_negative_ones_dampen() -> None:
    w = make_persona().signal_weights
    assert score_signals("X", [sig("X", "volume_spike", 1.0)], w).score == 0.0
    # short 0.5 x 1.5 = 0.75; atr_expansion 1.0 x -0.5 = -0.5 dampens to -0.25
    sc = score_signals("X", [sig("X", "rsi_overbought", 0.5), sig("X", "atr_expansion", 1.0)], w)
    assert sc.score == pytest.approx(-0.25)
    # dampening never flips the sign: 0.2 x 1.5 = 0.3 - 0.5 -> 0
    sc = score_signals("X", [sig("X", "rsi_overbought", 0.2), sig("X", "atr_expansion", 1.0)], w)
    assert sc.score == 0.0


def test_unweighted_kinds_are_listed_as_ignored() -> None:
    sc = score_signals("X", [sig("X", "bb_touch_lower", 1.0)], make_persona().signal_weights)
    assert sc.score == 0.0 and sc.ignored == ("bb_touch_lower",)
    assert "weight 0: bb_touch_lower" in sc.explain()


weights_st = st.dictionaries(
    st.sampled_from(SIGNAL_KINDS), st.floats(-3, 3, allow_nan=False), max_size=12
)
signal_st = st.tuples(
    st.sampled_from(SIGNAL_KINDS), st.floats(0, 1, allow_nan=False), st.integers(1, 4)
)


@settings(max_examples=80, deadline=None)
@given(weights_st, st.lists(signal_st, max_size=8))
def test_mirrored_signals_give_the_opposite_score(
    weights: dict[str, float], raw: list[tuple[str, float, int]]
) -> None:
    mirror = {
        "rsi_oversold": "rsi_overbought",
        "macd_cross_up": "macd_cross_down",
        "ema_cross_up": "ema_cross_down",
        "bb_breakout_up": "bb_breakout_down",
        "bb_touch_lower": "bb_touch_upper",
        "stoch_cross_up": "stoch_cross_down",
    }
    mirror |= {v: k for k, v in mirror.items()}
    # both kinds of a mirrored pair get the weight of the pair's first name
    sym = {k: weights.get(min(k, mirror.get(k, k)), 0.0) for k in SIGNAL_KINDS}
    signals = [sig("X", k, s, c) for k, s, c in raw]
    mirrored = [sig("X", mirror.get(k, k), s, c) for k, s, c in raw]
    a = score_signals("X", signals, sym)
    b = score_signals("X", mirrored, sym)
    assert a.score == pytest.approx(-b.score, abs=1e-9)
    # and the identity the reasoning text states
    lead = abs(a.long - a.short) + a.neutral
    expected = math.copysign(max(0.0, lead), a.net) if a.net else 0.0
    assert a.score == pytest.approx(expected, abs=1e-12)


# -- decisions ------------------------------------------------------------------------


def test_entry_with_atr_stop_target_trailing_and_reasoning() -> None:
    persona = make_persona()
    signals = [
        sig("BTC", "rsi_oversold", 0.9),
        sig("BTC", "macd_cross_up", 0.6),
        sig("BTC", "ema_cross_down", 0.5),
        sig("BTC", "volume_spike", 0.5),
    ]
    seen: list[str] = []
    d = RuleBrain().decide(batch(signals), portfolio(), persona, seen.append)
    (plan,) = d.plans
    assert plan.action is Action.OPEN_LONG
    assert plan.entry_price is None and plan.size == 0.01 and plan.size_mode == "risk"
    assert plan.stop_loss == pytest.approx(100 - 2 * 2.0)
    assert plan.take_profit == pytest.approx(100 + 3 * 2.0)
    assert plan.trailing == TrailingSpec("atr", 1.0, 0.5, 2.0)
    # conviction min(1, 1.45 / 2) x agreement 1.25 / 2.05
    assert plan.confidence == pytest.approx(round(0.725 * 1.25 / 2.05, 4))
    assert (d.brain, d.model, d.time, d.latency_s) == ("rules", "", T0, 0.0)
    text = d.reasoning
    assert "long 1.65 = rsi_oversold 0.90×1.5 + macd_cross_up 0.60×0.5" in text
    assert "short 0.40 = ema_cross_down 0.50×0.8" in text
    assert "net +1.25" in text and "confirm +0.20" in text and "score +1.45" in text
    assert "open long" in text and "stop 96.0" in text and "target 106.0" in text
    assert seen == [text]
    assert len(text.splitlines()) <= 6


def test_short_entry_mirrors_the_long_one() -> None:
    d = RuleBrain(make_persona()).decide(
        batch([sig("ETH", "rsi_overbought", 1.0)], {"ETH": ctx("ETH", 50.0, 0.5)}), portfolio()
    )
    (plan,) = d.plans
    assert plan.action is Action.OPEN_SHORT
    assert (plan.stop_loss, plan.take_profit) == (pytest.approx(51.0), pytest.approx(48.5))


def test_conflicting_signals_cancel_in_proportion() -> None:
    # long 1.0 x 1.5 = 1.5 against short 1.0 x 1.5 = 1.5: score 0, no trade, both shown
    signals = [sig("BTC", "rsi_oversold", 1.0), sig("BTC", "rsi_overbought", 1.0)]
    d = RuleBrain().decide(batch(signals), portfolio(), make_persona())
    assert plan_for(d, "BTC").action is Action.HOLD
    assert "long 1.50" in d.reasoning and "short 1.50" in d.reasoning
    # a stronger long side still wins by the difference: 1.5 - 0.4 = 1.1 >= 1.0
    signals = [sig("BTC", "rsi_oversold", 1.0), sig("BTC", "macd_cross_down", 0.8)]
    d = RuleBrain().decide(batch(signals), portfolio(), make_persona())
    assert plan_for(d, "BTC").action is Action.OPEN_LONG
    # ... unless the opposition brings it under the threshold: 1.5 - 0.8 = 0.7
    signals = [sig("BTC", "rsi_oversold", 1.0), sig("BTC", "ema_cross_down", 1.0)]
    d = RuleBrain().decide(batch(signals), portfolio(), make_persona())
    assert plan_for(d, "BTC").action is Action.HOLD


def test_batch_conflicts_are_reported_in_the_reasoning() -> None:
    c = Conflict("correlated", ("BTC", "ETH"), "BTC long vs ETH short")
    d = RuleBrain().decide(
        batch([sig("BTC", "rsi_oversold", 1.0)], conflicts=(c,)), portfolio(), make_persona()
    )
    assert "conflict (correlated): BTC long vs ETH short" in d.reasoning


def test_below_threshold_and_disallowed_direction_hold() -> None:
    d = RuleBrain().decide(batch([sig("BTC", "rsi_oversold", 0.6)]), portfolio(), make_persona())
    assert plan_for(d, "BTC").action is Action.HOLD  # 0.9 < 1.0
    long_only = make_persona(allowed_directions=["long"])
    d = RuleBrain().decide(batch([sig("BTC", "rsi_overbought", 1.0)]), portfolio(), long_only)
    plan = plan_for(d, "BTC")
    assert plan.action is Action.HOLD and "long only" in plan.rationale


def test_threshold_is_inclusive() -> None:
    # 1.0 x 1.0 with weight 1.0 against threshold 1.0
    p = make_persona(signal_weights={"rsi_oversold": 1.0})
    d = RuleBrain().decide(batch([sig("BTC", "rsi_oversold", 1.0)]), portfolio(), p)
    assert plan_for(d, "BTC").action is Action.OPEN_LONG


def test_position_slots_go_to_the_strongest_score() -> None:
    p = make_persona(max_open_positions=2)
    signals = [
        sig("AAA", "rsi_oversold", 0.7),  # 1.05
        sig("BBB", "rsi_overbought", 0.9),  # -1.35
        sig("CCC", "rsi_oversold", 0.8),  # 1.20
    ]
    held = (position("ZZZ", Side.LONG, 90.0),)
    d = RuleBrain().decide(batch(signals), portfolio(held), p)
    assert plan_for(d, "BBB").action is Action.OPEN_SHORT
    assert plan_for(d, "AAA").action is Action.HOLD
    assert plan_for(d, "CCC").action is Action.HOLD
    assert "2 position(s) max" in plan_for(d, "CCC").rationale
    assert [p.instrument for p in d.plans] == ["AAA", "BBB", "CCC", "ZZZ"]


def test_pending_order_and_missing_atr_hold() -> None:
    p = make_persona()
    d = RuleBrain().decide(
        batch([sig("BTC", "rsi_oversold", 1.0)]), portfolio(orders=(pending_order("BTC"),)), p
    )
    assert "pending" in plan_for(d, "BTC").rationale
    d = RuleBrain().decide(
        batch([sig("BTC", "rsi_oversold", 1.0)], {"BTC": ctx("BTC", 100.0, math.nan)}),
        portfolio(),
        p,
    )
    assert plan_for(d, "BTC").action is Action.HOLD
    assert "ATR" in plan_for(d, "BTC").rationale


@pytest.mark.parametrize(("last_loss", "action"), [(47, Action.HOLD), (45, Action.OPEN_LONG)])
def test_cooldown_after_a_loss_counts_steps(last_loss: int, action: Action) -> None:
    # cooldown 5: a loss at step 47 blocks step 50 (3 steps later), one at 45 does not
    d = RuleBrain().decide(
        batch([sig("BTC", "rsi_oversold", 1.0)], step=50),
        portfolio(step=50, last_loss_step=last_loss),
        make_persona(),
    )
    assert plan_for(d, "BTC").action is action
    if action is Action.HOLD:
        assert "cooling down 2 more step(s)" in d.reasoning


def actions_for(decision: Any, inst: str) -> list[Action]:
    return [p.action for p in decision.plans if p.instrument == inst]


def test_strong_opposite_score_closes_and_flips_when_allowed() -> None:
    held = (position("BTC", Side.LONG, 95.0, 110.0),)
    b = batch([sig("BTC", "rsi_overbought", 0.8)])  # -1.20 against a long, threshold 1
    d = RuleBrain().decide(b, portfolio(held), make_persona())
    close, flip = [p for p in d.plans if p.instrument == "BTC"]
    assert close.action is Action.CLOSE and "-1.20" in close.rationale
    assert flip.action is Action.OPEN_SHORT
    assert (flip.stop_loss, flip.take_profit) == (pytest.approx(104.0), pytest.approx(94.0))
    assert "→ close long" in d.reasoning and "open short" in d.reasoning
    # long only, cooling down, or no free slot once closed: close only
    for persona, pf in (
        (make_persona(allowed_directions=["long"]), portfolio(held)),
        (make_persona(), portfolio(held, last_loss_step=49)),
    ):
        assert actions_for(RuleBrain().decide(b, pf, persona), "BTC") == [Action.CLOSE]
    # the freed slot goes to the strongest score: ETH (-1.5) beats the BTC flip (-1.2)
    two = batch([sig("BTC", "rsi_overbought", 0.8), sig("ETH", "rsi_overbought", 1.0)])
    d = RuleBrain().decide(two, portfolio(held), make_persona(max_open_positions=1))
    assert actions_for(d, "BTC") == [Action.CLOSE]
    assert actions_for(d, "ETH") == [Action.OPEN_SHORT]


def test_open_position_stop_tightened_on_a_half_strong_opposite_score() -> None:
    # short score 0.4 x 1.5 = 0.6 >= 0.5: stop to 100 - 0.5 x 2 x 2 = 98 (tighter than 95)
    held = (position("BTC", Side.LONG, 95.0, 110.0),)
    d = RuleBrain().decide(
        batch([sig("BTC", "rsi_overbought", 0.4)]), portfolio(held), make_persona()
    )
    plan = plan_for(d, "BTC")
    assert plan.action is Action.ADJUST
    assert plan.stop_loss == pytest.approx(98.0) and plan.take_profit == 110.0
    # never loosens: a trail already at 99 wins
    held = (position("BTC", Side.LONG, 95.0, 110.0, trail_stop=99.0),)
    d = RuleBrain().decide(
        batch([sig("BTC", "rsi_overbought", 0.4)]), portfolio(held), make_persona()
    )
    assert plan_for(d, "BTC").action is Action.HOLD


def test_short_position_review_and_same_direction_score_keeps() -> None:
    held = (position("BTC", Side.SHORT, 105.0, 90.0),)
    d = RuleBrain().decide(
        batch([sig("BTC", "rsi_oversold", 1.0)]), portfolio(held), make_persona()
    )
    assert actions_for(d, "BTC") == [Action.CLOSE, Action.OPEN_LONG]
    d = RuleBrain().decide(
        batch([sig("BTC", "rsi_overbought", 1.0)]), portfolio(held), make_persona()
    )
    plan = plan_for(d, "BTC")
    assert plan.action is Action.HOLD and "keep short" in plan.rationale


def test_position_review_without_signals_holds() -> None:
    held = (position("BTC", Side.LONG, 95.0),)
    d = RuleBrain().decide(batch([], {"BTC": ctx("BTC")}), portfolio(held), make_persona())
    assert [p.action for p in d.plans] == [Action.HOLD]


def test_decisions_are_deterministic_and_match_the_protocol() -> None:
    signals = [sig("BTC", "rsi_oversold", 0.9), sig("ETH", "ema_cross_down", 1.0, count=2)]
    for persona in builtin_personas():
        brain = RuleBrain(persona)
        assert isinstance(brain, Brain)
        a = brain.decide(batch(signals), portfolio())
        b = brain.decide(batch(signals), portfolio())
        assert a == b and a.reasoning.startswith(persona.name)


def test_builtin_personas_behave_differently_on_the_same_batch() -> None:
    signals = [
        sig("BTC", "bb_breakout_up", 0.9),
        sig("BTC", "volume_spike", 0.8),
        sig("ETH", "rsi_overbought", 0.9),
        sig("ETH", "ema_cross_down", 0.5),
    ]
    actions = {
        p.name: tuple(
            plan.action for plan in RuleBrain(p).decide(batch(signals), portfolio()).plans
        )
        for p in builtin_personas()
    }
    hold, long, short = Action.HOLD, Action.OPEN_LONG, Action.OPEN_SHORT
    assert actions == {
        # breakout 0.9x1.2 + volume 0.8x0.6 = 1.56 >= 1; ETH: ema 0.5x1.2 = 0.6 < 1
        "momentum": (long, hold),
        # breakout 0.54 + volume 0.32 = 0.86 >= 0.5; ETH 0.27 + 0.4 = 0.67 >= 0.5
        "scalper": (long, short),
        # fades the breakout, damped by the volume spike: 0.54 - 0.24 = 0.30 < 0.9;
        # ETH overbought 1.08 + ema 0.1 = 1.18 >= 0.9
        "mean-reversion": (hold, short),
        # long only, and no single signal is enough
        "conservative": (hold, hold),
    }


def test_fmt_price_keeps_six_significant_digits() -> None:
    assert fmt_price(42000.0) == "42000.0"
    assert fmt_price(1.5) == "1.50000"
    assert fmt_price(0.00001234) == "0.0000123400"


# -- the decision's own scoring equals score_signals ----------------------------------

odd_signal_st = st.tuples(
    st.sampled_from(["BTC", "ETH"]),
    st.sampled_from(SIGNAL_KINDS),
    st.one_of(st.floats(-0.5, 1.5), st.sampled_from([math.nan, math.inf, -0.0, 0.0, 1.0])),
    st.integers(-1, 4),
)


@settings(max_examples=100, deadline=None)
@given(weights_st, st.lists(odd_signal_st, max_size=8), st.floats(0.05, 2.0))
def test_reasoning_and_confidence_follow_score_signals(
    weights: dict[str, float], raw: list[tuple[str, str, float, int]], threshold: float
) -> None:
    # Out-of-range strengths and counts included: the brain clamps them as score_signals does.
    persona = make_persona(signal_weights=weights, entry_threshold=threshold, trailing=None)
    signals = [
        Signal(inst, T0, kind, DIRECTION_OF[kind], strength, 100.0, {}, count)
        for inst, kind, strength, count in raw
    ]
    d = RuleBrain(persona).decide(batch(signals), portfolio())
    lines = d.reasoning.splitlines()
    instruments = sorted({s.instrument for s in signals})
    explained = [line for line in lines[1:] if not line.startswith("  ")]
    scores = [
        score_signals(i, [s for s in signals if s.instrument == i], weights) for i in instruments
    ]
    assert explained == [sc.explain() for sc in scores]
    for sc in scores:
        plan = plan_for(d, sc.instrument)
        if sc.score == 0.0 or abs(sc.score) < threshold:
            assert plan.action is Action.HOLD and plan.confidence == 0.0
        else:
            conviction = min(1.0, abs(sc.score) / (2 * threshold))
            assert plan.confidence == round(conviction * sc.agreement, 4)


# -- market context is read only where a plan needs a price ----------------------------


class CountingContexts(Mapping[str, InstrumentContext]):
    """A batch's contexts that remember which instruments were read (built lazily upstream)."""

    def __init__(self, names: list[str]) -> None:
        self._data = {n: ctx(n) for n in names}
        self.read: list[str] = []

    def __getitem__(self, name: str) -> InstrumentContext:
        self.read.append(name)
        return self._data[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


EIGHT = ["ADA", "BTC", "DOT", "ETH", "LTC", "SOL", "XLM", "XRP"]


def test_holds_below_threshold_read_no_context() -> None:
    contexts = CountingContexts(EIGHT)
    signals = [sig("BTC", "macd_cross_up", 0.5), sig("ETH", "ema_cross_down", 0.5)]
    d = RuleBrain().decide(batch(signals, contexts), portfolio(), make_persona())
    assert [p.action for p in d.plans] == [Action.HOLD, Action.HOLD]
    assert contexts.read == []


def test_an_entry_reads_only_its_own_context() -> None:
    contexts = CountingContexts(EIGHT)
    signals = [sig("BTC", "rsi_oversold", 1.0), sig("ETH", "ema_cross_down", 0.5)]
    d = RuleBrain().decide(batch(signals, contexts), portfolio(), make_persona())
    assert [p.action for p in d.plans] == [Action.OPEN_LONG, Action.HOLD]
    assert plan_for(d, "BTC").stop_loss == 100.0 - 2.0 * 2.0
    assert set(contexts.read) == {"BTC"}


def test_a_review_reads_context_only_to_tighten_a_stop() -> None:
    held = (position("BTC", Side.LONG, 90.0), position("ETH", Side.LONG, 90.0))
    contexts = CountingContexts(EIGHT)
    # BTC faces a half-strong opposite score (0.6 x 1.5 = 0.9 >= 0.5): tighten to 98;
    # ETH's score agrees with the position: keep, no price needed
    signals = [sig("BTC", "rsi_overbought", 0.6), sig("ETH", "ema_cross_up", 0.5)]
    d = RuleBrain().decide(batch(signals, contexts), portfolio(held), make_persona())
    assert plan_for(d, "BTC").action is Action.ADJUST
    assert plan_for(d, "BTC").stop_loss == 100.0 - 0.5 * 2.0 * 2.0
    assert plan_for(d, "ETH").action is Action.HOLD
    assert set(contexts.read) == {"BTC"}


# -- decide_unexplained: decide's plans without the reasoning ------------------------


class ReadContexts(CountingContexts):
    """CountingContexts with prices and ATRs of the test's choosing (0/NaN ATR: no stop)."""

    def __init__(self, atrs: Mapping[str, float]) -> None:
        super().__init__(list(atrs))
        self._data = {n: ctx(n, 100.0 + i, atr) for i, (n, atr) in enumerate(atrs.items())}


book_st = st.tuples(
    st.lists(  # positions: instrument, side, stop (None or below/above 100), trail stop
        st.tuples(
            st.sampled_from(["BTC", "ETH", "SOL"]),
            st.sampled_from([Side.LONG, Side.SHORT]),
            st.sampled_from([None, 90.0, 98.0, 99.0, 101.0, 102.0, 110.0]),  # (98: the
            st.sampled_from([None, 97.0, 103.0]),  # tightened stop of a long BTC: equal)
        ),
        max_size=3,
        unique_by=lambda p: p[0],
    ),
    st.lists(st.sampled_from(["BTC", "ETH", "SOL"]), max_size=2, unique=True),  # pending
    st.sampled_from([None, 40, 45, 46, 49]),  # last loss step (cooldown 5, step 50)
)


# weights and strengths that hit the thresholds and half thresholds exactly, too
round_weights_st = st.dictionaries(
    st.sampled_from(SIGNAL_KINDS),
    st.one_of(st.floats(-3, 3, allow_nan=False), st.sampled_from([0.5, 1.0, -0.5, 0.0])),
    max_size=12,
)
round_signal_st = st.tuples(
    st.sampled_from(["BTC", "ETH", "SOL"]),
    st.sampled_from(SIGNAL_KINDS),
    st.one_of(st.floats(-0.5, 1.5), st.sampled_from([math.nan, math.inf, -0.0, 0.0, 0.5, 1.0])),
    st.integers(-1, 4),
)


@settings(max_examples=400, deadline=None)
@example(  # a score against a long at exactly half the threshold: its stop is tightened
    {"rsi_overbought": 1.0},
    [("BTC", "rsi_overbought", 0.5, 1)],
    1.0,
    ["long"],
    1,
    ([("BTC", Side.LONG, 90.0, None)], [], None),
    2.0,
)
@example(  # ... to exactly its stop: kept
    {"rsi_overbought": 1.0},
    [("BTC", "rsi_overbought", 0.5, 1)],
    1.0,
    ["long"],
    1,
    ([("BTC", Side.LONG, 98.0, None)], [], None),
    2.0,
)
@example(  # one slot: the stronger score takes it, whatever the names' order
    {"rsi_oversold": 1.0},
    [("BTC", "rsi_oversold", 0.6, 2), ("ETH", "rsi_oversold", 0.7, 2)],
    1.0,
    ["long"],
    1,
    ([], [], None),
    2.0,
)
@given(
    round_weights_st,
    st.lists(round_signal_st, max_size=8),
    st.sampled_from([0.0, 0.3, 1.0, 1.7]),
    st.sampled_from([["long", "short"], ["long"], ["short"]]),
    st.integers(1, 3),
    book_st,
    st.sampled_from([2.0, 0.0, math.nan]),
)
def test_unexplained_decisions_are_the_decisions_without_reasoning(
    weights: dict[str, float],
    raw: list[tuple[str, str, float, int]],
    threshold: float,
    directions: list[str],
    max_open: int,
    book: tuple[list[tuple[str, Side, float | None, float | None]], list[str], int | None],
    eth_atr: float,
) -> None:
    """``decide_unexplained`` (its own pass over the rules) makes ``decide``'s plans,
    rationales and confidences, reading the same contexts in the same order: odd
    strengths and counts, a threshold of 0, closes, flips, tightened stops,
    pending orders, cooldowns, full slots and missing ATRs."""
    persona = make_persona(
        signal_weights=weights,
        entry_threshold=threshold,
        allowed_directions=directions,
        max_open_positions=max_open,
    )
    signals = [
        Signal(inst, T0, kind, DIRECTION_OF[kind], strength, 100.0, {}, count)
        for inst, kind, strength, count in raw
    ]
    held, pending, loss = book
    positions = tuple(
        position(i, side, stop, trail_stop=trail, trailing=TrailingSpec("atr", 1.0))
        for i, side, stop, trail in held
    )
    state = portfolio(positions, tuple(pending_order(i) for i in pending), 50, loss)
    brain = RuleBrain(persona)
    eager_read = ReadContexts({"BTC": 2.0, "ETH": eth_atr, "SOL": 1.0})
    eager = brain.decide(batch(signals, eager_read), state)
    lazy_read = ReadContexts({"BTC": 2.0, "ETH": eth_atr, "SOL": 1.0})
    unexplained = brain.decide_unexplained(batch(signals, lazy_read), state)
    assert unexplained == dataclasses.replace(eager, reasoning="")
    assert [p.rationale for p in unexplained.plans] == [p.rationale for p in eager.plans]
    assert lazy_read.read == eager_read.read
