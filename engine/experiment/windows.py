"""Time windows of an experiment: fixed ranges, rolling windows, walk-forward splits.

Every window is a half-open range ``[start, end)`` of candle open times (int ns, UTC),
the same selection as ``tapedeck run --start --end``. A walk-forward fold is an
in-sample window followed by an out-of-sample one that starts where the in-sample
window ends (plus an optional ``gap``), so the two never share a candle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import TapedeckError
from engine.timeutil import parse_time, timeframe_to_ns, to_iso

ROLES = ("full", "is", "oos")


class WindowError(TapedeckError, ValueError):
    """A windows table that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Window:
    label: str  # "all", "w01", "r03", "f02-is", "f02-oos"
    start: int  # ns, inclusive (first candle open time)
    end: int  # ns, exclusive
    role: str = "full"  # "full", "is" (in-sample) or "oos" (out-of-sample)
    fold: int = 0  # walk-forward fold number (1-based), 0 otherwise

    def describe(self) -> str:
        return f"{self.label} {to_iso(self.start)} → {to_iso(self.end)}"


def duration_ns(value: Any, field: str) -> int:
    """'5d', '12h', '90m' (as timeframes are written) to nanoseconds."""
    if not isinstance(value, str):
        raise WindowError(f"field '{field}': expected a duration such as '5d', got {value!r}")
    try:
        return timeframe_to_ns(value)
    except ValueError:
        raise WindowError(
            f"field '{field}': expected a duration such as '5d' or '12h', got {value!r}"
        ) from None


def time_ns(value: Any, field: str) -> int:
    try:
        return parse_time(value)
    except (ValueError, TypeError):
        raise WindowError(f"field '{field}': expected an ISO time (UTC), got {value!r}") from None


@dataclass(frozen=True)
class WindowPlan:
    """A validated ``[windows]`` table; ``windows(span)`` lays it over the data."""

    kind: str = "all"
    ranges: tuple[Window, ...] = ()
    start: int | None = None
    end: int | None = None
    size: int = 0  # rolling
    step: int = 0  # rolling and walk-forward
    train: int = 0
    test: int = 0
    gap: int = 0
    anchored: bool = False

    def windows(self, span: tuple[int, int]) -> list[Window]:
        lo = span[0] if self.start is None else self.start
        hi = span[1] if self.end is None else self.end
        if self.kind == "all":
            return [Window("all", lo, hi)]
        if self.kind == "fixed":
            return list(self.ranges)
        if self.kind == "rolling":
            out = rolling_windows(lo, hi, self.size, self.step)
        else:
            out = walk_forward(
                lo, hi, self.train, self.test, self.step, gap=self.gap, anchored=self.anchored
            )
        if not out:
            raise WindowError(
                f"field 'windows': no {self.kind} window fits between {to_iso(lo)} and {to_iso(hi)}"
            )
        return out


def parse_windows(table: Any, where: str = "windows") -> WindowPlan:
    """Validate a ``[windows]`` table (None: one window over everything)."""
    if table is None:
        return WindowPlan()
    if not isinstance(table, dict):
        raise WindowError(f"field '{where}': expected a table with kind = ...")
    kind = table.get("kind", "fixed")
    known = {
        "fixed": {"kind", "ranges"},
        "rolling": {"kind", "size", "step", "start", "end"},
        "walk_forward": {"kind", "train", "test", "step", "gap", "anchored", "start", "end"},
    }
    if kind not in known:
        raise WindowError(
            f"field '{where}.kind': expected fixed, rolling or walk_forward, got {kind!r}"
        )
    extra = sorted(set(table) - known[kind])
    if extra:
        raise WindowError(
            f"field '{where}.{extra[0]}': unknown for kind {kind!r} "
            f"(known: {', '.join(sorted(known[kind]))})"
        )
    start = time_ns(table["start"], f"{where}.start") if "start" in table else None
    end = time_ns(table["end"], f"{where}.end") if "end" in table else None
    if start is not None and end is not None and end <= start:
        raise WindowError(f"field '{where}.end': {to_iso(end)} is not after {to_iso(start)}")
    if kind == "fixed":
        return WindowPlan("fixed", ranges=tuple(_fixed(table.get("ranges"), where)))
    if kind == "rolling":
        size = duration_ns(table.get("size"), f"{where}.size")
        step = duration_ns(table.get("step", table.get("size")), f"{where}.step")
        return WindowPlan("rolling", start=start, end=end, size=size, step=step)
    train = duration_ns(table.get("train"), f"{where}.train")
    test = duration_ns(table.get("test"), f"{where}.test")
    step = duration_ns(table.get("step", table.get("test")), f"{where}.step")
    gap = duration_ns(table["gap"], f"{where}.gap") if "gap" in table else 0
    anchored = table.get("anchored", False)
    if not isinstance(anchored, bool):
        raise WindowError(f"field '{where}.anchored': expected true or false")
    return WindowPlan(
        "walk_forward",
        start=start,
        end=end,
        step=step,
        train=train,
        test=test,
        gap=gap,
        anchored=anchored,
    )


def _fixed(ranges: Any, where: str) -> list[Window]:
    if not isinstance(ranges, list) or not ranges:
        raise WindowError(f"field '{where}.ranges': expected a list of [start, end] pairs")
    out = []
    for i, pair in enumerate(ranges):
        field = f"{where}.ranges[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise WindowError(f"field '{field}': expected [start, end], got {pair!r}")
        a, b = time_ns(pair[0], field), time_ns(pair[1], field)
        if b <= a:
            raise WindowError(f"field '{field}': end is not after start")
        out.append(Window(f"w{i + 1:02d}", a, b))
    return out


def rolling_windows(start: int, end: int, size: int, step: int) -> list[Window]:
    """Windows ``[s, s + size)`` from ``start`` every ``step`` while they fit before ``end``."""
    out = []
    s = start
    while s + size <= end:
        out.append(Window(f"r{len(out) + 1:02d}", s, s + size))
        s += step
    return out


def walk_forward(
    start: int,
    end: int,
    train: int,
    test: int,
    step: int,
    *,
    gap: int = 0,
    anchored: bool = False,
) -> list[Window]:
    """Folds of an in-sample window of ``train`` followed (after ``gap``) by an
    out-of-sample window of ``test``, moved on by ``step`` while the out-of-sample
    window fits before ``end``. ``anchored``: every in-sample window starts at ``start``."""
    out: list[Window] = []
    fold = 0
    s = start
    while True:
        is_start = start if anchored else s
        is_end = s + train
        oos_start = is_end + gap
        oos_end = oos_start + test
        if oos_end > end:
            return out
        fold += 1
        out.append(Window(f"f{fold:02d}-is", is_start, is_end, "is", fold))
        out.append(Window(f"f{fold:02d}-oos", oos_start, oos_end, "oos", fold))
        s += step
