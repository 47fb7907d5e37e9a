"""Number and time formatting that copes with BTC at 40,000 and altcoins at 0.00001."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from engine import numfmt

PRICE_DIGITS = 4  # narrow columns: 4 significant digits, at least 2 decimals


def price_decimals(value: float) -> int:
    """Decimals the panes show ``value`` with (``fmt_price``'s rule, see engine.numfmt)."""
    return numfmt.price_decimals(value, PRICE_DIGITS, min_decimals=2, max_decimals=10)


def fmt_price(value: float | None, decimals: int | None = None) -> str:
    """A price in a pane: engine.numfmt's formatter with thousands separators, '-' if missing."""
    if decimals is not None and value is not None and math.isfinite(value):
        return f"{value:,.{decimals}f}"
    return numfmt.fmt_price(
        value, PRICE_DIGITS, min_decimals=2, max_decimals=10, grouping=True, missing="-"
    )


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
