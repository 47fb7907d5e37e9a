"""The merged multi-instrument stream: a hand case, the real 5m files, and properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data import DataError, from_arrays, load_many
from engine.data.stream import MergedStream, Step, merge
from engine.timeutil import parse_time
from engine.types import InstrumentSeries

T0 = parse_time("2022-01-01T00:00:00Z")
MIN = 60_000_000_000


def series(name: str, minutes: list[int], timeframe: str = "1m") -> InstrumentSeries:
    n = len(minutes)
    close = np.arange(1, n + 1, dtype=np.float64) * 10
    return from_arrays(
        name,
        T0 + np.asarray(minutes, dtype=np.int64) * MIN,
        close,
        close + 1,
        close - 1,
        close,
        np.ones(n),
        timeframe=timeframe,
    )


def test_merge_hand_case() -> None:
    # B: 1m candles at 00:00, 00:01, 00:03 (gap at 00:02); A: 5m candles at 00:00, 00:05.
    b = series("B", [0, 1, 3])
    a = series("A", [0, 5], timeframe="5m")
    m = merge([b, a])
    assert m.instruments == ("A", "B")
    # close times: B at 1, 2, 4 minutes; A at 5, 10 minutes
    np.testing.assert_array_equal(m.times, T0 + np.array([1, 2, 4, 5, 10]) * MIN)
    np.testing.assert_array_equal(m.candle_index, [[-1, -1, -1, 0, 1], [0, 1, 2, -1, -1]])
    assert len(m) == 5
    steps = list(m.steps())
    assert [s.index for s in steps] == [0, 1, 2, 3, 4]
    assert [[c.instrument for c in s.candles] for s in steps] == [["B"], ["B"], ["B"], ["A"], ["A"]]
    assert steps[2].candles[0].open_time == T0 + 3 * MIN
    assert steps[2].candles[0].close_time == steps[2].time
    assert m.series["A"] is a
    np.testing.assert_array_equal(m.step_of("B"), [0, 1, 2])
    np.testing.assert_array_equal(m.present("A"), [False, False, False, True, True])


def test_ties_come_in_name_order() -> None:
    m = merge([series("ZED", [0, 1]), series("ALPHA", [1]), series("MID", [0, 1])])
    assert m.instruments == ("ALPHA", "MID", "ZED")
    first, second = m.steps()
    assert [c.instrument for c in first.candles] == ["MID", "ZED"]
    assert [c.instrument for c in second.candles] == ["ALPHA", "MID", "ZED"]
    assert isinstance(first, Step)
    assert m.step(-1) == second


def test_steps_window_and_bounds() -> None:
    m = merge([series("A", list(range(10)))])
    assert [s.index for s in m.steps(3, 6)] == [3, 4, 5]
    assert [s.index for s in m.steps(8, 100)] == [8, 9]
    with pytest.raises(IndexError):
        m.step(10)


def test_merge_refuses_duplicate_instruments_and_nothing() -> None:
    with pytest.raises(DataError, match=r"instrument 'A' given twice"):
        merge([series("A", [0]), series("A", [1])])
    with pytest.raises(DataError, match=r"nothing to merge"):
        merge([])


def test_merge_real_5m_files(alt_5m_files: list[Path]) -> None:
    m = merge(load_many(alt_5m_files))
    assert m.instruments == tuple(
        f"{n}/BTC" for n in ("ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM")
    )
    assert len(m) == 5760  # ETH, LTC, NXT, XLM are complete and cover the whole window
    present = (m.candle_index >= 0).sum(axis=1)
    assert dict(zip(m.instruments, present.tolist(), strict=True)) == {
        "ADA/BTC": 5720,
        "DASH/BTC": 5758,
        "ETC/BTC": 5759,
        "ETH/BTC": 5760,
        "LTC/BTC": 5760,
        "NXT/BTC": 5760,
        "TRX/BTC": 5754,
        "XLM/BTC": 5760,
    }
    assert np.all(np.diff(m.times) == 5 * MIN)
    assert sum(len(s.candles) for s in m.steps(0, 50)) == int((m.candle_index[:, :50] >= 0).sum())


@st.composite
def instrument_sets(draw: st.DrawFn) -> list[InstrumentSeries]:
    names = draw(st.lists(st.sampled_from("ABCDEFG"), min_size=1, max_size=4, unique=True))
    out = []
    for name in names:
        tf = draw(st.sampled_from([1, 3, 5]))
        slots = sorted(draw(st.sets(st.integers(0, 60), min_size=1, max_size=40)))
        out.append(series(name, [k * tf for k in slots], timeframe=f"{tf}m"))
    return out


@settings(max_examples=80, deadline=None)
@given(instrument_sets())
def test_merge_orders_by_time_and_yields_every_candle_once(parts: list[InstrumentSeries]) -> None:
    m: MergedStream = merge(parts)
    assert np.all(np.diff(m.times) > 0)
    assert m.candle_index.shape == (len(parts), len(m))
    for row, name in enumerate(m.instruments):
        s = m.series[name]
        idx = m.candle_index[row]
        present = idx[idx >= 0]
        np.testing.assert_array_equal(present, np.arange(len(s)))  # each once, in order
        np.testing.assert_array_equal(m.times[idx >= 0], s.close_time)
    seen = []
    last_time = None
    for step in m.steps():
        assert last_time is None or step.time > last_time
        last_time = step.time
        names = [c.instrument for c in step.candles]
        assert names == sorted(names)
        assert len(step.candles) >= 1
        for c in step.candles:
            assert c.close_time == step.time
            seen.append((c.instrument, c.open_time))
    expected = [(s.instrument, int(t)) for s in parts for t in s.open_time]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))
    assert set(np.concatenate([s.close_time for s in parts]).tolist()) == set(m.times.tolist())
