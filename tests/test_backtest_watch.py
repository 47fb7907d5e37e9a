"""The fast-forward event watch against a scripted broker: searches, horizons, touches."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from engine.backtest.watch import FIRST_WIDTH, GROWTH, EventWatch, Watched


class ScriptedBroker:
    """Events at fixed candle indices per instrument; records every search."""

    def __init__(self, events: dict[str, list[int]]) -> None:
        self.events = events
        self.calls: list[tuple[str, int, int]] = []

    def is_active(self, name: str) -> bool:
        return name in self.events

    def next_event_index(self, name, open_, high, low, start, stop) -> int:
        self.calls.append((name, start, stop))
        return next((e for e in self.events[name] if start <= e < stop), stop)


def _row(name: str, steps: list[int]) -> SimpleNamespace:
    z = np.zeros(len(steps))
    return SimpleNamespace(name=name, open=z, high=z, low=z, step_of_candle=np.array(steps))


def test_first_event_across_rows_and_ties_sorted() -> None:
    n = 5000
    rows = [_row("A", list(range(n))), _row("B", list(range(n))), _row("C", list(range(n)))]
    watch = EventWatch(rows, [True, True, True])
    broker = ScriptedBroker({"A": [300], "B": [100], "C": [100]})
    watch.restart()
    assert watch.next_event(broker, 0, n - 1) == (100, [1, 2])
    # A: first search [0, 256) is quiet, then resumes at its horizon 4x wider
    assert ("A", 0, FIRST_WIDTH) in broker.calls
    assert ("A", FIRST_WIDTH, FIRST_WIDTH + FIRST_WIDTH * GROWTH) in broker.calls
    assert watch._watched[0] == Watched(300, None, FIRST_WIDTH * GROWTH)


def test_quiet_row_is_not_searched_past_the_busy_step() -> None:
    n = 5000
    watch = EventWatch([_row("A", list(range(n)))], [True])
    broker = ScriptedBroker({"A": [4000]})
    watch.restart()
    assert watch.next_event(broker, 0, 50) == (50, [])
    assert broker.calls == [("A", 0, FIRST_WIDTH)]
    assert watch._watched[0] == Watched(FIRST_WIDTH, FIRST_WIDTH, FIRST_WIDTH)
    # later calls resume from the horizon, without searching the first stretch again
    assert watch.next_event(broker, 51, n - 1) == (4000, [0])
    assert broker.calls[1] == ("A", FIRST_WIDTH, FIRST_WIDTH * (1 + GROWTH))
    assert all(start >= FIRST_WIDTH for _, start, _ in broker.calls[1:])


def test_touched_row_is_searched_again_and_inactive_rows_never() -> None:
    n = 1000
    watch = EventWatch([_row("A", list(range(n))), _row("Z", list(range(n)))], [True, True])
    broker = ScriptedBroker({"A": [10, 500]})
    watch.restart()
    assert watch.next_event(broker, 0, n - 1) == (10, [0])
    calls = len(broker.calls)
    assert watch.next_event(broker, 11, n - 1) == (10, [0])  # untouched: remembered
    assert len(broker.calls) == calls
    watch.touch(0)
    assert watch.next_event(broker, 11, n - 1) == (500, [0])
    assert broker.calls[calls] == ("A", 11, 11 + FIRST_WIDTH)
    assert all(name == "A" for name, _, _ in broker.calls)


def test_sparse_row_maps_candles_to_steps_and_drops_at_the_end() -> None:
    steps = [0, 2, 5, 9, 14]  # a row with gaps: candle i is at merged step steps[i]
    watch = EventWatch([_row("A", steps)], [False])
    broker = ScriptedBroker({"A": [3]})
    watch.restart()
    assert watch.next_event(broker, 3, 20) == (9, [0])
    assert broker.calls == [("A", 2, 5)]  # the first candle at or after step 3 is candle 2
    broker.events["A"] = []
    watch.touch(0)
    assert watch.next_event(broker, 10, 20) == (20, [])
    assert watch._watched == {}  # no event before the end of the data: unwatched
