"""Price formatting across magnitudes."""

from __future__ import annotations

import math

import pytest

from tui.format import axis_decimals, fmt_price


@pytest.mark.parametrize(
    "value,text",
    [
        (40123.5, "40,123.50"),
        (0.00001234, "0.00001234"),
        (0.09123, "0.09123"),
        (1.2345, "1.2345"),
        (-2.5, "-2.50"),
        (145.84, "145.84"),
        (0.07553338, "0.07553338"),
        (65661.84, "65,661.84"),
        (1e-9, "0.000000001"),
        (0.0, "0"),
        (math.nan, "-"),
        (None, "-"),
    ],
)
def test_fmt_price(value, text) -> None:
    assert fmt_price(value) == text


def test_axis_decimals_tell_rows_apart() -> None:
    assert axis_decimals(2000.0, 20) == 0  # 100 a row
    assert axis_decimals(2e-6, 20) == 8  # 1e-7 a row


def test_neighbouring_prices_of_btc_quoted_altcoins_never_look_equal(alt_5m_files) -> None:
    from engine.data import load

    for path in alt_5m_files:
        close = load(str(path)).close
        shown = [fmt_price(float(x)) for x in close]
        for i in range(1, len(close)):
            if close[i] != close[i - 1]:
                assert shown[i] != shown[i - 1], (path.name, i, close[i - 1], close[i])
