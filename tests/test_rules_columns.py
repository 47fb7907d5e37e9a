"""The hold oracle's signal columns read from the analysis' columns (no Signal, no batch
made) equal the ones read from the batches' Signal objects: merging (strongest first of
equals, NaN strengths, counts), order, codes and the score bounds, on real data and in
a hypothesis test against ``merge_signals`` itself."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backtest import BacktestConfig
from engine.backtest.analysis import analyse
from engine.brain import rules
from engine.brain.persona import builtin_persona_names, load_persona
from engine.data import load, load_many
from engine.signals.aggregator import merge_signals, merged_columns
from engine.signals.columns import KindColumns, SignalList, order_signals, signal_columns
from engine.types import Direction, Signal


def _same_columns(a: tuple, b: tuple) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


class _Objects:
    """The same analysis seen only through its batches (the object path)."""

    def __init__(self, analysis) -> None:
        self.batch_by_step = analysis.batch_by_step
        self.batch_steps = analysis.batch_steps


def _analyses(btc_1m_csv, alt_5m_files):
    btc, alt = [load(btc_1m_csv)], load_many(alt_5m_files)
    base = BacktestConfig().signal
    return [
        analyse(btc, base),  # window 5: merging within a window
        analyse(alt, base),
        analyse(alt, replace(base, window=1)),
        analyse(btc, replace(base, window=1, window_duration="15m")),
        analyse(alt, replace(base, window=60)),  # many signals of one kind merged
    ]


@pytest.fixture(scope="module")
def real(btc_1m_csv, alt_5m_files):
    return _analyses(btc_1m_csv, alt_5m_files)


def test_columns_equal_objects_on_real_data(real) -> None:
    merged = 0
    for analysis in real:
        columns = rules._column_columns(*analysis.batches.merged_columns())
        assert len(columns[0]) > 1000
        merged += int((columns[6] > 1).sum())
        _same_columns(columns, rules._object_columns(_Objects(analysis)))
    assert merged > 100  # signals of one kind merged within a window


@pytest.mark.parametrize("name", builtin_persona_names())
def test_oracle_from_columns_equals_the_oracle_from_objects(real, name) -> None:
    persona = load_persona(name)
    for analysis in real:
        fast = rules.score_bounds(analysis, persona)
        slow = rules.score_bounds(_Objects(analysis), persona)
        _same_columns(fast[:2], slow[:2])
        assert fast[2] == slow[2]
        a, b = rules.HoldOracle(analysis, persona), rules.HoldOracle(_Objects(analysis), persona)
        np.testing.assert_array_equal(a.flat_quiet, b.flat_quiet)


# -- merging, against merge_signals itself --------------------------------------------

KINDS = ("rsi_oversold", "ema_cross_up", "volume_spike", "made_up_kind", "other_kind")
strengths = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 1.5, -0.0, -0.25, math.nan, math.inf]),
    st.floats(-1.0, 2.0, allow_nan=False),
)
directions = st.sampled_from([Direction.LONG, Direction.SHORT, Direction.NEUTRAL])
# one instrument's kinds: kind -> (a direction shared by all or None: one per signal,
# strengths as a float column / an int column / one shared value, candle -> (s, d))
kinds_st = st.dictionaries(
    st.sampled_from(KINDS),
    st.tuples(
        st.one_of(st.none(), directions),
        st.sampled_from(["floats", "ints", "shared"]),
        st.dictionaries(st.integers(0, 15), st.tuples(strengths, directions), min_size=1),
    ),
    min_size=1,
    max_size=4,
)


def _signal_list(name: str, kinds: dict) -> tuple[SignalList, np.ndarray]:
    """One instrument's signals as detect_series keeps them, and the candle of each."""
    groups, at_parts, rank_parts = [], [], []
    for rank, (kind, (shared, how, items)) in enumerate(sorted(kinds.items())):
        at = np.array(sorted(items), dtype=np.int64)
        values = [items[i][0] for i in at.tolist()]
        if how == "floats":
            strength = np.array(values, dtype=np.float64)
        elif how == "ints":
            strength = np.array([int(v) if math.isfinite(v) else 1 for v in values])
        else:
            strength = values[0]
        direction = shared if shared is not None else [items[i][1] for i in at.tolist()]
        groups.append(KindColumns(name, kind, at * 60, at * 1.0, direction, strength, {}))
        at_parts.append(at)
        rank_parts.append(np.full(len(at), rank))
    candle, rank = np.concatenate(at_parts), np.concatenate(rank_parts)
    order = np.lexsort((rank, candle))
    group = np.concatenate([np.full(len(a), g, dtype=np.int32) for g, a in enumerate(at_parts)])
    rows = np.concatenate([np.arange(len(a), dtype=np.int64) for a in at_parts])
    return SignalList(groups, group[order], rows[order]), candle[order]


def _key(x: float) -> str:
    return repr(float(x))  # NaN equals NaN, -0.0 differs from 0.0


class _Fake:
    """An analysis of given slices of ordered signals: batches made of objects, and
    the column path over the same slices."""

    def __init__(self, ordered, lo, hi) -> None:
        with_signals = hi > lo
        self.batch_steps = np.flatnonzero(with_signals).astype(np.int64)
        self.batch_by_step = {
            int(j): _Batch(merge_signals(ordered.take(int(lo[j]), int(hi[j]))))
            for j in self.batch_steps
        }
        self.batches = _Batches(ordered, lo, hi)


class _Batch:
    def __init__(self, signals) -> None:
        self.signals = signals


class _Batches:
    def __init__(self, ordered, lo, hi) -> None:
        self.args = ordered, lo, hi

    def merged_columns(self):
        return merged_columns(*self.args)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(kinds_st, min_size=1, max_size=3),
    st.lists(st.integers(0, 60), max_size=8),
)
def test_merged_columns_equal_merge_signals(instruments, cuts) -> None:
    names = ["BBB", "AAA", "CCC"][: len(instruments)]  # not in name order: sorting matters
    lists, steps = zip(
        *(_signal_list(n, k) for n, k in zip(names, instruments, strict=False)), strict=True
    )
    ordered, _ = order_signals(list(lists), list(steps))
    n = len(ordered)
    edges = sorted({0, n, *(min(c, n) for c in cuts)})
    lo, hi = np.array(edges[:-1], dtype=np.int64), np.array(edges[1:], dtype=np.int64)
    if cuts and cuts[0] % 3 == 0:  # an empty slice, as emit_empty batches are
        lo, hi = (
            np.insert(lo, 1, lo[1] if len(lo) > 1 else n),
            np.insert(hi, 1, lo[1] if len(lo) > 1 else n),
        )
    batch, cols = merged_columns(ordered, lo, hi)
    got = [
        (
            int(b),
            cols.instruments[i],
            cols.kinds[k],
            cols.directions[d],
            _key(s),
            int(c),
            int(t),
        )
        for b, i, k, d, s, c, t in zip(
            batch,
            cols.instrument,
            cols.kind,
            cols.direction,
            cols.strength,
            cols.count,
            cols.time,
            strict=True,
        )
    ]
    want = []
    for b, j in enumerate(np.flatnonzero(hi > lo).tolist()):
        for sig in merge_signals(ordered.take(int(lo[j]), int(hi[j]))):
            want.append(
                (
                    b,
                    sig.instrument,
                    sig.kind,
                    sig.direction,
                    _key(sig.strength),
                    sig.count,
                    sig.time,
                )
            )
    assert got == want
    fake = _Fake(ordered, lo, hi)
    _same_columns(rules._column_columns(batch, cols), rules._object_columns(fake))


def test_signal_columns_read_plain_lists_too() -> None:
    sigs = [
        Signal("AAA", 5, "ema_cross_up", Direction.LONG, 0.5, 1.0, {}, 2),
        Signal("AAA", 7, "volume_spike", Direction.NEUTRAL, 1, 1.0, {}),
    ]
    cols = signal_columns([sigs])
    assert cols.instruments == ("AAA",) and cols.kinds == ("ema_cross_up", "volume_spike")
    assert cols.strength.tolist() == [0.5, 1.0] and cols.count.tolist() == [2, 1]
    assert cols.time.tolist() == [5, 7]
    assert [cols.directions[d] for d in cols.direction] == [Direction.LONG, Direction.NEUTRAL]
