"""Windows: walk-forward in-sample never overlaps out-of-sample; rolling and fixed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.experiment.windows import (
    WindowError,
    parse_windows,
    rolling_windows,
    walk_forward,
)

H = 3600 * 10**9
DAY = 24 * H


@given(
    start=st.integers(0, 10**6),
    span=st.integers(1, 400),
    train=st.integers(1, 100),
    test=st.integers(1, 100),
    step=st.integers(1, 100),
    gap=st.integers(0, 10),
    anchored=st.booleans(),
)
def test_walk_forward_never_overlaps_in_sample_with_out_of_sample(
    start, span, train, test, step, gap, anchored
):
    s, e = start * H, (start + span) * H
    windows = walk_forward(s, e, train * H, test * H, step * H, gap=gap * H, anchored=anchored)
    assert len(windows) % 2 == 0
    folds = [windows[i : i + 2] for i in range(0, len(windows), 2)]
    for k, (ins, oos) in enumerate(folds, start=1):
        assert (ins.role, oos.role) == ("is", "oos") and ins.fold == oos.fold == k
        assert ins.label == f"f{k:02d}-is" and oos.label == f"f{k:02d}-oos"
        # half-open ranges: in-sample ends (plus the gap) where out-of-sample starts
        assert ins.end + gap * H == oos.start
        assert ins.start < ins.end <= oos.start < oos.end
        assert s <= ins.start and oos.end <= e
        assert oos.end - oos.start == test * H
        assert ins.start == s if anchored else ins.end - ins.start == train * H
        # no later fold's out-of-sample window reaches back into this in-sample window
        for _, later_oos in folds[k:]:
            assert later_oos.start >= ins.end
    # as many folds as fit: one more step would run past the end
    n = len(folds)
    assert s + (n * step + train + gap + test) * H > e


def test_walk_forward_by_hand():
    w = walk_forward(0, 10 * DAY, 4 * DAY, 2 * DAY, 2 * DAY)
    assert [(x.label, x.start // DAY, x.end // DAY) for x in w] == [
        ("f01-is", 0, 4),
        ("f01-oos", 4, 6),
        ("f02-is", 2, 6),
        ("f02-oos", 6, 8),
        ("f03-is", 4, 8),
        ("f03-oos", 8, 10),
    ]
    anchored = walk_forward(0, 10 * DAY, 4 * DAY, 2 * DAY, 2 * DAY, anchored=True)
    assert [(x.start // DAY, x.end // DAY) for x in anchored if x.role == "is"] == [
        (0, 4),
        (0, 6),
        (0, 8),
    ]


def test_rolling_windows_fit_inside_the_span():
    w = rolling_windows(0, 10 * DAY, 3 * DAY, 2 * DAY)
    assert [(x.label, x.start // DAY, x.end // DAY) for x in w] == [
        ("r01", 0, 3),
        ("r02", 2, 5),
        ("r03", 4, 7),
        ("r04", 6, 9),
    ]


def test_window_tables():
    plan = parse_windows({"kind": "rolling", "size": "5d"})
    assert [(x.start // DAY, x.end // DAY) for x in plan.windows((0, 12 * DAY))] == [
        (0, 5),
        (5, 10),
    ]
    fixed = parse_windows({"kind": "fixed", "ranges": [["2018-01-10", "2018-01-15"]]})
    (only,) = fixed.windows((0, 1))
    assert only.label == "w01" and only.end - only.start == 5 * DAY
    assert [w.label for w in parse_windows(None).windows((0, DAY))] == ["all"]
    with pytest.raises(WindowError, match="no walk_forward window fits"):
        parse_windows({"kind": "walk_forward", "train": "5d", "test": "5d"}).windows((0, DAY))
    with pytest.raises(WindowError, match=r"field 'windows\.anchored'"):
        parse_windows({"kind": "walk_forward", "train": "5d", "test": "1d", "anchored": "yes"})
