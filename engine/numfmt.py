"""The one number formatter for prices: significant digits, fixed point, never exponents.

Prices span eight orders of magnitude (BTC near 40,000 USDT, altcoins near 0.00001 BTC),
so a fixed number of decimals either hides the altcoins or clutters BTC. ``fmt_price``
keeps ``digits`` significant digits instead (``PRICE_DIGITS = 6`` by default), written in
fixed point, with at least ``min_decimals`` decimals (and at most ``max_decimals``):

    42000.0 -> '42000.0'    1.5 -> '1.50000'    0.00001234 -> '0.0000123400'

Six digits tell neighbouring prices apart on real markets: an altcoin at 0.00001234 BTC
moves by 1e-8 (the fourth digit), ETH at 0.05123 BTC by 1e-6 or 1e-5 (the fifth), BTC at
40,000.0 by 0.1 or more between candles. Large values keep every integer digit (1e12 ->
'1000000000000.0'); tiny ones grow as many decimals as needed (1e-8 ->
'0.0000000100000') unless ``max_decimals`` caps them. Zero is '0'. A missing or
non-finite value prints as ``missing`` when given, else as ``str(value)`` ('None', 'nan',
'inf').

Every part of tapedeck that shows a price calls this: the rule brain's reasoning and the
risk guard's notes (the defaults, which are what run logs hold, so they must never change),
the LLM prompt, the report tables and the TUI (with its own ``digits`` and grouping).
"""

from __future__ import annotations

import math

PRICE_DIGITS = 6


def price_decimals(
    value: float,
    digits: int = PRICE_DIGITS,
    *,
    min_decimals: int = 1,
    max_decimals: int | None = None,
) -> int:
    """Decimals that show ``value`` with ``digits`` significant digits, within the bounds."""
    if not math.isfinite(value) or value == 0:
        decimals = min_decimals
    else:
        decimals = max(min_decimals, digits - 1 - math.floor(math.log10(abs(value))))
    return decimals if max_decimals is None else min(max_decimals, decimals)


def fmt_price(
    value: float | None,
    digits: int = PRICE_DIGITS,
    *,
    min_decimals: int = 1,
    max_decimals: int | None = None,
    grouping: bool = False,
    missing: str | None = None,
) -> str:
    """``value`` with ``digits`` significant digits in fixed point (see the module doc)."""
    if value is None or not math.isfinite(value):
        return str(value) if missing is None else missing
    if value == 0:
        return "0"
    decimals = price_decimals(value, digits, min_decimals=min_decimals, max_decimals=max_decimals)
    return f"{value:,.{decimals}f}" if grouping else f"{value:.{decimals}f}"
