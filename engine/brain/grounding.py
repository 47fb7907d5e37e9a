"""Is a decision's reasoning grounded in its own prompt?

Four checks on each instrument's ``why``:

- every number it states matches a number of the prompt, within the rounding the
  reasoning used ("RSI 71" is grounded by "RSI 71.3"; "price 10654378" is not);
- every instrument it names exists in the prompt (a ticker-like word that is neither
  an instrument of the prompt nor market vocabulary is an invented instrument);
- no run of words is copied from the instructions (the constant part of the prompt);
- the direction it argues for does not contradict the plan's action.

:func:`check_grounding` returns the problems, empty when grounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

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


def check_grounding(
    reasons: Mapping[str, tuple[str, str]],
    instructions: str,
    market: str,
    instruments: Iterable[str],
) -> tuple[str, ...]:
    """Problems of the reasons ``{instrument: (why, action)}`` against the prompt
    (``instructions`` its constant part, ``market`` the facts); empty when grounded."""
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
    return tuple(problems)
