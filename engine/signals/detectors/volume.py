"""Volume spikes: a candle's volume far above the ones before it."""

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
class VolumeSpikeConfig(DetectorParams):
    window: int = 20  # candles before the current one that make the baseline
    threshold: float = 4.0  # z-score at which it fires
    rearm: float = 1.0  # z-score it must fall back under before it can fire again

    def validate(self, name: str) -> None:
        check(self.window >= 2, f"volume.window must be >= 2, got {self.window}")
        check(self.threshold > 0, f"volume.threshold must be > 0, got {self.threshold}")
        check(
            self.rearm <= self.threshold,
            f"volume.rearm must be <= threshold, got {self.rearm}",
        )


class VolumeSpike(UpperZoneDetector):
    """``volume`` (spike): z = (volume_i - mean) / std, mean and population std of the
    ``window`` volumes *before* candle i (std must exceed 1e-6 x mean). ``volume_spike``
    fires when z goes from <= threshold to > threshold, if armed (armed by z < rearm,
    disarmed by every entry). Direction: the sign of close - open (neutral if equal).
    Strength = 0.5 x z / threshold, capped at 1."""

    name = "volume"
    kinds = ("volume_spike",)
    rank = 70
    Params = VolumeSpikeConfig
    zone_key = "volume_z"

    def __init__(
        self, params: VolumeSpikeConfig | None = None, config: ConfigView | None = None
    ) -> None:
        super().__init__(params, config)
        cfg = self.cfg
        # Bollinger bands of volume with nbdev=1: middle = mean, upper - middle = std.
        self.uses = (
            IndicatorUse(
                "bbands",
                ("volume",),
                {"period": cfg.window, "nbdev": 1.0},
                ("volume_upper", "volume_mean", ""),
            ),
        )
        self.hi = cfg.threshold + EPS
        self.rearm = cfg.rearm - EPS

    def derive(self, v: Values, p: Values) -> dict[str, Any]:
        mean = p["volume_mean"]
        std = p["volume_upper"] - mean
        return {"volume_z": safe_div(v["volume"] - mean, std, mean * 1e-6)}

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        z = v["volume_z"]
        mean = p["volume_mean"]
        evidence = {
            "volume": v["volume"],
            "volume_mean": mean,
            "volume_std": p["volume_upper"] - mean,
            "volume_z": z,
        }
        return (
            sign_direction(v["close"] - v["open"]),
            clip01(0.5 * z / self.cfg.threshold),
            evidence,
        )
