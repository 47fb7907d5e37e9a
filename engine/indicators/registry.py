"""Indicators by name: what each takes, its parameters (default and range), its outputs.

Signals, personas and the TUI select indicators through this table, never by importing
functions one by one::

    spec = registry.get("rsi")
    spec.params["period"].default          # 14
    registry.compute("bbands", series, period=20)   # {"upper": ..., "middle": ..., "lower": ...}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from engine.errors import TapedeckError
from engine.indicators import batch, incremental
from engine.indicators.batch import IndicatorError
from engine.types import InstrumentSeries


class UnknownIndicatorError(TapedeckError, KeyError):
    """No indicator of that name (a KeyError, printed on one line by the CLI)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its default and inclusive range; ``kind`` is int or float."""

    name: str
    default: int | float | None
    minimum: int | float
    maximum: int | float
    kind: type = int

    def check(self, value: object) -> int | float:
        if self.kind is int:
            return batch.check_int(self.name, value, int(self.minimum), int(self.maximum))
        return batch.check_float(self.name, value, float(self.minimum), float(self.maximum))


OVERLAY = "overlay"  # drawn over the candles, in the units of its input (price)
OSCILLATOR = "oscillator"  # a pane of its own


@dataclass(frozen=True, slots=True)
class DisplayHint:
    """How a screen shows one output of an indicator (the TUI reads this, never names).

    ``placement``: ``OVERLAY`` or ``OSCILLATOR``. ``low`` / ``high``: zone edges (a value
    at or below ``low`` is in the low zone, e.g. RSI oversold; at or above ``high`` in
    the high zone, e.g. RSI overbought, ADX trending). ``scale``: a fixed axis range, or
    None to fit the data. ``centre``: a reference line (MACD's zero). ``decimals``: fixed
    decimals for values in points (RSI 1); None = a price, for ``engine.numfmt``.
    """

    placement: str
    low: float | None = None
    high: float | None = None
    scale: tuple[float, float] | None = None
    centre: float | None = None
    decimals: int | None = None

    def zone(self, value: float) -> str | None:
        """'low' or 'high' when ``value`` is in a zone, else None (also for NaN)."""
        if self.low is not None and value <= self.low:
            return "low"
        if self.high is not None and value >= self.high:
            return "high"
        return None


_OVER = DisplayHint(OVERLAY)
_PANE = DisplayHint(OSCILLATOR)
_ZERO = DisplayHint(OSCILLATOR, centre=0.0)


def _bounded(low: float | None, high: float | None) -> DisplayHint:
    return DisplayHint(OSCILLATOR, low, high, scale=(0.0, 100.0), decimals=1)


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    name: str
    title: str
    func: Callable[..., Any]
    inputs: tuple[str, ...]
    params: Mapping[str, Param]
    outputs: tuple[str, ...]
    incremental: type
    _warmup: Callable[..., int]
    display: Mapping[str, DisplayHint]  # by output

    def resolve(self, **params: Any) -> dict[str, Any]:
        """All parameters, defaults filled in, each checked against its range."""
        unknown = set(params) - set(self.params)
        if unknown:
            raise IndicatorError(
                f"{self.name} has no parameter {', '.join(sorted(unknown))}; "
                f"it takes {', '.join(self.params) or 'none'}"
            )
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if name in params:
                out[name] = p.check(params[name])
            elif p.default is None:
                raise IndicatorError(f"{self.name} needs parameter {name}")
            else:
                out[name] = p.default
        return out

    def warmup(self, **params: Any) -> int:
        """Index of the first non-NaN value on input without NaN (all outputs start there)."""
        return self._warmup(**self.resolve(**params))

    def make_incremental(self, **params: Any) -> Any:
        return self.incremental(**self.resolve(**params))


def _p(name: str, default: int | float | None, minimum: int | float, maximum: int | float) -> Param:
    kind = float if isinstance(minimum, float) else int
    return Param(name, default, minimum, maximum, kind)


_MAX = batch.MAX_PERIOD
_SPECS: dict[str, IndicatorSpec] = {}


def _add(
    name: str,
    title: str,
    func: Callable[..., Any],
    inputs: tuple[str, ...],
    params: tuple[Param, ...],
    outputs: tuple[str, ...],
    inc: type,
    warmup: Callable[..., int],
    display: DisplayHint,
) -> None:
    _SPECS[name] = IndicatorSpec(
        name,
        title,
        func,
        inputs,
        MappingProxyType({p.name: p for p in params}),
        outputs,
        inc,
        warmup,
        MappingProxyType(dict.fromkeys(outputs, display)),
    )


_add(
    "sma",
    "Simple moving average",
    batch.sma,
    ("close",),
    (_p("period", 20, 1, _MAX),),
    ("sma",),
    incremental.SMA,
    lambda period: period - 1,
    _OVER,
)
_add(
    "ema",
    "Exponential moving average",
    batch.ema,
    ("close",),
    (_p("period", 20, 1, _MAX),),
    ("ema",),
    incremental.EMA,
    lambda period: period - 1,
    _OVER,
)
_add(
    "wma",
    "Weighted moving average",
    batch.wma,
    ("close",),
    (_p("period", 20, 1, _MAX),),
    ("wma",),
    incremental.WMA,
    lambda period: period - 1,
    _OVER,
)
_add(
    "rsi",
    "Relative strength index (Wilder)",
    batch.rsi,
    ("close",),
    (_p("period", 14, 2, _MAX),),
    ("rsi",),
    incremental.RSI,
    lambda period: period,
    _bounded(30.0, 70.0),
)
_add(
    "macd",
    "MACD",
    batch.macd,
    ("close",),
    (_p("fast", 12, 2, _MAX), _p("slow", 26, 2, _MAX), _p("signal", 9, 1, _MAX)),
    ("macd", "signal", "hist"),
    incremental.MACD,
    lambda fast, slow, signal: slow + signal - 2,
    _ZERO,
)
_add(
    "true_range",
    "True range",
    batch.true_range,
    ("high", "low", "close"),
    (),
    ("true_range",),
    incremental.TrueRange,
    lambda: 1,
    _PANE,
)
_add(
    "atr",
    "Average true range (Wilder)",
    batch.atr,
    ("high", "low", "close"),
    (_p("period", 14, 1, _MAX),),
    ("atr",),
    incremental.ATR,
    lambda period: period,
    _PANE,
)
_add(
    "bbands",
    "Bollinger bands",
    batch.bbands,
    ("close",),
    (_p("period", 20, 2, _MAX), _p("nbdev", 2.0, 0.0, 1e6)),
    ("upper", "middle", "lower"),
    incremental.BBands,
    lambda period, nbdev: period - 1,
    _OVER,
)
_add(
    "stoch",
    "Stochastic oscillator (slow)",
    batch.stoch,
    ("high", "low", "close"),
    (_p("fastk", 14, 1, _MAX), _p("slowk", 3, 1, _MAX), _p("slowd", 3, 1, _MAX)),
    ("k", "d"),
    incremental.Stoch,
    lambda fastk, slowk, slowd: fastk + slowk + slowd - 3,
    _bounded(20.0, 80.0),
)
_add(
    "adx",
    "Average directional index (Wilder)",
    batch.adx,
    ("high", "low", "close"),
    (_p("period", 14, 2, _MAX),),
    ("adx",),
    incremental.ADX,
    lambda period: 2 * period - 1,
    _bounded(None, 25.0),
)
_add(
    "obv",
    "On-balance volume",
    batch.obv,
    ("close", "volume"),
    (),
    ("obv",),
    incremental.OBV,
    lambda: 0,
    _PANE,
)
_add(
    "roc",
    "Rate of change (%)",
    batch.roc,
    ("close",),
    (_p("period", 10, 1, _MAX),),
    ("roc",),
    incremental.ROC,
    lambda period: period,
    DisplayHint(OSCILLATOR, centre=0.0, decimals=2),
)
_add(
    "vwap",
    "Rolling volume-weighted average price",
    batch.vwap,
    ("high", "low", "close", "volume"),
    (_p("period", 20, 1, _MAX),),
    ("vwap",),
    incremental.VWAP,
    lambda period: period - 1,
    _OVER,
)


def display_hint(name: str, output: str | None = None) -> DisplayHint:
    """How to show output ``output`` (default: the first) of indicator ``name``."""
    spec = get(name)
    key = spec.outputs[0] if output is None else output
    try:
        return spec.display[key]
    except KeyError:
        raise UnknownIndicatorError(
            f"{name} has no output {key!r}; it gives {', '.join(spec.outputs)}"
        ) from None


def names() -> tuple[str, ...]:
    """Every registered indicator name, sorted."""
    return tuple(sorted(_SPECS))


def get(name: str) -> IndicatorSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise UnknownIndicatorError(
            f"unknown indicator {name!r}; known: {', '.join(names())}"
        ) from None


def _column(columns: Mapping[str, np.ndarray] | InstrumentSeries, name: str) -> np.ndarray:
    if isinstance(columns, InstrumentSeries):
        return getattr(columns, name)
    try:
        return columns[name]
    except KeyError:
        raise IndicatorError(f"input column {name!r} is missing") from None


def compute(
    name: str, columns: Mapping[str, np.ndarray] | InstrumentSeries, **params: Any
) -> dict[str, np.ndarray]:
    """Run indicator ``name`` on the columns it needs; returns output name -> array."""
    spec = get(name)
    resolved = spec.resolve(**params)
    args = [_column(columns, c) for c in spec.inputs]
    result = spec.func(*args, **resolved)
    if len(spec.outputs) == 1:
        return {spec.outputs[0]: result}
    return dict(zip(spec.outputs, result, strict=True))
