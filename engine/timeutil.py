"""Time helpers: tapedeck keeps times as int nanoseconds since the epoch, UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# pandas (~0.3 s to import) only where text is parsed: to_iso, which every report calls,
# does without it.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

NS_PER_SECOND = 1_000_000_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIMEFRAME = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def timeframe_to_ns(timeframe: str) -> int:
    """'5m' -> 300e9. Raises ValueError for anything that is not <int><s|m|h|d|w>."""
    m = _TIMEFRAME.match(timeframe or "")
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"invalid timeframe {timeframe!r}: expected e.g. 1m, 5m, 1h, 4h, 1d")
    return int(m.group(1)) * _UNITS[m.group(2)] * NS_PER_SECOND


def ns_to_timeframe(ns: int) -> str:
    """300e9 -> '5m'; the largest unit that divides the span exactly."""
    seconds = int(ns) // NS_PER_SECOND
    if seconds <= 0 or int(ns) % NS_PER_SECOND:
        raise ValueError(f"cannot express {ns} ns as a timeframe")
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def to_iso(ns: int) -> str:
    """Nanoseconds -> '2022-01-01T00:00:00Z' (seconds precision unless sub-second)."""
    ns = int(ns)
    if ns % 1000:  # nanoseconds: datetime stops at microseconds
        import pandas as pd

        return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat().replace("+00:00", "Z")
    # the same text as pandas' Timestamp.isoformat (exact integer arithmetic)
    return (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat().replace("+00:00", "Z")


def parse_time(text: str | int | float | np.datetime64 | pd.Timestamp) -> int:
    """ISO text (naive = UTC) or a timestamp -> int ns UTC. Raises ValueError."""
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot parse time {text!r}: {exc}") from None
    if ts is pd.NaT:
        raise ValueError(f"cannot parse time {text!r}")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value)
