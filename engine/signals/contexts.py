"""A batch's market context, built on first access.

The vectorised aggregator emits one batch per window and every batch carries an
``InstrumentContext`` for each instrument seen so far; a brain usually reads one or two
of them. :class:`LazyContexts` is a read-only ``Mapping`` that builds each context when
it is first read (and keeps it), with exactly the values, key order, equality and repr
of the plain ``dict`` the step-by-step aggregator produces.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from engine.signals.detector import SeriesSignals
from engine.types import InstrumentContext


class ContextSource:
    """What the batches of one ``batch_signals`` call share: per instrument (in sorted
    name order), its signals/indicators and its latest candle index at each batch's
    step (-1: no candle yet)."""

    __slots__ = ("candles", "lookback", "names", "series")

    def __init__(
        self,
        series: Mapping[str, SeriesSignals],
        candles: Mapping[str, Sequence[int]],
        lookback: int,
    ) -> None:
        self.names: tuple[str, ...] = tuple(sorted(candles))
        self.series = series
        self.candles = candles
        self.lookback = lookback


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
        if ctx is not None:
            return ctx
        i = self._candle(name)
        if i < 0:
            raise KeyError(name)
        src = self._source
        # the same arithmetic as the step-by-step detector's contexts
        ctx = src.series[name].context(i, src.lookback)
        self._built[name] = ctx
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
