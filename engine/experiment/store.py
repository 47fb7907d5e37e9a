"""The results table of an experiment: one row per finished cell, Parquet and CSV.

A results folder holds ``cells.parquet`` (the truth), ``cells.csv`` (the same rows)
and ``experiment.json`` (what was asked). Every write replaces the files atomically
(temporary file, then rename), so a process killed at any moment leaves the table of
the cells finished before the last write: a rerun skips them (by cell id) and never
counts a cell twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from engine.atomic import atomic_path, write_text_atomic
from engine.errors import TapedeckError
from engine.export import write_csv

PARQUET = "cells.parquet"
CSV = "cells.csv"
META = "experiment.json"


class ResultsError(TapedeckError):
    """A results folder that cannot be read or does not match the experiment."""


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def read_table(folder: str | Path) -> pd.DataFrame:
    """The results table of a folder (or of a ``cells.parquet`` path)."""
    path = Path(folder)
    if path.is_dir():
        path = path / PARQUET
    if not path.exists():
        raise ResultsError(f"{folder}: no results table ({PARQUET}) there")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise ResultsError(f"{path}: cannot read the results table: {exc}") from None


class ResultStore:
    """Rows of finished cells, in cell order, rewritten atomically as they come: at the
    first ``add``, then at most once per ``FLUSH_RATIO`` times the last write took and
    once per ``FLUSH_EVERY_S``, so that rewriting the whole table stays a small part of
    the run however long it gets (the writes take the parent's CPU from the workers);
    ``flush()`` writes what is pending (the runner does at the end, even interrupted)."""

    FLUSH_RATIO = 20
    FLUSH_EVERY_S = 1.0

    def __init__(self, folder: str | Path, order: Sequence[str], meta: Mapping[str, Any]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._rank = {cell: i for i, cell in enumerate(order)}
        self.rows: dict[str, dict[str, Any]] = {}
        self._pending = False
        self._next_flush = 0.0  # time.monotonic() from which add() writes again
        meta_path = self.folder / META
        if (self.folder / PARQUET).exists():
            if meta_path.exists():
                old = json.loads(meta_path.read_text(encoding="utf-8"))
                if old.get("name") != meta.get("name"):
                    raise ResultsError(
                        f"{self.folder} holds the results of experiment {old.get('name')!r}, "
                        f"not {meta.get('name')!r}: choose another --out"
                    )
            for row in read_table(self.folder).to_dict("records"):
                self.rows[str(row["cell"])] = {k: _plain(v) for k, v in row.items()}
        write_json(meta_path, dict(meta))

    def done(self) -> set[str]:
        return set(self.rows)

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.rows[str(row["cell"])] = dict(row)
            self._pending = True
        if time.monotonic() >= self._next_flush:
            self.flush()

    def frame(self) -> pd.DataFrame:
        far = len(self._rank)
        ordered = sorted(
            self.rows.values(), key=lambda r: (self._rank.get(r["cell"], far), r["cell"])
        )
        return pd.DataFrame(ordered)

    def flush(self, only_if_pending: bool = False) -> None:
        if only_if_pending and not self._pending:
            return
        started = time.monotonic()
        frame = self.frame()
        with atomic_path(self.folder / PARQUET) as tmp:
            frame.to_parquet(tmp, index=False)
        write_csv(self.folder / CSV, list(frame.columns), frame.to_dict("records"))
        self._pending = False
        now = time.monotonic()
        self._next_flush = now + max(self.FLUSH_EVERY_S, self.FLUSH_RATIO * (now - started))


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN from a missing column
        return None
    return value
