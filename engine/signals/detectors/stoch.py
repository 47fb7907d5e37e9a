"""Stochastic cross: %K crossing %D inside the oversold or overbought zone (not default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.indicators import registry as indicators
from engine.indicators.registry import OSCILLATOR, DisplayHint
from engine.signals.base import (
    EPS,
    ConfigView,
    CrossState,
    Detector,
    DetectorParams,
    IndicatorUse,
    Values,
    check,
    clip01,
    cross_gate,
    cross_gates,
    not_,
)
from engine.types import Direction


@dataclass(frozen=True)
class StochConfig(DetectorParams):
    fastk: int = 14  # candles of the raw %K (close within the high-low range)
    slowk: int = 3  # SMA smoothing raw %K into %K
    slowd: int = 3  # SMA of %K giving %D
    oversold: float = 20.0
    overbought: float = 80.0
    depth: float = 10.0  # points of %D inside the zone at which strength reaches 1

    def validate(self, name: str) -> None:
        check(
            0 < self.oversold < self.overbought < 100,
            f"{name} levels need 0 < oversold < overbought < 100, got "
            f"{self.oversold} and {self.overbought}",
        )
        check(self.depth > 0, f"{name}.depth must be > 0, got {self.depth}")


class StochCross(Detector):
    """``stoch`` (slow stochastic fastk/slowk/slowd, TA-Lib STOCH with SMA smoothing):
    the gap is %K - %D, in points. ``stoch_cross_up`` (long) fires at a candle where the
    gap goes above +EPS after its last value outside [-EPS, +EPS] was below -EPS (the
    crossing rule of ``macd``) while %D < oversold at that candle; mirror image for
    ``stoch_cross_down`` (short) with %D > overbought. A crossing outside its zone fires
    nothing but still moves the side. Strength 0.5 at the level, rising linearly to 1 at
    ``depth`` points of %D inside the zone. Not in the default set: ``--detectors
    stoch`` (or a config naming it) runs it."""

    name = "stoch"
    kinds = ("stoch_cross_up", "stoch_cross_down")
    rank = 80
    default = False
    Params = StochConfig

    def __init__(self, params: StochConfig | None = None, config: ConfigView | None = None):
        super().__init__(params, config)
        cfg = self.cfg
        periods = {"fastk": cfg.fastk, "slowk": cfg.slowk, "slowd": cfg.slowd}
        self.uses = (
            IndicatorUse("stoch", ("high", "low", "close"), periods, ("stoch_k", "stoch_d")),
        )

    def display_hints(self) -> dict[str, DisplayHint]:
        hint = indicators.display_hint("stoch")
        zones = replace(hint, low=self.cfg.oversold, high=self.cfg.overbought)
        return {
            "stoch_k": zones,
            "stoch_d": zones,
            "stoch_gap": DisplayHint(OSCILLATOR, centre=0.0),
        }

    def evidence_hints(self) -> dict[str, DisplayHint]:
        zones = self.display_hints()["stoch_k"]
        level = replace(zones, low=None, high=None)
        return {"stoch_k_prev": zones, "stoch_d_prev": zones, "level": level}

    def derive(self, v: Values, p: Values) -> dict[str, Any]:
        return {"stoch_gap": v["stoch_k"] - v["stoch_d"]}

    def events(self, v: Values, p: Values) -> Any:
        """Bits: 1 gap above +EPS (from not above), 2 below -EPS (from not below),
        4 that up move with %D in the oversold zone, 8 that down move in the overbought."""
        g, q, d = v["stoch_gap"], p["stoch_gap"], v["stoch_d"]
        up = (g > EPS) & not_(q > EPS)
        down = (g < -EPS) & not_(q < -EPS)
        return (
            up * 1
            | down * 2
            | (up & (d < self.cfg.oversold)) * 4
            | (down & (d > self.cfg.overbought)) * 8
        )

    def new_state(self) -> CrossState:
        return CrossState()

    def gate(self, state: CrossState, code: int) -> int:
        kind = cross_gate(state, code & 3)
        if (kind == 0 and code & 4) or (kind == 1 and code & 8):
            return kind
        return -1

    @staticmethod
    def gate_events(codes: np.ndarray) -> np.ndarray:
        kind = cross_gates(codes & 3)
        zone = ((kind == 0) & ((codes & 4) != 0)) | ((kind == 1) & ((codes & 8) != 0))
        return np.where(zone, kind, -1)

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        k, d = v["stoch_k"], v["stoch_d"]
        if kind == 0:
            level, depth, direction = self.cfg.oversold, self.cfg.oversold - d, Direction.LONG
        else:
            level, depth, direction = self.cfg.overbought, d - self.cfg.overbought, Direction.SHORT
        strength = clip01(0.5 + 0.5 * depth / self.cfg.depth)
        evidence = {
            "stoch_k": k,
            "stoch_d": d,
            "stoch_k_prev": p["stoch_k"],
            "stoch_d_prev": p["stoch_d"],
            "level": level,
        }
        return direction, strength, evidence
