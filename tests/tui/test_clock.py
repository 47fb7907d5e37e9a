"""The playback clock: wall time x speed -> steps due."""

from __future__ import annotations

import pytest

from tui.clock import MAX_STEPS_PER_TICK, PlaybackClock, parse_speed, speed_factor


def test_one_x_is_real_time() -> None:
    clock = PlaybackClock(candle_seconds=60, speed="1x")
    assert clock.due(30.0) == 0
    assert clock.due(29.0) == 0
    assert clock.due(1.0) == 1  # 60 s of wall time in all
    assert clock.due(120.0) == 2


def test_hundred_x_of_one_minute_candles_is_0_6_seconds_a_candle() -> None:
    clock = PlaybackClock(candle_seconds=60, speed="100x")
    assert clock.due(0.59) == 0
    assert clock.due(0.02) == 1
    assert clock.due(6.0) == 10


def test_fractions_carry_over_between_frames() -> None:
    # 1000x of 1-minute candles = 16.67 candles/s; 30 frames of 1/30 s -> 16 whole candles.
    clock = PlaybackClock(candle_seconds=60, speed="1000x")
    total = sum(clock.due(1 / 30) for _ in range(30))
    assert total == 16
    assert clock.credit == pytest.approx(1000 / 60 - 16)


def test_max_speed_is_bounded_by_the_tick_budget_not_the_clock() -> None:
    clock = PlaybackClock(candle_seconds=300, speed="max")
    assert clock.is_max and clock.due(0.0) == MAX_STEPS_PER_TICK


def test_speed_ladder() -> None:
    clock = PlaybackClock(candle_seconds=60, speed="1x")
    assert [clock.faster() for _ in range(5)] == ["10x", "100x", "1000x", "max", "max"]
    assert [clock.slower() for _ in range(5)] == ["1000x", "100x", "10x", "1x", "1x"]


@pytest.mark.parametrize(
    "text,expected", [("100", "100x"), ("100x", "100x"), (" MAX ", "max"), ("2.5x", "2.5x")]
)
def test_parse_speed(text: str, expected: str) -> None:
    assert parse_speed(text) == expected


@pytest.mark.parametrize("text", ["fast", "0x", "-3", ""])
def test_bad_speed_is_refused_with_the_choices(text: str) -> None:
    with pytest.raises(ValueError, match="speed"):
        parse_speed(text)


def test_speed_factor() -> None:
    assert speed_factor("1000x") == 1000.0 and speed_factor("max") is None
