"""Memory at scale (issue 12 item 8): what the analysis keeps, checked on small data.

The figures themselves come from ``bench/memory.py`` (10M candles, peak RSS); these
tests pin the structural properties behind them: no column copied where it can be
shared, no previous-candle column held for the whole series, Arrow's freed memory
handed back after a read.
"""

from __future__ import annotations

import copy
import gc
import pickle
from pathlib import Path

import numpy as np
import pytest

from engine.backtest import decisions
from engine.backtest.analysis import analyse
from engine.backtest.decisions import DecisionLog, Later
from engine.data import load, readers
from engine.data.errors import DataError
from engine.signals import DETECTOR_NAMES, default_signal_config, detect_series
from engine.signals.aggregator import BatchList
from engine.signals.base import CANDLE_COLUMNS
from engine.signals.columns import SignalList
from engine.signals.detector import IndicatorColumns, Previous, _shift, compute_values
from engine.signals.registry import build
from engine.types import Decision, PortfolioState, Signal, SignalBatch
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


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


def test_the_analysis_keeps_no_signal_or_batch_object() -> None:
    # 10M candles fire ~1.1M signals in ~900k batches: as objects they took 1 GB, so the
    # analysis keeps them as columns and makes each when read
    s = random_walk(4, 3000, 100.0)
    signals, batches = _live(Signal), _live(SignalBatch)
    a = analyse([s], default_signal_config())
    ss = a.per_instrument[s.instrument]
    assert isinstance(ss.signals, SignalList) and isinstance(a.batches, BatchList)
    assert len(ss.signals) > 100 and len(a.batches) > 100
    assert _live(Signal) == signals and _live(SignalBatch) == batches
    first = ss.signals[0]
    assert first == ss.signals[0] and first is not ss.signals[0]  # made on each read
    step = int(a.batch_steps[0])
    assert a.batch_by_step[step] == a.batch_by_step[step]
    assert a.batch_by_step[step] is not a.batch_by_step[step]


def test_an_analysis_shared_by_runs_keeps_its_batches_made_once() -> None:
    # an experiment's cells share one analysis: made when read, each cell made them again
    s = random_walk(4, 3000, 100.0)
    lazy = analyse([s], default_signal_config())
    kept = analyse([s], default_signal_config(), keep_batches=True)
    assert isinstance(kept.batches, tuple) and kept.batches == tuple(lazy.batches)
    step = int(kept.batch_steps[0])
    assert kept.batch_by_step[step] is kept.batch_by_step[step]  # one object, kept
    assert np.array_equal(kept.batch_steps, lazy.batch_steps)
    assert dict(kept.batch_by_step) == dict(lazy.batch_by_step)


def test_signals_made_from_columns_carry_python_scalars() -> None:
    # the run log and --json print them: a numpy scalar would print differently
    a = analyse([random_walk(5, 2000, 100.0)], default_signal_config())
    signals = list(next(iter(a.per_instrument.values())).signals)
    assert signals
    for sig in signals:
        assert type(sig.time) is int and type(sig.price) is float
        assert type(sig.strength) in (float, int)
        assert all(type(v) in (float, int, bool) for v in sig.evidence.values()), sig


def test_lazy_sequences_equal_and_pickle_as_plain_lists() -> None:
    a = analyse([random_walk(6, 1500, 100.0)], default_signal_config())
    ss = next(iter(a.per_instrument.values()))
    as_list = list(ss.signals)
    assert ss.signals == as_list and as_list == ss.signals
    assert ss.signals[-1] == as_list[-1] and ss.signals[2:5] == as_list[2:5]
    assert pickle.loads(pickle.dumps(ss.signals)) == as_list
    batches = list(a.batches)
    assert pickle.loads(pickle.dumps(a.batches)) == batches
    assert dict(a.batch_by_step) == {b.step: b for b in batches}
    assert len(a.signals_by_step) == len(set(a.signals_by_step))
    with pytest.raises(IndexError):
        ss.signals[len(as_list)]
    with pytest.raises(KeyError):
        a.batch_by_step[-1]


def test_derived_values_are_not_stored_and_read_back_bit_for_bit() -> None:
    # every detector (stoch too): the derived keys are made when read, for one candle by
    # the step path's arithmetic, for all as a new array, equal to the detection's own
    config = default_signal_config().with_detectors(DETECTOR_NAMES)
    s = random_walk(7, 400, 80.0)
    values, _ = compute_values(s, config, build(config))
    ss = detect_series(s, config)
    ind = ss.indicators
    assert isinstance(ind, IndicatorColumns)
    assert list(ind) == [k for k in values if k not in CANDLE_COLUMNS]
    derived = {"ema_gap", "atr_ratio", "volume_z", "stoch_gap", "macd_hist"}
    assert derived <= set(ind) and not derived & set(ind._stored)
    for key in ind:
        np.testing.assert_array_equal(ind[key], values[key])
    for i in range(len(s)):
        point = ss.values_at(i)
        expected = {k: float(values[k][i]) for k in ind}
        assert list(point) == list(expected)
        assert repr(point) == repr(expected), i  # NaN and -0.0 too
    assert pickle.loads(pickle.dumps(ind)).keys() == ind.keys()


def test_deferred_decisions_are_kept_as_rows_and_made_as_asked() -> None:
    # 10M candles defer ~1.4M decisions: as Later and PortfolioState objects ~0.4 GB
    asked: list[Later] = []

    def make(later: Later) -> Decision:
        asked.append(later)
        return Decision(later.portfolio.time, "rules", "", (), f"step {later.step}")

    flat = Later(3, False, PortfolioState(100, 3, 1.5, 2.5, (), (), None))
    review = Later(4, True, PortfolioState(101, 4, 1.25, 2.0, (), (), 2))
    odd = Later(5, False, PortfolioState(102, 5, np.float64(1.0), 2.0, (), (), None))
    made = Decision(99, "rules", "", (), "made")
    log = DecisionLog(make)
    for later in (flat, review):
        log.defer(later)
    log.append(made)
    log.defer(odd)  # a numpy float: a row too, its book kept as it is
    assert log.pending == 3 and log.laters() == [flat, review, odd]
    assert sum(type(x) is Later for x in log._items) == 0  # all are rows
    snap = log.snapshot()
    log.defer(flat)
    assert len(snap) == 4 and len(log) == 5 and not asked
    assert [d.reasoning for d in snap] == ["step 3", "step 4", "made", "step 5"]
    assert asked == [flat, review, odd]
    assert [type(x) for x in (asked[0].portfolio.time, asked[0].portfolio.cash)] == [int, float]
    assert type(asked[2].portfolio.cash) is np.float64
    assert pickle.loads(pickle.dumps(decisions._DEFERRED)) is decisions._DEFERRED
    clone = copy.deepcopy(log)  # the TUI's step-back snapshots
    assert clone.laters() == log.laters() == [flat, review, odd, flat]
    assert clone._make is log._make
    # a step or a time that is no Python int is kept as a Later, not as a row
    log.defer(Later(6, False, PortfolioState(np.int64(103), 6, 1.0, 2.0, (), (), None)))
    assert type(log._items[-1]) is Later and log.laters()[-1].portfolio.time == 103
