"""RiskGuard: each kind of bad plan is corrected or turned into hold, with the reason."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.brain.persona import load_persona
from engine.brain.rules import RuleBrain
from engine.risk import RiskGuard, entry_problem
from engine.types import Action, Decision, Side, TradePlan, TrailingSpec
from tests.test_rules import (
    DIRECTION_OF,
    T0,
    batch,
    ctx,
    make_persona,
    pending_order,
    portfolio,
    position,
    sig,
)

INSTRUMENTS = ("BTC", "ETH")
CONTEXT = {"BTC": ctx("BTC", 100.0, 2.0), "ETH": ctx("ETH", 0.05, 0.001)}


def guard(**overrides: object) -> RiskGuard:
    return RiskGuard(INSTRUMENTS, make_persona(**overrides))


def decide(*plans: TradePlan, corrections: tuple[str, ...] = ()) -> Decision:
    return Decision(T0, "test", "m", plans, "because", corrections=corrections)


def good_long(**changes: object) -> TradePlan:
    plan = TradePlan(
        "BTC",
        Action.OPEN_LONG,
        entry_price=None,
        size=0.01,
        stop_loss=96.0,
        take_profit=106.0,
        confidence=0.7,
    )
    return replace(plan, **changes)


def check(
    plan: TradePlan, pf=None, g: RiskGuard | None = None
) -> tuple[TradePlan, tuple[str, ...]]:
    out = (g or guard()).validate(decide(plan), pf or portfolio(), CONTEXT)
    (checked,) = out.plans
    return checked, out.corrections


def test_a_valid_plan_passes_untouched() -> None:
    d = decide(good_long(), TradePlan("ETH", Action.HOLD))
    assert guard().validate(d, portfolio(), CONTEXT) is d


def test_an_open_left_as_it_came_is_the_same_plan_and_a_repaired_one_has_floats() -> None:
    """A valid open keeps its plan object (nothing to replace); one with ints or a
    repair is rebuilt with float levels, as before (its numbers are the plan's)."""
    plan = good_long()
    eth = TradePlan("ETH", Action.OPEN_SHORT, size=0.01, stop_loss=0.06, confidence=2.0)
    out = guard(max_open_positions=2).validate(decide(plan, eth), portfolio(), CONTEXT)
    assert out.plans[0] is plan and out.plans[1] == replace(eth, confidence=1.0)
    ints = good_long(stop_loss=96, take_profit=106, confidence=1.5)
    checked, notes = check(ints)
    assert notes == ("BTC open_long: confidence 1.5 outside 0..1; clamped to 1",)
    assert checked == replace(ints, confidence=1.0)
    assert [type(x) for x in (checked.size, checked.stop_loss, checked.take_profit)] == [float] * 3


def test_validate_accepts_a_batch_as_context() -> None:
    d = decide(good_long(stop_loss=101.0))
    out = guard().validate(d, portfolio(), batch([], CONTEXT))
    assert out.plans[0].stop_loss == pytest.approx(96.0)


def test_unknown_instrument_becomes_hold() -> None:
    plan, notes = check(good_long(instrument="DOGE"))
    assert plan.action is Action.HOLD and plan.instrument == "DOGE"
    assert notes == (
        "DOGE open_long: unknown instrument 'DOGE' (known: BTC, ETH); turned into hold",
    )


def test_unknown_action_becomes_hold() -> None:
    plan, notes = check(good_long(action="buy_everything"))
    assert plan.action is Action.HOLD and "unknown action 'buy_everything'" in notes[0]


@pytest.mark.parametrize(
    ("stop", "problem"),
    [
        (101.0, "stop 101.000 on the wrong side of entry 100.000"),
        (100.0, "stop 100.000 on the wrong side of entry 100.000"),
        (None, "missing stop"),
        (math.nan, "stop nan is not a valid price"),
        (-5.0, "stop -5.0 is not a valid price"),
        (math.inf, "stop inf is not a valid price"),
        (1.0, "stop 1.00000 absurdly far from entry 100.000"),
    ],
)
def test_bad_stop_is_recomputed_from_atr(stop: float | None, problem: str) -> None:
    plan, notes = check(good_long(stop_loss=stop))
    assert plan.action is Action.OPEN_LONG
    assert plan.stop_loss == pytest.approx(96.0)  # 100 - 2 ATR x 2.0
    assert notes == (f"BTC open_long: {problem}; recomputed as 96.0000 (2 ATR)",)


def test_short_stop_on_the_wrong_side_uses_the_limit_entry_as_reference() -> None:
    plan, notes = check(
        good_long(action=Action.OPEN_SHORT, entry_price=102.0, stop_loss=99.0, take_profit=None)
    )
    assert plan.action is Action.OPEN_SHORT
    assert plan.stop_loss == pytest.approx(106.0)  # 102 + 2 x 2.0
    assert "stop 99.0000 on the wrong side of entry 102.000" in notes[0]


def test_stop_without_atr_to_recompute_becomes_hold() -> None:
    out = guard().validate(
        decide(good_long(stop_loss=120.0)), portfolio(), {"BTC": ctx("BTC", 100.0, math.nan)}
    )
    assert out.plans[0].action is Action.HOLD
    assert out.corrections == (
        "BTC open_long: stop 120.000 on the wrong side of entry 100.000 and no ATR to "
        "recompute it; turned into hold",
    )


@pytest.mark.parametrize(
    ("target", "expected", "problem"),
    [
        (95.0, 106.0, "target 95.0000 on the wrong side of entry 100.000; recomputed as 106.000"),
        (math.nan, 106.0, "target nan is not a valid price; recomputed as 106.000"),
        (1e9, 106.0, "target 1000000000.0 absurdly far from entry 100.000; recomputed as 106.000"),
    ],
)
def test_bad_target_is_recomputed(target: float, expected: float, problem: str) -> None:
    plan, notes = check(good_long(take_profit=target))
    assert plan.take_profit == pytest.approx(expected)
    assert notes == (f"BTC open_long: {problem} (3 ATR)",)


def test_no_target_is_allowed() -> None:
    plan, notes = check(good_long(take_profit=None))
    assert plan.take_profit is None and notes == ()


@pytest.mark.parametrize(
    ("size", "mode", "expected", "note"),
    [
        (0.05, "risk", 0.01, "size 0.05 over the persona's risk per trade 0.01; clamped"),
        (3.0, "equity", 0.5, "size 3 over the persona's max position fraction 0.5; clamped"),
        (
            math.nan,
            "risk",
            0.01,
            "size nan is not a positive number; set to the persona's risk per trade 0.01",
        ),
        (
            -1.0,
            "risk",
            0.01,
            "size -1.0 is not a positive number; set to the persona's risk per trade 0.01",
        ),
        (0.2, "lots", 0.01, "size mode 'lots' unknown; using risk 0.01"),
    ],
)
def test_size_is_clamped_or_defaulted(size: float, mode: str, expected: float, note: str) -> None:
    plan, notes = check(good_long(size=size, size_mode=mode))
    assert plan.action is Action.OPEN_LONG and plan.size == pytest.approx(expected)
    assert plan.size_mode == ("equity" if mode == "equity" else "risk")
    assert notes == (f"BTC open_long: {note}",)


def test_smaller_size_than_the_cap_is_kept() -> None:
    plan, notes = check(good_long(size=0.004))
    assert plan.size == 0.004 and notes == ()


def test_disallowed_direction_becomes_hold() -> None:
    plan, notes = check(
        good_long(action=Action.OPEN_SHORT, stop_loss=104.0, take_profit=94.0),
        g=guard(allowed_directions=["long"]),
    )
    assert plan.action is Action.HOLD
    assert notes == (
        "BTC open_short: short is not allowed for persona test (long only); turned into hold",
    )


def test_opening_beyond_max_positions_becomes_hold() -> None:
    g = guard(max_open_positions=2)
    held = portfolio((position("ETH", Side.LONG, 0.04),), (pending_order("XRP"),))
    plan, notes = check(good_long(), pf=held, g=g)
    assert plan.action is Action.HOLD
    assert notes == (
        "BTC open_long: would exceed the persona's 2 open position(s); turned into hold",
    )
    # within one decision, the first open takes the last slot
    g = guard(max_open_positions=1)
    eth = TradePlan("ETH", Action.OPEN_LONG, size=0.01, stop_loss=0.048)
    out = g.validate(decide(good_long(), eth), portfolio(), CONTEXT)
    assert [p.action for p in out.plans] == [Action.OPEN_LONG, Action.HOLD]


def test_open_on_an_instrument_with_a_position_or_pending_order_becomes_hold() -> None:
    plan, notes = check(good_long(), pf=portfolio((position("BTC", Side.SHORT, 105.0),)))
    assert plan.action is Action.HOLD and "a short position is already open" in notes[0]
    plan, notes = check(good_long(), pf=portfolio(orders=(pending_order("BTC"),)))
    assert plan.action is Action.HOLD and "an entry order is already pending" in notes[0]


def test_close_then_open_is_a_flip_and_frees_the_slot() -> None:
    held = portfolio((position("BTC", Side.LONG, 95.0),))
    short = good_long(action=Action.OPEN_SHORT, stop_loss=104.0, take_profit=94.0)
    d = decide(TradePlan("BTC", Action.CLOSE), short)
    assert guard(max_open_positions=1).validate(d, held, CONTEXT) is d
    # an open before the close meets the position still open; a second close is refused
    out = guard().validate(decide(short, TradePlan("BTC", Action.CLOSE)), held, CONTEXT)
    assert [p.action for p in out.plans] == [Action.HOLD, Action.CLOSE]
    assert "a long position is already open" in out.corrections[0]
    d = decide(TradePlan("BTC", Action.CLOSE), TradePlan("BTC", Action.CLOSE))
    out = guard().validate(d, held, CONTEXT)
    assert [p.action for p in out.plans] == [Action.CLOSE, Action.HOLD]
    assert "a second plan for the same instrument" in out.corrections[0]


def test_a_close_frees_its_slot_for_another_instrument_wherever_it_is_listed() -> None:
    held = portfolio((position("ETH", Side.SHORT, 0.055, price=0.05),))
    close_eth = TradePlan("ETH", Action.CLOSE)
    for d in (decide(close_eth, good_long()), decide(good_long(), close_eth)):
        assert guard(max_open_positions=1).validate(d, held, CONTEXT) is d
    # without the close the single slot is taken
    out = guard(max_open_positions=1).validate(decide(good_long()), held, CONTEXT)
    assert out.plans[0].action is Action.HOLD
    assert "would exceed the persona's 1 open position(s)" in out.corrections[0]


def test_two_plans_for_one_instrument_keep_only_the_first() -> None:
    out = guard().validate(decide(good_long(), good_long(size=0.005)), portfolio(), CONTEXT)
    assert [p.action for p in out.plans] == [Action.OPEN_LONG, Action.HOLD]
    assert "a second plan for the same instrument" in out.corrections[0]


def test_cooldown_after_a_loss_blocks_opening() -> None:
    plan, notes = check(good_long(), pf=portfolio(step=50, last_loss_step=48))
    assert plan.action is Action.HOLD and "cooling down after a loss (3 more step(s))" in notes[0]
    plan, notes = check(good_long(), pf=portfolio(step=50, last_loss_step=45))
    assert plan.action is Action.OPEN_LONG


def test_entry_far_from_the_market_becomes_hold_near_one_is_kept() -> None:
    # limit = max(5% x 100, 10 ATR x 2.0) = 20
    plan, notes = check(good_long(entry_price=79.0, stop_loss=75.0, take_profit=90.0))
    assert plan.action is Action.HOLD
    assert notes == (
        "BTC open_long: entry 79.0000 is too far from the market 100.000 (more than 20.0000); "
        "turned into hold",
    )
    plan, notes = check(good_long(entry_price=81.0, stop_loss=77.0, take_profit=90.0))
    assert plan.action is Action.OPEN_LONG and plan.entry_price == 81.0 and notes == ()


def test_invalid_entry_price_becomes_a_market_order() -> None:
    plan, notes = check(good_long(entry_price=math.inf))
    assert plan.entry_price is None
    assert notes == ("BTC open_long: entry inf is not a valid price; placed at market instead",)


def test_no_market_price_becomes_hold() -> None:
    out = guard().validate(decide(good_long()), portfolio(), {})
    assert out.plans[0].action is Action.HOLD
    assert "no market price" in out.corrections[0]


def test_small_prices_are_checked_relative_to_the_price() -> None:
    # ETH at 0.05 with ATR 0.001: a stop at 0.0485 is fine, one at 0.051 is recomputed
    ok = TradePlan("ETH", Action.OPEN_LONG, size=0.01, stop_loss=0.0485, take_profit=0.053)
    assert guard().validate(decide(ok), portfolio(), CONTEXT).corrections == ()
    bad = replace(ok, stop_loss=0.051)
    out = guard().validate(decide(bad), portfolio(), CONTEXT)
    assert out.plans[0].stop_loss == pytest.approx(0.048)
    assert out.corrections == (
        "ETH open_long: stop 0.0510000 on the wrong side of entry 0.0500000; "
        "recomputed as 0.0480000 (2 ATR)",
    )


def test_confidence_and_expiry_are_sanitised() -> None:
    plan, notes = check(good_long(confidence=7.0, expiry_candles=-3))
    assert plan.confidence == 1.0 and plan.expiry_candles is None
    assert notes == (
        "BTC open_long: confidence 7 outside 0..1; clamped to 1",
        "BTC open_long: expiry -3 is not a positive whole number of candles; removed",
    )


def test_trailing_spec_is_repaired() -> None:
    # ATR trailing without its ATR gets the context's ATR
    plan, notes = check(good_long(trailing=TrailingSpec("atr", 1.0, 0.5)))
    assert plan.trailing == TrailingSpec("atr", 1.0, 0.5, 2.0) and notes == ()
    # a nonsense mode or distance falls back to the persona's trailing
    plan, notes = check(good_long(trailing=TrailingSpec("moon", 1.0)))
    assert plan.trailing == TrailingSpec("atr", 1.0, 0.5, 2.0)
    assert notes == ("BTC open_long: trailing mode 'moon' unknown; using the persona's trailing",)
    plan, notes = check(good_long(trailing=TrailingSpec("percent", math.nan)))
    assert plan.trailing == TrailingSpec("atr", 1.0, 0.5, 2.0)
    plan, notes = check(good_long(trailing=TrailingSpec("percent", 0.9)))
    assert plan.trailing == TrailingSpec("atr", 1.0, 0.5, 2.0)
    assert notes == (
        "BTC open_long: trailing distance 0.9 of price is absurd; using the persona's trailing",
    )
    # without a persona trailing, a broken spec is dropped
    plan, notes = check(good_long(trailing=TrailingSpec("atr", -1.0)), g=guard(trailing=None))
    assert plan.trailing is None
    assert notes == ("BTC open_long: trailing distance -1.0 invalid; using no trailing",)
    plan, notes = check(good_long(trailing=TrailingSpec("percent", 0.01, -1.0)))
    assert plan.trailing == TrailingSpec("percent", 0.01, 0.0)
    assert notes == ("BTC open_long: trailing activation -1.0 invalid; set to 0",)


def test_close_without_a_position_becomes_hold() -> None:
    plan, notes = check(TradePlan("BTC", Action.CLOSE))
    assert plan.action is Action.HOLD
    assert notes == ("BTC close: no open position to close; turned into hold",)
    plan, notes = check(
        TradePlan("BTC", Action.CLOSE), pf=portfolio((position("BTC", Side.LONG, 95.0),))
    )
    assert plan.action is Action.CLOSE and notes == ()


def test_adjust_is_checked_against_the_market_and_fills_unchanged_values() -> None:
    held = portfolio((position("BTC", Side.LONG, 95.0, 110.0),))
    plan, notes = check(TradePlan("BTC", Action.ADJUST, stop_loss=98.0), pf=held)
    assert (plan.action, plan.stop_loss, plan.take_profit, notes) == (
        Action.ADJUST,
        98.0,
        110.0,
        (),
    )
    # a stop above the price would exit at once: the current stop is kept; the valid target stays
    plan, notes = check(
        TradePlan("BTC", Action.ADJUST, stop_loss=101.0, take_profit=112.0), pf=held
    )
    assert (plan.action, plan.stop_loss, plan.take_profit) == (Action.ADJUST, 95.0, 112.0)
    assert notes == (
        "BTC adjust: stop 101.000 on the wrong side of the price 100.000; kept 95.0000",
    )
    # nothing valid left: hold
    plan, notes = check(TradePlan("BTC", Action.ADJUST, take_profit=-1.0), pf=held)
    assert plan.action is Action.HOLD
    assert notes == (
        "BTC adjust: target -1.0 is not a valid price; kept 110.000",
        "BTC adjust: nothing valid left to adjust; turned into hold",
    )
    plan, notes = check(TradePlan("BTC", Action.ADJUST, stop_loss=98.0))
    assert plan.action is Action.HOLD and "no open position to adjust" in notes[0]


def test_short_adjust_wrong_side_target() -> None:
    held = portfolio((position("BTC", Side.SHORT, 105.0, 90.0),))
    plan, notes = check(
        TradePlan("BTC", Action.ADJUST, stop_loss=103.0, take_profit=101.0), pf=held
    )
    assert (plan.stop_loss, plan.take_profit) == (103.0, 90.0)
    assert "target 101.000 on the wrong side of the price 100.000; kept 90.0000" in notes[0]


def test_existing_corrections_and_errors_are_kept() -> None:
    d = decide(good_long(size=1.0), corrections=("schema: repaired JSON",))
    out = guard().validate(d, portfolio(), CONTEXT)
    assert out.corrections[0] == "schema: repaired JSON" and len(out.corrections) == 2
    assert (out.reasoning, out.brain, out.model) == (d.reasoning, d.brain, d.model)


def test_rule_brain_plans_pass_the_guard_unchanged() -> None:
    persona = make_persona()
    signals = [sig("BTC", "rsi_oversold", 1.0), sig("ETH", "rsi_overbought", 1.0)]
    b = batch(signals, CONTEXT)
    d = RuleBrain(persona).decide(b, portfolio())
    assert [p.action for p in d.plans] == [Action.OPEN_LONG, Action.OPEN_SHORT]
    assert RiskGuard(INSTRUMENTS, persona).validate(d, portfolio(), b) is d


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.none(), st.integers(-10, 10**6)
)


@settings(max_examples=100, deadline=None)
@given(
    action=st.sampled_from([*Action, "junk"]),
    instrument=st.sampled_from(["BTC", "ETH", "DOGE"]),
    entry=finite_or_not,
    size=finite_or_not,
    stop=finite_or_not,
    target=finite_or_not,
    confidence=st.floats(allow_nan=True, allow_infinity=True),
    has_position=st.booleans(),
)
def test_whatever_the_brain_says_the_guard_returns_a_sane_plan(
    action, instrument, entry, size, stop, target, confidence, has_position
) -> None:
    plan = TradePlan(
        instrument,
        action,
        entry_price=entry,
        size=size if size is not None else 0.0,
        stop_loss=stop,
        take_profit=target,
        confidence=confidence,
    )
    held = (position("BTC", Side.LONG, 95.0, 110.0),) if has_position else ()
    out = guard().validate(decide(plan), portfolio(held), CONTEXT)
    (p,) = out.plans
    assert 0.0 <= p.confidence <= 1.0
    if p.action in (Action.OPEN_LONG, Action.OPEN_SHORT):
        price = CONTEXT[p.instrument].price
        ref = p.entry_price if p.entry_price is not None else price
        sign = 1 if p.action is Action.OPEN_LONG else -1
        assert p.instrument in INSTRUMENTS
        assert 0 < p.size <= 0.01 and math.isfinite(p.stop_loss)
        assert sign * (ref - p.stop_loss) > 0
        assert p.take_profit is None or sign * (p.take_profit - ref) > 0
        assert abs(ref - price) <= 20.0 + 1e-9 if p.instrument == "BTC" else True
        assert entry_problem(p, 0.5) is None  # what the guard passes, the broker takes
    if p.action is Action.ADJUST and held:
        # None on an adjust means "keep the current value": spelling it out is no change
        plan = replace(
            plan,
            stop_loss=held[0].stop_loss if plan.stop_loss is None else plan.stop_loss,
            take_profit=held[0].take_profit if plan.take_profit is None else plan.take_profit,
        )
    if p != plan:
        assert out.corrections, "every change is recorded"


kinds_st = st.sampled_from(sorted(DIRECTION_OF))


@settings(max_examples=60, deadline=None)
@given(
    persona_name=st.sampled_from(["scalper", "conservative", "momentum", "mean_reversion"]),
    raw=st.lists(
        st.tuples(st.sampled_from(INSTRUMENTS), kinds_st, st.floats(0, 1), st.integers(1, 3)),
        max_size=10,
    ),
    held_side=st.sampled_from([None, Side.LONG, Side.SHORT]),
    last_loss=st.one_of(st.none(), st.integers(0, 60)),
)
def test_builtin_persona_decisions_need_no_correction(persona_name, raw, held_side, last_loss):
    persona = load_persona(persona_name)
    signals = [sig(i, k, s, c) for i, k, s, c in raw]
    held = ()
    if held_side is not None:
        stop = 0.045 if held_side is Side.LONG else 0.055
        held = (position("ETH", held_side, stop, price=0.05),)
    pf = portfolio(held, last_loss_step=last_loss)
    b = batch(signals, CONTEXT)
    d = RuleBrain(persona).decide(b, pf)
    assert RiskGuard(INSTRUMENTS, persona).validate(d, pf, b) is d
