"""The registry contract, and VWAP (which TA-Lib lacks) checked by hand."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.indicators as ind
from engine.errors import TapedeckError
from engine.indicators import incremental, registry
from engine.types import InstrumentSeries

EXPECTED = {
    # name: (inputs, outputs, params with defaults, warm-up at the defaults)
    "sma": (("close",), ("sma",), {"period": 20}, 19),
    "ema": (("close",), ("ema",), {"period": 20}, 19),
    "wma": (("close",), ("wma",), {"period": 20}, 19),
    "rsi": (("close",), ("rsi",), {"period": 14}, 14),
    "macd": (("close",), ("macd", "signal", "hist"), {"fast": 12, "slow": 26, "signal": 9}, 33),
    "true_range": (("high", "low", "close"), ("true_range",), {}, 1),
    "atr": (("high", "low", "close"), ("atr",), {"period": 14}, 14),
    "bbands": (("close",), ("upper", "middle", "lower"), {"period": 20, "nbdev": 2.0}, 19),
    "stoch": (("high", "low", "close"), ("k", "d"), {"fastk": 14, "slowk": 3, "slowd": 3}, 17),
    "adx": (("high", "low", "close"), ("adx",), {"period": 14}, 27),
    "obv": (("close", "volume"), ("obv",), {}, 0),
    "roc": (("close",), ("roc",), {"period": 10}, 10),
    "vwap": (("high", "low", "close", "volume"), ("vwap",), {"period": 20}, 19),
}
CLASSES = {
    "sma": "SMA",
    "ema": "EMA",
    "wma": "WMA",
    "rsi": "RSI",
    "macd": "MACD",
    "true_range": "TrueRange",
    "atr": "ATR",
    "bbands": "BBands",
    "stoch": "Stoch",
    "adx": "ADX",
    "obv": "OBV",
    "roc": "ROC",
    "vwap": "VWAP",
}


def candles(n: int = 300, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return {
        "open": close,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": rng.gamma(2.0, 10.0, n),
    }


def test_names_are_the_thirteen_indicators() -> None:
    assert registry.names() == tuple(sorted(EXPECTED))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_spec_fields(name: str) -> None:
    inputs, outputs, defaults, warm = EXPECTED[name]
    spec = registry.get(name)
    assert spec.name == name
    assert spec.inputs == inputs
    assert spec.outputs == outputs
    assert {k: p.default for k, p in spec.params.items()} == defaults
    for p in spec.params.values():
        assert p.minimum <= p.default <= p.maximum
    assert spec.func is getattr(ind, name)
    assert spec.incremental is getattr(incremental, CLASSES[name])
    assert spec.warmup() == warm


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_warmup_is_the_first_valid_index(name: str) -> None:
    spec = registry.get(name)
    cols = candles()
    for trial in range(5):
        params = {
            k: (p.minimum + 3 * trial if p.kind is int else 1.5) for k, p in spec.params.items()
        }
        if name == "macd":
            params["slow"] = params["fast"] + trial
        out = registry.compute(name, cols, **params)
        for values in out.values():
            valid = np.flatnonzero(~np.isnan(values))
            assert valid[0] == spec.warmup(**params), params
            assert valid.size == len(values) - valid[0]


def test_compute_accepts_a_mapping_or_an_instrument_series() -> None:
    cols = candles(50)
    n = len(cols["close"])
    s = InstrumentSeries(
        instrument="X",
        timeframe="1m",
        timeframe_ns=60_000_000_000,
        open_time=np.arange(n, dtype=np.int64) * 60_000_000_000,
        open=cols["open"],
        high=cols["high"],
        low=cols["low"],
        close=cols["close"],
        volume=cols["volume"],
        filled=np.zeros(n, dtype=bool),
    )
    a = registry.compute("stoch", cols, fastk=5)
    b = registry.compute("stoch", s, fastk=5)
    assert list(a) == ["k", "d"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(
        registry.compute("bbands", s)["middle"], ind.sma(cols["close"], 20)
    )


def test_registry_errors_are_clear() -> None:
    with pytest.raises(KeyError, match="unknown indicator 'foo'") as unknown:
        registry.get("foo")
    assert isinstance(unknown.value, TapedeckError)  # the CLI prints it on one line
    assert str(unknown.value).startswith("unknown indicator 'foo'; known: adx, atr,")
    with pytest.raises(TapedeckError, match="period must be between 1 and 100000, got 0"):
        ind.sma(np.ones(5), 0)
    with pytest.raises(ValueError, match="rsi has no parameter length"):
        registry.compute("rsi", candles(), length=3)
    with pytest.raises(ValueError, match="input column 'volume' is missing"):
        registry.compute("obv", {"close": np.ones(3)})
    with pytest.raises(ValueError, match="period must be between 2 and 100000"):
        registry.get("rsi").warmup(period=1)


def test_make_incremental_uses_defaults() -> None:
    rsi = registry.get("rsi").make_incremental()
    assert isinstance(rsi, incremental.RSI) and rsi.period == 14
    macd = registry.get("macd").make_incremental(signal=4)
    assert (macd.fast, macd.slow, macd.signal) == (12, 26, 4)


# VWAP has no TA-Lib peer: hand-computed values.
H = np.array([11.0, 12.0, 13.0, 12.0, 15.0, 14.0])
L = np.array([9.0, 10.0, 11.0, 10.0, 11.0, 12.0])
C = np.array([10.0, 11.0, 12.0, 11.0, 13.0, 13.0])
V = np.array([100.0, 200.0, 0.0, 300.0, 100.0, 0.0])
# typical prices (h + l + c) / 3: 10, 11, 12, 11, 13, 13


def test_vwap_by_hand() -> None:
    out = ind.vwap(H, L, C, V, 2)
    assert np.isnan(out[0])
    expected = [
        (10 * 100 + 11 * 200) / 300,  # bars 0-1
        11.0,  # bars 1-2: only bar 1 has volume
        11.0,  # bars 2-3: only bar 3
        (11 * 300 + 13 * 100) / 400,  # bars 3-4
        13.0,  # bars 4-5
    ]
    np.testing.assert_allclose(out[1:], expected, rtol=1e-15)
    np.testing.assert_allclose(ind.vwap(H, L, C, V, 1), [10, 11, np.nan, 11, 13, np.nan])
    full = ind.vwap(H, L, C, V, 6)
    assert np.isnan(full[:5]).all()
    assert full[5] == pytest.approx((1000 + 2200 + 3300 + 1300) / 700, rel=1e-15)


def test_vwap_window_without_volume_is_nan_then_recovers() -> None:
    v = np.array([5.0, 0.0, 0.0, 0.0, 2.0, 1.0])
    out = ind.vwap(H, L, C, v, 2)
    assert out[1] == 10.0
    assert np.isnan(out[2]) and np.isnan(out[3])
    np.testing.assert_allclose(out[4:], [13.0, 13.0], rtol=1e-15)
    inc = incremental.VWAP(2)
    got = [inc.update(*vals) for vals in zip(H, L, C, v, strict=True)]
    np.testing.assert_array_equal(got, out)


def test_vwap_stays_exact_over_a_long_series() -> None:
    """Running sums must not drift: compare with a direct window sum on 20k bars."""
    rng = np.random.default_rng(3)
    n, p = 20_000, 50
    c = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    h, lo = c * 1.001, c * 0.999
    v = rng.gamma(2.0, 10.0, n)
    tp = (h + lo + c) / 3.0
    window = np.lib.stride_tricks.sliding_window_view
    direct = (window(tp * v, p).sum(axis=1)) / window(v, p).sum(axis=1)
    np.testing.assert_allclose(ind.vwap(h, lo, c, v, p)[p - 1 :], direct, rtol=1e-9)


def test_incremental_fma_is_correctly_rounded() -> None:
    """The incremental EMA/RSI/ATR need a true fused multiply-add to match the kernels."""
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(0, 1e3, (3, 200))
    for x, y, z in zip(a, b, c, strict=True):
        assert incremental._fma(x, y, z) == incremental._fma_exact(x, y, z)
    assert incremental._fma(0.1, 10.0, -1.0) == 5.551115123125783e-17  # not 0.0


def test_importing_indicators_does_not_load_numba() -> None:
    """Start-up stays fast: numba loads on the first computation, not on import."""
    code = (
        "import sys; import engine.indicators, engine.indicators.registry, "
        "engine.indicators.incremental; print('numba' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    assert out.stdout.strip() == "False"


def test_display_hints_say_overlay_or_oscillator_and_zones() -> None:
    overlays = {n for n in registry.names() if registry.display_hint(n).placement == "overlay"}
    assert overlays == {"sma", "ema", "wma", "bbands", "vwap"}
    for name in registry.names():
        spec = registry.get(name)
        assert set(spec.display) == set(spec.outputs)
        assert registry.display_hint(name).placement in ("overlay", "oscillator")
    rsi = registry.display_hint("rsi")
    assert (rsi.low, rsi.high, rsi.scale, rsi.decimals) == (30.0, 70.0, (0.0, 100.0), 1)
    assert [rsi.zone(x) for x in (30.0, 50.0, 70.0, math.nan)] == ["low", None, "high", None]
    stoch = registry.display_hint("stoch", "d")
    assert (stoch.low, stoch.high) == (20.0, 80.0)
    assert registry.display_hint("adx").zone(25.0) == "high"
    assert registry.display_hint("macd", "hist").centre == 0.0
    with pytest.raises(registry.UnknownIndicatorError, match="no output 'x'"):
        registry.display_hint("macd", "x")
