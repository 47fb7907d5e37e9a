"""Windows of a series (select) and higher timeframes (resample)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np

from engine.data import report as rep
from engine.data.errors import DataError
from engine.timeutil import ns_to_timeframe, parse_time, timeframe_to_ns, to_iso
from engine.types import InstrumentSeries

TimeArg = int | str | datetime | np.datetime64 | None


def _as_ns(value: TimeArg, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    try:
        return parse_time(value)
    except ValueError as exc:
        raise DataError(f"{what}: {exc}") from None


def _base_report(series: InstrumentSeries) -> rep.DataReport:
    if isinstance(series.report, rep.DataReport):
        return series.report
    n = len(series)
    gaps = rep.find_gaps(series.open_time, series.timeframe_ns)
    return rep.DataReport(series.source, "memory", series.timeframe_ns, n, n, gaps=gaps)


def _sliced(series: InstrumentSeries, idx: slice, notes: tuple[str, ...]) -> InstrumentSeries:
    times = series.open_time[idx]
    base = _base_report(series)
    report = base.with_changes(
        rows=int(times.shape[0]),
        gaps=rep.find_gaps(times, series.timeframe_ns),
        notes=base.notes + notes,
    )
    return replace(
        series,
        open_time=times,
        open=series.open[idx],
        high=series.high[idx],
        low=series.low[idx],
        close=series.close[idx],
        volume=series.volume[idx],
        filled=series.filled[idx],
        report=report,
    )


def select(
    series: InstrumentSeries,
    *,
    start: TimeArg = None,
    end: TimeArg = None,
    last: int | None = None,
) -> InstrumentSeries:
    """Candles with ``start <= open_time < end``, then the ``last`` N of them.

    Times are int ns or ISO text (naive = UTC). An empty result is an error that says
    what the data covers.
    """
    lo = _as_ns(start, "start")
    hi = _as_ns(end, "end")
    if lo is not None and hi is not None and hi <= lo:
        raise DataError(f"end {to_iso(hi)} is not after start {to_iso(lo)}")
    if last is not None and last <= 0:
        raise DataError(f"last must be a positive number of candles, got {last}")
    t = series.open_time
    i = 0 if lo is None else int(np.searchsorted(t, lo, side="left"))
    j = len(series) if hi is None else int(np.searchsorted(t, hi, side="left"))
    if last is not None:
        i = max(i, j - last)
    if j <= i:
        covers = f"{to_iso(int(t[0]))} to {to_iso(int(t[-1]))}" if len(series) else "nothing"
        raise DataError(
            f"{series.instrument}: no candles in the window "
            f"[{to_iso(lo) if lo is not None else 'start'}, "
            f"{to_iso(hi) if hi is not None else 'end'}); the data covers {covers}"
        )
    note = f"selected {j - i} of {len(series)} candles"
    return _sliced(series, slice(i, j), (note,))


def resample(series: InstrumentSeries, timeframe: str) -> InstrumentSeries:
    """Aggregate to a higher timeframe: first open, max high, min low, last close, sum volume.

    Buckets are aligned to the epoch (so 1d starts at 00:00 UTC) and labelled by their
    open time. A last bucket that is missing its final candle is dropped and reported;
    buckets with gaps inside are kept (the gaps are in the source report).
    """
    try:
        tf = timeframe_to_ns(timeframe)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    src = series.timeframe_ns
    if tf == src:
        return series
    if tf < src or tf % src:
        raise DataError(
            f"{series.instrument}: cannot resample {series.timeframe} to {timeframe}: "
            f"expected a multiple of {series.timeframe}"
        )
    if len(series) == 0:
        raise DataError(f"{series.instrument}: no candles to resample")
    t = series.open_time
    bucket = t // tf  # floor division keeps pre-1970 buckets aligned too
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    ends = np.concatenate((starts[1:], [t.shape[0]])) - 1
    labels = bucket[starts] * tf
    out_open = series.open[starts]
    out_close = series.close[ends]
    out_high = np.maximum.reduceat(series.high, starts)
    out_low = np.minimum.reduceat(series.low, starts)
    out_volume = np.add.reduceat(series.volume, starts)
    filled_count = np.add.reduceat(series.filled.astype(np.int64), starts)
    out_filled = filled_count == (ends - starts + 1)
    keep = np.ones(labels.shape[0], dtype=bool)
    repairs = []
    notes = [f"resampled from {series.timeframe} to {ns_to_timeframe(tf)}"]
    if t[-1] + src < labels[-1] + tf:
        keep[-1] = False
        repairs.append(rep.make_repair(rep.INCOMPLETE_BUCKET, labels[-1:]))
    if t[0] > labels[0] and keep[0]:
        notes.append(f"first bucket {to_iso(int(labels[0]))} starts after its open (partial)")
    labels, out_open, out_close = labels[keep], out_open[keep], out_close[keep]
    out_high, out_low, out_volume, out_filled = (
        out_high[keep],
        out_low[keep],
        out_volume[keep],
        out_filled[keep],
    )
    if labels.shape[0] == 0:
        raise DataError(f"{series.instrument}: fewer candles than one complete {timeframe} bucket")
    base = _base_report(series)
    report = base.with_changes(
        timeframe_ns=tf,
        rows=int(labels.shape[0]),
        repairs=base.repairs + tuple(repairs),
        gaps=rep.find_gaps(labels, tf),
        notes=base.notes + tuple(notes),
    )
    return replace(
        series,
        timeframe=ns_to_timeframe(tf),
        timeframe_ns=tf,
        open_time=labels,
        open=out_open,
        high=out_high,
        low=out_low,
        close=out_close,
        volume=out_volume,
        filled=out_filled,
        report=report,
    )
