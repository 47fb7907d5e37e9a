"""engine.numfmt: the one price formatter (rule reasoning, risk notes, prompts, tables, TUI)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.numfmt import PRICE_DIGITS, fmt_price, price_decimals


def _rules_fmt_price_before(x: float | None) -> str:
    """The rule brain's own formatter before numfmt existed (what run logs hold)."""
    if x is None or not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    decimals = max(1, 5 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


@pytest.mark.parametrize(
    "value,text",
    [
        (0.0, "0"),
        (-0.0, "0"),
        (42000.0, "42000.0"),
        (40123.46, "40123.5"),
        (1.5, "1.50000"),
        (-2.5, "-2.50000"),
        (-40123.46, "-40123.5"),
        (0.00001234, "0.0000123400"),
        (0.06175299, "0.0617530"),
        (1e-8, "0.0000000100000"),
        (1e12, "1000000000000.0"),
        (-1e12, "-1000000000000.0"),
        (999999.96, "1000000.0"),
        (None, "None"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
    ],
)
def test_default_six_significant_digits(value: float | None, text: str) -> None:
    assert PRICE_DIGITS == 6
    assert fmt_price(value) == text


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_missing_text(value: float | None) -> None:
    assert fmt_price(value, missing="-") == "-"


def test_options_digits_bounds_and_grouping() -> None:
    assert fmt_price(40123.5, 4, min_decimals=2, grouping=True) == "40,123.50"
    assert fmt_price(1.2345, 4, min_decimals=2) == "1.234"
    assert fmt_price(1e-12, 4, min_decimals=2, max_decimals=10) == "0.0000000000"
    assert fmt_price(1e12, grouping=True) == "1,000,000,000,000.0"
    assert fmt_price(46210.5, 5, min_decimals=0) == "46210"
    assert price_decimals(0.0) == 1
    assert price_decimals(math.nan, min_decimals=2) == 2
    assert price_decimals(0.00001234, 4, min_decimals=2, max_decimals=6) == 6


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=1e-9, max_value=1e7),
        st.none(),
    )
)
def test_default_equals_the_rule_brains_formatter(x: float | None) -> None:
    # rule reasoning and risk notes go into run logs, which must stay byte-identical
    assert fmt_price(x) == _rules_fmt_price_before(x)


@pytest.mark.parametrize(
    "start,tick",
    [(40_000.0, 0.1), (0.00001, 1e-8), (0.00004216, 1e-8), (0.09876, 1e-6), (2.5, 1e-4)],
)
def test_neighbouring_prices_never_look_equal(start: float, tick: float) -> None:
    prices = [round(start + i * tick, 10) for i in range(200)]
    texts = [fmt_price(p) for p in prices]
    assert len(set(texts)) == len(texts)
    assert all(float(t) == pytest.approx(p, rel=1e-5) for t, p in zip(texts, prices, strict=True))
