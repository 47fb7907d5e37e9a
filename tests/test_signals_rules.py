"""Firing rules on hand-built indicator values: each strategy fires exactly at the
expected candle (not one early or late), re-arms and cools down as documented, and the
vectorised and step-by-step runners agree on every case."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest

from engine.signals.base import Detector
from engine.signals.detector import StrategyRunner, _shift, fire_series
from engine.signals.detectors.atr import AtrExpansion, AtrExpansionConfig
from engine.signals.detectors.bollinger import BollingerBreakout, BollingerConfig, BollingerTouch
from engine.signals.detectors.ema import EmaConfig, EmaDetector
from engine.signals.detectors.macd import MacdConfig, MacdDetector
from engine.signals.detectors.rsi import RsiConfig, RsiDetector
from engine.signals.detectors.volume import VolumeSpike, VolumeSpikeConfig
from engine.types import Direction

NAN = math.nan


def fire_on_arrays(strategy: Detector, values: Mapping[str, np.ndarray]) -> list[tuple[int, int]]:
    """Vectorised path of one strategy over given value arrays (candle columns and the
    indicator keys it uses): (candle index, kind index) of each signal."""
    v = {k: np.asarray(a, dtype=np.float64) for k, a in values.items()}
    p = {k: _shift(a) for k, a in v.items()}
    derived = strategy.derive(v, p)
    v.update(derived)
    p.update({k: _shift(a) for k, a in derived.items()})
    return fire_series(strategy, np.asarray(strategy.events(v, p), dtype=np.int64))


def fire_on_rows(strategy: Detector, values: Mapping[str, np.ndarray]) -> list[tuple[int, int]]:
    """Step path of one strategy over the same arrays, one candle's floats at a time."""
    runner = StrategyRunner(strategy)
    keys = list(values)
    n = len(next(iter(values.values())))
    p: dict[str, float] = dict.fromkeys(keys, math.nan)
    fired = []
    for i in range(n):
        v = {k: float(values[k][i]) for k in keys}
        derived = strategy.derive(v, p)
        if i == 0:
            p.update(dict.fromkeys(derived, math.nan))
        v.update(derived)
        kind = runner.step(i, int(strategy.events(v, p)))
        if kind >= 0:
            fired.append((i, kind))
        p = v
    return fired


def fire(strategy: Detector, **values: list[float]) -> list[tuple[int, str]]:
    """Both paths over the same values; they must agree. Returns (index, kind)."""
    n = len(next(iter(values.values())))
    values.setdefault("close", [100.0] * n)
    arrays = {k: np.array(v, dtype=np.float64) for k, v in values.items()}
    vec = fire_on_arrays(strategy, arrays)
    step = fire_on_rows(strategy, arrays)
    assert vec == step
    return [(i, strategy.kinds[k]) for i, k in vec]


# -- RSI ------------------------------------------------------------------------------

RSI_PATH = [NAN, NAN, 50, 40, 31, 29, 25, 31, 29, 33, 36, 29, 28, 40]


def test_rsi_fires_on_entering_the_zone_and_rearms_only_after_leaving_it() -> None:
    s = RsiDetector(RsiConfig(cooldown=0))
    # 5: 31 -> 29 enters. 8: enters again but RSI only got back to 31 (< 30 + 5): not
    # re-armed. 10: 36 re-arms. 11: enters -> fires.
    assert fire(s, rsi=RSI_PATH) == [(5, "rsi_oversold"), (11, "rsi_oversold")]


def test_rsi_overbought_is_the_mirror_image() -> None:
    s = RsiDetector(RsiConfig(cooldown=0))
    mirrored = [100 - x for x in RSI_PATH]
    assert fire(s, rsi=mirrored) == [(5, "rsi_overbought"), (11, "rsi_overbought")]


def test_rsi_cooldown_boundary() -> None:
    # Fires at 5; the next entry is at 11, 6 candles later.
    assert fire(RsiDetector(RsiConfig(cooldown=5)), rsi=RSI_PATH)[1][0] == 11
    assert fire(RsiDetector(RsiConfig(cooldown=6)), rsi=RSI_PATH) == [(5, "rsi_oversold")]


def test_rsi_entry_suppressed_by_cooldown_is_consumed_not_delayed() -> None:
    s = RsiDetector(RsiConfig(cooldown=3))
    # 1 fires; 2 re-arms; 3 enters inside the cooldown: consumed; 4 and 5 stay in the
    # zone (past the cooldown) and must not fire late.
    assert fire(s, rsi=[50, 29, 40, 29, 28, 27]) == [(1, "rsi_oversold")]


def test_rsi_starting_inside_the_zone_needs_arming_first() -> None:
    s = RsiDetector(RsiConfig(cooldown=0))
    assert fire(s, rsi=[NAN, 25, 20, 31, 29]) == []
    assert fire(s, rsi=[NAN, 25, 36, 29]) == [(3, "rsi_oversold")]


def test_rsi_level_itself_is_outside_the_zone() -> None:
    s = RsiDetector(RsiConfig(cooldown=0, rearm=0))
    assert fire(s, rsi=[50, 30, 30, 29.99]) == [(3, "rsi_oversold")]


def test_rsi_strength_and_evidence() -> None:
    s = RsiDetector(RsiConfig())
    d, strength, ev = s.describe(0, {"rsi": 26.0}, {"rsi": 31.0})
    assert d == Direction.LONG
    assert strength == pytest.approx(0.5 + 0.5 * 4 / 10)
    assert ev == {"rsi": 26.0, "rsi_prev": 31.0, "level": 30.0}
    d, strength, _ = s.describe(1, {"rsi": 95.0}, {"rsi": 60.0})
    assert (d, strength) == (Direction.SHORT, 1.0)


# -- MACD / EMA crossings ---------------------------------------------------------------

HIST = [NAN, -1, -0.5, 0.5, 0.2, -0.3, 1e-12, -0.1, 0.4]


def test_macd_crosses_signal_line_up_and_down() -> None:
    s = MacdDetector(MacdConfig(cooldown=0))
    # 1: first value, below: no cross yet. 3 up, 5 down. 6 sits in the dead band,
    # 7 is below again (no cross), 8 crosses up.
    assert fire(s, macd_hist=HIST) == [
        (3, "macd_cross_up"),
        (5, "macd_cross_down"),
        (8, "macd_cross_up"),
    ]


def test_macd_cooldown_suppresses_but_keeps_track_of_the_side() -> None:
    s = MacdDetector(MacdConfig(cooldown=2))
    # The down cross at 5 is 2 candles after 3: suppressed, yet the side is now "below",
    # so 8 is a real cross up.
    assert fire(s, macd_hist=HIST) == [(3, "macd_cross_up"), (8, "macd_cross_up")]


def test_hovering_in_the_dead_band_is_not_a_cross() -> None:
    s = MacdDetector(MacdConfig(cooldown=0))
    assert fire(s, macd_hist=[-1, 1e-12, -1e-12, 1e-12, 2]) == [(4, "macd_cross_up")]
    # From above, into the band and back above: nothing crossed.
    assert fire(s, macd_hist=[1, 1e-12, -1e-12, 2]) == []
    # A flat series (all zeros) never crosses.
    assert fire(s, macd_hist=[0.0] * 10) == []


def test_macd_zero_line_option_uses_the_macd_line() -> None:
    s = MacdDetector(MacdConfig(cooldown=0, against="zero"))
    macd = [NAN, -2, -1, 1, 2]
    hist = [NAN, 5, 5, 5, 5]  # ignored with against="zero"
    assert fire(s, macd=macd, macd_hist=hist) == [(3, "macd_cross_up")]


def test_macd_strength_is_the_crossing_speed_in_atrs() -> None:
    s = MacdDetector(MacdConfig(strength_atr=0.2))
    v = {"macd": 3.0, "macd_signal": 2.5, "macd_hist": 0.5, "atr": 10.0}
    d, strength, ev = s.describe(0, v, {"macd_hist": -0.5})
    assert d == Direction.LONG
    assert strength == pytest.approx(1.0 / 2.0)
    assert ev["macd_hist_prev"] == -0.5 and ev["atr"] == 10.0
    # No ATR yet: nothing to scale by, weakest strength rather than a crash.
    assert s.describe(0, {**v, "atr": NAN}, {"macd_hist": -0.5})[1] == 0.0


def test_ema_fast_crossing_slow() -> None:
    s = EmaDetector(EmaConfig(cooldown=0))
    fast = [NAN, 99, 99.5, 100.5, 101, 100]
    slow = [NAN, 100, 100, 100, 100, 100.2]
    assert fire(s, ema_fast=fast, ema_slow=slow) == [(3, "ema_cross_up"), (5, "ema_cross_down")]


def test_ema_strength_from_gap_and_slope() -> None:
    s = EmaDetector(EmaConfig(gap_atr=0.25, slope_atr=0.25))
    v = {"ema_fast": 101.0, "ema_slow": 100.5, "ema_gap": 0.5, "atr": 4.0}
    p = {"ema_fast": 100.0, "ema_gap": -0.2}
    # gap 0.5 / (0.25 * 4) = 0.5 -> 0.25; slope 1.0 / 1.0 = 1 -> 0.5
    assert s.describe(0, v, p)[1] == pytest.approx(0.75)
    # The same numbers read as a cross down: the slope points the wrong way.
    assert s.describe(1, v, p)[1] == pytest.approx(0.25)


# -- Bollinger ---------------------------------------------------------------------------


def bands(n: int, lo: float = 98.0, mid: float = 100.0, up: float = 102.0) -> dict:
    return {
        "bb_upper": [NAN] + [up] * (n - 1),
        "bb_middle": [NAN] + [mid] * (n - 1),
        "bb_lower": [NAN] + [lo] * (n - 1),
    }


def test_bollinger_breakout_on_the_close_crossing_a_band() -> None:
    s = BollingerBreakout(BollingerConfig(cooldown=0))
    close = [100, 101, 103, 104, 101, 96, 95, 99]
    assert fire(s, close=close, **bands(8)) == [(2, "bb_breakout_up"), (5, "bb_breakout_down")]


def test_bollinger_breakout_needs_the_band_before_it() -> None:
    s = BollingerBreakout(BollingerConfig(cooldown=0))
    # Above the band at the first candle that has a band: no "crossing" is known.
    assert fire(s, close=[100, 105, 106, 101, 103], **bands(5)) == [(4, "bb_breakout_up")]


def test_bollinger_touch_is_a_wick_through_the_band_with_the_close_back_inside() -> None:
    s = BollingerTouch(BollingerConfig(cooldown=0))
    low = [99, 99, 97.5, 97, 99, 97, 99, 99, 97]
    high = [101, 101, 100, 99, 101, 99, 102.5, 101, 103]
    close = [100, 100, 99, 98.5, 100, 97.5, 101, 100, 100]
    # 2: first touch. 3: touches again right after (not a first touch). 5: closes
    # outside (a breakout, not a touch). 6: upper touch. 8: both bands: neither.
    assert fire(s, low=low, high=high, close=close, **bands(9)) == [
        (2, "bb_touch_lower"),
        (6, "bb_touch_upper"),
    ]


def test_bollinger_strengths() -> None:
    b = BollingerBreakout(BollingerConfig())
    v = {"close": 103.0, "bb_upper": 102.0, "bb_middle": 100.0, "bb_lower": 98.0}
    assert b.describe(0, v, {})[1] == pytest.approx(0.75)  # half a half-width beyond
    t = BollingerTouch(BollingerConfig())
    v = {**v, "low": 97.5, "high": 100.0, "close": 99.5}
    d, strength, _ = t.describe(0, v, {})
    # rejection (99.5 - 97.5) / 2.5 = 0.8; penetration 0.5 / 2 = 0.25 -> x4 = 1
    assert d == Direction.LONG
    assert strength == pytest.approx(0.5 * 0.8 + 0.5 * 1.0)


# -- ATR expansion ------------------------------------------------------------------------


def test_atr_expansion_enters_above_threshold_and_rearms_below_rearm() -> None:
    s = AtrExpansion(AtrExpansionConfig(cooldown=0))
    atr = [NAN, 1.0, 1.6, 1.7, 1.3, 1.55, 1.1, 1.6]
    avg = [NAN] + [1.0] * 7
    # 2 fires; 5 re-enters without having fallen under 1.2: no; 6 re-arms; 7 fires.
    assert fire(s, atr=atr, atr_avg=avg) == [(2, "atr_expansion"), (7, "atr_expansion")]


def test_atr_expansion_direction_follows_the_close() -> None:
    s = AtrExpansion(AtrExpansionConfig())
    v = {"atr": 2.0, "atr_avg": 1.0, "atr_ratio": 2.0, "close": 99.0}
    d, strength, ev = s.describe(0, v, {"close": 100.0})
    assert (d, strength, ev["close_change"]) == (Direction.SHORT, 1.0, -1.0)
    assert s.describe(0, {**v, "close": 100.0}, {"close": 100.0})[0] == Direction.NEUTRAL


# -- volume spike -------------------------------------------------------------------------


def test_volume_spike_z_score_against_the_previous_window() -> None:
    s = VolumeSpike(VolumeSpikeConfig(cooldown=0, threshold=4.0, rearm=1.0))
    n = 7
    volume = [10, 10, 19, 20, 10, 19, 11]
    mean = [10.0] * n
    upper = [12.0] * n  # std 2
    # z = (v - 10) / 2 from the candle before: 0, 4.5, 5, 0, 4.5, 0.5
    expected = [(2, "volume_spike"), (5, "volume_spike")]
    assert fire(s, volume=volume, volume_mean=mean, volume_upper=upper) == expected
    # The baseline is the window *before* the candle: the spike's own window is ignored.
    mean[2], upper[2] = 1000.0, 2000.0
    assert fire(s, volume=volume, volume_mean=mean, volume_upper=upper)[0] == (2, "volume_spike")


def test_volume_spike_needs_a_spread_baseline() -> None:
    s = VolumeSpike(VolumeSpikeConfig(cooldown=0))
    # A flat baseline (std 0) gives no z-score at all, whatever the volume.
    flat = {"volume_mean": [10.0] * 4, "volume_upper": [10.0] * 4}
    assert fire(s, volume=[10, 10, 1000, 10], **flat) == []


def test_volume_spike_direction_and_strength() -> None:
    s = VolumeSpike(VolumeSpikeConfig(threshold=4.0))
    v = {"volume": 30.0, "volume_z": 10.0, "open": 100.0, "close": 101.0}
    p = {"volume_mean": 10.0, "volume_upper": 12.0}
    d, strength, ev = s.describe(0, v, p)
    assert (d, strength) == (Direction.LONG, 1.0)
    assert ev == {"volume": 30.0, "volume_mean": 10.0, "volume_std": 2.0, "volume_z": 10.0}
