"""The playback clock: how many steps are due after some wall-clock time at a speed.

At speed ``s`` a candle of ``candle_seconds`` lasts ``candle_seconds / s`` wall seconds
(1x is real time; 100x of 1-minute candles is 0.6 s a candle). The clock keeps the
fraction of a candle that is not due yet, so slow speeds advance smoothly. "max" has no
time scale: each tick runs as many steps as fit in the tick's time budget.
"""

from __future__ import annotations

from dataclasses import dataclass

SPEEDS: tuple[str, ...] = ("1x", "10x", "100x", "1000x", "max")
FRAME_SECONDS = 1 / 30  # at most ~30 frames a second
MAX_STEPS_PER_TICK = 100_000


def parse_speed(text: str) -> str:
    t = str(text).strip().lower()
    if t in ("max", "maximum"):
        return "max"
    t = t.removesuffix("x")
    try:
        value = float(t)
    except ValueError:
        raise ValueError(f"invalid speed {text!r}: expected one of {', '.join(SPEEDS)}") from None
    if value <= 0:
        raise ValueError(f"invalid speed {text!r}: must be positive")
    return f"{value:g}x"


def speed_factor(speed: str) -> float | None:
    """Multiplier of real time, None for "max"."""
    return None if speed == "max" else float(speed.removesuffix("x"))


@dataclass
class PlaybackClock:
    candle_seconds: float
    speed: str = "10x"
    credit: float = 0.0  # candles due but not yet run (fractional)

    def set_speed(self, speed: str) -> None:
        self.speed = parse_speed(speed)
        self.credit = min(self.credit, 1.0)

    def faster(self) -> str:
        i = SPEEDS.index(self.speed) if self.speed in SPEEDS else 1
        self.set_speed(SPEEDS[min(i + 1, len(SPEEDS) - 1)])
        return self.speed

    def slower(self) -> str:
        i = SPEEDS.index(self.speed) if self.speed in SPEEDS else 1
        self.set_speed(SPEEDS[max(i - 1, 0)])
        return self.speed

    @property
    def is_max(self) -> bool:
        return self.speed == "max"

    def due(self, elapsed: float) -> int:
        """Steps to run now after ``elapsed`` wall seconds (for "max": MAX_STEPS_PER_TICK,
        the caller stops at its time budget)."""
        factor = speed_factor(self.speed)
        if factor is None:
            return MAX_STEPS_PER_TICK
        # Cap the backlog: after a long brain call the replay resumes, it does not race.
        self.credit = min(self.credit + max(elapsed, 0.0) * factor / self.candle_seconds, 1e6)
        steps = int(self.credit)
        self.credit -= steps
        return min(steps, MAX_STEPS_PER_TICK)

    def reset(self) -> None:
        self.credit = 0.0
