"""The aggregator: windows by count and by duration, merging, conflicts, context, and
the vectorised batch_signals giving exactly the step-by-step aggregator's batches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.stream import merge
from engine.signals import (
    SignalAggregator,
    StreamDetector,
    batch_signals,
    default_signal_config,
    detect_series,
    detect_stream,
    return_correlation,
)
from engine.signals.aggregator import window_closes
from engine.types import Direction, InstrumentContext, Signal
from tests.test_signals_detector import DENSE, MINUTE, T0, make_series, random_walk

LONG, SHORT = Direction.LONG, Direction.SHORT


def sig(inst: str, t: int, kind: str, d: Direction = LONG, strength: float = 0.5) -> Signal:
    return Signal(inst, t, kind, d, strength, 100.0, {"x": float(t)})


def ctx(inst: str, price: float) -> InstrumentContext:
    return InstrumentContext(inst, price, 1.0, 0.0, 0, {"atr": 1.0})


def feed(agg: SignalAggregator, steps: dict[int, list[Signal]], n: int, times=None) -> list:
    out = []
    for s in range(n):
        t = T0 + (s + 1) * MINUTE if times is None else times[s]
        b = agg.add(s, t, steps.get(s, []), {"A": ctx("A", 100.0 + s)})
        if b is not None:
            out.append(b)
    b = agg.flush()
    if b is not None:
        out.append(b)
    return out


def test_window_of_n_steps_emits_at_the_last_step_of_each_window() -> None:
    agg = SignalAggregator(3)
    steps = {0: [sig("A", 0, "rsi_oversold")], 1: [sig("A", 1, "ema_cross_up")], 7: []}
    steps[4] = [sig("A", 4, "macd_cross_up")]
    steps[9] = [sig("A", 9, "volume_spike")]
    batches = feed(agg, steps, 10)
    # windows [0-2], [3-5], [6-8] (empty: nothing), [9] flushed at the end
    assert [(b.step, b.window_start, len(b.signals)) for b in batches] == [
        (2, T0 + MINUTE, 2),
        (5, T0 + 4 * MINUTE, 1),
        (9, T0 + 10 * MINUTE, 1),
    ]
    assert batches[0].time == T0 + 3 * MINUTE
    assert batches[0].context["A"].price == 102.0  # as of the closing step


def test_window_one_is_immediate() -> None:
    agg = SignalAggregator(1)
    assert agg.add(0, T0, [], {}) is None
    b = agg.add(1, T0 + MINUTE, [sig("A", 1, "rsi_oversold")], {"A": ctx("A", 1.0)})
    assert b is not None and b.step == 1 and len(b.signals) == 1
    assert agg.flush() is None


def test_emit_empty_emits_every_window() -> None:
    agg = SignalAggregator(2, emit_empty=True)
    batches = feed(agg, {}, 5)
    assert [(b.step, b.signals) for b in batches] == [(1, ()), (3, ()), (4, ())]


def test_repeated_kind_is_merged_keeping_the_strongest_with_the_count() -> None:
    agg = SignalAggregator(5)
    steps = {
        0: [sig("A", 0, "macd_cross_up", strength=0.3)],
        1: [sig("A", 1, "macd_cross_up", strength=0.9), sig("A", 1, "rsi_oversold")],
        2: [sig("A", 2, "macd_cross_up", strength=0.9)],  # equal: the first is kept
        3: [sig("B", 3, "macd_cross_up", strength=0.1)],  # another instrument
    }
    (batch,) = feed(agg, steps, 5)
    merged = {(s.instrument, s.kind): s for s in batch.signals}
    kept = merged[("A", "macd_cross_up")]
    assert (kept.strength, kept.time, kept.count) == (0.9, 1, 3)
    assert merged[("A", "rsi_oversold")].count == 1
    assert merged[("B", "macd_cross_up")].count == 1
    # ordered by (time, instrument, kind order)
    assert [(s.time, s.instrument, s.kind) for s in batch.signals] == [
        (1, "A", "rsi_oversold"),
        (1, "A", "macd_cross_up"),
        (3, "B", "macd_cross_up"),
    ]


def test_long_and_short_on_one_instrument_is_flagged_not_resolved() -> None:
    agg = SignalAggregator(2)
    steps = {0: [sig("A", 0, "rsi_oversold", LONG)], 1: [sig("A", 1, "bb_breakout_down", SHORT)]}
    (batch,) = feed(agg, steps, 2)
    assert len(batch.signals) == 2  # both kept
    (conflict,) = batch.conflicts
    assert conflict.kind == "same_instrument" and conflict.instruments == ("A",)
    assert "rsi_oversold" in conflict.detail and "bb_breakout_down" in conflict.detail


def correlated_run(b_returns_sign: float) -> list:
    rng = np.random.default_rng(7)
    ra = rng.normal(0, 0.01, 200)
    pa = 100 * np.cumprod(1 + ra)
    pb = 50 * np.cumprod(1 + b_returns_sign * ra + rng.normal(0, 0.002, 200))
    agg = SignalAggregator(1, correlation_lookback=50, correlation_threshold=0.5)
    out = []
    for s in range(200):
        signals = []
        if s == 150:
            signals = [sig("A", s, "ema_cross_up", LONG), sig("B", s, "ema_cross_down", SHORT)]
        b = agg.add(s, T0 + s * MINUTE, signals, {"A": ctx("A", pa[s]), "B": ctx("B", pb[s])})
        if b is not None:
            out.append((b, pa[100:151], pb[100:151]))
    return out


def test_opposite_views_on_correlated_instruments_are_flagged() -> None:
    ((batch, pa, pb),) = correlated_run(+1.0)
    (conflict,) = batch.conflicts
    assert conflict.kind == "correlated" and conflict.instruments == ("A", "B")
    expected = np.corrcoef(pa[1:] / pa[:-1] - 1, pb[1:] / pb[:-1] - 1)[0, 1]
    assert expected > 0.9
    assert f"{expected:.2f}" in conflict.detail
    assert "A long vs B short" in conflict.detail


def test_opposite_views_on_anticorrelated_instruments_are_not_a_conflict() -> None:
    ((batch, _, _),) = correlated_run(-1.0)
    assert batch.conflicts == ()


def test_return_correlation_matches_numpy_and_handles_gaps() -> None:
    rng = np.random.default_rng(1)
    a = 100 * np.cumprod(1 + rng.normal(0, 0.01, 60))
    b = 10 * np.cumprod(1 + rng.normal(0, 0.01, 60))
    ra, rb = a[1:] / a[:-1] - 1, b[1:] / b[:-1] - 1
    assert return_correlation(a, b, 10) == pytest.approx(np.corrcoef(ra, rb)[0, 1], rel=1e-12)
    a2 = a.copy()
    a2[:30] = np.nan  # unknown before its first candle: 29 returns left
    assert return_correlation(a2, b, 29) == pytest.approx(
        np.corrcoef(ra[30:], rb[30:])[0, 1], rel=1e-12
    )
    assert return_correlation(a2, b, 30) is None
    assert return_correlation(np.full(60, 5.0), b, 10) is None  # flat: undefined


def test_duration_windows_align_to_the_clock_and_gaps_emit_late() -> None:
    five = 5 * MINUTE
    base = (T0 // five) * five
    # Close times (minutes past base): 1..5 | 6..10 | gap | 13, 14 | 17 (past 15) ...
    minutes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 17, 18, 20]
    times = np.array([base + m * MINUTE for m in minutes], dtype=np.int64)
    closes = window_closes(times, 1, five)
    # 5 and 10 are on the clock; 15 is missing: the window (10, 15] is emitted at 17
    # (the first step past it); 20 is on the clock again (and the last step anyway).
    assert [minutes[i] for i in np.flatnonzero(closes)] == [5, 10, 17, 20]
    agg = SignalAggregator(duration_ns=five, emit_empty=True)
    batches = feed(agg, {}, len(times), times)
    assert [b.step for b in batches] == list(np.flatnonzero(closes))
    assert [int((b.window_start - base) // MINUTE) for b in batches] == [1, 6, 13, 18]


def test_count_windows_close_every_n_steps() -> None:
    times = np.arange(7, dtype=np.int64)
    assert np.flatnonzero(window_closes(times, 3, None)).tolist() == [2, 5, 6]


def test_aggregator_rejects_nonsense_windows() -> None:
    with pytest.raises(ValueError, match="window"):
        SignalAggregator(0)
    with pytest.raises(ValueError, match="duration"):
        SignalAggregator(duration_ns=0)


# -- vectorised batch_signals == step aggregator -------------------------------------------


def step_batches(stream, per_instrument, config) -> list:
    """The step aggregator fed from the vectorised per-instrument results."""
    agg = SignalAggregator.from_config(config, stream.instruments)
    by_step: dict[int, list[Signal]] = {}
    for row, name in enumerate(stream.instruments):
        steps = np.flatnonzero(stream.candle_index[row] >= 0)
        ss = per_instrument[name]
        for i, s in zip(ss.signal_index.tolist(), ss.signals, strict=True):
            by_step.setdefault(int(steps[i]), []).append(s)
    out = []
    for s in range(len(stream)):
        contexts = {
            name: per_instrument[name].context(int(k), config.context_lookback)
            for name, k in zip(stream.instruments, stream.candle_index[:, s].tolist(), strict=True)
            if k >= 0
        }
        b = agg.add(s, int(stream.times[s]), by_step.get(s, []), contexts)
        if b is not None:
            out.append(b)
    b = agg.flush()
    if b is not None:
        out.append(b)
    return out


def gappy_stream(seed: int, n: int, k: int):
    rng = np.random.default_rng(seed)
    series = []
    for j in range(k):
        s = random_walk(seed + j, n, [1.0, 0.0001, 30_000.0][j % 3])
        keep = np.sort(rng.choice(n, size=max(10, int(n * rng.uniform(0.6, 1.0))), replace=False))
        shift = int(rng.integers(0, 3)) * MINUTE
        s = dataclasses.replace(
            s,
            instrument=f"I{j}",
            **{f: getattr(s, f)[keep] for f in ("open", "high", "low", "close", "volume")},
            open_time=s.open_time[keep] + shift,
            filled=s.filled[keep],
        )
        series.append(s)
    return merge(series)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31),
    st.integers(40, 250),
    st.integers(1, 4),
    st.sampled_from([1, 3, 10]),
    st.sampled_from([None, "3m", "15m"]),
    st.booleans(),
    st.floats(-0.2, 0.8),
)
def test_batch_signals_equals_the_step_aggregator(
    seed: int, n: int, k: int, window: int, duration: str | None, empty: bool, threshold: float
) -> None:
    stream = gappy_stream(seed, n, k)
    config = dataclasses.replace(
        DENSE,
        window=window,
        window_duration=duration,
        emit_empty=empty,
        correlation_lookback=20,
        correlation_threshold=threshold,
    )
    per = {name: detect_series(stream.series[name], config) for name in stream.instruments}
    # repr: exact for floats, and NaN (an ATR still warming up) equals itself there.
    assert repr(batch_signals(stream, per, config)) == repr(step_batches(stream, per, config))


def test_stream_detector_matches_detect_stream() -> None:
    stream = gappy_stream(3, 300, 3)
    config = dataclasses.replace(DENSE, window=4, correlation_lookback=30)
    _, batches = detect_stream(stream, config)
    sd = StreamDetector(stream.instruments, config)
    stepped = []
    for step in stream.steps():
        _, b = sd.on_step(step)
        if b is not None:
            stepped.append(b)
    last = sd.finish()
    if last is not None:
        stepped.append(last)
    assert len(batches) > 10
    assert [(b.step, b.time, b.window_start) for b in batches] == [
        (b.step, b.time, b.window_start) for b in stepped
    ]
    for a, b in zip(batches, stepped, strict=True):
        assert [(s.instrument, s.kind, s.time, s.count) for s in a.signals] == [
            (s.instrument, s.kind, s.time, s.count) for s in b.signals
        ]
        assert [(c.kind, c.instruments) for c in a.conflicts] == [
            (c.kind, c.instruments) for c in b.conflicts
        ]
        assert a.context.keys() == b.context.keys()
        for name in a.context:
            assert a.context[name].price == b.context[name].price
            assert a.context[name].atr == pytest.approx(b.context[name].atr, rel=1e-9)


def test_a_single_instrument_with_default_config() -> None:
    series = make_series(100 + np.sin(np.arange(500) / 7.0) * 3)
    stream = merge([series])
    per, batches = detect_stream(stream, default_signal_config())
    assert repr(batches) == repr(step_batches(stream, per, default_signal_config()))
    assert all(set(b.context) == {"TEST"} for b in batches)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 3), st.floats(0.1, 0.9), st.sampled_from([1, 4]))
def test_batches_have_no_lookahead(seed: int, k: int, cut: float, window: int) -> None:
    stream = gappy_stream(seed, 200, k)
    config = dataclasses.replace(DENSE, window=window, correlation_lookback=20)
    _, full = detect_stream(stream, config)
    end_time = int(stream.times[int(len(stream) * cut)])
    prefix_series = []
    for s in stream.series.values():
        keep = s.close_time <= end_time
        if keep.any():
            fields = ("open_time", "open", "high", "low", "close", "volume", "filled")
            prefix_series.append(dataclasses.replace(s, **{f: getattr(s, f)[keep] for f in fields}))
    prefix = merge(prefix_series)
    _, part = detect_stream(prefix, config)
    last = len(prefix) - 1  # the prefix's last window may be cut short (flushed)
    assert repr([b for b in part if b.step < last]) == repr([b for b in full if b.step < last])
