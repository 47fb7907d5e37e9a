"""A fast EMA crossing a slow one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.signals.base import (
    ConfigView,
    CrossDetector,
    DetectorParams,
    IndicatorUse,
    Values,
    check,
    clip01,
    safe_div,
)
from engine.types import Direction


@dataclass(frozen=True)
class EmaConfig(DetectorParams):
    fast: int = 9
    slow: int = 21
    gap_atr: float = 0.25  # |fast - slow| in ATRs giving the gap half of strength
    slope_atr: float = 0.25  # fast EMA's one-candle move in ATRs giving the slope half

    def validate(self, name: str) -> None:
        check(
            1 <= self.fast < self.slow,
            f"ema needs 1 <= fast < slow, got fast={self.fast} slow={self.slow}",
        )
        check(self.gap_atr > 0 and self.slope_atr > 0, "ema.gap_atr and ema.slope_atr must be > 0")


class EmaDetector(CrossDetector):
    """``ema`` (EMA fast / slow): the crossing rule of ``macd`` on fast - slow;
    ``ema_cross_up`` long, ``ema_cross_down`` short. Strength = 0.5 x min(1, |fast - slow|
    / (gap_atr x ATR)) + 0.5 x min(1, max(0, fast's one-candle move in the cross's
    direction) / (slope_atr x ATR))."""

    name = "ema"
    kinds = ("ema_cross_up", "ema_cross_down")
    rank = 30
    Params = EmaConfig
    gap_key = "ema_gap"

    def __init__(self, params: EmaConfig | None = None, config: ConfigView | None = None):
        super().__init__(params, config)
        self.uses = (
            IndicatorUse("ema", ("close",), {"period": self.cfg.fast}, ("ema_fast",)),
            IndicatorUse("ema", ("close",), {"period": self.cfg.slow}, ("ema_slow",)),
        )

    def derive(self, v: Values, p: Values) -> dict[str, Any]:
        return {"ema_gap": v["ema_fast"] - v["ema_slow"]}

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        sign = 1.0 if kind == 0 else -1.0
        atr = v["atr"]
        gap = safe_div(abs(v["ema_gap"]), self.cfg.gap_atr * atr)
        slope = safe_div(sign * (v["ema_fast"] - p["ema_fast"]), self.cfg.slope_atr * atr)
        strength = 0.5 * clip01(gap) + 0.5 * clip01(slope)
        evidence = {
            "ema_fast": v["ema_fast"],
            "ema_slow": v["ema_slow"],
            "ema_fast_prev": p["ema_fast"],
            "ema_gap_prev": p["ema_gap"],
            "atr": atr,
        }
        return (Direction.LONG if kind == 0 else Direction.SHORT), strength, evidence
