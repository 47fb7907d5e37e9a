"""RSI leaving the middle for the oversold or overbought zone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from engine.indicators import registry as indicators
from engine.indicators.registry import DisplayHint
from engine.signals.base import (
    EPS,
    ConfigView,
    DetectorParams,
    IndicatorUse,
    Values,
    ZoneDetector,
    check,
    clip01,
    not_,
)
from engine.types import Direction


@dataclass(frozen=True)
class RsiConfig(DetectorParams):
    period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0
    rearm: float = 5.0  # leave the zone by this many points before it can fire again
    depth: float = 10.0  # points inside the zone at which strength reaches 1

    def validate(self, name: str) -> None:
        check(self.period >= 1, f"rsi.period must be >= 1, got {self.period}")
        check(
            0 < self.oversold < self.overbought < 100,
            f"rsi levels need 0 < oversold < overbought < 100, got "
            f"{self.oversold} and {self.overbought}",
        )
        check(self.rearm >= 0, f"rsi.rearm must be >= 0, got {self.rearm}")
        check(self.depth > 0, f"rsi.depth must be > 0, got {self.depth}")


class RsiDetector(ZoneDetector):
    """``rsi`` (RSI, Wilder): ``rsi_oversold`` (long) fires when RSI goes from >= oversold
    at i-1 to < oversold at i, if armed. It is armed by RSI reaching oversold + rearm (the
    first valid RSI counts), and disarmed by every entry (fired or suppressed). Mirror
    image for ``rsi_overbought`` (short). Strength 0.5 at the level, rising linearly to 1
    at ``depth`` points inside the zone."""

    name = "rsi"
    kinds = ("rsi_oversold", "rsi_overbought")
    rank = 10
    Params = RsiConfig

    def __init__(self, params: RsiConfig | None = None, config: ConfigView | None = None):
        super().__init__(params, config)
        cfg = self.cfg
        self.uses = (IndicatorUse("rsi", ("close",), {"period": cfg.period}, ("rsi",)),)
        self.lo = cfg.oversold - EPS
        self.lo_rearm = cfg.oversold + cfg.rearm - EPS
        self.hi = cfg.overbought + EPS
        self.hi_rearm = cfg.overbought - cfg.rearm + EPS

    def display_hints(self) -> dict[str, DisplayHint]:
        hint = indicators.display_hint("rsi")
        return {"rsi": replace(hint, low=self.cfg.oversold, high=self.cfg.overbought)}

    def evidence_hints(self) -> dict[str, DisplayHint]:
        rsi = self.display_hints()["rsi"]
        return {"rsi_prev": rsi, "level": replace(rsi, low=None, high=None)}

    def events(self, v: Values, p: Values) -> Any:
        c, q = v["rsi"], p["rsi"]
        enter_lo = (c < self.lo) & (q >= self.lo)
        rearm_lo = (c >= self.lo_rearm) & not_(q >= self.lo_rearm)
        enter_hi = (c > self.hi) & (q <= self.hi)
        rearm_hi = (c <= self.hi_rearm) & not_(q <= self.hi_rearm)
        return enter_lo * 1 | rearm_lo * 2 | enter_hi * 4 | rearm_hi * 8

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        rsi = v["rsi"]
        if kind == 0:
            level, depth, direction = self.cfg.oversold, self.cfg.oversold - rsi, Direction.LONG
        else:
            level, depth, direction = (
                self.cfg.overbought,
                rsi - self.cfg.overbought,
                Direction.SHORT,
            )
        strength = clip01(0.5 + 0.5 * depth / self.cfg.depth)
        return direction, strength, {"rsi": rsi, "rsi_prev": p["rsi"], "level": level}
