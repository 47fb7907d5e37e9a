"""select() and resample(): hand-computed cases, a pandas oracle, and properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data import DataError, from_arrays, load, resample, select
from engine.timeutil import parse_time
from engine.types import InstrumentSeries

T0 = parse_time("2022-01-01T00:00:00Z")
MIN = 60_000_000_000


def minute_series(minutes: list[int], name: str = "X", start: int = T0) -> InstrumentSeries:
    n = len(minutes)
    k = np.arange(n, dtype=np.float64)
    return from_arrays(
        name,
        start + np.asarray(minutes, dtype=np.int64) * MIN,
        open=100 + k,
        high=102 + k + (k % 3),
        low=99 + k - (k % 2),
        close=101 + k,
        volume=1 + k,
        timeframe="1m",
    )


# ------------------------------------------------------------------ select


def test_select_start_end_last() -> None:
    s = minute_series(list(range(10)))
    w = select(s, start=T0 + 2 * MIN, end=T0 + 6 * MIN)
    np.testing.assert_array_equal(w.open_time, T0 + np.arange(2, 6) * MIN)
    np.testing.assert_array_equal(w.close, [103, 104, 105, 106])
    assert w.report.rows == 4
    w = select(s, start="2022-01-01 00:02", end="2022-01-01T00:06:00Z")
    np.testing.assert_array_equal(w.open_time, T0 + np.arange(2, 6) * MIN)
    np.testing.assert_array_equal(select(s, last=3).open_time, T0 + np.arange(7, 10) * MIN)
    np.testing.assert_array_equal(
        select(s, end=T0 + 6 * MIN, last=2).open_time, T0 + np.array([4, 5]) * MIN
    )
    assert len(select(s, last=100)) == 10
    assert (w.instrument, w.timeframe) == (s.instrument, s.timeframe)


def test_select_recomputes_gaps_for_the_window() -> None:
    s = minute_series([0, 1, 4, 5, 6, 9])
    assert s.report.gap_count == 2
    assert select(s, start=T0 + 4 * MIN).report.gap_count == 1
    assert select(s, start=T0 + 4 * MIN, end=T0 + 7 * MIN).report.gap_count == 0


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"start": T0 + 20 * MIN},
            r"no candles in the window .* the data covers 2022-01-01T00:00:00Z",
        ),
        ({"start": T0 + 5 * MIN, "end": T0 + 5 * MIN}, r"end .* is not after start"),
        ({"last": 0}, r"last must be a positive number"),
        ({"start": "yesterday-ish"}, r"start: cannot parse time"),
    ],
)
def test_select_errors(kwargs: dict, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        select(minute_series(list(range(10))), **kwargs)


# ------------------------------------------------------------------ resample


def test_resample_hand_computed_1m_to_5m() -> None:
    s = minute_series(list(range(12)))  # 00:00..00:11 -> buckets 00:00, 00:05, 00:10 (partial)
    r = resample(s, "5m")
    assert (r.timeframe, r.timeframe_ns) == ("5m", 5 * MIN)
    np.testing.assert_array_equal(r.open_time, [T0, T0 + 5 * MIN])
    np.testing.assert_array_equal(r.open, [100, 105])
    np.testing.assert_array_equal(r.close, [105, 110])
    np.testing.assert_array_equal(
        r.high, [max(102 + k + k % 3 for k in range(5)), max(102 + k + k % 3 for k in range(5, 10))]
    )
    np.testing.assert_array_equal(r.low, [99 - 1 + 1, 99 + 5 - 1])  # k=0 -> 99, k=5 -> 103
    np.testing.assert_array_equal(r.volume, [sum(range(1, 6)), sum(range(6, 11))])
    dropped = r.report.repair("incomplete_bucket")
    assert dropped is not None and dropped.times == (T0 + 10 * MIN,)
    assert r.report.rows == 2


def test_resample_keeps_gappy_buckets_and_reports_partial_first() -> None:
    s = minute_series([3, 4, 5, 7, 9])  # first bucket 00:00 starts at 00:03
    r = resample(s, "5m")
    np.testing.assert_array_equal(r.open_time, [T0, T0 + 5 * MIN])
    np.testing.assert_array_equal(r.volume, [1 + 2, 3 + 4 + 5])
    assert r.report.repair("incomplete_bucket") is None  # 00:09 closes the 00:05 bucket
    assert any("partial" in note for note in r.report.notes)


def test_resample_errors_and_identity() -> None:
    s = minute_series(list(range(10)))
    assert resample(s, "1m") is s
    with pytest.raises(DataError, match=r"cannot resample 1m to 90s: expected a multiple"):
        resample(s, "90s")
    with pytest.raises(DataError, match=r"fewer candles than one complete 1h bucket"):
        resample(s, "1h")
    five = resample(minute_series(list(range(20))), "5m")
    with pytest.raises(DataError, match=r"cannot resample 5m to 1m"):
        resample(five, "1m")


def test_resample_filled_flag_only_when_every_candle_was_filled() -> None:
    s = from_arrays(
        "X",
        T0 + np.array([0, 1, 2, 3, 4, 10, 11, 12, 13, 14]) * MIN,
        *([np.full(10, 5.0)] * 4),
        np.ones(10),
        timeframe="1m",
        fill_gaps=True,
    )
    r = resample(s, "5m")
    np.testing.assert_array_equal(r.filled, [False, True, False])
    np.testing.assert_array_equal(r.volume, [5, 0, 5])


@pytest.mark.parametrize("timeframe", ["5m", "15m", "1h", "4h", "1d"])
def test_resample_real_btc_matches_pandas(btc_1m_csv: Path, timeframe: str) -> None:
    s = load(btc_1m_csv)
    r = resample(s, timeframe)
    df = pd.DataFrame(
        {c: getattr(s, c) for c in ("open", "high", "low", "close", "volume")},
        index=pd.to_datetime(s.open_time, utc=True),
    )
    rule = {"5m": "5min", "15m": "15min", "1h": "1h", "4h": "4h", "1d": "1D"}[timeframe]
    oracle = df.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    oracle = oracle.iloc[: len(r)]
    np.testing.assert_array_equal(r.open_time, oracle.index.as_unit("ns").asi8)
    for c in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(r, c), oracle[c].to_numpy())
    np.testing.assert_allclose(r.volume, oracle["volume"].to_numpy(), rtol=1e-12)
    # the last candle is 05:31, so every timeframe above 1m has an incomplete last bucket
    assert r.report.count("incomplete_bucket") == 1


# ------------------------------------------------------------------ properties


@st.composite
def candle_series(draw: st.DrawFn, max_minutes: int = 400) -> InstrumentSeries:
    minutes = sorted(draw(st.sets(st.integers(0, max_minutes), min_size=1, max_size=120)))
    n = len(minutes)
    price = st.floats(0.5, 1e5, allow_nan=False, allow_infinity=False)
    frac = st.floats(0, 0.2, allow_nan=False)
    opens = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    closes = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    up = np.array(draw(st.lists(frac, min_size=n, max_size=n)))
    down = np.array(draw(st.lists(frac, min_size=n, max_size=n)))
    vols = np.array(draw(st.lists(st.floats(0, 1e9, allow_nan=False), min_size=n, max_size=n)))
    start = T0 + draw(st.integers(0, 1440)) * MIN
    return from_arrays(
        draw(st.sampled_from(["AAA", "BBB", "CCC", "DDD"])),
        start + np.array(minutes, dtype=np.int64) * MIN,
        opens,
        np.maximum(opens, closes) * (1 + up),
        np.minimum(opens, closes) * (1 - down),
        closes,
        vols,
        timeframe="1m",
    )


@settings(max_examples=80, deadline=None)
@given(s=candle_series(), timeframe=st.sampled_from(["5m", "15m", "1h"]))
def test_resample_preserves_volume_highs_lows(s: InstrumentSeries, timeframe: str) -> None:
    tf = {"5m": 5, "15m": 15, "1h": 60}[timeframe] * MIN
    buckets = s.open_time // tf * tf
    last_complete = s.open_time[-1] + MIN == buckets[-1] + tf
    if not last_complete and np.all(buckets == buckets[-1]):
        with pytest.raises(DataError):
            resample(s, timeframe)
        return
    r = resample(s, timeframe)
    kept = np.isin(buckets, r.open_time)
    assert kept.sum() == len(s) - (0 if last_complete else int((buckets == buckets[-1]).sum()))
    np.testing.assert_array_equal(r.open_time, np.unique(buckets[kept]))
    assert np.all(r.open_time % tf == 0)
    assert np.isclose(r.volume.sum(), s.volume[kept].sum(), rtol=1e-12, atol=0)
    assert r.high.max() == s.high[kept].max()
    assert r.low.min() == s.low[kept].min()
    for i, label in enumerate(r.open_time):
        inside = buckets == label
        assert r.high[i] == s.high[inside].max()
        assert r.low[i] == s.low[inside].min()
        assert r.open[i] == s.open[inside][0]
        assert r.close[i] == s.close[inside][-1]
    dropped = r.report.count("incomplete_bucket")
    assert dropped == (0 if last_complete else 1)
