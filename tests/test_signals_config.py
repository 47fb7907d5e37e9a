"""Signal configuration: defaults, detector names, validation with precise messages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.signals import (
    DEFAULT_DETECTORS,
    DETECTOR_NAMES,
    KINDS,
    SIGNAL_KINDS,
    SignalConfigError,
    SignalDetector,
    default_signal_config,
    detect_series,
    parse_detectors,
)
from tests.test_signals_detector import assert_same_signals, random_walk


def test_signal_kinds_are_the_contracts() -> None:
    assert set(SIGNAL_KINDS) == {
        "rsi_oversold",
        "rsi_overbought",
        "macd_cross_up",
        "macd_cross_down",
        "ema_cross_up",
        "ema_cross_down",
        "bb_breakout_up",
        "bb_breakout_down",
        "bb_touch_lower",
        "bb_touch_upper",
        "atr_expansion",
        "volume_spike",
        "stoch_cross_up",
        "stoch_cross_down",
    }
    assert set(KINDS) == set(DETECTOR_NAMES)


def test_default_config_runs_everything_with_a_five_step_window() -> None:
    cfg = default_signal_config()
    assert cfg.detectors == DEFAULT_DETECTORS
    assert (cfg.window, cfg.window_duration, cfg.window_ns) == (5, None, None)
    assert dataclasses.replace(cfg, window_duration="15m").window_ns == 15 * 60 * 10**9


def test_parse_detectors() -> None:
    assert parse_detectors("rsi, MACD,bb") == ("rsi", "macd", "bb_breakout", "bb_touch")
    assert parse_detectors(["volume", "volume"]) == ("volume",)
    with pytest.raises(SignalConfigError, match="unknown detector 'foo'"):
        parse_detectors("rsi,foo")
    with pytest.raises(SignalConfigError, match="no detector"):
        parse_detectors(" , ")


@pytest.mark.parametrize(
    ("detector", "params", "message"),
    [
        ("rsi", {"period": 1}, "rsi: period must be between 2"),
        ("rsi", {"oversold": 80}, "0 < oversold < overbought < 100"),
        ("macd", {"fast": 30}, "fast < slow"),
        ("macd", {"against": "median"}, "'signal' or 'zero'"),
        ("atr", {"threshold": 0.9}, "atr.threshold must be > 1"),
        ("volume", {"rearm": 9.0}, "volume.rearm must be <= threshold"),
        ("bb_touch", {"period": 1}, "bb_touch.period must be >= 2"),
        ("ema", {"cooldown": -1}, "ema.cooldown must be >= 0"),
        ("rsi", {"colour": 1}, "unknown parameter"),
    ],
)
def test_invalid_parameters_are_user_errors(detector: str, params: dict, message: str) -> None:
    with pytest.raises(SignalConfigError, match=message):
        default_signal_config().with_params(detector, **params)


def test_invalid_window_settings() -> None:
    cfg = default_signal_config()
    with pytest.raises(SignalConfigError, match="window must be >= 1"):
        dataclasses.replace(cfg, window=0)
    with pytest.raises(SignalConfigError, match="window_duration"):
        dataclasses.replace(cfg, window_duration="soon")
    with pytest.raises(SignalConfigError, match="correlation_threshold"):
        dataclasses.replace(cfg, correlation_threshold=1.5)


def test_own_atr_period_and_separate_bollinger_settings_in_both_paths() -> None:
    cfg = (
        default_signal_config()
        .with_params("atr", period=7, average=20, threshold=1.3, cooldown=0)
        .with_params("bb_touch", period=10, nbdev=1.5, cooldown=0)
        .with_params("bb_breakout", cooldown=0)
    )
    series = random_walk(11, 600, 3.0)
    vec = detect_series(series, cfg)
    assert {"atr", "atr_expansion", "bb_upper", "bb_touch_upper"} <= set(vec.indicators)
    assert not np.array_equal(vec.indicators["atr"], vec.indicators["atr_expansion"], True)
    kinds = {s.kind for s in vec.signals}
    assert {"atr_expansion", "bb_touch_lower", "bb_breakout_up"} <= kinds
    det = SignalDetector(series.instrument, cfg)
    stepped = [s for i in range(len(series)) for s in det.update(series.candle(i))]
    assert_same_signals(vec.signals, stepped)
