"""The fast-forward event watch: for each instrument, the next step where the broker may act.

``BacktestEngine.run()`` skips the steps where nothing can happen. Whether the broker
can do anything on an instrument's candle (fill or expire an order, hit a holding limit,
touch a stop, target or trail) is asked of ``Broker.next_event_index``, a compiled scan.
The watch remembers the answer per instrument row, so that each row is searched again
only when the broker's state on it changed (the engine ``touch``-es the row).

A search looks at a bounded stretch of candles: one that finds nothing leaves the row
quiet up to a horizon, and the next search resumes there over a stretch 4x wider. So a
long quiet stretch costs a few scans, and a row whose event is near costs a short one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.backtest.analysis import InstrumentArrays
    from engine.broker import Broker

FIRST_WIDTH = 256  # candles in the first search after a row's state changed
GROWTH = 4  # each further search over a quiet row is this many times wider


@dataclass(slots=True)
class Watched:
    """What the watch knows of one row.

    ``horizon`` None: ``step`` is the row's next possible event. Otherwise the row is
    quiet before ``step``, the step of its candle ``horizon``, where the search resumes.
    ``width`` is how many candles the search that made this entry looked at."""

    step: int
    horizon: int | None
    width: int


class EventWatch:
    """The next busy step of each instrument row for one broker (see the module doc).

    ``rows`` are the market's per-instrument arrays in row order; ``dense[row]`` says the
    row has a candle at every merged step (its candle index is then the step)."""

    def __init__(self, rows: Sequence[InstrumentArrays], dense: Sequence[bool]) -> None:
        self._rows = rows
        self._dense = dense
        self._watched: dict[int, Watched] = {}
        self._dirty: set[int] = set()  # rows whose broker state changed since searched

    def restart(self) -> None:
        """Forget every search: anything may have changed (e.g. steps taken one by one)."""
        self._watched.clear()
        self._dirty = set(range(len(self._rows)))

    def touch(self, row: int) -> None:
        """The broker's state on ``row`` changed (a candle processed, an order sent)."""
        self._dirty.add(row)

    def next_event(self, broker: Broker, t: int, busy: int) -> tuple[int, list[int]]:
        """The first step in ``[t, busy]`` where the broker may act on some row (else
        ``busy``), and the rows (sorted) that may have an event there."""
        watched = self._watched
        if self._dirty:
            for row in self._dirty:
                watched.pop(row, None)
                if broker.is_active(self._rows[row].name):
                    self._search(broker, row, self._first_candle_from(row, t), FIRST_WIDTH)
            self._dirty.clear()
        if not watched:  # no position, no order
            return busy, []
        eventful: list[int] = []
        for row, entry in list(watched.items()):
            w: Watched | None = entry
            while w is not None and w.horizon is not None and w.step <= busy:
                w = self._search(broker, row, w.horizon, w.width * GROWTH)
            if w is None or w.horizon is not None or w.step > busy:
                continue
            if w.step < busy:
                busy = w.step
                eventful = [row]
            else:
                eventful.append(row)
        eventful.sort()
        return busy, eventful

    def _search(self, broker: Broker, row: int, lo: int, width: int) -> Watched | None:
        """Search the row's candles from ``lo`` for its next possible event and record
        what was found; None (and the row unwatched) when none can come before the end."""
        arr = self._rows[row]
        last = len(arr.step_of_candle)
        hi = min(last, lo + width)
        e = broker.next_event_index(arr.name, arr.open, arr.high, arr.low, lo, hi)
        if e < hi:
            entry = Watched(self._step_of(row, e), None, width)
        elif hi >= last:
            self._watched.pop(row, None)
            return None
        else:
            entry = Watched(self._step_of(row, hi), hi, width)
        self._watched[row] = entry
        return entry

    def _first_candle_from(self, row: int, t: int) -> int:
        arr = self._rows[row]
        return t if self._dense[row] else int(np.searchsorted(arr.step_of_candle, t))

    def _step_of(self, row: int, candle: int) -> int:
        return candle if self._dense[row] else int(self._rows[row].step_of_candle[candle])
