"""Is a decision's reasoning grounded in its own prompt?

Five checks on each instrument's ``why``:

- every number it states matches a number of the prompt, within the rounding the
  reasoning used ("RSI 71" is grounded by "RSI 71.3"; "price 10654378" is not);
- every instrument it names exists in the prompt (a ticker-like word that is neither
  an instrument of the prompt nor market vocabulary is an invented instrument);
- no run of words is copied from the instructions (the constant part of the prompt);
- the direction it argues for does not contradict the plan's action;
- it cites at least one fact of its own instrument (given the facts the prompt listed
  under it): a whole fact line, an indicator, signal or relation word of those facts
  ("RSI", "ema_cross_up", "oversold", "crossed"), or a number of them that is not a
  bare count below 10. A reason that cites none ("I'm a trader in the backtest", "the
  price has been rising for a long time") says nothing about the market.

:func:`check_grounding` returns the problems, empty when grounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])[-+]?(\d+(?:\.\d+)?|\.\d+)(?![A-Za-z_])")
_TICKER = re.compile(r"\b[A-Z][A-Z0-9]{1,9}(?:[/_-][A-Z0-9]{2,10})?\b")
_WORD = re.compile(r"[a-z0-9_]+")
COPY_WORDS = 6  # this many consecutive words shared with the instructions is a copy

# Upper-case words of market talk that are not instruments.
VOCABULARY = frozenset(
    {
        "ATR",
        "RSI",
        "EMA",
        "SMA",
        "MACD",
        "ADX",
        "BB",
        "JSON",
        "OK",
        "PNL",
        "USD",
        "USDT",
        "ATH",
        "TP",
        "SL",
        "AI",
        "I",
        "A",
    }
)
# Words that name an indicator, a signal or a relation of the facts: a reason that uses
# one its instrument's facts also use cites them (signal kinds, with "_", count too).
FACT_TERMS = frozenset(
    {
        "rsi",
        "ema",
        "macd",
        "adx",
        "atr",
        "bollinger",
        "volume",
        "signal",
        "signals",
        "overbought",
        "oversold",
        "crossed",
        "trending",
        "stop",
        "target",
    }
)
SAYS_NOTHING = "says nothing about the market: it cites none of its instrument's facts"
_BULL = frozenset(
    {"bullish", "buy", "buying", "long", "uptrend", "rise", "rising", "rally", "upward"}
)
_BEAR = frozenset(
    {"bearish", "sell", "selling", "short", "downtrend", "fall", "falling", "drop", "downward"}
)


def _numbers(text: str) -> list[str]:
    return [m.group(1) for m in _NUMBER.finditer(text)]


def _decimals(token: str) -> int:
    return len(token.split(".", 1)[1]) if "." in token else 0


def number_grounded(token: str, prompt_numbers: Iterable[str]) -> bool:
    """``token`` equals a prompt number once that number is rounded to the token's
    decimals (or the token, rounded to the prompt number's, equals it)."""
    value = float(token)
    places = _decimals(token)
    for other in prompt_numbers:
        known = float(other)
        if round(known, places) == value:
            return True
        # more digits than the prompt gave (0.42 for "0.4"), never a whole number made up
        # of a fraction (0.1678 is not "0")
        shown = _decimals(other)
        if shown and places > shown and round(value, shown) == known:
            return True
        # a rounding that went half-way the other way (71.5 -> "72" or "71")
        if places == 0 and abs(known - value) < 1.0 and math.floor(known) == value:
            return True
    return False


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def copied_run(reasoning: str, instructions: str, size: int = COPY_WORDS) -> str | None:
    """The first run of ``size`` words the reasoning shares with the instructions."""
    words = _words(reasoning)
    if len(words) < size:
        return None
    known = _words(instructions)
    runs = {tuple(known[i : i + size]) for i in range(len(known) - size + 1)}
    for i in range(len(words) - size + 1):
        run = tuple(words[i : i + size])
        if run in runs:
            return " ".join(run)
    return None


def stated_direction(reasoning: str) -> str | None:
    """ "long" or "short" when the reasoning argues one way only, else None."""
    words = set(_words(reasoning))
    text = reasoning.lower()
    bull = bool(words & _BULL) or "crossed up" in text or "open_long" in text
    bear = bool(words & _BEAR) or "crossed down" in text or "open_short" in text
    if bull and not bear:
        return "long"
    if bear and not bull:
        return "short"
    return None


def cites_a_fact(why: str, facts: Sequence[str]) -> bool:
    """Whether ``why`` cites one of ``facts`` (see the module's fifth check)."""
    text = " ".join(why.lower().split())
    if any(f.lower() in text for f in facts if f):
        return True
    joined = " ".join(facts)
    terms = set(_words(joined)) & (FACT_TERMS | {w for w in _words(joined) if "_" in w})
    if terms & set(_words(why)):
        return True
    own = _numbers(joined)
    for token in _numbers(why):
        if "." not in token and abs(float(token)) < 10:
            continue  # a count or a period ("2 positions", "EMA 9") is no market fact
        if number_grounded(token, own):
            return True
    return False


def check_grounding(
    reasons: Mapping[str, tuple[str, str]],
    instructions: str,
    market: str,
    instruments: Iterable[str],
    facts: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, ...]:
    """Problems of the reasons ``{instrument: (why, action)}`` against the prompt
    (``instructions`` its constant part, ``market`` the facts, ``facts`` the fact lines
    listed under each instrument); empty when grounded."""
    prompt_numbers = _numbers(market) + _numbers(instructions)
    names = set(instruments)
    problems: list[str] = []
    for name, (why, action) in reasons.items():
        where = f"{name}: " if len(reasons) > 1 else ""
        for token in _numbers(why):
            if not number_grounded(token, prompt_numbers):
                problems.append(f"{where}number {token} is not in the prompt")
        for word in _TICKER.findall(why):
            if word not in names and word not in VOCABULARY:
                problems.append(f"{where}instrument {word} is not in the prompt")
        run = copied_run(why, instructions)
        if run is not None:
            problems.append(f"{where}copied from the instructions: {run!r}")
        if action in ("open_long", "open_short"):
            said = stated_direction(why)
            if said is not None and said != action[5:]:
                problems.append(f"{where}argues {said} but the plan is {action}")
        if facts is not None and not cites_a_fact(why, facts.get(name, ())):
            problems.append(f"{where}{SAYS_NOTHING}")
    return tuple(problems)
