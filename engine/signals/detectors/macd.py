"""MACD crossing its signal line (or zero)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.signals.base import (
    ConfigView,
    CrossDetector,
    DetectorParams,
    IndicatorUse,
    check,
    clip01,
    safe_div,
)
from engine.types import Direction


@dataclass(frozen=True)
class MacdConfig(DetectorParams):
    fast: int = 12
    slow: int = 26
    signal: int = 9
    against: str = "signal"  # the line MACD must cross: "signal" or "zero"
    strength_atr: float = 0.2  # |change of the crossing gap| in ATRs giving strength 1

    def validate(self, name: str) -> None:
        check(
            1 <= self.fast < self.slow,
            f"macd needs 1 <= fast < slow, got fast={self.fast} slow={self.slow}",
        )
        check(self.signal >= 1, f"macd.signal must be >= 1, got {self.signal}")
        check(
            self.against in ("signal", "zero"),
            f"macd.against must be 'signal' or 'zero', got {self.against!r}",
        )
        check(self.strength_atr > 0, f"macd.strength_atr must be > 0, got {self.strength_atr}")


class MacdDetector(CrossDetector):
    """``macd`` (MACD 12/26/9): the gap is MACD - signal (``against="signal"``) or MACD
    itself (``against="zero"``). ``macd_cross_up`` (long) fires at the first candle where
    the gap is > +tol after its last value outside [-tol, +tol] was < -tol; mirror for
    ``macd_cross_down`` (short). Strength = |gap_i - gap_{i-1}| / (strength_atr x ATR),
    capped at 1: how hard the lines cross, in volatility units."""

    name = "macd"
    kinds = ("macd_cross_up", "macd_cross_down")
    rank = 20
    Params = MacdConfig

    def __init__(self, params: MacdConfig | None = None, config: ConfigView | None = None):
        super().__init__(params, config)
        cfg = self.cfg
        params_ = {"fast": cfg.fast, "slow": cfg.slow, "signal": cfg.signal}
        self.uses = (
            IndicatorUse("macd", ("close",), params_, ("macd", "macd_signal", "macd_hist")),
        )
        self.gap_key = "macd_hist" if cfg.against == "signal" else "macd"

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        move = abs(v[self.gap_key] - p[self.gap_key])
        strength = clip01(safe_div(move, self.cfg.strength_atr * v["atr"]))
        evidence = {
            "macd": v["macd"],
            "macd_signal": v["macd_signal"],
            "macd_hist": v["macd_hist"],
            f"{self.gap_key}_prev": p[self.gap_key],
            "atr": v["atr"],
        }
        return (Direction.LONG if kind == 0 else Direction.SHORT), strength, evidence
