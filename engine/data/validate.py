"""Validation: sort, drop bad rows, drop exact duplicates, refuse conflicting ones.

Every change is recorded as a Repair with the open times it touched; structural
problems (conflicting duplicate timestamps, nothing left) raise DataError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data import report as rep
from engine.data.errors import DataError
from engine.data.readers import VALUE_COLUMNS, RawFrame
from engine.timeutil import to_iso


@dataclass
class Cleaned:
    times: np.ndarray
    values: dict[str, np.ndarray]
    repairs: list[rep.Repair]


def clean(source: str, raw: RawFrame) -> Cleaned:
    times = raw.times
    values = raw.values
    rows = np.arange(times.shape[0], dtype=np.int64)
    repairs: list[rep.Repair] = []

    if times.shape[0] > 1 and bool(np.any(times[1:] < times[:-1])):
        prior_max = np.maximum.accumulate(times)
        late = np.concatenate(([False], times[1:] < prior_max[:-1]))
        repairs.append(rep.make_repair(rep.SORTED, times[late]))
        order = np.argsort(times, kind="stable")
        times = times[order]
        values = {k: v[order] for k, v in values.items()}
        rows = rows[order]

    o, h, lo, c, v = (values[k] for k in VALUE_COLUMNS)
    dropped = np.zeros(times.shape[0], dtype=bool)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
        finite &= np.isfinite(v)
        checks = (
            (rep.NAN, ~finite),
            (rep.NON_POSITIVE, (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)),
            (rep.INCONSISTENT, (h < np.maximum(o, c)) | (lo > np.minimum(o, c))),
            (rep.NEGATIVE_VOLUME, v < 0),
        )
    _check_magnitudes(source, raw, rows, values, finite)
    for kind, mask in checks:
        new = mask & ~dropped
        if new.any():
            repairs.append(rep.make_repair(kind, times[new]))
            dropped |= new
    if dropped.any():
        keep = ~dropped
        times, rows = times[keep], rows[keep]
        values = {k: col[keep] for k, col in values.items()}

    if times.shape[0] > 1:
        same = times[1:] == times[:-1]
        if same.any():
            first = np.flatnonzero(same)
            pairs = np.column_stack([values[k][first] for k in VALUE_COLUMNS])
            seconds = np.column_stack([values[k][first + 1] for k in VALUE_COLUMNS])
            differ = (pairs != seconds).any(axis=1)
            if differ.any():
                at = int(np.flatnonzero(differ)[0])
                i = int(first[at])
                j = int(np.flatnonzero(pairs[at] != seconds[at])[0])
                a, b = float(pairs[at, j]), float(seconds[at, j])
                raise DataError(
                    f"{source}: conflicting duplicate timestamp {to_iso(int(times[i]))}: "
                    f"{raw.locate(int(rows[i]))} and {raw.locate(int(rows[i + 1]))} differ in "
                    f"column {VALUE_COLUMNS[j]!r} ({a!r} vs {b!r}); expected one candle per time"
                )
            dup = np.concatenate(([False], same))
            repairs.append(rep.make_repair(rep.DUPLICATE, times[dup]))
            times = times[~dup]
            values = {k: col[~dup] for k, col in values.items()}

    if times.shape[0] == 0:
        detail = ", ".join(f"{r.count} {r.kind}" for r in repairs)
        raise DataError(f"{source}: no valid candles left: every row was dropped ({detail})")
    # Own, writable, contiguous arrays: Arrow may hand out read-only zero-copy views.
    out = {k: _owned(values[k], np.float64) for k in VALUE_COLUMNS}
    return Cleaned(_owned(times, np.int64), out, repairs)


# Prices and volumes outside these bounds are refused: the signals are exact under scaling
# far beyond them, but squares and products of such numbers overflow (1.5e308) or vanish.
PRICE_RANGE = (1e-30, 1e30)
MAX_VOLUME = 1e30


def _check_magnitudes(
    source: str,
    raw: RawFrame,
    rows: np.ndarray,
    values: dict[str, np.ndarray],
    finite: np.ndarray,
) -> None:
    lo, hi = PRICE_RANGE
    for name in VALUE_COLUMNS:
        col = values[name]
        with np.errstate(invalid="ignore"):
            if name == "volume":
                bad = finite & (col > MAX_VOLUME)
            else:
                bad = finite & (col > 0) & ((col < lo) | (col > hi))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            limit = f"at most {MAX_VOLUME:g}" if name == "volume" else f"from {lo:g} to {hi:g}"
            raise DataError(
                f"{source}: {raw.locate(int(rows[i]))}, column {name!r}: {col[i]:g} is out of "
                f"range; tapedeck computes with values {limit}"
            )


def _owned(a: np.ndarray, dtype: type) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    if a.flags.writeable and (a.flags.owndata or _whole_view(a)):
        return a
    return a.copy()


def _whole_view(a: np.ndarray) -> bool:
    """A writable view of the whole of another ndarray (what Arrow gives for a column of
    several chunks: a fresh buffer of its own): as good as owned, and copying it would
    double the peak. Arrow's zero-copy views are read-only, so they are still copied."""
    base = a.base
    return isinstance(base, np.ndarray) and base.nbytes == a.nbytes


def infer_timeframe_ns(times: np.ndarray) -> int | None:
    """The most common spacing between consecutive open times (the smallest on a tie)."""
    if times.shape[0] < 2:
        return None
    spacings, counts = np.unique(np.diff(times), return_counts=True)
    return int(spacings[int(np.argmax(counts))])


def fill_gaps(
    times: np.ndarray, values: dict[str, np.ndarray], timeframe_ns: int
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Insert flat zero-volume candles at the previous close over every gap (aligned slots)."""
    n = times.shape[0]
    steps = np.ones(n, dtype=np.int64)
    if n > 1:
        steps[1:] = np.maximum(np.diff(times) // timeframe_ns, 1)
    if int(steps.sum()) == n:
        return times, values, np.zeros(n, dtype=bool)
    position = np.cumsum(steps) - 1  # where each real candle lands in the filled arrays
    total = int(position[-1]) + 1
    filled = np.ones(total, dtype=bool)
    filled[position] = False
    # For every slot, the real candle at or before it.
    owner = np.cumsum(~filled) - 1
    offset = np.arange(total, dtype=np.int64) - position[owner]
    new_times = times[owner] + offset * timeframe_ns
    close = values["close"][owner]
    out = {}
    for k in VALUE_COLUMNS:
        if k == "volume":
            col = np.where(filled, 0.0, values[k][owner])
        else:
            col = np.where(filled, close, values[k][owner])
        out[k] = col
    return new_times, out, filled
