"""assemble_analysis: the per-step signal lookup, by hand and against a plain loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.backtest.analysis import analyse, assemble_analysis
from engine.data import load_many
from engine.data.stream import merge
from engine.signals import default_signal_config
from engine.types import Direction, Signal, SignalBatch
from tests.test_backtest_helpers import MIN, FakeSeriesSignals, random_walk, signal_config


def _sig(name: str, time: int, kind: str = "ema_cross_up") -> Signal:
    return Signal(name, time, kind, Direction.LONG, 0.5, 100.0)


def test_signals_by_step_by_hand() -> None:
    # A has a candle at every step, B misses steps 2-4; a signal belongs to the first
    # step closing at or after its time, and a step lists A's signals before B's.
    a, b = random_walk("A", 10, 1), random_walk("B", 10, 2, drop=(2, 3, 4))
    stream = merge([b, a])
    t = stream.times
    a1, a2, a3, a4 = (
        _sig("A", t[2]),
        _sig("A", t[5]),
        _sig("A", t[5], "rsi_oversold"),
        _sig("A", t[5] + MIN // 2),
    )
    b1, b2, b3 = _sig("B", t[1]), _sig("B", t[5]), _sig("B", t[9])
    per = {
        "A": FakeSeriesSignals("A", [a1, a2, a3, a4], {"atr": np.ones(10), "close": a.close}),
        "B": FakeSeriesSignals("B", [b1, b2, b3], {"atr": np.ones(7), "close": b.close}),
    }
    batches = [SignalBatch(int(t[5]), int(t[3]), 5, (a2, a3, b2), {})]
    analysis = assemble_analysis(stream, signal_config(), per, batches)
    assert analysis.signals_by_step == {1: (b1,), 2: (a1,), 5: (a2, a3, b2), 6: (a4,), 9: (b3,)}
    assert list(analysis.signals_by_step) == [1, 2, 5, 6, 9]
    assert analysis.signals_at(5) == (a2, a3, b2) and analysis.signals_at(3) == ()
    assert analysis.batch_by_step == {5: batches[0]}
    assert analysis.batch_steps.tolist() == [5] and analysis.batch_steps.dtype == np.int64
    # one instrument: its signals are already in step order
    only_a = assemble_analysis(merge([a]), signal_config(), {"A": per["A"]}, [])
    assert only_a.signals_by_step == {2: (a1,), 5: (a2, a3), 6: (a4,)}


def test_signals_by_step_without_signals_is_empty() -> None:
    a = random_walk("A", 5, 3)
    stream = merge([a])
    per = {"A": FakeSeriesSignals("A", [], {"atr": np.ones(5), "close": a.close})}
    analysis = assemble_analysis(stream, signal_config(), per, [])
    assert analysis.signals_by_step == {} and analysis.batch_steps.tolist() == []


def test_signals_by_step_matches_a_plain_loop_on_real_data(alt_5m_files: list[Path]) -> None:
    analysis = analyse(load_many(alt_5m_files), default_signal_config())
    expected: dict[int, list[Signal]] = {}
    for name in analysis.instruments:
        for sig in analysis.per_instrument[name].signals:
            step = int(np.searchsorted(analysis.times, sig.time))
            expected.setdefault(step, []).append(sig)
    assert len(expected) > 1000
    got = analysis.signals_by_step
    assert list(got) == sorted(expected)
    assert got == {k: tuple(v) for k, v in expected.items()}
    with_signals = sorted(b.step for b in analysis.batches if b.signals)
    assert analysis.batch_steps.tolist() == with_signals
    assert analysis.batch_by_step == {b.step: b for b in analysis.batches}
