"""DataReport: everything the loader repaired, and the gaps it kept."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.timeutil import ns_to_timeframe, to_iso

# Repair kinds, in the order the loader applies them.
SORTED = "sorted"
NAN = "nan_or_inf"
NON_POSITIVE = "non_positive_price"
INCONSISTENT = "inconsistent_ohlc"
NEGATIVE_VOLUME = "negative_volume"
DUPLICATE = "exact_duplicate"
FILLED = "filled_gap"
INCOMPLETE_BUCKET = "incomplete_bucket"

_DESCRIPTIONS = {
    SORTED: "rows out of time order, sorted",
    NAN: "rows with NaN, inf or an empty value, dropped",
    NON_POSITIVE: "rows with a price <= 0, dropped",
    INCONSISTENT: "rows with high < max(open, close) or low > min(open, close), dropped",
    NEGATIVE_VOLUME: "rows with negative volume, dropped",
    DUPLICATE: "exact duplicate rows, dropped",
    FILLED: "missing candles forward-filled flat with zero volume",
    INCOMPLETE_BUCKET: "incomplete last bucket of the resample, dropped",
}


@dataclass(frozen=True)
class Repair:
    """One kind of change made to the source rows: how many, and at which open times."""

    kind: str
    count: int
    times: tuple[int, ...]

    @property
    def description(self) -> str:
        return _DESCRIPTIONS.get(self.kind, self.kind)

    def to_dict(self, max_times: int | None = None) -> dict[str, Any]:
        times = self.times if max_times is None else self.times[:max_times]
        return {
            "kind": self.kind,
            "count": self.count,
            "description": self.description,
            "times": [to_iso(t) for t in times],
        }


@dataclass(frozen=True)
class Gap:
    """Missing candles between two present ones (open times of the candles around it)."""

    after: int
    before: int
    missing: int


@dataclass(frozen=True)
class DataReport:
    """What loading (and any later select/resample) found and did. Nothing is silent."""

    source: str
    format: str
    timeframe_ns: int
    rows_read: int
    rows: int
    repairs: tuple[Repair, ...] = ()
    gaps: tuple[Gap, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def gap_count(self) -> int:
        return len(self.gaps)

    @property
    def missing_candles(self) -> int:
        return sum(g.missing for g in self.gaps)

    @property
    def largest_gap(self) -> int:
        """Largest gap in missing candles (0 when there is none)."""
        return max((g.missing for g in self.gaps), default=0)

    @property
    def largest_gap_ns(self) -> int:
        return self.largest_gap * self.timeframe_ns

    def repair(self, kind: str) -> Repair | None:
        return next((r for r in self.repairs if r.kind == kind), None)

    def count(self, kind: str) -> int:
        found = self.repair(kind)
        return found.count if found else 0

    def with_changes(self, **changes: Any) -> DataReport:
        return replace(self, **changes)

    def summary(self) -> str:
        """One line: gaps and repairs, e.g. '5 gaps (largest 34 candles); 2 exact_duplicate'."""
        parts = []
        if self.gaps:
            largest = ns_to_timeframe(self.largest_gap_ns)
            parts.append(
                f"{self.gap_count} gaps ({self.missing_candles} candles, largest {largest})"
            )
        parts += [f"{r.count} {r.kind}" for r in self.repairs]
        return "; ".join(parts) if parts else "clean"

    def to_dict(self, max_times: int | None = 20) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows": self.rows,
            "gaps": self.gap_count,
            "missing_candles": self.missing_candles,
            "largest_gap_candles": self.largest_gap,
            "repairs": [r.to_dict(max_times) for r in self.repairs],
            "notes": list(self.notes),
        }


def find_gaps(open_time: np.ndarray, timeframe_ns: int) -> tuple[Gap, ...]:
    """Gaps where consecutive open times are more than one timeframe apart."""
    if open_time.shape[0] < 2:
        return ()
    diff = np.diff(open_time)
    where = np.flatnonzero(diff > timeframe_ns)
    missing = (diff[where] + timeframe_ns - 1) // timeframe_ns - 1
    return tuple(
        Gap(int(open_time[i]), int(open_time[i + 1]), int(m))
        for i, m in zip(where.tolist(), missing.tolist(), strict=True)
    )


def make_repair(kind: str, times: np.ndarray) -> Repair:
    return Repair(kind, int(times.shape[0]), tuple(int(t) for t in times.tolist()))
