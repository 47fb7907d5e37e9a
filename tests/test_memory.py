"""Memory at scale (issue 12 item 8): what the analysis keeps, checked on small data.

The figures themselves come from ``bench/memory.py`` (10M candles, peak RSS); these
tests pin the structural properties behind them: no column copied where it can be
shared, no previous-candle column held for the whole series, Arrow's freed memory
handed back after a read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.backtest.analysis import analyse
from engine.data import load, readers
from engine.data.errors import DataError
from engine.signals import default_signal_config
from engine.signals.detector import Previous, _shift, compute_values
from engine.signals.registry import build
from tests.test_signals_detector import random_walk


def test_close_time_is_computed_once_and_read_only() -> None:
    s = random_walk(1, 50, 100.0)
    first = s.close_time
    assert first is s.close_time
    assert not first.flags.writeable
    assert (first == s.open_time + s.timeframe_ns).all()


def test_one_dense_instrument_shares_its_columns() -> None:
    s = random_walk(2, 300, 100.0)
    a = analyse([s], default_signal_config())
    arrays = a.arrays[s.instrument]
    assert np.shares_memory(a.times, s.close_time)
    assert np.shares_memory(arrays.close_time, s.close_time)
    assert np.shares_memory(a.last_close, arrays.close)
    assert np.shares_memory(arrays.step_of_candle, a.stream.candle_index)
    assert a.last_close.tolist() == [arrays.close.tolist()]
    assert arrays.step_of_candle.tolist() == list(range(300))


def test_previous_values_are_made_when_read_and_match_a_shift() -> None:
    s = random_walk(3, 200, 50.0)
    config = default_signal_config()
    values, prev = compute_values(s, config, build(config))
    assert isinstance(prev, Previous) and list(prev) == list(values)
    at = np.array([0, 1, 7, 199])
    for key, column in values.items():
        shifted = _shift(column)
        assert prev[key] is not prev[key]  # nothing kept between reads
        np.testing.assert_array_equal(prev[key], shifted)
        np.testing.assert_array_equal(prev.rows(key, at), shifted[at])


def test_a_read_hands_arrow_memory_back(tmp_path: Path, monkeypatch) -> None:
    # Arrow's pool keeps what a read freed unless asked (10M candles: 0.55 GB for the
    # whole run); every read asks, an unreadable file too
    calls: list[str] = []

    class Pool:
        def release_unused(self) -> None:
            calls.append("release")

    monkeypatch.setattr(readers.pa, "default_memory_pool", Pool)
    path = tmp_path / "X_USDT-1m.csv"
    t = 1_600_000_000 + 60 * np.arange(30)
    rows = "\n".join(f"{x},1,2,0.5,1.5,10" for x in t.tolist())
    path.write_text("timestamp,open,high,low,close,volume\n" + rows + "\n")
    assert len(load(path)) == 30 and calls == ["release"]
    path.write_text("timestamp,open,high,low,close,volume\n1,x,2,3,4,5\n")
    with pytest.raises(DataError):
        load(path)
    assert calls == ["release", "release"]
