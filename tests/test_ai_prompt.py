"""Prompt, answer schema, ATR multiples -> prices, and the partial-JSON reasoning reader."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.brain import schema as schema_module
from engine.brain.grounding import copied_run, stated_direction
from engine.brain.llm import grounding_of, read_answer, streamed_reasoning
from engine.brain.partial import partial_reasoning, partial_reasons
from engine.brain.prompt import build_prompt, citable, fmt_atr, fmt_pct, fmt_price
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


def answer_json(name: str = "BTC", **plan) -> str:
    item = {"why": "RSI 28 is oversold.", "do": "open_short", "size": "small"}
    item.update(stop=2.0, target=4.0)
    item.update(plan)
    return json.dumps({name: item})


def test_prompt_constant_part_first_and_market_facts_as_relations():
    ctx = dataclasses.replace(context(), moves=(0.1234, -0.05, 0.0001))
    prompt = build_prompt(
        batch(contexts={"BTC": ctx}),
        portfolio(positions=(long_position(),)),
        persona(),
        timeframe_ns=MINUTE,
    )
    assert prompt.text.startswith("You are a trader in a backtest. You buy dips")
    assert prompt.text.index("Read the market facts") < prompt.text.index("BTC: price 46210.5")
    lines = prompt.user.splitlines()
    assert lines[0] == "BTC: price 46210.5, ATR 0.08% of price"
    assert "- last 3 candles, oldest first: +0.12%, -0.05%, +<0.01%" in lines
    assert "- -0.84% over the last 20 candles" in lines
    # ema_fast is 0.999 x price: 46.2 below, in ATRs of 35.2
    assert "- short: EMA 9 below EMA 21 by 1.3 ATR" in lines
    assert "- long: RSI 28, oversold below 30" in lines
    assert "- long: signal rsi_oversold, 1 candle ago, strength 0.72" in lines
    assert (
        "- open long position, +0.46% since entry, stop 7.4 ATR below price, "
        "target 3.1 ATR below price, held 12 candles"
    ) in lines
    assert lines[-2:] == ["Open positions: 1 of at most 2.", "Decide: BTC (hold, close)"]
    # the facts its reason may cite: every "- " line but the candle moves, in order
    assert prompt.facts == {
        "BTC": tuple(
            line[2:] for line in lines if line.startswith("- ") and "oldest first" not in line
        )
    }
    assert prompt.facts["BTC"][-2] == "long: 1 of 1 signals"
    # the reason is chosen from those that state a direction (the change over 20 candles
    # does not; the relations, the signal, the balance and the position do)
    why = prompt.schema["properties"]["BTC"]["properties"]["why"]
    assert why == {"type": "string", "enum": list(prompt.facts["BTC"][1:])}
    assert prompt.facts["BTC"][0] == "-0.84% over the last 20 candles"


def test_no_schema_text_code_comments_dates_or_raw_floats_reach_the_model():
    prompt = build_prompt(batch(), portfolio(), persona(), timeframe_ns=MINUTE)
    text = prompt.text
    for prose in ("schema", "constrained", "grammar", "choices suit", "{", "$defs", "enum"):
        assert prose not in text
    for doc in (schema_module.__doc__, schema_module.InstrumentAnswer.__doc__ or ""):
        for line in doc.splitlines():
            if len(line.strip()) > 25:
                assert line.strip() not in text
    assert not re.search(r"\b(19|20)\d\d-\d\d", text)  # no dates
    assert not re.search(r"\b\d{1,2}:\d\d\b", text)  # no clock times
    assert str(T0) not in text and "2022" not in text
    assert not re.search(r"\d\.\d{4,}|e-\d", text)  # no raw floats


def test_constant_part_is_the_same_for_every_call_of_a_persona():
    a = build_prompt(batch(), portfolio(), persona(), timeframe_ns=MINUTE)
    other = batch(
        kinds=(("ETH", "ema_cross_down", Direction.SHORT),),
        contexts={"ETH": context("ETH", 3700.2, 4.1, 55.0)},
    )
    b = build_prompt(other, portfolio(positions=(long_position(),)), persona())
    assert a.system == b.system and a.text.startswith(a.system) and b.text.startswith(b.system)
    assert a.user != b.user


def test_a_cross_too_small_for_two_decimals_stays_visible():
    # ETH/BTC-like prices: the EMAs both print 0.098 at three significant digits
    tiny = context("ETH", 0.098123, 0.00004, 50.0)
    tiny = dataclasses.replace(
        tiny,
        indicators={
            **tiny.indicators,
            "ema_fast": 0.0981231,
            "ema_slow": 0.0981230,
            "macd": 5.17e-05,
            "macd_signal": 5.16e-05,
        },
    )
    b = batch(kinds=(("ETH", "ema_cross_up", Direction.LONG),), contexts={"ETH": tiny})
    text = build_prompt(b, portfolio(), persona(), timeframe_ns=MINUTE).user
    assert "EMA 9 above EMA 21 by < 0.01 ATR, crossed up 1 candle ago" in text
    assert "MACD above its signal line by < 0.01 ATR, MACD above zero" in text
    flipped = dataclasses.replace(
        tiny, indicators={**tiny.indicators, "ema_fast": 0.0981229, "macd": 5.15e-05}
    )
    text = build_prompt(
        batch(kinds=(("ETH", "rsi_oversold", Direction.LONG),), contexts={"ETH": flipped}),
        portfolio(),
        persona(),
    ).user
    assert "EMA 9 below EMA 21" in text and "MACD below its signal line" in text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.4, "0.40"), (1.26, "1.3"), (-2.04, "2.0"), (12.4, "12"), (0.004, "< 0.01")],
)
def test_fmt_atr(value, text):
    assert fmt_atr(value) == text


def test_fmt_pct_keeps_the_sign_of_tiny_moves():
    assert [fmt_pct(x) for x in (0.1234, -0.05, 0.0001, -0.0001, 0.0)] == [
        "+0.12%",
        "-0.05%",
        "+<0.01%",
        "-<0.01%",
        "+0.00%",
    ]


def test_equal_states_give_equal_prompts_and_times_do_not_leak():
    a = build_prompt(batch(time=T0), portfolio(T0), persona(), timeframe_ns=MINUTE)
    b = build_prompt(batch(time=T0 + 99 * MINUTE), portfolio(T0), persona(), timeframe_ns=MINUTE)
    assert a == b
    c = build_prompt(batch(contexts={"BTC": context(rsi=55.0)}), portfolio(), persona())
    assert c != a


def test_fmt_price_six_significant_digits():
    assert [fmt_price(x) for x in (46210.5, 3700.24, 0.000123456, 1.0, 0.0)] == [
        "46210.5",
        "3700.24",
        "0.000123456",
        "1.00000",
        "0",
    ]
    assert fmt_price(float("nan")) == "n/a"


def test_schema_asks_why_first_and_only_the_actions_that_make_sense():
    b = batch(
        kinds=(("BTC", "macd_cross_up", Direction.LONG),),
        contexts={"BTC": context(), "ETH": context("ETH", 3700.2, 4.1), "SOL": context("SOL")},
    )
    held = portfolio(positions=(dataclasses.replace(long_position(), instrument="ETH"),))
    prompt = build_prompt(b, held, persona(allowed_directions=("long",)))
    schema = prompt.schema
    assert list(schema["properties"]) == schema["required"] == ["BTC", "ETH"]  # SOL: nothing
    btc, eth = schema["properties"]["BTC"], schema["properties"]["ETH"]
    assert list(btc["properties"]) == ["why", "do", "size", "stop", "target"]
    assert btc["properties"]["do"]["enum"] == ["long", "hold"]
    assert eth["properties"]["do"]["enum"] == ["hold", "close"] and "stop" not in eth["properties"]
    assert "description" not in json.dumps(schema) and SCHEMA_VERSION == 3
    assert prompt.user.endswith("Decide: BTC (long, hold); ETH (hold, close)")
    full = build_prompt(b, held, persona(max_open_positions=1)).schema
    assert full["properties"]["BTC"]["properties"]["do"]["enum"] == ["hold"]
    assert answer_schema(("X",))["properties"]["X"]["properties"]["do"]["enum"] == [
        "long",
        "short",
        "close",
        "hold",
    ]


@pytest.mark.parametrize(
    ("said", "action"),
    [
        ("long", Action.OPEN_LONG),
        ("short", Action.OPEN_SHORT),
        ("open_long", Action.OPEN_LONG),
        ("open_short", Action.OPEN_SHORT),
        ("hold", Action.HOLD),
    ],
)
def test_an_entry_is_said_long_or_short_and_the_engine_names_are_taken_too(said, action):
    answer = parse_answer(answer_json(do=said))
    assert answer.plans["BTC"].do == action.value  # the engine's name from here on
    (plan,) = plans_from_answer(answer, batch(), portfolio(), persona())
    assert plan.action is action
    assert json.loads(answer.to_json())["BTC"]["do"] == action.value


def test_short_plan_by_hand():
    answer = parse_answer(answer_json())
    (plan,) = plans_from_answer(answer, batch(), portfolio(), persona(trailing=None))
    assert plan.action is Action.OPEN_SHORT and plan.entry_price is None
    assert plan.stop_loss == pytest.approx(46_210.5 + 2.0 * 35.2)
    assert plan.take_profit == pytest.approx(46_210.5 - 4.0 * 35.2)
    assert plan.size == pytest.approx(0.005) and plan.size_mode == "risk"
    assert plan.trailing is None and plan.confidence == 0.5
    assert plan.rationale == "RSI 28 is oversold."


def test_missing_stop_and_target_take_the_persona_usual_and_its_trailing():
    answer = parse_answer(json.dumps({"BTC": {"why": "go long now", "do": "open_long"}}))
    (plan,) = plans_from_answer(answer, batch(), portfolio(), persona())
    assert plan.stop_loss == pytest.approx(46_210.5 - 1.5 * 35.2)
    assert plan.take_profit == pytest.approx(46_210.5 + 3.0 * 35.2)
    assert plan.trailing.mode == "atr" and plan.trailing.distance == 1.0
    assert plan.trailing.atr == pytest.approx(35.2) and plan.size == pytest.approx(0.005)


def test_instruments_the_answer_leaves_out_hold():
    b = batch(contexts={"BTC": context(), "ETH": context("ETH", 3700.2, 4.1)})
    plans = plans_from_answer(parse_answer(answer_json()), b, portfolio(), persona())
    assert [(p.instrument, p.action) for p in plans] == [
        ("BTC", Action.OPEN_SHORT),
        ("ETH", Action.HOLD),
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        (answer_json(stop=0), "BTC.stop"),
        (answer_json(target=25), "BTC.target"),
        (answer_json(size="huge"), "BTC.size"),
        (answer_json(do="buy"), "BTC.do"),
        (answer_json(extra=1), "BTC.extra"),
        (answer_json(why=""), "BTC.why"),
    ],
)
def test_bad_answers_name_the_field(text, needle):
    with pytest.raises(AnswerError, match=re.escape(needle)):
        parse_answer(text)


def test_control_characters_in_a_string_are_accepted():
    assert parse_answer('{"BTC": {"why": "line\none", "do": "hold"}}').plans["BTC"].do == "hold"


def test_nonsense_for_the_batch_is_rejected():
    with pytest.raises(AnswerError, match="unknown instrument 'DOGE'"):
        check_answer(parse_answer(answer_json("DOGE")), batch(), portfolio())
    with pytest.raises(AnswerError, match="close without an open position"):
        check_answer(parse_answer(answer_json(do="close")), batch(), portfolio())
    with pytest.raises(AnswerError, match="open_short is not allowed"):
        check_answer(
            parse_answer(answer_json()), batch(), portfolio(), persona(allowed_directions=("long",))
        )
    no_atr = batch(contexts={"BTC": context(atr=float("nan"))})
    with pytest.raises(AnswerError, match="no ATR"):
        check_answer(parse_answer(answer_json()), no_atr, portfolio())
    check_answer(parse_answer(answer_json(do="hold")), no_atr, portfolio())


def test_signals_of_several_instruments_in_the_prompt():
    b = batch(
        kinds=(
            ("BTC", "macd_cross_up", Direction.LONG),
            ("ETH", "ema_cross_down", Direction.SHORT),
        ),
        contexts={"BTC": context(), "ETH": context("ETH", 3700.2, 4.1, 55.0)},
    )
    prompt = build_prompt(b, portfolio(), persona(), timeframe_ns=MINUTE)
    assert "ETH: price 3700.20, ATR 0.11% of price" in prompt.user
    assert "- short: signal ema_cross_down, 1 candle ago, strength 0.72" in prompt.user
    assert "- short: EMA 9 below EMA 21 by 0.90 ATR, crossed down 1 candle ago" in prompt.user
    assert prompt.schema["required"] == ["BTC", "ETH"]


def test_anonymised_prompt_renames_and_rebases_and_the_answer_maps_back():
    b = batch(
        kinds=(
            ("BTC", "macd_cross_up", Direction.LONG),
            ("ETH", "ema_cross_down", Direction.SHORT),
        ),
        contexts={"BTC": context(), "ETH": context("ETH", 3700.2, 4.1, 55.0)},
    )
    prompt = build_prompt(b, portfolio(), persona(), timeframe_ns=MINUTE, anonymise=True)
    text = prompt.text
    assert "A: price 100.000" in text and "B: price 100.000" in text
    for leak in ("BTC", "ETH", "46210", "46211", "3700", "2022", str(T0)):
        assert leak not in text and leak not in json.dumps(prompt.schema)
    assert prompt.schema["required"] == ["A", "B"] and prompt.names == {"A": "BTC", "B": "ETH"}
    answer = read_answer(answer_json("B", do="hold"), prompt)
    assert list(answer.plans) == ["ETH"]
    with pytest.raises(AnswerError, match="unknown instrument 'BTC'"):
        read_answer(answer_json("BTC"), prompt)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=60))
def test_partial_reasoning_only_grows_and_ends_exact(reasoning):
    text = json.dumps({"BTC": {"why": reasoning, "do": "hold"}}, ensure_ascii=True)
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
    assert partial_reasoning('{"BTC": {"do": "hold", "wh') is None
    assert partial_reasoning('{"BTC": { "why" : "Buy the dip') == "Buy the dip"
    assert partial_reasoning('{"BTC": {"why": "a\\nb\\') == "a\nb"
    assert partial_reasoning('{"BTC": {"why": "caf\\u00e') == "caf"
    assert partial_reasoning('{"BTC": {"why": "caf\\u00e9 \\"x\\"", "do"') == 'café "x"'


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=2, max_size=3))
def test_every_instruments_reason_streams_and_only_grows(reasons):
    names = ["BTC", "ETH", "SOL"][: len(reasons)]
    answer = {n: {"why": r, "do": "hold"} for n, r in zip(names, reasons, strict=True)}
    text = json.dumps(answer, ensure_ascii=True)
    previous: list[tuple[str, str]] = []
    for end in range(len(text) + 1):
        seen = partial_reasons(text[:end])
        assert len(seen) >= len(previous)
        for (name, why), (was_name, was) in zip(seen, previous, strict=False):
            assert name == was_name and why.startswith(was)
        previous = seen
    assert previous == list(zip(names, reasons, strict=True))


def test_streamed_reasoning_reads_as_the_answer_will():
    b = batch(
        kinds=(("BTC", "macd_cross_up", Direction.LONG), ("ETH", "rsi_oversold", Direction.LONG)),
        contexts={"BTC": context(), "ETH": context("ETH", 3700.2, 4.1)},
    )
    two = build_prompt(b, portfolio(), persona(), anonymise=True)
    text = '{"A":{"why":"RSI 28","do":"hold","size":"small"},"B":{"why":"signal macd'
    assert streamed_reasoning(text, two) == "BTC: RSI 28 ETH: signal macd"
    one = build_prompt(batch(), portfolio(), persona())
    assert streamed_reasoning('{"BTC":{"why":"RSI 2', one) == "RSI 2"
    assert streamed_reasoning('{"A":{"wh', two) is None
    full = '{"A":{"why":"RSI 28","do":"hold"},"B":{"why":"MACD up","do":"hold"}}'
    assert streamed_reasoning(full, two) == read_answer(full, two).reasoning


def test_citable_facts_state_a_direction_else_all_are():
    facts = ("ADX 31 (trending)", "long: MACD above its signal line by 0.2 ATR")
    assert citable(facts) == facts[1:]
    assert citable(facts[:1]) == facts[:1]
    assert citable(("signals point both ways, 1 long and 1 short",)) == (
        "signals point both ways, 1 long and 1 short",
    )


def test_the_instructions_show_a_quoted_fact_and_its_action_long_short_then_hold():
    text = build_prompt(batch(), portfolio(), persona(), timeframe_ns=MINUTE).system
    examples = re.findall(r'"why":"([^"]+)","do":"([a-z]+)"', text)
    # the answer's own form: an entry each way, going its fact's way, then a hold
    assert [do for _, do in examples] == ["long", "short", "hold"]
    assert [stated_direction(why) for why, _ in examples[:2]] == ["long", "short"]
    assert "{" not in text and "}" not in text


def test_quoting_a_fact_worded_like_an_example_is_no_copy_of_the_instructions():
    # 3 long signals and 1 short: the balance line reads as the long example's reason
    kinds = tuple(
        ("BTC", kind, way)
        for kind, way in (
            ("rsi_oversold", Direction.LONG),
            ("ema_cross_up", Direction.LONG),
            ("macd_cross_up", Direction.LONG),
            ("bb_breakout_down", Direction.SHORT),
        )
    )
    prompt = build_prompt(batch(kinds=kinds), portfolio(), persona(), timeframe_ns=MINUTE)
    assert prompt.facts["BTC"][-1] == "long: 3 of 4 signals"
    assert copied_run("long: 3 of 4 signals", prompt.system) is None
    for fact in citable(prompt.facts["BTC"]):
        side = stated_direction(fact)
        answer = read_answer(json.dumps({"BTC": {"why": fact, "do": side}}), prompt)
        assert grounding_of(answer, prompt) == (), fact
