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

from engine.signals.detector import SeriesSignals
from engine.types import InstrumentContext


class ContextSource:
    """What the batches of one ``batch_signals`` call share: per instrument, its
    signals/indicators and its latest candle index at each batch's step (-1: no candle
    yet). A context is built when read, from the indicator columns at that candle (no
    copy of them gathered per batch: 10M candles, ~900k batches)."""

    __slots__ = ("candles", "lookback", "names", "series")

    def __init__(
        self, series: Mapping[str, SeriesSignals], candles: Mapping[str, np.ndarray], lookback: int
    ) -> None:
        self.names: tuple[str, ...] = tuple(sorted(candles))
        self.series = series
        # arrays, not lists of Python ints (10M candles: ~900k batches per instrument)
        self.candles: dict[str, np.ndarray] = {
            n: np.asarray(a, dtype=np.int64) for n, a in candles.items()
        }
        self.lookback = lookback

    def context(self, name: str, batch: int) -> InstrumentContext:
        """``series[name].context(candle, lookback)`` at the batch's candle (>= 0)."""
        return self.series[name].context(int(self.candles[name][batch]), self.lookback)


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
            ctx = self._build(name)
            if ctx is None:
                raise KeyError(name)
        return ctx

    def get(self, name: str, default: Any = None) -> Any:  # (Mapping's, one layer less)
        ctx = self._built.get(name)
        if ctx is None:
            ctx = self._build(name)
            if ctx is None:
                return default
        return ctx

    def _build(self, name: str) -> InstrumentContext | None:
        """The context of ``name`` (``ContextSource.context``), kept; None without a candle."""
        source = self._source
        column = source.candles.get(name)
        if column is None:
            return None
        candle = column.item(self._batch)  # (a Python int)
        if candle < 0:
            return None
        ctx = self._built[name] = source.series[name].context(candle, source.lookback)
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
