"""What loading changed or found in a run's data, said the same way by every command.

``data info`` shows a file's report; ``run``, ``compare``, ``signals`` and the TUI's
replay show the same facts for the files of their window: rows dropped or repaired,
gaps kept, and instruments that share only part of the window.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from engine.data.report import DataReport
from engine.data.stream import check_overlap
from engine.types import InstrumentSeries


def _report(series: InstrumentSeries) -> DataReport | None:
    report = series.report
    return report if isinstance(report, DataReport) else None


def _name(series: InstrumentSeries) -> str:
    return Path(series.source).name if series.source else series.instrument


def data_notices(series: Sequence[InstrumentSeries]) -> list[str]:
    """One line per file that was repaired or has gaps, then the overlap note if any.

    Raises DataError when the instruments share no period at all.
    """
    lines = []
    for s in series:
        report = _report(s)
        if report is None or (not report.repairs and not report.gaps):
            continue
        parts = [f"{r.count} {r.description}" for r in report.repairs]
        if report.gaps:
            parts.append(f"{report.gap_count} gaps kept ({report.missing_candles} candles missing)")
        lines.append(f"{_name(s)} ({s.instrument}): " + "; ".join(parts))
    overlap = check_overlap(series)
    if overlap is not None:
        lines.append(overlap)
    return lines


def data_records(series: Sequence[InstrumentSeries]) -> list[dict[str, Any]]:
    """The JSON form: per instrument, its file name, rows read and kept, repairs and gaps."""
    out = []
    for s in series:
        report = _report(s)
        record: dict[str, Any] = {"instrument": s.instrument, "source": _name(s)}
        if report is not None:
            record.update(
                rows_read=report.rows_read,
                rows=len(s),
                gaps=report.gap_count,
                missing_candles=report.missing_candles,
                repairs=[
                    {"kind": r.kind, "count": r.count, "description": r.description}
                    for r in report.repairs
                ],
            )
        out.append(record)
    return out


def announce(series: Sequence[InstrumentSeries], out: TextIO | None = None) -> list[str]:
    """Print the notices as ``tapedeck: note: ...`` lines (stderr by default); return them."""
    lines = data_notices(series)
    stream = sys.stderr if out is None else out
    for line in lines:
        print(f"tapedeck: note: {line}", file=stream)
    return lines
