"""engine.commands.options: the one window loader of the CLI and the TUI."""

from __future__ import annotations

import numpy as np
import pytest

from engine.commands.options import RunError, load_window
from engine.data import load_many
from engine.data.sample import SAMPLE_PATHS
from engine.errors import TapedeckError
from tui.sources import ReplaySpec
from tui.sources import load_window as tui_load_window

PATHS = [str(p) for p in SAMPLE_PATHS[:2]]


def test_the_window_is_cut_as_asked() -> None:
    full = load_many(PATHS)
    assert [len(s) for s in load_window(PATHS)] == [len(s) for s in full]
    last = load_window(PATHS, last=100)
    assert all(len(s) == 100 for s in last)
    assert [int(s.open_time[-1]) for s in last] == [int(s.open_time[-1]) for s in full]
    start, end = "2024-03-05T00:00:00Z", "2024-03-05T06:00:00Z"
    cut = load_window(PATHS, start=start, end=end)
    for s in cut:
        assert len(s) == 360  # 1-minute candles: open in [00:00, 06:00)
        assert s.open_time[0] == np.datetime64("2024-03-05T00:00", "ns").astype(np.int64)


def test_the_tui_loads_the_same_window() -> None:
    start, end = "2024-03-05T00:00:00Z", "2024-03-05T06:00:00Z"
    ours = load_window(PATHS, start=start, end=end)
    tui = tui_load_window(ReplaySpec(PATHS, start=start, end=end))
    for a, b in zip(ours, tui, strict=True):
        assert a.instrument == b.instrument
        np.testing.assert_array_equal(a.open_time, b.open_time)
        np.testing.assert_array_equal(a.close, b.close)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"paths": []}, "no data files given"),
        ({"paths": ["no/such.csv"]}, "data file not found: no/such.csv"),
        ({"last": 5, "start": "2024-03-05"}, "either --start/--end or --last N, not both"),
        ({"last": 0}, "--last must be a positive number of candles, got 0"),
        ({"start": "2030-01-01"}, "no candles in the window"),
        ({"start": "soon"}, "cannot parse time 'soon'"),
    ],
)
def test_bad_windows_are_one_line_errors(kwargs: dict, message: str) -> None:
    paths = kwargs.pop("paths", PATHS)
    with pytest.raises(TapedeckError, match=message) as info:
        load_window(paths, **kwargs)
    assert "\n" not in str(info.value)
    if message.startswith(("no data", "data file", "either", "--last")):
        assert isinstance(info.value, RunError)
