"""Volatility expansion: ATR rising well above its own average."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.signals.base import (
    EPS,
    ConfigView,
    DetectorParams,
    IndicatorUse,
    UpperZoneDetector,
    Values,
    check,
    clip01,
    safe_div,
    sign_direction,
)
from engine.types import Direction


@dataclass(frozen=True)
class AtrExpansionConfig(DetectorParams):
    period: int = 14
    average: int = 50  # SMA of ATR the current ATR is compared with
    threshold: float = 1.5  # ATR / average at which it fires
    rearm: float = 1.2  # ratio it must fall back under before it can fire again

    def validate(self, name: str) -> None:
        check(self.period >= 1, f"atr.period must be >= 1, got {self.period}")
        check(self.average >= 1, f"atr.average must be >= 1, got {self.average}")
        check(self.threshold > 1, f"atr.threshold must be > 1, got {self.threshold}")
        check(
            0 < self.rearm <= self.threshold,
            f"atr.rearm must be in (0, threshold], got {self.rearm}",
        )


class AtrExpansion(UpperZoneDetector):
    """``atr`` (volatility expansion): ratio = ATR / SMA(ATR, average). ``atr_expansion``
    fires when the ratio goes from <= threshold at i-1 to > threshold at i, if armed
    (armed by the ratio being < rearm, disarmed by every entry). Direction: the sign of
    close_i - close_{i-1} (neutral if equal). Strength = 0.5 x (ratio - 1) / (threshold -
    1), capped at 1 (0.5 at the threshold, 1 at twice as far from 1). Reads the ATR every
    instrument carries when the periods agree, else computes its own (``atr_expansion``)."""

    name = "atr"
    kinds = ("atr_expansion",)
    rank = 60
    Params = AtrExpansionConfig
    zone_key = "atr_ratio"

    def __init__(
        self, params: AtrExpansionConfig | None = None, config: ConfigView | None = None
    ) -> None:
        super().__init__(params, config)
        cfg = self.cfg
        base_period = cfg.period if config is None else config.atr_period
        self.atr_key = "atr" if cfg.period == base_period else "atr_expansion"
        uses = []
        if self.atr_key != "atr":
            uses.append(
                IndicatorUse(
                    "atr", ("high", "low", "close"), {"period": cfg.period}, (self.atr_key,)
                )
            )
        uses.append(IndicatorUse("sma", (self.atr_key,), {"period": cfg.average}, ("atr_avg",)))
        self.uses = tuple(uses)
        self.hi = cfg.threshold + EPS
        self.rearm = cfg.rearm - EPS

    def derive(self, v: Values, p: Values) -> dict[str, Any]:
        return {"atr_ratio": safe_div(v[self.atr_key], v["atr_avg"], 0.0)}

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        ratio = v["atr_ratio"]
        strength = clip01(0.5 * (ratio - 1.0) / (self.cfg.threshold - 1.0))
        change = v["close"] - p["close"]
        evidence = {
            "atr": v[self.atr_key],
            "atr_avg": v["atr_avg"],
            "atr_ratio": ratio,
            "close_change": change,
        }
        return sign_direction(change), strength, evidence
