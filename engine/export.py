"""The one CSV writer for results: trades of a run, tables of experiments, TUI exports.

Times are ISO 8601 UTC, floats are written by ``repr`` (shortest text that reads back
to the same number), missing values are empty cells, and the file is written
atomically. The trade columns are those of ``run --json``'s trades.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import write_text_atomic
from engine.timeutil import to_iso
from engine.types import Trade

TRADE_COLUMNS: tuple[str, ...] = (
    "instrument",
    "side",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "qty",
    "pnl",
    "fees",
    "exit_reason",
    "ambiguous",  # one candle touched both stop and target (DESIGN.md rule 3)
)


def _enum_text(value: Any) -> str:
    return str(value.value if isinstance(value, Enum) else value)


def trade_record(trade: Trade) -> dict[str, Any]:
    """One trade as ``run --json`` prints it (times ISO UTC)."""
    return {
        "instrument": trade.instrument,
        "side": _enum_text(trade.side),
        "entry_time": to_iso(trade.entry_time),
        "entry_price": float(trade.entry_price),
        "exit_time": to_iso(trade.exit_time),
        "exit_price": float(trade.exit_price),
        "qty": float(trade.qty),
        "pnl": float(trade.pnl),
        "fees": float(trade.fees),
        "exit_reason": _enum_text(trade.exit_reason),
        "ambiguous": bool(trade.ambiguous),
    }


def _cell(value: Any) -> str:
    import pandas as pd  # only when a CSV is written (~0.3 s to import)

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""  # None, NaN, pandas' NA and NaT
    if isinstance(value, datetime | np.datetime64):
        ts = pd.Timestamp(value)
        return to_iso((ts.tz_convert("UTC") if ts.tzinfo else ts).value)  # naive = UTC
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV text with a header of ``columns``; keys a row lacks are empty cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def write_csv(
    path: str | os.PathLike[str], columns: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> Path:
    """Write rows (mappings) as CSV to ``path`` atomically; returns the path."""
    return write_text_atomic(path, csv_text(columns, rows))


def write_trades_csv(path: str | os.PathLike[str], trades: Iterable[Trade]) -> Path:
    """The trades of a run as CSV, one row per closed trade, columns ``TRADE_COLUMNS``."""
    return write_csv(path, TRADE_COLUMNS, (trade_record(t) for t in trades))
