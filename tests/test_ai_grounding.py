"""The grounding check on hand-written grounded and ungrounded reasoning."""

from __future__ import annotations

import json

import pytest

from engine.backtest.result import BrainStats
from engine.brain.grounding import (
    SAYS_NOTHING,
    check_grounding,
    cites_a_fact,
    copied_run,
    number_grounded,
    stated_direction,
)
from engine.brain.llm import LLMBrain, grounding_of, read_answer
from engine.brain.prompt import build_prompt
from tests.test_ai_support import MINUTE, batch, persona, portfolio

PROMPT = build_prompt(batch(), portfolio(), persona(), timeframe_ns=MINUTE)
# The market part of PROMPT says: price 46210.5, ATR 0.08% of price; its facts (what a
# reason may quote): "-0.84% over the last 20 candles", "short: EMA 9 below EMA 21 by 1.3
# ATR", "long: RSI 28, oversold below 30", "long: signal rsi_oversold, 1 candle ago,
# strength 0.72", "long: 1 of 1 signals".
FACTS = PROMPT.facts["BTC"]


def ground(why: str, do: str = "open_long") -> tuple[str, ...]:
    answer = read_answer(json.dumps({"BTC": {"why": why, "do": do}}), PROMPT)
    return grounding_of(answer, PROMPT)


@pytest.mark.parametrize(
    "why",
    [
        "RSI 28 is oversold below 30, a bounce is likely.",
        "RSI is 28 and the rsi_oversold signal has strength 0.72, so buy.",
        "Price 46210 fell 0.84% over 20 candles; RSI 28 says oversold.",
        "EMA 9 is 1.3 ATR below EMA 21 but RSI 28 is oversold: buy small.",
        "The oversold signal is strong enough to go long.",
        "Price 46210 with RSI 28.",
    ],
)
def test_grounded_examples(why):
    assert ground(why) == ()


@pytest.mark.parametrize(
    ("why", "do", "problem"),
    [
        ("The market now: $10654378, number of open positions is 10.", "hold", "number 10654378"),
        ("RSI 45 is neutral.", "hold", "number 45 is not in the prompt"),
        ("ETH is weak while BTC holds, so buy BTC.", "open_long", "instrument ETH"),
        (
            "You may open long and short positions, at most 2 at a time.",
            "hold",
            "copied from the instructions",
        ),
        ("RSI 28 is oversold, the trend is bearish: sell.", "open_long", "argues short"),
        ("EMA 9 crossed up, a bullish move.", "open_short", "argues long"),
    ],
)
def test_ungrounded_examples(why, do, problem):
    problems = ground(why, do)
    assert problems and any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("why", "do"),
    [
        ("I'm a trader in the backtest", "hold"),
        ("The price of BTC has been rising for a long time and is expected to go on", "hold"),
        ("The price of BTC has been rising for a long time", "open_long"),
        ("Holding for now, nothing to do.", "hold"),
        ("I hold 2 positions and wait 1 candle.", "hold"),  # counts, not market facts
        ("The market looks bullish to me.", "open_long"),  # a mood, not a fact
        ("Buy BTC now.", "open_long"),
    ],
)
def test_reasons_that_say_nothing_are_not_grounded(why, do):
    assert ground(why, do) == (SAYS_NOTHING,)


def test_every_fact_of_the_prompt_quoted_as_it_stands_is_grounded_for_hold():
    assert len(FACTS) == 5
    for fact in FACTS:
        assert ground(fact, "hold") == (), fact


@pytest.mark.parametrize(
    ("fact", "do", "problem"),
    [
        (1, "open_long", "argues short but the plan is open_long"),  # short: EMA ...
        (2, "open_short", "argues long but the plan is open_short"),  # long: RSI ...
        (3, "open_short", "argues long but the plan is open_short"),  # long: signal ...
        (4, "open_short", "argues long but the plan is open_short"),  # long: 1 of 1 ...
    ],
)
def test_a_quoted_fact_against_the_entry_is_not_grounded(fact, do, problem):
    assert ground(FACTS[fact], do) == (problem,)
    assert ground(FACTS[fact], "open_long" if do == "open_short" else "open_short") == ()


def test_a_fact_of_another_instrument_says_nothing_about_this_one():
    problems = check_grounding(
        {"ETH": ("The rsi_oversold signal was strong.", "hold")},
        "instructions",
        "BTC: RSI 28\nETH: price 3700",
        ["BTC", "ETH"],
        {"BTC": ("long: signal rsi_oversold, 1 candle ago",), "ETH": ("volume 0.3 above average",)},
    )
    assert problems == (SAYS_NOTHING,)
    assert cites_a_fact("volume is up", ("volume 0.3 above average",))
    assert cites_a_fact("0.3 above", ("volume 0.3 above average",))
    assert not cites_a_fact("3 candles", ("volume 0.3 above average", "3 candles ago"))
    assert not cites_a_fact("anything", ())


def test_direction_is_not_checked_for_hold_and_close():
    assert ground("RSI 28, yet the trend is bearish.", "hold") == ()


def test_number_rounding_rules():
    assert number_grounded("71", ["71.3"])
    assert number_grounded("0.4", ["0.42"])
    assert number_grounded("72", ["71.5"])
    assert number_grounded("0.42", ["0.4"])  # the prompt's rounding covers it
    assert not number_grounded("0.5", ["0.42"])
    assert not number_grounded("710", ["71.3"])
    assert not number_grounded("0.1678", ["0", "2"])  # a made-up price is not "0"
    assert not number_grounded("3.4", ["3"])


def test_helpers():
    assert copied_run("so I follow the usual stop rule today", "follow the usual stop rule") is None
    assert copied_run("a b c d e f g", "x a b c d e f y") == "a b c d e f"
    assert stated_direction("bullish but also bearish") is None
    assert stated_direction("prices are falling") == "short"
    assert stated_direction("RSI 28") is None


def test_several_instruments_name_the_one_at_fault():
    problems = check_grounding(
        {"BTC": ("RSI 28 is oversold.", "open_long"), "ETH": ("RSI 99 says sell.", "open_short")},
        "instructions",
        "BTC: RSI 28\nETH: RSI 55",
        ["BTC", "ETH"],
    )
    assert problems == ("ETH: number 99 is not in the prompt",)


def test_decision_carries_the_flag_and_the_brain_statistics_count_it():
    brain = LLMBrain("m")
    good = read_answer(json.dumps({"BTC": {"why": "RSI 28 is oversold.", "do": "hold"}}), PROMPT)
    bad = read_answer(json.dumps({"BTC": {"why": "RSI 12 is low.", "do": "hold"}}), PROMPT)
    d1 = brain.decision_from_answer(good, batch(), portfolio(), persona(), prompt=PROMPT)
    d2 = brain.decision_from_answer(bad, batch(), portfolio(), persona(), prompt=PROMPT)
    assert (d1.grounded, d1.grounding) == (True, ())
    assert d2.grounded is False and d2.grounding == ("number 12 is not in the prompt",)
    assert json.loads(d2.raw_answer) == {
        "BTC": {"why": "RSI 12 is low.", "do": "hold", "size": "small"}
    }
    stats = BrainStats(grounded=3, ungrounded=1)
    assert stats.as_dict()["grounded_share"] == 0.75
    assert BrainStats().as_dict()["grounded_share"] is None
