"""Detectors on candles: exact firing candles on hand-built series, the indicator arrays
the engine relies on, and properties (no lookahead, determinism, vectorised equals
step by step)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.signals import (
    SignalConfig,
    SignalDetector,
    default_signal_config,
    detect_series,
)
from engine.signals.detector import RECENT_MOVES, CandleValues, _moves, make_context
from engine.types import Direction, InstrumentSeries, Signal

MINUTE = 60_000_000_000
T0 = 1_640_995_200_000_000_000  # 2022-01-01T00:00Z


def make_series(
    close: np.ndarray,
    *,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    open_: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    name: str = "TEST",
) -> InstrumentSeries:
    close = np.asarray(close, dtype=np.float64)
    n = close.shape[0]
    open_ = close.copy() if open_ is None else np.asarray(open_, dtype=np.float64)
    high = np.maximum(open_, close) if high is None else np.asarray(high, dtype=np.float64)
    low = np.minimum(open_, close) if low is None else np.asarray(low, dtype=np.float64)
    volume = np.full(n, 10.0) if volume is None else np.asarray(volume, dtype=np.float64)
    return InstrumentSeries(
        instrument=name,
        timeframe="1m",
        timeframe_ns=MINUTE,
        open_time=T0 + np.arange(n, dtype=np.int64) * MINUTE,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        filled=np.zeros(n, dtype=bool),
    )


def only(detectors: str, **overrides: object) -> SignalConfig:
    cfg = default_signal_config().with_detectors(detectors)
    for name, params in overrides.items():
        cfg = cfg.with_params(name, **params)  # type: ignore[arg-type]
    return cfg


def index_of(series: InstrumentSeries, signal: Signal) -> int:
    return int(np.flatnonzero(series.close_time == signal.time)[0])


# -- hand-built series ------------------------------------------------------------------


def test_rsi_oversold_fires_at_the_exact_candle() -> None:
    # 20 rises of 1 then falls of 1: Wilder's averages give RSI = 100 x (13/14)^k after
    # k falls: 30.5 at k = 16, 28.3 at k = 17 -> the signal is at candle 20 + 17.
    close = np.concatenate([100.0 + np.arange(21), 119.0 - np.arange(30)])
    series = make_series(close)
    result = detect_series(series, only("rsi"))
    assert [(index_of(series, s), s.kind) for s in result.signals] == [(37, "rsi_oversold")]
    sig = result.signals[0]
    assert sig.time == int(series.open_time[37]) + MINUTE  # the candle's close
    assert sig.price == close[37]
    assert sig.direction == Direction.LONG
    assert sig.evidence["rsi"] == pytest.approx(100 * (13 / 14) ** 17, rel=1e-9)
    assert sig.evidence["rsi_prev"] == pytest.approx(100 * (13 / 14) ** 16, rel=1e-9)


def test_bollinger_breakout_fires_on_the_jump_candle() -> None:
    # Flat 100 then 110: bands over [100 x4, 110] are 102 +- 1.5 x 4; 110 > 108.
    close = np.array([100.0] * 10 + [110.0, 110.0])
    series = make_series(close)
    cfg = only("bb_breakout", bb_breakout={"period": 5, "nbdev": 1.5})
    result = detect_series(series, cfg)
    assert [(index_of(series, s), s.kind) for s in result.signals] == [(10, "bb_breakout_up")]
    assert result.signals[0].strength == pytest.approx(0.5 + 0.5 * 2 / 6)
    assert result.signals[0].evidence["bb_upper"] == pytest.approx(108.0)


def test_volume_spike_fires_on_the_spike_candle_with_its_direction() -> None:
    volume = np.array([10.0, 12.0] * 15 + [20.0, 11.0, 11.0])
    close = np.full(volume.shape, 100.0)
    open_ = close.copy()
    open_[30] = 99.0  # the spike candle closes up
    series = make_series(close, open_=open_, volume=volume)
    result = detect_series(series, only("volume"))
    assert [(index_of(series, s), s.kind) for s in result.signals] == [(30, "volume_spike")]
    sig = result.signals[0]
    assert sig.direction == Direction.LONG
    # Baseline: the 20 volumes before candle 30, mean 11 and std 1.
    assert sig.evidence["volume_z"] == pytest.approx(9.0, rel=1e-9)


def v_shape(n_down: int = 60, n_up: int = 60) -> np.ndarray:
    down = 200.0 - 0.5 * np.arange(n_down) + 0.3 * np.sin(np.arange(n_down))
    up = down[-1] + 0.5 * np.arange(1, n_up + 1)
    return np.concatenate([down, up])


def crossings(gap: np.ndarray) -> list[tuple[int, str]]:
    """Every sign change of a gap series, read off plainly: (index, "up" | "down")."""
    out, side = [], 0
    for i, g in enumerate(gap.tolist()):
        if g > 0:
            if side < 0:
                out.append((i, "up"))
            side = 1
        elif g < 0:
            if side > 0:
                out.append((i, "down"))
            side = -1
    return out


def test_ema_and_macd_crosses_land_on_talibs_crossing_candles() -> None:
    i = np.arange(240)
    close = 100.0 + 5.0 * np.sin(2 * np.pi * i / 45) + 0.01 * i
    series = make_series(close)
    cfg = only("ema,macd", ema={"cooldown": 0}, macd={"cooldown": 0})
    result = detect_series(series, cfg)
    for name, gap in (
        ("ema", talib.EMA(close, 9) - talib.EMA(close, 21)),
        ("macd", talib.MACD(close, 12, 26, 9)[2]),
    ):
        expected = crossings(gap)
        assert len(expected) >= 6
        got = [
            (index_of(series, s), s.kind.rsplit("_", 1)[1])
            for s in result.signals
            if s.kind.startswith(name)
        ]
        assert got == expected


def test_flat_series_fires_nothing_but_carries_atr() -> None:
    series = make_series(np.full(300, 0.00001234))
    result = detect_series(series, default_signal_config())
    assert result.signals == []
    assert np.all(result.indicators["atr"][14:] == 0.0)
    assert np.isnan(result.indicators["atr"][:14]).all()


def test_indicators_are_aligned_and_always_include_atr() -> None:
    close = v_shape()
    series = make_series(close)
    for detectors in ("rsi", "volume", "macd,ema,bb,atr"):
        result = detect_series(series, only(detectors))
        assert "atr" in result.indicators
        for key, values in result.indicators.items():
            assert values.shape == close.shape, key
    full = detect_series(series, default_signal_config())
    high, low = series.high, series.low
    np.testing.assert_allclose(
        full.indicators["atr"], talib.ATR(high, low, close, 14), rtol=1e-9, equal_nan=True
    )
    np.testing.assert_allclose(full.indicators["rsi"], talib.RSI(close, 14), equal_nan=True)


def test_step_detector_values_and_context() -> None:
    close = v_shape()
    series = make_series(close)
    cfg = default_signal_config()
    det = SignalDetector("TEST", cfg)
    assert det.context() is None
    for i in range(len(series)):
        det.update(series.candle(i))
    result = detect_series(series, cfg)
    last = len(series) - 1
    for key, value in det.values.items():
        assert value == pytest.approx(result.indicators[key][last], rel=1e-9, nan_ok=True), key
    ctx = det.context()
    assert ctx is not None
    assert ctx.price == close[-1] and ctx.lookback == cfg.context_lookback
    assert ctx.change_pct == pytest.approx((close[-1] / close[-61] - 1) * 100)
    assert ctx.atr == pytest.approx(result.indicators["atr"][last])
    vec_ctx = result.context(last, cfg.context_lookback)
    assert (vec_ctx.price, vec_ctx.lookback) == (ctx.price, ctx.lookback)
    assert vec_ctx.change_pct == ctx.change_pct
    assert vec_ctx.indicators.keys() == ctx.indicators.keys()
    assert "atr" in ctx.indicators and "rsi" in ctx.indicators


def test_series_context_is_make_context_of_the_candle_values() -> None:
    """``SeriesSignals.context`` builds the context of stored indicator columns itself
    (one layer less): at every candle, NaN warm-ups and a zero close included, it is
    equal, float for float, to ``make_context`` of the candle's ``CandleValues``."""
    close = v_shape()
    close[7] = 0.0  # a close that is not positive: a move and a change of 0
    result = detect_series(make_series(close), default_signal_config())
    for lookback in (0, 3, 60):
        for i in range(len(close)):
            back = min(lookback, i)
            recent = [float(x) for x in close[max(0, i - RECENT_MOVES) : i + 1]]
            values = CandleValues(result.indicators, i, True)  # type: ignore[arg-type]
            want = make_context("TEST", recent[-1], float(close[i - back]), back, values, recent)
            got = result.context(i, lookback)
            assert repr(got) == repr(want), (lookback, i)  # (repr: the ATR is NaN in warm-up)
            assert type(got.atr) is float and type(got.indicators) is CandleValues


def test_step_detector_rejects_another_instruments_candle() -> None:
    det = SignalDetector("A", default_signal_config())
    with pytest.raises(ValueError, match="given a candle of 'B'"):
        det.update(make_series(np.ones(3), name="B").candle(0))


# -- properties ---------------------------------------------------------------------------

DENSE = dataclasses.replace(
    default_signal_config()
    .with_params("rsi", period=5, cooldown=2)
    .with_params("macd", fast=3, slow=8, signal=3, cooldown=1)
    .with_params("ema", fast=3, slow=7, cooldown=0)
    .with_params("bb_breakout", period=8, cooldown=3)
    .with_params("bb_touch", period=8, cooldown=3)
    .with_params("atr", period=5, average=10, cooldown=2)
    .with_params("volume", window=8, threshold=2.0),
    atr_period=5,
)


def random_walk(seed: int, n: int, scale: float) -> InstrumentSeries:
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    volume = rng.lognormal(3, 0.8, n)
    return make_series(close, open_=open_, high=high, low=low, volume=volume)


def key(s: Signal) -> tuple:
    return (s.instrument, s.time, s.kind, s.direction, s.price, s.count)


def assert_same_signals(a: list[Signal], b: list[Signal]) -> None:
    assert [key(s) for s in a] == [key(s) for s in b]
    for x, y in zip(a, b, strict=True):
        assert x.strength == pytest.approx(y.strength, rel=1e-6, abs=1e-9)
        assert x.evidence.keys() == y.evidence.keys()
        for k in x.evidence:
            assert x.evidence[k] == pytest.approx(y.evidence[k], rel=1e-6, abs=1e-12), k


walks = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(30, 400),
    st.sampled_from([0.00001, 1.0, 40_000.0]),
    st.sampled_from(["default", "dense"]),
)


def config_of(name: str) -> SignalConfig:
    return default_signal_config() if name == "default" else DENSE


@settings(max_examples=40, deadline=None)
@given(walks, st.floats(0.05, 0.95))
def test_no_lookahead_prefix_signals_equal_the_full_runs(params: tuple, cut: float) -> None:
    seed, n, scale, cfg_name = params
    cfg = config_of(cfg_name)
    full_series = random_walk(seed, n, scale)
    k = max(1, int(n * cut))
    prefix = dataclasses.replace(
        full_series,
        **{
            f: getattr(full_series, f)[:k]
            for f in ("open_time", "open", "high", "low", "close", "volume", "filled")
        },
    )
    full = detect_series(full_series, cfg)
    part = detect_series(prefix, cfg)
    end = int(prefix.close_time[-1])
    assert part.signals == [s for s in full.signals if s.time <= end]
    for name, values in part.indicators.items():
        np.testing.assert_array_equal(values, full.indicators[name][:k], err_msg=name)


@settings(max_examples=40, deadline=None)
@given(walks)
def test_vectorised_equals_step_by_step_and_is_deterministic(params: tuple) -> None:
    seed, n, scale, cfg_name = params
    cfg = config_of(cfg_name)
    series = random_walk(seed, n, scale)
    vec = detect_series(series, cfg)
    assert detect_series(series, cfg).signals == vec.signals
    det = SignalDetector(series.instrument, cfg)
    stepped: list[Signal] = []
    for i in range(n):
        stepped.extend(det.update(series.candle(i)))
        if i in (n // 2, n - 1):
            for name, value in det.values.items():
                expected = vec.indicators[name][i]
                assert value == pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True), name
    assert_same_signals(vec.signals, stepped)


def test_dense_config_actually_fires_every_kind_on_random_walks() -> None:
    # Guards the property tests above against vacuity.
    kinds: set[str] = set()
    for seed in range(5):
        kinds |= {s.kind for s in detect_series(random_walk(seed, 400, 1.0), DENSE).signals}
    assert len(kinds) == 12, sorted(kinds)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.lists(st.floats(1.0, 1e6), min_size=6, max_size=6),  # the usual six closes
        st.lists(
            st.one_of(
                st.floats(1.0, 1e6),
                st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 5e-324]),
            ),
            max_size=8,
        ),
    )
)
def test_context_moves_are_the_pairwise_percent_moves(recent: list[float]) -> None:
    """``_moves`` (unrolled for the usual six closes) is the pairwise formula, float for
    float: ``(b / a - 1) * 100``, 0 after a close that is not positive."""
    expected = tuple(
        (recent[k + 1] / recent[k] - 1.0) * 100.0 if recent[k] > 0 else 0.0
        for k in range(len(recent) - 1)
    )
    got = _moves(recent)
    assert len(got) == len(expected)
    assert all(x == y or (x != x and y != y) for x, y in zip(got, expected, strict=True))
    assert [str(x) for x in got] == [str(y) for y in expected]  # (the same floats, bit for bit)
