"""The detector registry: every detector declares itself, nothing is listed twice, the
default set and the run log's record of a config are what they were before it."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

from engine.plain import plain
from engine.signals import SignalConfig, SignalConfigError, default_signal_config, registry
from engine.signals.base import Detector, DetectorParams

OLD_DEFAULT = ("rsi", "macd", "ema", "bb_breakout", "bb_touch", "atr", "volume")


def test_every_detector_declares_name_kinds_params_and_rank() -> None:
    for name, cls in registry.DETECTORS.items():
        assert issubclass(cls, Detector) and cls.name == name
        assert cls.kinds and all(k.islower() for k in cls.kinds)
        params = cls.Params()
        assert isinstance(params, DetectorParams) and dataclasses.is_dataclass(params)
        params.validate(name)
        detector = cls(params, default_signal_config())
        assert detector.uses, f"{name} declares no indicator"
        assert detector.cooldown == params.cooldown
    ranks = [cls.rank for cls in registry.DETECTORS.values()]
    assert ranks == sorted(ranks)
    assert len(set(registry.SIGNAL_KINDS)) == len(registry.SIGNAL_KINDS)
    assert list(registry.KIND_ORDER) == list(registry.SIGNAL_KINDS)


def test_the_default_set_is_unchanged() -> None:
    assert registry.DEFAULT_DETECTORS == OLD_DEFAULT
    assert default_signal_config().detectors == OLD_DEFAULT
    assert registry.DETECTOR_NAMES[: len(OLD_DEFAULT)] == OLD_DEFAULT
    assert registry.ALIASES == {"bb": ("bb_breakout", "bb_touch")}


def test_the_run_log_record_keeps_its_keys_and_adds_enabled_extras() -> None:
    record = plain(default_signal_config())
    assert list(record) == [
        "detectors",
        *OLD_DEFAULT,
        "atr_period",
        "window",
        "window_duration",
        "context_lookback",
        "correlation_lookback",
        "correlation_threshold",
        "emit_empty",
    ]
    assert record["rsi"] == {
        "cooldown": 30,
        "period": 14,
        "oversold": 30.0,
        "overbought": 70.0,
        "rearm": 5.0,
        "depth": 10.0,
    }
    extras = [n for n in registry.DETECTOR_NAMES if n not in OLD_DEFAULT]
    for name in extras:
        with_extra = plain(default_signal_config().with_detectors(["rsi", name]))
        assert with_extra["detectors"] == ["rsi", name]
        assert with_extra[name] == plain(registry.DETECTORS[name].Params())
    json.dumps(record, allow_nan=False)


def test_configs_are_frozen_hashable_picklable_and_compare_by_value() -> None:
    a = default_signal_config().with_params("rsi", period=7)
    b = default_signal_config().with_params("rsi", period=7)
    assert a == b and hash(a) == hash(b) and a != default_signal_config()
    assert pickle.loads(pickle.dumps(a)) == a
    assert a.params_of("rsi").period == 7 and default_signal_config().params_of("rsi").period == 14
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.window = 3  # type: ignore[misc]
    with pytest.raises(SignalConfigError, match="unknown detector 'nope'"):
        a.params_of("nope")
    with pytest.raises(SignalConfigError, match="must be a RsiConfig"):
        SignalConfig(params={"rsi": registry.DETECTORS["macd"].Params()})


def test_every_value_key_has_a_display_hint() -> None:
    from engine.indicators.registry import OSCILLATOR, OVERLAY
    from engine.signals import detect_series
    from tests.test_signals_detector import random_walk

    config = default_signal_config().with_detectors(registry.DETECTOR_NAMES)
    config = config.with_params("rsi", oversold=25.0, overbought=75.0)
    config = config.with_params("bb_touch", period=10)
    hints = registry.value_hints(config)
    keys = set(detect_series(random_walk(5, 300, 10.0), config).indicators)
    assert set(hints) == keys
    overlays = {k for k, h in hints.items() if h.placement == OVERLAY}
    assert overlays == {
        "ema_fast",
        "ema_slow",
        *(f"{p}_{b}" for p in ("bb", "bb_touch") for b in ("upper", "middle", "lower")),
    }
    # bands of volume and an average of ATR are not drawn over prices
    assert hints["volume_mean"].placement == OSCILLATOR
    assert hints["atr_avg"].placement == OSCILLATOR
    # zones follow the detector's own levels
    assert (hints["rsi"].low, hints["rsi"].high, hints["rsi"].scale) == (25.0, 75.0, (0, 100))
    assert hints["rsi"].zone(24.0) == "low" and hints["rsi"].zone(50.0) is None
    assert (hints["stoch_d"].low, hints["stoch_d"].high) == (20.0, 80.0)
    assert hints["macd_hist"].centre == 0.0 and hints["ema_gap"].centre == 0.0
    assert hints["atr_ratio"].high == 1.5 and hints["volume_z"].high == 4.0


def test_evidence_keys_in_points_have_their_indicators_hint() -> None:
    """Every evidence key of the configured detectors' signals is a value key or has an
    evidence hint where it is not a price: the previous value keeps its indicator's zones,
    the level crossed its decimals only."""
    from engine.signals import detect_series
    from tests.test_signals_detector import random_walk

    config = default_signal_config().with_detectors(registry.DETECTOR_NAMES)
    config = config.with_params("rsi", oversold=25.0, overbought=75.0)
    values, evidence = registry.value_hints(config), registry.evidence_hints(config)
    signals = detect_series(random_walk(5, 3000, 10.0), config).signals
    kinds = {s.kind.split("_")[0] for s in signals}
    assert {"rsi", "stoch"} <= kinds  # the walk fires both
    others = {k for s in signals for k in s.evidence if k not in values}
    assert {"rsi_prev", "stoch_k_prev", "stoch_d_prev", "level"} <= others
    assert set(evidence) == {"rsi_prev", "stoch_k_prev", "stoch_d_prev", "level"}
    assert evidence["rsi_prev"] == values["rsi"] and evidence["stoch_k_prev"] == values["stoch_k"]
    assert evidence["level"].decimals == values["rsi"].decimals == 1
    assert evidence["level"].zone(99.0) is None
