"""``load``: one file -> a validated InstrumentSeries with its DataReport."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from engine.data import report as rep
from engine.data.errors import DataError
from engine.data.names import parse_name
from engine.data.readers import VALUE_COLUMNS, RawFrame, read_raw
from engine.data.validate import clean, infer_timeframe_ns
from engine.data.validate import fill_gaps as _fill
from engine.timeutil import ns_to_timeframe, timeframe_to_ns, to_iso
from engine.types import InstrumentSeries

PathArg = str | PathLike[str]


def _timeframe_ns(source: str, timeframe: str) -> int:
    try:
        return timeframe_to_ns(timeframe)
    except ValueError as exc:
        raise DataError(f"{source}: {exc}") from None


def _choose_timeframe(
    source: str, times: np.ndarray, explicit: str | None, from_name: str | None
) -> tuple[int, list[str]]:
    notes: list[str] = []
    inferred = infer_timeframe_ns(times)
    min_gap = int(np.diff(times).min()) if times.shape[0] > 1 else None
    if explicit is not None:
        tf = _timeframe_ns(source, explicit)
        if min_gap is not None and min_gap < tf:
            i = int(np.argmin(np.diff(times)))
            raise DataError(
                f"{source}: timeframe {explicit} is longer than the spacing of the candles at "
                f"{to_iso(int(times[i]))} and {to_iso(int(times[i + 1]))}; "
                "load at the file's own timeframe and resample"
            )
        return tf, notes
    if from_name is not None:
        try:
            tf = timeframe_to_ns(from_name)
        except ValueError:
            tf = None
        if tf is not None and (min_gap is None or min_gap >= tf):
            if inferred is not None and inferred != tf:
                notes.append(
                    f"timeframe {from_name} from the file name; the most common spacing is "
                    f"{_describe(inferred)}"
                )
            return tf, notes
        if tf is not None:
            notes.append(f"file name says {from_name}, but candles are closer: name ignored")
    if inferred is None:
        raise DataError(
            f"{source}: a single candle: cannot infer the timeframe; pass timeframe (e.g. 1m)"
        )
    if min_gap is not None and min_gap < inferred:
        # Candles closer than the most common spacing (sparse data): the largest
        # timeframe that fits every spacing keeps candles from overlapping.
        common = int(np.gcd.reduce(np.diff(times)))
        notes.append(
            f"most common spacing {_describe(inferred)}, but some candles are closer: "
            f"using {_describe(common)}"
        )
        inferred = common
    try:
        ns_to_timeframe(inferred)
    except ValueError:
        raise DataError(
            f"{source}: the most common spacing ({inferred} ns) is not a whole number of "
            "seconds; expected candles of a fixed timeframe"
        ) from None
    return inferred, notes


def _describe(ns: int) -> str:
    try:
        return ns_to_timeframe(ns)
    except ValueError:
        return f"{ns} ns"


# Filling may at most add this many candles per real one (a weekend gap in 1m data adds
# ~3,000 to a week's 10,000), and never beyond MAX_FILLED_ROWS candles in all.
MAX_FILL_RATIO = 10
MAX_FILLED_ROWS = 50_000_000


def _check_fill_size(source: str, gaps: tuple[rep.Gap, ...], rows: int, tf_ns: int) -> None:
    """Refuse a fill that would allocate far more candles than the file holds."""
    missing = sum(g.missing for g in gaps)
    if missing <= MAX_FILL_RATIO * rows and missing + rows <= MAX_FILLED_ROWS:
        return
    largest = max(gaps, key=lambda g: g.missing)
    raise DataError(
        f"{source}: refusing to fill gaps: {missing:,} missing {_describe(tf_ns)} candles for "
        f"{rows:,} real ones (largest gap {to_iso(largest.after)} to {to_iso(largest.before)}); "
        f"--fill-gaps adds at most {MAX_FILL_RATIO} per real candle and "
        f"{MAX_FILLED_ROWS:,} in all: select a window or use a longer timeframe"
    )


def load(
    path: PathArg,
    *,
    instrument: str | None = None,
    timeframe: str | None = None,
    fill_gaps: bool = False,
) -> InstrumentSeries:
    """Load a candle file (CSV, Binance kline CSV, freqtrade feather/json, Parquet).

    The format is detected from the content and the extension; the instrument and
    timeframe come from the arguments, else the file name, else (timeframe) the most
    common spacing. Repairs and gaps are listed in ``series.report``.
    """
    p = Path(path)
    name_instrument, name_tf = parse_name(p)
    return _build(
        str(path), read_raw(p), instrument or name_instrument, name_tf, timeframe, fill_gaps
    )


def from_arrays(
    instrument: str,
    open_time: ArrayLike,
    open: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    *,
    timeframe: str | None = None,
    fill_gaps: bool = False,
    source: str = "",
) -> InstrumentSeries:
    """An InstrumentSeries from in-memory columns, validated and repaired exactly as ``load``.

    ``open_time`` is int ns UTC (or anything ``numpy.datetime64`` converts).
    """
    times = np.asarray(open_time)
    if np.issubdtype(times.dtype, np.datetime64):
        times = times.astype("datetime64[ns]").view(np.int64)
    columns = (open, high, low, close, volume)
    values = {k: np.array(v, dtype=np.float64) for k, v in zip(VALUE_COLUMNS, columns, strict=True)}
    if times.shape[0] == 0:
        raise DataError(f"{source or instrument}: no candles")
    if any(v.shape != times.shape for v in values.values()):
        raise DataError(f"{source or instrument}: columns of different lengths")
    raw = RawFrame("memory", times.astype(np.int64), values, lambda i: f"row {i + 1}")
    return _build(source or instrument, raw, instrument, None, timeframe, fill_gaps)


def _build(
    source: str,
    raw: RawFrame,
    instrument: str,
    name_tf: str | None,
    timeframe: str | None,
    fill_gaps: bool,
) -> InstrumentSeries:
    rows_read = int(raw.times.shape[0])
    cleaned = clean(source, raw)
    tf_ns, notes = _choose_timeframe(source, cleaned.times, timeframe, name_tf)
    times, values = cleaned.times, cleaned.values
    repairs = list(cleaned.repairs)
    diffs = np.diff(times)
    misaligned = int(np.count_nonzero(diffs % tf_ns))
    if misaligned:
        notes.append(f"{misaligned} spacings are not a multiple of the timeframe")
    gaps = rep.find_gaps(times, tf_ns)
    filled = np.zeros(times.shape[0], dtype=bool)
    if fill_gaps and gaps:
        _check_fill_size(source, gaps, times.shape[0], tf_ns)
        times, values, filled = _fill(times, values, tf_ns)
        repairs.append(rep.make_repair(rep.FILLED, times[filled]))
    report = rep.DataReport(
        source=source,
        format=raw.format,
        timeframe_ns=tf_ns,
        rows_read=rows_read,
        rows=int(times.shape[0]),
        repairs=tuple(repairs),
        gaps=gaps,
        notes=tuple(notes),
    )
    return InstrumentSeries(
        instrument=instrument,
        timeframe=ns_to_timeframe(tf_ns),
        timeframe_ns=tf_ns,
        open_time=times,
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        volume=values["volume"],
        filled=filled,
        report=report,
        source=source,
    )


def load_many(
    paths: Iterable[PathArg],
    *,
    instrument: str | None = None,
    timeframe: str | None = None,
    fill_gaps: bool = False,
) -> list[InstrumentSeries]:
    """``load`` for each path, in order."""
    return [load(p, instrument=instrument, timeframe=timeframe, fill_gaps=fill_gaps) for p in paths]
