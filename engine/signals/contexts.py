"""A batch's market context, built on first access.

The vectorised aggregator emits one batch per window and every batch carries an
``InstrumentContext`` for each instrument seen so far; a brain usually reads one or two
of them. :class:`LazyContexts` is a read-only ``Mapping`` that builds each context when
it is first read (and keeps it), with exactly the values, key order, equality and repr
of the plain ``dict`` the step-by-step aggregator produces.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from engine.signals.detector import RECENT_MOVES, SeriesSignals, make_context
from engine.types import InstrumentContext


class ContextSource:
    """What the batches of one ``batch_signals`` call share: per instrument, its
    signals/indicators and its latest candle index at each batch's step (-1: no candle
    yet). An instrument's values at every batch are gathered in bulk the first time any
    of its contexts is read."""

    __slots__ = ("_gathered", "_indices", "candles", "lookback", "names", "series")

    def __init__(
        self, series: Mapping[str, SeriesSignals], candles: Mapping[str, np.ndarray], lookback: int
    ) -> None:
        self.names: tuple[str, ...] = tuple(sorted(candles))
        self.series = series
        self.candles: dict[str, list[int]] = {n: a.tolist() for n, a in candles.items()}
        self.lookback = lookback
        self._indices = candles
        self._gathered: dict[str, _Gathered] = {}

    def context(self, name: str, batch: int) -> InstrumentContext:
        """``series[name].context(candle, lookback)`` at the batch's candle (>= 0)."""
        columns = self._gathered.get(name)
        if columns is None:
            columns = self._gathered[name] = self._gather(name)
        price, then, back, keys, values = columns
        # .tolist() and .item() give the same floats as SeriesSignals.context's float(a[i])
        row = dict(zip(keys, values[batch].tolist(), strict=True))
        ss = self.series[name]
        at = self.candles[name][batch]
        recent = ss.close[max(0, at - RECENT_MOVES) : at + 1].tolist()
        return make_context(
            ss.instrument, price[batch].item(), then[batch].item(), back[batch].item(), row, recent
        )

    def _gather(self, name: str) -> _Gathered:
        # numpy, not lists: 10M candles give ~900k batches, and a list of Python floats
        # per indicator costs four times the array
        ss = self.series[name]
        safe = np.maximum(self._indices[name], 0)
        back = np.minimum(safe, self.lookback)
        keys = tuple(ss.indicators)
        values = np.empty((safe.shape[0], len(keys)), dtype=np.float64)
        for j, a in enumerate(ss.indicators.values()):
            values[:, j] = a[safe]
        return ss.close[safe], ss.close[safe - back], back, keys, values


_Gathered = tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]


class LazyContexts(Mapping[str, InstrumentContext]):
    """Instrument name -> ``InstrumentContext`` at batch ``batch`` of ``source``: the
    instruments with a candle by then, in name order. Read-only; equal to (and printed
    as) the dict of the same contexts; copies and pickles are that plain dict."""

    __slots__ = ("_batch", "_built", "_source")

    def __init__(self, source: ContextSource, batch: int) -> None:
        self._source = source
        self._batch = batch
        self._built: dict[str, InstrumentContext] = {}

    def _candle(self, name: str) -> int:
        column = self._source.candles.get(name)
        return -1 if column is None else column[self._batch]

    def __getitem__(self, name: str) -> InstrumentContext:
        ctx = self._built.get(name)
        if ctx is None:
            column = self._source.candles.get(name)
            if column is None or column[self._batch] < 0:
                raise KeyError(name)
            ctx = self._built[name] = self._source.context(name, self._batch)
        return ctx

    def __contains__(self, name: object) -> bool:
        return self._candle(name) >= 0  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        j, candles = self._batch, self._source.candles
        return (n for n in self._source.names if candles[n][j] >= 0)

    def __len__(self) -> int:
        j, candles = self._batch, self._source.candles
        return sum(1 for n in self._source.names if candles[n][j] >= 0)

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self.items()),))
