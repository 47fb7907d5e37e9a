"""Number and time formatting that copes with BTC at 40,000 and altcoins at 0.00001."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from engine import numfmt

# Significant digits: six (engine.numfmt's) from 1 up, eight below 1, where BTC-quoted
# altcoins tick in satoshis (0.07553338 BTC): two neighbouring candles' prices never look
# equal. Zeros this adds to a price with fewer digits (0.0016100000) are trimmed back to
# two decimals.
PRICE_DIGITS = 6
SMALL_PRICE_DIGITS = 8
MIN_DECIMALS = 2


def _digits(value: float) -> int:
    return SMALL_PRICE_DIGITS if abs(value) < 1 else PRICE_DIGITS


def price_decimals(value: float) -> int:
    """Decimals the panes show ``value`` with (``fmt_price``'s rule, see engine.numfmt)."""
    digits = _digits(value) if math.isfinite(value) else PRICE_DIGITS
    return numfmt.price_decimals(value, digits, min_decimals=MIN_DECIMALS, max_decimals=10)


def fmt_price(value: float | None, decimals: int | None = None) -> str:
    """A price in a pane: engine.numfmt's formatter with thousands separators, '-' if
    missing, trailing zeros beyond two decimals trimmed."""
    if decimals is not None and value is not None and math.isfinite(value):
        return f"{value:,.{decimals}f}"
    digits = _digits(value) if value is not None and math.isfinite(value) else PRICE_DIGITS
    text = numfmt.fmt_price(
        value, digits, min_decimals=MIN_DECIMALS, max_decimals=10, grouping=True, missing="-"
    )
    point = text.find(".")
    if point < 0:
        return text
    keep = point + 1 + MIN_DECIMALS
    return text[:keep] + text[keep:].rstrip("0")


def axis_decimals(span: float, rows: int) -> int:
    """Decimals that tell apart two price labels ``span / rows`` apart."""
    step = span / max(rows, 1)
    if not math.isfinite(step) or step <= 0:
        return 2
    return min(10, max(0, 1 - math.floor(math.log10(step))))


def fmt_money(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:,.2f}"


def fmt_signed(value: float, decimals: int = 2, suffix: str = "") -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:+,.{decimals}f}{suffix}"


def fmt_qty(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return "0"
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.2f}M"
    d = min(8, max(0, 3 - math.floor(math.log10(abs(value)))))
    return f"{value:,.{d}f}"


def _utc(ns: int) -> datetime:
    # whole seconds through datetime (microseconds apart from pandas' Timestamp); the
    # chart formats a few dozen labels a frame
    return _EPOCH + timedelta(seconds=int(ns) // 1_000_000_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fmt_time(ns: int) -> str:
    return _utc(ns).strftime("%Y-%m-%d %H:%M")


def fmt_clock(ns: int) -> str:
    return _utc(ns).strftime("%H:%M")


def fmt_metric(value: Any) -> str:
    """An engine metric: 2 decimals, thousands separators, "-" when undefined (NaN)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        if not math.isfinite(value):
            return "-"
        return f"{value:,.2f}"
    return str(value)
