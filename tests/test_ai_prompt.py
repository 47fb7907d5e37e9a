"""Prompt, answer schema, ATR multiples -> prices, and the partial-JSON reasoning reader."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.brain.partial import partial_reasoning
from engine.brain.prompt import build_prompt, fmt_price
from engine.brain.schema import (
    SCHEMA_VERSION,
    AnswerError,
    answer_schema,
    check_answer,
    parse_answer,
    plans_from_answer,
)
from engine.types import Action, Direction
from tests.test_ai_support import MINUTE, T0, batch, context, long_position, persona, portfolio


def answer_json(**plan) -> str:
    item = {
        "instrument": "BTC",
        "action": "open_short",
        "confidence": 0.6,
        "size": "small",
        "stop_atr": 2.0,
        "target_atr": 4.0,
        "trailing": False,
    }
    item.update(plan)
    return json.dumps({"reasoning": "Overbought, fading it.", "plans": [item]})


def test_prompt_is_readable_and_has_no_dates_or_clock_times():
    prompt = build_prompt(
        batch(), portfolio(positions=(long_position(),)), persona(), timeframe_ns=MINUTE
    )
    text = prompt.text
    assert "Persona tester: You buy dips and cut losers fast." in text
    assert "- BTC: price 46210.5, ATR 35.2000, -0.84% over 20 candles, rsi 27.9" in text
    assert "- BTC rsi_oversold: long, strength 0.72, 1 candle ago" in text
    position = "- BTC long from 46000.0, PnL +12.50, stop 45950.0, target 46100.0, held 12 candles"
    assert position in text
    assert "Account: equity 10000.00, cash 10000.00, 1 open positions." in text
    assert text.rstrip().endswith(json.dumps(prompt.schema, separators=(",", ":")))
    body = text.split("JSON schema:")[0]
    assert not re.search(r"\b(19|20)\d\d-\d\d", body)  # no dates
    assert not re.search(r"\b\d{1,2}:\d\d\b", body)  # no clock times
    assert str(T0) not in text and "2022" not in body


def test_equal_states_give_equal_prompts_and_times_do_not_leak():
    a = build_prompt(batch(time=T0), portfolio(T0), persona(), timeframe_ns=MINUTE)
    b = build_prompt(batch(time=T0 + 99 * MINUTE), portfolio(T0), persona(), timeframe_ns=MINUTE)
    assert a == b
    c = build_prompt(batch(contexts={"BTC": context(rsi=55.0)}), portfolio(), persona())
    assert c != a


def test_ages_in_minutes_without_a_timeframe():
    text = build_prompt(batch(), portfolio(positions=(long_position(),)), persona()).text
    assert "1 min ago" in text and "held 12 min" in text


def test_fmt_price_six_significant_digits():
    assert [fmt_price(x) for x in (46210.5, 3700.24, 0.000123456, 1.0, 0.0)] == [
        "46210.5",
        "3700.24",
        "0.000123456",
        "1.00000",
        "0",
    ]
    assert fmt_price(float("nan")) == "n/a"


def test_schema_lists_reasoning_first_and_pins_the_batch_instruments():
    schema = answer_schema(("BTC", "ETH"))
    assert list(schema["properties"]) == ["reasoning", "plans"]
    plans = schema["properties"]["plans"]
    assert plans["minItems"] == plans["maxItems"] == 2
    assert plans["items"]["properties"]["instrument"]["enum"] == ["BTC", "ETH"]
    assert plans["items"]["required"] == [
        "instrument",
        "action",
        "confidence",
        "size",
        "stop_atr",
        "target_atr",
        "trailing",
    ]
    assert "$defs" not in json.dumps(schema) and SCHEMA_VERSION == 1


def test_short_plan_by_hand():
    answer = parse_answer(answer_json())
    (plan,) = plans_from_answer(answer, batch(), portfolio(), persona(trailing=None))
    assert plan.action is Action.OPEN_SHORT and plan.entry_price is None
    assert plan.stop_loss == pytest.approx(46_210.5 + 2.0 * 35.2)
    assert plan.take_profit == pytest.approx(46_210.5 - 4.0 * 35.2)
    assert plan.size == pytest.approx(0.005) and plan.size_mode == "risk"
    assert plan.trailing is None and plan.confidence == 0.6


def test_trailing_without_persona_config_uses_the_stop_distance():
    answer = parse_answer(answer_json(action="open_long", trailing=True, size="large"))
    (plan,) = plans_from_answer(answer, batch(), portfolio(), persona(trailing=None))
    assert plan.trailing.mode == "atr" and plan.trailing.distance == 2.0
    assert plan.trailing.atr == pytest.approx(35.2) and plan.size == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "invalid JSON"),
        (answer_json(confidence=1.5), "plans.0.confidence"),
        (answer_json(stop_atr=0), "plans.0.stop_atr"),
        (answer_json(target_atr=25), "plans.0.target_atr"),
        (answer_json(size="huge"), "plans.0.size"),
        (answer_json(action="buy"), "plans.0.action"),
        (answer_json(extra=1), "plans.0.extra"),
    ],
)
def test_bad_answers_name_the_field(text, needle):
    with pytest.raises(AnswerError, match=re.escape(needle)):
        parse_answer(text)


def test_nonsense_for_the_batch_is_rejected():
    two = json.loads(answer_json())
    two["plans"].append(dict(two["plans"][0]))
    with pytest.raises(AnswerError, match="two plans for BTC"):
        check_answer(parse_answer(json.dumps(two)), batch(), portfolio())
    no_atr = batch(contexts={"BTC": context(atr=float("nan"))})
    with pytest.raises(AnswerError, match="no ATR"):
        check_answer(parse_answer(answer_json()), no_atr, portfolio())
    check_answer(parse_answer(answer_json(action="hold")), no_atr, portfolio())


def test_signals_of_several_instruments_in_the_prompt():
    b = batch(
        kinds=(
            ("BTC", "macd_cross_up", Direction.LONG),
            ("ETH", "ema_cross_down", Direction.SHORT),
        ),
        contexts={"BTC": context(), "ETH": context("ETH", 3700.2, 4.1, 55.0)},
    )
    prompt = build_prompt(b, portfolio(), persona(), timeframe_ns=MINUTE)
    assert "- ETH: price 3700.20, ATR 4.10000" in prompt.user
    assert "- ETH ema_cross_down: short" in prompt.user
    assert prompt.schema["properties"]["plans"]["minItems"] == 2


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=60))
def test_partial_reasoning_only_grows_and_ends_exact(reasoning):
    text = json.dumps({"reasoning": reasoning, "plans": []}, ensure_ascii=True)
    previous = ""
    for end in range(len(text) + 1):
        seen = partial_reasoning(text[:end])
        if seen is None:
            assert previous == ""
            continue
        assert reasoning.startswith(seen)
        assert len(seen) >= len(previous)
        previous = seen
    assert previous == reasoning


def test_partial_reasoning_by_hand():
    assert partial_reasoning('{"plans": [], "reas') is None
    assert partial_reasoning('{ "reasoning" : "Buy the dip') == "Buy the dip"
    assert partial_reasoning('{"reasoning": "a\\nb\\') == "a\nb"
    assert partial_reasoning('{"reasoning": "caf\\u00e') == "caf"
    assert partial_reasoning('{"reasoning": "caf\\u00e9 \\"x\\"", "plans"') == 'café "x"'
