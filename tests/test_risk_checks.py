"""The shared plan checks of engine/risk.py, used by RiskGuard, the broker and the LLM
answer check: exact cases, and agreement with the comparisons they replaced."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.risk import (
    RiskGuard,
    entry_problem,
    is_activation,
    is_candle_count,
    is_number,
    is_price,
    stop_wrong_side,
    target_wrong_side,
    too_far,
    tradeable,
    trailing_problem,
)
from engine.types import (
    Action,
    Decision,
    InstrumentContext,
    PortfolioState,
    SizeMode,
    TradePlan,
    TrailingMode,
    TrailingSpec,
)
from tests.test_rules import make_persona


@pytest.mark.parametrize(
    ("value", "number", "price"),
    [
        (1.5, True, True),
        (np.float64(2.0), True, True),
        (3, True, True),
        (0, True, False),
        (0.0, True, False),
        (-1e-12, True, False),
        (5e-324, True, True),  # the smallest and the largest finite floats
        (1.7976931348623157e308, True, True),
        (True, False, False),  # a bool is not a number, whatever int says
        (False, False, False),
        (None, False, False),
        ("1", False, False),
        (math.nan, False, False),
        (math.inf, False, False),
        (-math.inf, False, False),
    ],
)
def test_numbers_and_prices(value, number, price) -> None:
    assert is_number(value) == number
    assert is_price(value) == price


def test_candle_counts_and_activations() -> None:
    assert [is_candle_count(x) for x in (1, 7, 0, -1, True, 2.0, None)] == [
        True, True, False, False, False, False, False,
    ]  # fmt: skip
    assert [is_activation(x) for x in (0.0, 0, 0.5, -0.1, math.nan, True)] == [
        True, True, True, False, False, False,
    ]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    long=st.booleans(),
    ref=st.floats(1e-8, 1e9),
    level=st.floats(1e-8, 1e9),
    frac=st.floats(0.0, 2.0),
)
def test_side_and_distance_checks_match_plain_comparisons(long, ref, level, frac) -> None:
    sign = 1.0 if long else -1.0
    assert stop_wrong_side(sign, ref, level) == (level >= ref if long else level <= ref)
    assert target_wrong_side(sign, ref, level) == (level <= ref if long else level >= ref)
    assert too_far(ref, level, frac) == (abs(ref - level) > frac * ref)


def test_tradeable_needs_a_price_and_an_atr() -> None:
    def ctx(price: float, atr: float) -> InstrumentContext:
        return InstrumentContext("BTC", price, atr, 0.0, 10)

    assert tradeable(ctx(100.0, 2.0))
    assert not tradeable(None)
    assert not tradeable(ctx(100.0, math.nan))
    assert not tradeable(ctx(100.0, 0.0))
    assert not tradeable(ctx(-1.0, 2.0))


def long_limit(**changes: object) -> TradePlan:
    plan = TradePlan("BTC", Action.OPEN_LONG, 100.0, 0.01, SizeMode.RISK, 95.0, 110.0)
    return replace(plan, **changes)


@pytest.mark.parametrize(
    ("changes", "fraction", "problem"),
    [
        ({}, 0.5, None),
        ({"size": 0.0}, 0.5, "size must be a positive number, got 0.0"),
        ({"size": True}, 0.5, "size must be a positive number, got True"),
        ({"size_mode": "kelly"}, 0.5, "size_mode must be 'risk' or 'equity', got 'kelly'"),
        ({}, 0.0, "max_position_fraction must be positive, got 0.0"),
        ({"stop_loss": math.nan}, 0.5, "stop_loss must be a positive price, got nan"),
        ({"stop_loss": None}, 0.5, "risk sizing needs a stop_loss"),
        ({"stop_loss": None, "size_mode": SizeMode.EQUITY}, 0.5, None),
        (
            {"trailing": TrailingSpec("fixed", 1.0)},  # type: ignore[arg-type]
            0.5,
            "trailing must have mode percent/atr and a positive distance, got "
            "TrailingSpec(mode='fixed', distance=1.0, activation=0.0, atr=None)",
        ),
        (
            {"trailing": TrailingSpec(TrailingMode.PERCENT, 1.0)},
            0.5,
            "a percent trailing distance must be below 1, got 1.0",
        ),
        (
            {"trailing": TrailingSpec(TrailingMode.ATR, 2.0, -1.0)},
            0.5,
            "trailing activation must be >= 0, got -1.0",
        ),
        ({"expiry_candles": 0}, 0.5, "expiry_candles must be a whole number >= 1, got 0"),
        ({"stop_loss": 100.0}, 0.5, "stop 100.0 is on the wrong side of the limit 100.0"),
        ({"take_profit": 99.0}, 0.5, "take profit 99.0 is on the wrong side of the limit 100.0"),
        (
            {"entry_price": None, "stop_loss": 110.0, "take_profit": 95.0},
            0.5,
            "stop 110.0 and take profit 95.0 are inverted",
        ),
        ({"action": Action.OPEN_SHORT, "stop_loss": 105.0, "take_profit": 90.0}, 0.5, None),
    ],
)
def test_entry_problem_by_hand(changes, fraction, problem) -> None:
    assert entry_problem(long_limit(**changes), fraction) == problem


trail_st = st.one_of(
    st.none(),
    st.builds(
        TrailingSpec,
        st.sampled_from([*TrailingMode, "junk"]),
        st.one_of(st.floats(allow_nan=True), st.integers(-2, 5)),
        st.one_of(st.floats(allow_nan=True), st.integers(-2, 5)),
        st.one_of(st.none(), st.floats(allow_nan=True)),
    ),
)


_ODD = st.sampled_from([0.0, -0.5, 1.0, 2.0, math.nan, math.inf, True, "x"])


@settings(max_examples=300, deadline=None)
@given(
    mode=st.sampled_from([*TrailingMode, "percent", "atr", "bogus"]),
    distance=st.floats(min_value=1e-6, max_value=3.0) | _ODD,
    activation=st.floats(min_value=0.0, max_value=3.0) | _ODD,
    atr=st.none() | st.floats(min_value=1e-3, max_value=1e3),
    long=st.booleans(),
)
def test_trailing_problem_is_what_entry_problem_says_of_a_plan_with_that_trailing(
    mode, distance, activation, atr, long
) -> None:
    # (the broker checks an adjusted position's trailing with it, as a plan that is the
    # position: equity sized, no stop, target or limit)
    spec = TrailingSpec(mode, distance, activation, atr)
    action = Action.OPEN_LONG if long else Action.OPEN_SHORT
    plan = TradePlan("BTCUSDT", action, size=1.0, size_mode=SizeMode.EQUITY, trailing=spec)
    assert trailing_problem(spec) == entry_problem(plan, 1.0)


def test_trailing_problem_by_hand() -> None:
    assert trailing_problem(TrailingSpec(TrailingMode.PERCENT, 0.02, 0.01)) is None
    assert trailing_problem(TrailingSpec(TrailingMode.ATR, 2.0, 0.0, 50.0)) is None
    assert trailing_problem(TrailingSpec(TrailingMode.PERCENT, 1.0)) == (
        "a percent trailing distance must be below 1, got 1.0"
    )
    assert trailing_problem(TrailingSpec(TrailingMode.ATR, 2.0, -1.0)) == (
        "trailing activation must be >= 0, got -1.0"
    )
    assert trailing_problem(TrailingSpec("bogus", 0.1)).startswith(  # type: ignore[arg-type]
        "trailing must have mode percent/atr and a positive distance"
    )


@settings(max_examples=200, deadline=None)
@given(
    long=st.booleans(),
    entry=st.one_of(st.none(), st.floats(90.0, 110.0)),
    size=st.floats(allow_nan=True, allow_infinity=True),
    size_mode=st.sampled_from([*SizeMode, "junk"]),
    stop=st.one_of(st.none(), st.floats(allow_nan=True)),
    target=st.one_of(st.none(), st.floats(allow_nan=True)),
    trailing=trail_st,
    expiry=st.one_of(st.none(), st.integers(-3, 5), st.booleans()),
)
def test_what_the_guard_lets_through_the_broker_takes(
    long, entry, size, size_mode, stop, target, trailing, expiry
) -> None:
    plan = TradePlan(
        "BTC",
        Action.OPEN_LONG if long else Action.OPEN_SHORT,
        entry,
        size,
        size_mode,
        stop,
        target,
        trailing,
        0.5,
        expiry_candles=expiry,
    )
    persona = make_persona()
    state = PortfolioState(0, 50, 10_000.0, 10_000.0, ())
    context = {"BTC": InstrumentContext("BTC", 100.0, 2.0, 0.0, 10)}
    out = RiskGuard(["BTC"], persona).validate(Decision(0, "t", "m", (plan,), ""), state, context)
    (checked,) = out.plans
    if checked.action is not Action.HOLD:
        assert entry_problem(checked, persona.max_position_fraction) is None
