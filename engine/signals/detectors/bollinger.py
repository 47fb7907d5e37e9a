"""Bollinger bands: the close breaking out of them, or a wick touching them and rejected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.signals.base import (
    REL_EPS,
    ConfigView,
    Detector,
    DetectorParams,
    IndicatorUse,
    Values,
    check,
    clip01,
    safe_div,
)
from engine.types import Direction


@dataclass(frozen=True)
class BollingerConfig(DetectorParams):
    period: int = 20
    nbdev: float = 2.0

    def validate(self, name: str) -> None:
        check(self.period >= 2, f"{name}.period must be >= 2, got {self.period}")
        check(self.nbdev > 0, f"{name}.nbdev must be > 0, got {self.nbdev}")


class _Bollinger(Detector):
    """Reads the bands under the keys ``{prefix}_upper/_middle/_lower``."""

    aliases = ("bb",)
    Params = BollingerConfig

    def __init__(
        self, params: BollingerConfig | None = None, config: ConfigView | None = None
    ) -> None:
        super().__init__(params, config)
        prefix = self._prefix(config)
        self.k = (f"{prefix}_upper", f"{prefix}_middle", f"{prefix}_lower")
        params_ = {"period": self.cfg.period, "nbdev": self.cfg.nbdev}
        self.uses = (IndicatorUse("bbands", ("close",), params_, self.k),)

    def _prefix(self, config: ConfigView | None) -> str:
        return "bb"


class BollingerBreakout(_Bollinger):
    """``bb_breakout`` (Bollinger): ``bb_breakout_up`` (long) when close > upper at i and
    close <= upper at i-1 (both bands valid); ``bb_breakout_down`` (short) mirror on the
    lower band. Strength = 0.5 + 0.5 x (close - band) / (upper - middle), capped at 1."""

    name = "bb_breakout"
    kinds = ("bb_breakout_up", "bb_breakout_down")
    rank = 40

    def events(self, v: Values, p: Values) -> Any:
        up, _, lo = self.k
        tol, tol_p = v["close"] * REL_EPS, p["close"] * REL_EPS
        out_up = (v["close"] > v[up] + tol) & (p["close"] <= p[up] + tol_p)
        out_down = (v["close"] < v[lo] - tol) & (p["close"] >= p[lo] - tol_p)
        return out_up * 1 | out_down * 2

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        up, mid, lo = self.k
        half = v[up] - v[mid]
        excess = (v["close"] - v[up]) if kind == 0 else (v[lo] - v["close"])
        strength = clip01(0.5 + safe_div(0.5 * excess, half, default=0.0))  # 0.5 without bands
        evidence = {"close": v["close"], up: v[up], mid: v[mid], lo: v[lo]}
        return (Direction.LONG if kind == 0 else Direction.SHORT), strength, evidence


class BollingerTouch(_Bollinger):
    """``bb_touch`` (Bollinger, mean reversion): ``bb_touch_lower`` (long) when low <=
    lower and close > lower at i, and low > lower at i-1 (first touch). ``bb_touch_upper``
    (short) mirror on the upper band. A candle touching both bands fires neither.
    Strength = 0.5 x rejection + 0.5 x min(1, 4 x penetration), rejection = how far the
    close came back across the candle's range, penetration = wick beyond the band in
    half band widths. Shares the ``bb_*`` bands with ``bb_breakout`` when their
    parameters are equal, else keeps its own under ``bb_touch_*``."""

    name = "bb_touch"
    kinds = ("bb_touch_lower", "bb_touch_upper")
    rank = 50

    def _prefix(self, config: ConfigView | None) -> str:
        if config is None or "bb_breakout" not in config.detectors:
            return "bb"
        return "bb" if self.cfg == config.params_of("bb_breakout") else "bb_touch"

    def events(self, v: Values, p: Values) -> Any:
        up, _, lo = self.k
        tol, tol_p = v["close"] * REL_EPS, p["close"] * REL_EPS
        touch_lo = (
            (v["low"] <= v[lo] + tol) & (v["close"] > v[lo] + tol) & (p["low"] > p[lo] + tol_p)
        )
        touch_up = (
            (v["high"] >= v[up] - tol) & (v["close"] < v[up] - tol) & (p["high"] < p[up] - tol_p)
        )
        return touch_lo * 1 | touch_up * 2

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        up, mid, lo = self.k
        high, low, close = v["high"], v["low"], v["close"]
        half = v[up] - v[mid]
        rng = high - low
        if kind == 0:
            rejection = safe_div(close - low, rng, default=0.0)
            penetration = safe_div(v[lo] - low, half, default=0.0)
            direction = Direction.LONG
        else:
            rejection = safe_div(high - close, rng, default=0.0)
            penetration = safe_div(high - v[up], half, default=0.0)
            direction = Direction.SHORT
        strength = 0.5 * clip01(rejection) + 0.5 * clip01(4.0 * penetration)
        evidence = {"low": low, "high": high, "close": close, up: v[up], mid: v[mid], lo: v[lo]}
        return direction, strength, evidence
