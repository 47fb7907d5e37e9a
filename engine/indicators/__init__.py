"""Indicators: TA-Lib-exact batch functions, incremental classes and a registry by name.

Importing this package is cheap: the compiled kernels load on the first call.
"""

from engine.indicators.batch import (
    IndicatorError,
    adx,
    atr,
    bbands,
    ema,
    macd,
    obv,
    roc,
    rsi,
    sma,
    stoch,
    true_range,
    vwap,
    warm_up,
    wma,
)

__all__ = [
    "IndicatorError",
    "adx",
    "atr",
    "bbands",
    "ema",
    "macd",
    "obv",
    "roc",
    "rsi",
    "sma",
    "stoch",
    "true_range",
    "vwap",
    "warm_up",
    "wma",
]
