"""Market analysis computed once per window: merged stream, indicators, signals, batches.

A :class:`MarketAnalysis` holds everything about the market that does not depend on a
persona or a brain. A Session computes it once and every persona's engine shares it.
Everything here is columnar; the per-step lookups the engine needs (which signals fired
at a step, which batch closed there, the last close of each instrument at every step)
are precomputed as arrays or dicts keyed by step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.data.stream import MergedStream, merge
from engine.runtime import gc_paused, release_freed_memory
from engine.signals.detector import IndicatorColumns
from engine.types import InstrumentContext, InstrumentSeries, Signal, SignalBatch

if TYPE_CHECKING:
    from engine.signals import SeriesSignals, SignalConfig
    from engine.signals.aggregator import BatchList, BatchView

CONTEXT_LOOKBACK = 60  # candles a review batch measures change_pct over, unless configured


@dataclass(eq=False)
class InstrumentArrays:
    """One instrument's columns plus the maps between its candles and merged steps."""

    name: str
    index: int  # row in the stream's candle_index
    series: InstrumentSeries
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    open_time: np.ndarray
    close_time: np.ndarray
    atr: np.ndarray
    indicators: Mapping[str, np.ndarray]
    step_of_candle: np.ndarray  # candle index -> merged step index


@dataclass(eq=False)
class MarketAnalysis:
    stream: MergedStream
    signal_config: SignalConfig
    per_instrument: Mapping[str, SeriesSignals]
    batches: Sequence[SignalBatch]  # a BatchList (made when read) from analyse
    arrays: Mapping[str, InstrumentArrays]
    signals_by_step: Mapping[int, tuple[Signal, ...]]
    batch_by_step: Mapping[int, SignalBatch]
    batch_steps: np.ndarray  # sorted steps whose batch holds at least one signal
    last_close: np.ndarray  # (n_instruments, n_steps): last known close at each step
    _empty: tuple[Signal, ...] = field(default=(), repr=False)

    @property
    def instruments(self) -> tuple[str, ...]:
        return tuple(self.stream.instruments)

    @property
    def times(self) -> np.ndarray:
        return self.stream.times

    def __len__(self) -> int:
        return len(self.stream)

    def step_at(self, time: int) -> int:
        """The first step closing at or after ``time`` (ns); ``len(self)`` if none does."""
        return int(np.searchsorted(self.stream.times, int(time), "left"))

    def batch_view(self, step: int, row: int | None = None) -> SignalBatch | BatchView:
        """The batch with signals closing at ``step`` as the rule brain decides on it:
        of batches made when read, a :class:`BatchView` (its signals as columns; the
        batch is made only if its signals or conflicts are read), else the batch.
        ``row``: the step's index in ``batch_steps``, when the caller knows it."""
        by_step = self.batch_by_step
        if isinstance(by_step, BatchesByStep):
            return by_step.view(step) if row is None else by_step.view_row(row)
        return by_step[step]

    def signals_at(self, step: int) -> tuple[Signal, ...]:
        return self.signals_by_step.get(step, self._empty)

    def present(self, step: int) -> list[InstrumentArrays]:
        """Instruments with a candle at ``step``, in the stream's (tie-break) order."""
        ci = self.stream.candle_index[:, step]
        return [self.arrays[name] for name, c in zip(self.instruments, ci, strict=True) if c >= 0]

    def indicator_values(self, instrument: str, candle: int) -> dict[str, float]:
        arrays = self.arrays[instrument]
        if isinstance(arrays.indicators, IndicatorColumns):
            return arrays.indicators.at(candle)
        return {name: float(values[candle]) for name, values in arrays.indicators.items()}

    def prices_at(self, step: int) -> dict[str, float]:
        """Last known close of every instrument that has had a candle by ``step``."""
        col = self.last_close[:, step]
        return {
            name: float(col[i])
            for i, name in enumerate(self.instruments)
            if self.arrays[name].step_of_candle[0] <= step
        }

    def last_candle(self, instrument: str, step: int) -> int:
        """Index of the instrument's last candle at or before ``step`` (-1 if none)."""
        return int(np.searchsorted(self.arrays[instrument].step_of_candle, step, "right")) - 1

    def context_at(
        self, step: int, lookback: int = CONTEXT_LOOKBACK
    ) -> dict[str, InstrumentContext]:
        """Market context at ``step`` for a brain asked without signals (position review)."""
        out: dict[str, InstrumentContext] = {}
        for name in self.instruments:
            ci = self.last_candle(name, step)
            if ci >= 0:
                # the aggregator's own arithmetic, so a review sees what a batch would
                out[name] = self.per_instrument[name].context(ci, lookback)
        return out


def _instrument_arrays(stream: MergedStream, row: int, name: str, signals: Any) -> InstrumentArrays:
    series = stream.series[name]
    indicators: Mapping[str, np.ndarray]
    if isinstance(signals.indicators, IndicatorColumns):  # derived values made when read
        indicators = signals.indicators
    else:
        indicators = {
            k: np.asarray(v, dtype=np.float64)
            for k, v in signals.indicators.items()
            if np.ndim(v) == 1 and len(v) == len(series)
        }
    atr = indicators.get("atr")
    if atr is None:
        atr = np.full(len(series), np.nan)
    candles = stream.candle_index[row]
    if candles.shape[0] == len(series):  # a candle at every step: candle i closes at step i
        steps = candles
    else:
        steps = np.flatnonzero(candles >= 0).astype(np.int64)
    return InstrumentArrays(
        name=name,
        index=row,
        series=series,
        open=np.ascontiguousarray(series.open, dtype=np.float64),
        high=np.ascontiguousarray(series.high, dtype=np.float64),
        low=np.ascontiguousarray(series.low, dtype=np.float64),
        close=np.ascontiguousarray(series.close, dtype=np.float64),
        open_time=np.asarray(series.open_time, dtype=np.int64),
        close_time=np.asarray(series.close_time, dtype=np.int64),
        atr=atr,
        indicators=indicators,
        step_of_candle=steps,
    )


def _last_close(stream: MergedStream, arrays: Mapping[str, InstrumentArrays]) -> np.ndarray:
    n = len(stream)
    if len(stream.instruments) == 1 and len(arrays[stream.instruments[0]].step_of_candle) == n:
        return arrays[stream.instruments[0]].close.reshape(1, n)  # a view: nothing to carry
    out = np.empty((len(stream.instruments), n), dtype=np.float64)
    for row, name in enumerate(stream.instruments):
        arr = arrays[name]
        if len(arr.step_of_candle) == n:  # a candle at every step
            out[row] = arr.close
            continue
        # index of the last candle at or before each step; before the first candle the
        # value is never used for money (no position can exist), so take the first close
        last = np.searchsorted(arr.step_of_candle, np.arange(n), "right") - 1
        out[row] = arr.close[np.maximum(last, 0)]
    return out


def analyse(
    series_list: Sequence[InstrumentSeries],
    signal_config: SignalConfig,
    *,
    stream: MergedStream | None = None,
    keep_batches: bool = False,
) -> MarketAnalysis:
    """Merge the instruments, compute indicators and signals per instrument and the batches.

    The batches are made when read and not kept (memory at scale); ``keep_batches``
    makes them once and keeps them, for an analysis that several runs share (an
    experiment's cells), which would otherwise each make them again."""
    from engine.signals import batch_signals, detect_series

    with gc_paused():
        stream = stream if stream is not None else merge(list(series_list))
        per_instrument = {
            name: detect_series(stream.series[name], signal_config) for name in stream.instruments
        }
        batches = batch_signals(stream, per_instrument, signal_config)
        if keep_batches:
            batches = tuple(batches)
        analysis = assemble_analysis(stream, signal_config, per_instrument, batches)
    release_freed_memory()  # the detectors' temporaries, before the replay allocates
    return analysis


def assemble_analysis(
    stream: MergedStream,
    signal_config: SignalConfig,
    per_instrument: Mapping[str, SeriesSignals],
    batches: Sequence[SignalBatch],
) -> MarketAnalysis:
    """Build the per-step lookups from signals and batches computed elsewhere."""
    from engine.signals.aggregator import BatchList

    arrays = {
        name: _instrument_arrays(stream, row, name, per_instrument[name])
        for row, name in enumerate(stream.instruments)
    }
    batch_by_step: Mapping[int, SignalBatch]
    if isinstance(batches, BatchList):  # made when read: keep it so
        batch_by_step = BatchesByStep(batches)
        batch_steps = batches.steps[batches.with_signals]
    else:
        batches = tuple(batches)
        batch_by_step = dict(zip(map(_step_of, batches), batches, strict=True))
        batch_steps = np.array([b.step for b in batches if b.signals], dtype=np.int64)
        batch_steps.sort()
    return MarketAnalysis(
        stream=stream,
        signal_config=signal_config,
        per_instrument=per_instrument,
        batches=batches,
        arrays=arrays,
        signals_by_step=SignalsByStep(stream, per_instrument),
        batch_by_step=batch_by_step,
        batch_steps=batch_steps,
        last_close=_last_close(stream, arrays),
    )


_step_of = attrgetter("step")


class BatchesByStep(Mapping[int, SignalBatch]):
    """Step -> the batch closing there, of a :class:`BatchList` (made when read)."""

    __slots__ = ("_batches", "_with_signals")

    def __init__(self, batches: BatchList) -> None:
        self._batches = batches
        self._with_signals: np.ndarray | None = None

    def __getitem__(self, step: int) -> SignalBatch:
        return self._batches[self._index(step)]

    def view(self, step: int) -> BatchView:
        """The batch closing at ``step`` as a :class:`BatchView` (not made)."""
        j = self._index(step)
        index = self._signal_batches()
        if len(index) == len(self._batches):  # every batch holds signals (the default)
            return self._batches.view(j, j)
        row = int(index.searchsorted(j))
        if row == len(index) or index[row] != j:
            raise KeyError(step)  # a batch without signals: the brain is not asked
        return self._batches.view(j, row)

    def view_row(self, row: int) -> BatchView:
        """The batch with signals number ``row`` (the analysis' ``batch_steps[row]``)
        as a :class:`BatchView`."""
        index = self._signal_batches()
        return self._batches.view(row if len(index) == len(self._batches) else int(index[row]), row)

    def _signal_batches(self) -> np.ndarray:
        """The indices of the batches with signals (all of them, usually)."""
        if self._with_signals is None:
            self._with_signals = np.flatnonzero(self._batches.with_signals)
        return self._with_signals

    def _index(self, step: int) -> int:
        steps = self._batches.steps
        j = int(steps.searchsorted(step))
        if j == steps.shape[0] or steps[j] != step:
            raise KeyError(step)
        return j

    def __contains__(self, step: object) -> bool:
        steps = self._batches.steps
        j = int(np.searchsorted(steps, step))  # type: ignore[call-overload]
        return j < steps.shape[0] and steps[j] == step

    def __iter__(self) -> Iterator[int]:
        return iter(self._batches.steps.tolist())

    def __len__(self) -> int:
        return len(self._batches)


class SignalsByStep(Mapping[int, tuple[Signal, ...]]):
    """Step -> the signals at that step (the first step closing at or after the signal's
    time), in instrument order then each instrument's own order; steps ascending. The
    signals are made when read (``engine.signals.columns``), only the order is kept."""

    __slots__ = ("_bounds", "_keys", "_ordered")

    def __init__(self, stream: MergedStream, per_instrument: Mapping[str, SeriesSignals]):
        from engine.signals.columns import order_signals, signal_times

        lists = [per_instrument[name].signals for name in stream.instruments]
        lists = [x for x in lists if len(x)]
        steps = [np.searchsorted(stream.times, signal_times(x)) for x in lists]
        self._ordered, at = order_signals(lists, steps)
        first = np.flatnonzero(np.concatenate(([True], at[1:] != at[:-1]))) if len(at) else at
        self._keys = at[first]
        self._bounds = np.append(first, len(at))

    def __getitem__(self, step: int) -> tuple[Signal, ...]:
        k = int(np.searchsorted(self._keys, step))
        if k == self._keys.shape[0] or self._keys[k] != step:
            raise KeyError(step)
        return tuple(self._ordered.take(int(self._bounds[k]), int(self._bounds[k + 1])))

    def __contains__(self, step: object) -> bool:
        k = int(np.searchsorted(self._keys, step))  # type: ignore[call-overload]
        return k < self._keys.shape[0] and self._keys[k] == step

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys.tolist())

    def __len__(self) -> int:
        return int(self._keys.shape[0])
