"""Batching signals by time window across instruments, step by step
(:class:`SignalAggregator`) or over a whole merged stream at once (:func:`batch_signals`),
with the identical result.

Windows
    By count (``window=N``): steps ``[kN, (k+1)N)`` of the merged stream form a window,
    emitted at its last step; ``N=1`` is immediate. By duration (``duration_ns=D``): a
    window holds the steps whose close time falls in ``((k-1)D, kD]`` (aligned to the
    epoch) and is emitted at the step whose time is exactly ``kD``; when data has a gap
    there and the next step already lies in a later window, the pending window is
    emitted at that next step, together with that step's own signals (they are known
    at that close too). The last, partial window is emitted by ``flush()``.
    A window without signals emits nothing unless ``emit_empty``.

Merging
    Signals of the same kind on the same instrument inside one window become one: the
    strongest (the first of equals) with ``count`` = how many were merged. A batch's
    signals are ordered by (time, instrument, kind).

Conflicts (flagged, never resolved)
    ``same_instrument``: an instrument has both long and short signals in the batch.
    ``correlated``: two instruments with one-sided, opposite views (one only long, the
    other only short) whose simple returns over the last ``correlation_lookback`` steps
    of the merged stream (last close carried over steps where an instrument has no
    candle) have a Pearson correlation >= ``correlation_threshold``; at least half of
    those returns must be known for both, and neither may be flat.

Context
    Every batch carries an ``InstrumentContext`` for each instrument seen so far: as of
    its latest candle at or before the batch's step. ``batch_signals`` gives it as a
    read-only mapping that builds each context on first access
    (``engine.signals.contexts.LazyContexts``), equal to the aggregator's dict.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from engine.runtime import gc_paused
from engine.signals.columns import (
    MadeWhenRead,
    OrderedSignals,
    SignalColumns,
    order_signals,
    signal_columns,
)
from engine.signals.config import SignalConfig, default_signal_config
from engine.signals.contexts import ContextSource, LazyContexts
from engine.signals.detector import SeriesSignals
from engine.signals.registry import KIND_ORDER
from engine.types import Conflict, ConflictKind, Direction, InstrumentContext, Signal, SignalBatch


def return_correlation(a: np.ndarray, b: np.ndarray, min_periods: int) -> float | None:
    """Pearson correlation of the simple returns of two aligned price rows, over the
    returns known for both; None when too few are known or one side is flat."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ra = a[1:] / a[:-1] - 1.0
        rb = b[1:] / b[:-1] - 1.0
    ok = np.isfinite(ra) & np.isfinite(rb)
    if int(ok.sum()) < max(min_periods, 2):
        return None
    x = ra[ok] - ra[ok].mean()
    y = rb[ok] - rb[ok].mean()
    den = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    if not den > 0:
        return None
    return float((x * y).sum()) / den


def merge_signals(signals: Iterable[Signal]) -> tuple[Signal, ...]:
    """One signal per (instrument, kind): the strongest, first of equals, with the count."""
    if isinstance(signals, list | tuple) and len(signals) < 2:
        return tuple(signals)  # nothing to merge
    best: dict[tuple[str, str], Signal] = {}
    counts: dict[tuple[str, str], int] = {}
    for s in signals:
        key = (s.instrument, s.kind)
        counts[key] = counts.get(key, 0) + s.count
        if key not in best or s.strength > best[key].strength:
            best[key] = s
    out = []
    for key, s in best.items():
        n = counts[key]
        out.append(s if s.count == n else _with_count(s, n))
    out.sort(key=lambda s: (s.time, s.instrument, KIND_ORDER.get(s.kind, len(KIND_ORDER))))
    return tuple(out)


def _with_count(s: Signal, count: int) -> Signal:
    return Signal(s.instrument, s.time, s.kind, s.direction, s.strength, s.price, s.evidence, count)


def find_conflicts(
    signals: Sequence[Signal],
    price_row: Callable[[str], np.ndarray | None],
    *,
    threshold: float,
    lookback: int,
) -> tuple[Conflict, ...]:
    """The conflicts of one batch (see the module docs); ``price_row(name)`` gives an
    instrument's last ``lookback + 1`` carried-over closes, aligned by step."""
    if len(signals) < 2:  # every conflict takes two signals
        return ()
    longs: dict[str, list[str]] = {}
    shorts: dict[str, list[str]] = {}
    for s in signals:
        if s.direction == Direction.LONG:
            longs.setdefault(s.instrument, []).append(s.kind)
        elif s.direction == Direction.SHORT:
            shorts.setdefault(s.instrument, []).append(s.kind)
    conflicts: list[Conflict] = []
    for name in sorted(set(longs) & set(shorts)):
        conflicts.append(
            Conflict(
                ConflictKind.SAME_INSTRUMENT,
                (name,),
                f"{name}: long ({', '.join(longs[name])}) vs short ({', '.join(shorts[name])})",
            )
        )
    view = {n: "long" for n in longs if n not in shorts}
    view.update({n: "short" for n in shorts if n not in longs})
    names = sorted(view)
    if "long" not in view.values() or "short" not in view.values():
        return tuple(conflicts)
    rows = {n: price_row(n) for n in names}
    min_periods = lookback // 2
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ra, rb = rows[a], rows[b]
            if view[a] == view[b] or ra is None or rb is None:
                continue
            corr = return_correlation(ra, rb, min_periods)
            if corr is not None and corr >= threshold:
                conflicts.append(
                    Conflict(
                        ConflictKind.CORRELATED,
                        (a, b),
                        f"{a} {view[a]} vs {b} {view[b]}; return correlation {corr:.2f} "
                        f"over the last {len(ra) - 1} steps",
                    )
                )
    return tuple(conflicts)


class SignalAggregator:
    """Collects each step's signals and emits a :class:`SignalBatch` when a window closes.

    Call ``add`` once per merged-stream step, in order, with the signals fired at that
    step and the contexts of the instruments that had a candle there; ``flush`` at the
    end for the last, partial window.
    """

    def __init__(
        self,
        window: int = 1,
        *,
        duration_ns: int | None = None,
        instruments: Iterable[str] = (),
        correlation_lookback: int = 120,
        correlation_threshold: float = 0.5,
        emit_empty: bool = False,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1 step, got {window}")
        if duration_ns is not None and duration_ns <= 0:
            raise ValueError(f"window duration must be positive, got {duration_ns} ns")
        self.window = int(window)
        self.duration_ns = duration_ns
        self.correlation_lookback = int(correlation_lookback)
        self.correlation_threshold = float(correlation_threshold)
        self.emit_empty = emit_empty
        self._contexts: dict[str, InstrumentContext] = {}
        self._prices: dict[str, deque[float]] = {}
        self._steps_seen = 0
        for name in instruments:
            self._track(name)
        self._pending: list[Signal] = []
        self._pending_steps = 0
        self._window_start = 0
        self._last_step = -1
        self._last_time = 0
        self._prev_w: int | None = None
        self._prev_closed = False

    @classmethod
    def from_config(
        cls, config: SignalConfig | None = None, instruments: Iterable[str] = ()
    ) -> SignalAggregator:
        config = config or default_signal_config()
        return cls(
            config.window,
            duration_ns=config.window_ns,
            instruments=instruments,
            correlation_lookback=config.correlation_lookback,
            correlation_threshold=config.correlation_threshold,
            emit_empty=config.emit_empty,
        )

    def _track(self, name: str) -> None:
        if name not in self._prices:
            size = min(self._steps_seen, self.correlation_lookback + 1)
            self._prices[name] = deque([math.nan] * size, maxlen=self.correlation_lookback + 1)

    def _closes(self, step: int, time: int) -> bool:
        if self.duration_ns is None:
            return (step + 1) % self.window == 0
        d = self.duration_ns
        w = -(-time // d)
        boundary = time % d == 0
        closed = boundary or (
            self._prev_w is not None and w > self._prev_w and not self._prev_closed
        )
        self._prev_w, self._prev_closed = w, closed
        return closed

    def add(
        self,
        step: int,
        time: int,
        signals: Sequence[Signal],
        context: Mapping[str, InstrumentContext],
    ) -> SignalBatch | None:
        """Record one step; return a batch if this step closes a window worth emitting."""
        for name, ctx in context.items():
            self._track(name)
            self._contexts[name] = ctx
        for name, row in self._prices.items():
            ctx = self._contexts.get(name)
            row.append(ctx.price if ctx is not None else math.nan)
        self._steps_seen += 1
        if self._pending_steps == 0:
            self._window_start = time
        self._pending.extend(signals)
        self._pending_steps += 1
        self._last_step, self._last_time = step, time
        if self._closes(step, time):
            return self._emit()
        return None

    def flush(self) -> SignalBatch | None:
        """Emit the last, partial window (if it holds anything to emit)."""
        return self._emit() if self._pending_steps else None

    def _price_row(self, name: str) -> np.ndarray | None:
        row = self._prices.get(name)
        return None if row is None else np.array(row, dtype=np.float64)

    def _emit(self) -> SignalBatch | None:
        signals, self._pending = self._pending, []
        self._pending_steps = 0
        if not signals and not self.emit_empty:
            return None
        merged = merge_signals(signals)
        return SignalBatch(
            time=self._last_time,
            window_start=self._window_start,
            step=self._last_step,
            signals=merged,
            context={n: self._contexts[n] for n in sorted(self._contexts)},
            conflicts=find_conflicts(
                merged,
                self._price_row,
                threshold=self.correlation_threshold,
                lookback=self.correlation_lookback,
            ),
        )


# -- vectorised ------------------------------------------------------------------------


def window_closes(times: np.ndarray, window: int, duration_ns: int | None) -> np.ndarray:
    """For each step, whether a window closes there (the last step always closes)."""
    n = times.shape[0]
    if duration_ns is None:
        closes = (np.arange(n) + 1) % window == 0
    else:
        d = np.int64(duration_ns)
        w = -(-times // d)
        closes = times % d == 0
        for s in (np.flatnonzero(w[1:] > w[:-1]) + 1).tolist():
            if not closes[s - 1]:
                closes[s] = True
    if n:
        closes[-1] = True
    return closes


def _carried_index(row: np.ndarray) -> np.ndarray:
    """For each step, the instrument's latest candle index at or before it (-1: none)."""
    steps = np.where(row >= 0, np.arange(row.shape[0]), -1)
    latest_step = np.maximum.accumulate(steps)
    return np.where(latest_step >= 0, row[np.maximum(latest_step, 0)], -1)


def batch_signals(
    stream: object,
    per_instrument: Mapping[str, SeriesSignals],
    config: SignalConfig | None = None,
) -> Sequence[SignalBatch]:
    """The batches a :class:`SignalAggregator` fed step by step from ``per_instrument``
    (signals at their steps, contexts at each candle) would emit, computed at once.

    ``stream`` is an ``engine.data.stream.MergedStream`` of the same series."""
    with gc_paused():
        return _batch_signals(stream, per_instrument, config)


def _batch_signals(
    stream: object, per_instrument: Mapping[str, SeriesSignals], config: SignalConfig | None
) -> Sequence[SignalBatch]:
    config = config or default_signal_config()
    times = np.asarray(stream.times, dtype=np.int64)  # type: ignore[attr-defined]
    names: tuple[str, ...] = tuple(stream.instruments)  # type: ignore[attr-defined]
    candle_index = np.asarray(stream.candle_index)  # type: ignore[attr-defined]
    n = times.shape[0]
    if n == 0:
        return []
    closes = window_closes(times, config.window, config.window_ns)
    close_steps = np.flatnonzero(closes)
    window_of_step = np.cumsum(closes) - closes

    ordered, signal_steps = _signals_in_order(names, candle_index, per_instrument)
    signal_windows = window_of_step[signal_steps]  # non-decreasing
    if config.emit_empty:
        windows = np.arange(close_steps.shape[0])
    else:  # the distinct windows holding signals
        windows = signal_windows[np.diff(signal_windows, prepend=-1) != 0]
    # each window's signals are the slice [lo, hi) of `ordered`
    lo = np.searchsorted(signal_windows, windows, "left")
    hi = np.searchsorted(signal_windows, windows, "right")
    ends = close_steps[windows]
    firsts = np.where(windows > 0, close_steps[np.maximum(windows - 1, 0)] + 1, 0)
    if (candle_index >= 0).all():  # a candle at every step: nothing carried over
        carried = candle_index
    else:
        carried = np.stack([_carried_index(candle_index[r]) for r in range(len(names))])
    row_of = {name: r for r, name in enumerate(names)}
    lookback = config.correlation_lookback
    source = ContextSource(
        per_instrument,
        {name: carried[r, ends] for r, name in enumerate(names)},
        config.context_lookback,
    )

    def price_row_at(end: int) -> Callable[[str], np.ndarray | None]:
        first = max(0, end - lookback)

        def row(name: str) -> np.ndarray | None:
            seg = carried[row_of[name], first : end + 1]
            if seg[-1] < 0:
                return None
            return np.where(seg >= 0, per_instrument[name].close[np.maximum(seg, 0)], np.nan)

        return row

    return BatchList(
        ends,
        times[ends],
        times[firsts],
        lo,
        hi,
        ordered,
        source,
        price_row_at,
        config.correlation_threshold,
        lookback,
    )


class BatchList(MadeWhenRead[SignalBatch]):
    """The batches of :func:`batch_signals`, each made when read and not kept (10M
    candles give ~900k batches: 0.5 GB as objects). Batch ``j`` closes at step
    ``steps[j]`` and merges the ordered signals ``lo[j]:hi[j]``."""

    __slots__ = (
        "__weakref__",  # the rule brain keeps what it reads of the merged signals per list
        "_hi",
        "_lo",
        "_lookback",
        "_ordered",
        "_price_row_at",
        "_rows",
        "_source",
        "_threshold",
        "steps",
    )
    NOUN = "batch"

    def __init__(
        self,
        steps: np.ndarray,
        times: np.ndarray,
        starts: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        ordered: OrderedSignals,
        source: ContextSource,
        price_row_at: Callable[[int], Callable[[str], np.ndarray | None]],
        threshold: float,
        lookback: int,
    ) -> None:
        self.steps = steps
        self._lo, self._hi = lo, hi
        # one row per batch, read with one tolist(): step, time, window start, lo, hi
        self._rows = np.stack([steps, times, starts, lo, hi], axis=1).astype(np.int64)
        self._ordered = ordered
        self._source = source
        self._price_row_at = price_row_at
        self._threshold, self._lookback = threshold, lookback

    @property
    def with_signals(self) -> np.ndarray:
        """Whether each batch holds at least one signal."""
        return self._hi > self._lo

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def merged_columns(self) -> tuple[np.ndarray, SignalColumns]:
        """The signals of every batch with signals, as ``merge_signals`` gives them, as
        columns and without making a Signal or a batch: (the batch of each, numbered
        among the batches with signals, and the signals' :class:`SignalColumns`), in the
        batches' order, each batch's signals in its own order."""
        return merged_columns(self._ordered, self._lo, self._hi)

    def view(self, j: int, row: int) -> BatchView:
        """Batch ``j``, number ``row`` among those with signals, as the rule brain
        decides on it, without making it (:class:`BatchView`)."""
        return BatchView(self, j, row)

    def _make(self, j: int, context: Mapping[str, InstrumentContext] | None = None) -> SignalBatch:
        end, time, start, lo, hi = self._rows[j].tolist()
        merged = merge_signals(self._ordered.take(lo, hi))
        conflicts = find_conflicts(
            merged, self._price_row_at(end), threshold=self._threshold, lookback=self._lookback
        )
        if context is None:
            context = LazyContexts(self._source, j)
        return SignalBatch(time, start, end, merged, context, conflicts)


class BatchView:
    """Batch ``j`` of a :class:`BatchList` as ``run()`` asks the rule brain with it: its
    ``time``, ``window_start``, ``step`` and ``context`` (the batch's: each context made
    when read), and where its merged signals are (``batches``, and ``row``: its number
    among the batches with signals, as in ``merged_columns``), so that the brain reads
    them from the columns without making a Signal. Reading ``signals`` or ``conflicts``
    makes the batch (:attr:`batch`, once, sharing this ``context``): what any other
    reader sees is the batch itself."""

    __slots__ = ("_batch", "_j", "batches", "context", "row", "step", "time", "window_start")

    def __init__(self, batches: BatchList, j: int, row: int) -> None:
        self.batches, self._j, self.row = batches, j, row
        self.step, self.time, self.window_start = batches._rows[j, :3].tolist()
        self.context: Mapping[str, InstrumentContext] = LazyContexts(batches._source, j)
        self._batch: SignalBatch | None = None

    @property
    def batch(self) -> SignalBatch:
        if self._batch is None:
            self._batch = self.batches._make(self._j, self.context)
        return self._batch

    @property
    def signals(self) -> tuple[Signal, ...]:
        return self.batch.signals

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        return self.batch.conflicts


def merged_columns(
    ordered: OrderedSignals, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, SignalColumns]:
    """``merge_signals`` over the slices ``lo[j]:hi[j]`` of ``ordered`` at once (see
    :meth:`BatchList.merged_columns`): per (slice, instrument, kind) the strongest signal,
    the first of equals (a NaN strength first in its group stays, a later one is never
    kept: ``>`` is False for NaN), with the counts summed; ordered by (time, instrument,
    kind) within each slice."""
    cols = signal_columns(ordered._lists)
    offsets = np.cumsum([0, *(len(x) for x in ordered._lists)])[:-1].astype(np.int64)
    sizes = (hi - lo).astype(np.int64)
    total = int(sizes.sum())
    # each slice's signals, in order: item k of `ordered` is row offsets[which]+pos of cols
    starts = np.cumsum(sizes) - sizes
    k = np.repeat(lo.astype(np.int64) - starts, sizes) + np.arange(total, dtype=np.int64)
    rows = offsets[ordered._which[k]] + ordered._pos[k] if total else k
    batch = np.repeat(np.cumsum(sizes > 0) - 1, sizes)
    inst, kind = cols.instrument[rows], cols.kind[rows]
    strength = cols.strength[rows]
    arrival = np.lexsort((kind, inst, batch))  # stable: each group in arrival order
    batch, inst, kind, strength = batch[arrival], inst[arrival], kind[arrival], strength[arrival]
    rows = rows[arrival]
    new = np.ones(total, dtype=bool)
    new[1:] = (batch[1:] != batch[:-1]) | (inst[1:] != inst[:-1]) | (kind[1:] != kind[:-1])
    first = np.flatnonzero(new)
    group_of = np.cumsum(new) - 1
    if total:
        peak = np.fmax.reduceat(strength, first)  # NaN only when all are NaN
        place = np.arange(total, dtype=np.int64)
        at_peak = np.where(strength == peak[group_of], place, total)
        kept = np.minimum.reduceat(at_peak, first)
        # a NaN first keeps its place (nothing compares greater); all NaN: the first
        kept = np.where(np.isnan(strength[first]) | (kept == total), first, kept)
        count = np.add.reduceat(cols.count[rows], first)
    else:
        kept = count = first
    batch, inst, kind, src = batch[first], inst[first], kind[first], rows[kept]
    time = cols.time[src]
    name_rank = np.argsort(np.argsort(np.array(cols.instruments, dtype=object)))
    kind_rank = np.array([KIND_ORDER.get(x, len(KIND_ORDER)) for x in cols.kinds], np.int64)
    if total:  # ties (a kind of no known order) as merge_signals: first seen first
        order = np.lexsort((arrival[first], kind_rank[kind], name_rank[inst], time, batch))
    else:
        order = first
    src = src[order]
    merged = SignalColumns(
        cols.instruments,
        inst[order],
        cols.kinds,
        kind[order],
        cols.directions,
        cols.direction[src],
        cols.strength[src],
        count[order],
        time[order],
    )
    return batch[order], merged


def _signals_in_order(
    names: Sequence[str], candle_index: np.ndarray, per_instrument: Mapping[str, SeriesSignals]
) -> tuple[OrderedSignals, np.ndarray]:
    """Every instrument's signals in arrival order (step, then instrument in the stream's
    order, then the instrument's own order) and the merged-stream step of each."""
    lists: list[Sequence[Signal]] = []
    steps: list[np.ndarray] = []
    for row, name in enumerate(names):
        ss = per_instrument[name]
        if not len(ss.signals):
            continue
        steps.append(np.flatnonzero(candle_index[row] >= 0)[ss.signal_index])
        lists.append(ss.signals)
    return order_signals(lists, steps)
