"""The chart's overlays and oscillators come from the engine's declared display hints."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backtest import BacktestConfig
from engine.indicators import registry
from tui.hints import chart_hints, default_hints, display_extras, zone


def test_default_signals_give_both_emas_and_the_bands_as_overlays() -> None:
    hints = default_hints()
    assert [(o.key, o.label, o.slot) for o in hints.overlays] == [
        ("ema_fast", "EMA 9", 1),
        ("ema_slow", "EMA 21", 2),
        ("bb_upper", "BB 20 2", 3),
        ("bb_middle", "BB 20 2", 3),
        ("bb_lower", "BB 20 2", 3),
    ]


def test_the_oscillator_pane_offers_rsi_macd_stochastic_and_adx_with_declared_zones() -> None:
    oscs = {o.name: o for o in default_hints().oscillators}
    assert list(oscs) == ["rsi", "macd", "stoch", "adx"]
    assert oscs["rsi"].zones == (30.0, 70.0) and oscs["rsi"].scale == (0.0, 100.0)
    assert oscs["macd"].lines == ("macd", "macd_signal") and oscs["macd"].histogram == "macd_hist"
    assert oscs["stoch"].lines == ("stoch_k", "stoch_d") and oscs["stoch"].zones == (20.0, 80.0)
    assert oscs["adx"].zones == (registry.display_hint("adx").high,)
    assert default_hints().next_oscillator("adx") == "rsi"
    assert default_hints().next_oscillator("rsi", -1) == "adx"


def test_a_detectors_own_levels_move_the_zones() -> None:
    config = BacktestConfig().signal.with_params("rsi", oversold=25.0, overbought=80.0)
    rsi = chart_hints(config).oscillator("rsi")
    assert rsi.zones == (25.0, 80.0)


def test_zones_of_values_follow_the_hints() -> None:
    assert zone("rsi", 25.0) == "low" and zone("rsi", 75.0) == "high" and zone("rsi", 50.0) is None
    assert zone("adx", 30.0) == "high" and zone("adx_missing", 30.0) is None
    assert zone("ema_fast", 1e9) is None  # an overlay has no zones


def test_display_extras_are_the_registrys_values(sample_series) -> None:
    series = sample_series[0]
    extras = display_extras(series)
    stoch = registry.compute("stoch", series)
    np.testing.assert_array_equal(extras["stoch_k"], stoch["k"])
    np.testing.assert_array_equal(extras["adx"], registry.compute("adx", series)["adx"])
    # No lookahead: the values for a prefix of the candles equal the full run's.
    cut = 500
    from engine.data import select

    prefix = select(series, end=int(series.close_time[cut - 1]))
    assert len(prefix) == cut
    np.testing.assert_allclose(display_extras(prefix)["adx"], extras["adx"][:cut], equal_nan=True)


@pytest.mark.parametrize("key", ["rsi", "macd", "macd_signal", "macd_hist", "ema_fast"])
def test_every_value_the_chart_draws_has_a_hint(key) -> None:
    assert key in default_hints().values


def test_a_signals_evidence_in_points_is_shown_as_its_indicator() -> None:
    """An RSI signal's previous RSI and the level it crossed are RSI points (1 decimal),
    not prices; its close stays a price."""
    from engine.types import Direction, Signal
    from tui.panes import fmt_price, signal_line

    evidence = {"rsi": 72.94, "rsi_prev": 68.8935, "level": 70.0, "close": 0.0000219417}
    sig = Signal("PEPE/USDT", 0, "rsi_overbought", Direction.SHORT, 0.65, 0.00002194, evidence)
    text = signal_line(sig, {}).plain
    assert f"rsi=72.9  rsi_prev=68.9  level=70.0  close={fmt_price(0.0000219417)}" in text
