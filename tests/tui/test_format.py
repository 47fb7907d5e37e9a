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
        (1.2345, "1.234"),
        (-2.5, "-2.500"),
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
