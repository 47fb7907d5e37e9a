"""A corpus of malformed inputs: each defect with its expected error or repair."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data import DataError, load
from engine.errors import TapedeckError
from engine.timeutil import parse_time
from tests.conftest import REPO_ROOT

T0 = parse_time("2022-01-01T00:00:00Z")
MIN = 60_000_000_000
HEADER = "timestamp,open,high,low,close,volume"


def row(minute: int, o="10", h="12", lo="9", c="11", v="5") -> str:
    return f"2022-01-01 00:{minute:02d}:00,{o},{h},{lo},{c},{v}"


def good(n: int = 5) -> list[str]:
    return [row(k) for k in range(n)]


def csv(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def _write_feather_text(p: Path) -> None:
    p.write_text(csv(HEADER, *good()))


def _write_empty_feather(p: Path) -> None:
    pd.DataFrame({c: pd.Series([], dtype="float64") for c in HEADER.split(",")}).assign(
        timestamp=pd.Series([], dtype="datetime64[ns, UTC]")
    ).to_feather(p)


def _write_int_feather(p: Path, last_epoch: int) -> None:
    pd.DataFrame(
        {
            "date": [1_640_995_200, last_epoch],
            "open": [1.0, 1.0],
            "high": [2.0, 2.0],
            "low": [0.5, 0.5],
            "close": [1.5, 1.5],
            "volume": [3.0, 3.0],
        }
    ).to_feather(p)


def _write_bool_parquet(p: Path) -> None:
    df = pd.DataFrame(
        {
            "date": pd.to_datetime([T0, T0 + MIN], utc=True),
            "open": [1.0, 1.0],
            "high": [True, False],
            "low": [1.0, 1.0],
            "close": [1.0, 1.0],
            "volume": [1.0, 1.0],
        }
    )
    df.to_parquet(p)


# (id, file name, content or writer, expected message regex)
ERRORS: list[tuple[str, str, str | bytes | Callable[[Path], None], str]] = [
    ("empty-file", "a.csv", b"", r"a\.csv: empty file"),
    ("binary-file", "a.csv", b"hello\x00\x01\x02", r"a\.csv: binary content \(NUL bytes\)"),
    (
        "utf16-csv",
        "a.csv",
        csv(HEADER, *good()).encode("utf-16"),
        r"a\.csv: binary content \(NUL bytes\), not a UTF-8 CSV",
    ),
    ("whitespace-only", "a.csv", "\n  \n\n", r"a\.csv: empty file"),
    ("header-only", "a.csv", csv(HEADER), r"no data rows \(only a header\)"),
    (
        "missing-volume",
        "a.csv",
        csv("timestamp,open,high,low,close", "2022-01-01 00:00:00,1,2,0.5,1.5"),
        r"line 1 \(header\): missing column 'volume' \(found: timestamp, open, high, low, close\)",
    ),
    (
        "missing-time-column",
        "a.csv",
        csv("when,open,high,low,close,volume", "x,1,2,0.5,1.5,1"),
        r"missing column 'timestamp'.*time column \(timestamp/open_time/date/time/datetime\)",
    ),
    (
        "unparseable-timestamp",
        "a.csv",
        csv(HEADER, row(0), "2022-13-45 99:00:00,10,12,9,11,5", row(2)),
        r"a\.csv: line 3, column 'timestamp': cannot parse '2022-13-45 99:00:00' as a timestamp",
    ),
    (
        "empty-timestamp",
        "a.csv",
        csv(HEADER, row(0), row(1), ",10,12,9,11,5"),
        r"a\.csv: line 4, column 'timestamp': empty timestamp",
    ),
    (
        "unparseable-number",
        "a.csv",
        csv(HEADER, row(0), row(1), row(2, h="12.5x")),
        r"a\.csv: line 4, column 'high': cannot parse '12\.5x' as a number",
    ),
    (
        "line-number-counts-blank-lines",
        "a.csv",
        csv(HEADER, row(0), "", row(1), row(2, v="lots")),
        r"a\.csv: line 5, column 'volume': cannot parse 'lots' as a number",
    ),
    (
        "conflicting-duplicate",
        "a.csv",
        csv(HEADER, row(0), row(1), row(2), row(1, c="11.5")),
        r"conflicting duplicate timestamp 2022-01-01T00:01:00Z: line 3 and line 5 differ in "
        r"column 'close' \(11\.0 vs 11\.5\)",
    ),
    (
        "ragged-row",
        "a.csv",
        csv(HEADER, row(0), row(1) + ",7", row(2)),
        r"a\.csv: line 3: expected 6 columns, got 7",
    ),
    (
        "headerless-wrong-width",
        "a.csv",
        csv("1640995200000,1,2,0.5,1.5,3,4,5"),
        r"line 1: no header row and 8 columns",
    ),
    (
        "duplicate-column",
        "a.csv",
        csv("timestamp,open,high,low,close,volume,close", row(0) + ",3"),
        r"column 'close' appears more than once",
    ),
    ("json-not-array", "a.json", '{"open": 1}', r"a\.json: expected a JSON array of candles"),
    (
        "json-short-row",
        "a.json",
        json.dumps([[1640995200000, 1, 2, 0.5, 1.5, 3], [1640995260000, 1, 2]]),
        r"a\.json: row 2: expected \[timestamp, open, high, low, close, volume\]",
    ),
    ("json-invalid", "a.json", "[[1640995200000, 1, 2,", r"a\.json: line 1: invalid JSON"),
    ("json-empty-array", "a.json", "[]", r"empty JSON array"),
    (
        "json-null-timestamp",
        "a.json",
        json.dumps([[1640995200000, 1, 2, 0.5, 1.5, 3], [None, 1, 2, 0.5, 1.5, 3]]),
        r"a\.json: row 2, column 'timestamp': empty timestamp",
    ),
    (
        "json-text-number",
        "a.json",
        json.dumps([[1640995200000, 1, 2, 0.5, 1.5, 3], [1640995260000, 1, "two", 0.5, 1.5, 3]]),
        r"a\.json: row 2, column 'high': cannot parse 'two' as a number",
    ),
    ("feather-is-text", "a.feather", _write_feather_text, r"not a feather file"),
    ("feather-no-rows", "a.feather", _write_empty_feather, r"empty feather file \(0 rows\)"),
    ("parquet-booleans", "a.parquet", _write_bool_parquet, r"column 'high': booleans"),
    (
        "every-row-invalid",
        "a.csv",
        csv(HEADER, row(0, o="0"), row(1, v="-1")),
        r"no valid candles left: every row was dropped \(1 non_positive_price, 1 negative_volume\)",
    ),
    ("not-found", "missing.csv", None, r"missing\.csv: file not found"),  # type: ignore[list-item]
    # -- timestamps beyond int64 nanoseconds (year 2262) and integer dates that are not dates
    (
        "epoch-seconds-beyond-2262",
        "a.csv",
        csv(HEADER, "1640995200,10,12,9,11,5", "9999000000,10,12,9,11,5"),
        r"a\.csv: line 3, column 'timestamp': epoch 9999000000 is out of range; timestamps "
        r"must lie between 1677-09-22 and 2262-04-11",
    ),
    (
        "epoch-ms-beyond-2262",
        "a.csv",
        csv(HEADER, "9999000000000,10,12,9,11,5"),
        r"line 2, column 'timestamp': epoch 9999000000000 is out of range",
    ),
    (
        "epoch-fraction-beyond-2262",
        "a.csv",
        csv(HEADER, "1640995200.5,10,12,9,11,5", "9500000000.5,10,12,9,11,5"),
        r"line 3, column 'timestamp': epoch 9500000000\.5 is out of range",
    ),
    (
        "json-epoch-beyond-2262",
        "a.json",
        json.dumps([[1640995200000, 1, 2, 0.5, 1.5, 3], [9999000000000, 1, 2, 0.5, 1.5, 3]]),
        r"a\.json: row 2, column 'timestamp': epoch 9999000000000 is out of range",
    ),
    (
        "feather-epoch-beyond-2262",
        "a.feather",
        lambda p: _write_int_feather(p, 9_999_000_000),
        r"a\.feather: row 2, column 'date': epoch 9999000000 is out of range",
    ),
    (
        "integer-date-not-a-date",
        "a.csv",
        csv(HEADER, "20200101,10,12,9,11,5", "20201301,10,12,9,11,5"),
        r"line 3, column 'timestamp': 20201301 is not a date \(YYYYMMDD\) like the other",
    ),
    (
        "integer-minute-not-a-date",
        "a.csv",
        csv(HEADER, "202001011200,10,12,9,11,5", "202001011261,10,12,9,11,5"),
        r"line 3, column 'timestamp': 202001011261 is not a date \(YYYYMMDDhhmm\)",
    ),
    # -- numbers at the edges of float64
    (
        "price-near-float-max",
        "a.csv",
        csv(HEADER, row(0), row(1, h="1.5e308")),
        r"a\.csv: line 3, column 'high': 1\.5e\+308 is out of range; tapedeck computes with "
        r"values from 1e-30 to 1e\+30",
    ),
    (
        "price-near-float-min",
        "a.csv",
        csv(HEADER, row(0, o="1e-300", lo="1e-300")),
        r"line 2, column 'open': 1e-300 is out of range",
    ),
    (
        "volume-1e300",
        "a.csv",
        csv(HEADER, row(0), row(1, v="1e300")),
        r"line 3, column 'volume': 1e\+300 is out of range; tapedeck computes with values at most",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "pattern"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_structural_problem_is_a_precise_error(
    tmp_path: Path, name: str, content: str | bytes | Callable[[Path], None] | None, pattern: str
) -> None:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif isinstance(content, str):
        p.write_text(content)
    elif content is not None:
        content(p)
    with pytest.raises(DataError, match=pattern) as info:
        load(p)
    assert isinstance(info.value, TapedeckError)
    assert "\n" not in str(info.value)


def t(minute: int) -> int:
    return T0 + minute * MIN


# (id, data lines, expected repairs {kind: [minutes]}, expected minutes kept)
REPAIRS: list[tuple[str, list[str], dict[str, list[int]], list[int]]] = [
    ("out-of-order", [row(0), row(2), row(1), row(3)], {"sorted": [1]}, [0, 1, 2, 3]),
    (
        "reversed-block",
        [row(3), row(4), row(0), row(1), row(2)],
        {"sorted": [0, 1, 2]},
        [0, 1, 2, 3, 4],
    ),
    ("exact-duplicate", [row(0), row(1), row(1), row(2)], {"exact_duplicate": [1]}, [0, 1, 2]),
    (
        "duplicate-out-of-order",
        [row(1), row(0), row(1)],
        {"sorted": [0], "exact_duplicate": [1]},
        [0, 1],
    ),
    ("empty-cell", [row(0), row(1, lo=""), row(2)], {"nan_or_inf": [1]}, [0, 2]),
    ("nan-text", [row(0), row(1, c="NaN"), row(2)], {"nan_or_inf": [1]}, [0, 2]),
    ("inf", [row(0), row(1), row(2, v="inf")], {"nan_or_inf": [2]}, [0, 1]),
    ("zero-price", [row(0, o="0"), row(1), row(2)], {"non_positive_price": [0]}, [1, 2]),
    (
        "negative-price",
        [row(0), row(1, lo="-9"), row(2)],
        {"non_positive_price": [1]},
        [0, 2],
    ),
    (
        "high-below-close",
        [row(0), row(1, h="10.5"), row(2)],
        {"inconsistent_ohlc": [1]},
        [0, 2],
    ),
    (
        "low-above-open",
        [row(0), row(1), row(2, lo="10.5")],
        {"inconsistent_ohlc": [2]},
        [0, 1],
    ),
    ("low-above-high", [row(0, h="8", lo="13")], {"inconsistent_ohlc": [0]}, []),
    ("negative-volume", [row(0), row(1, v="-0.5"), row(2)], {"negative_volume": [1]}, [0, 2]),
    (
        "duplicate-of-a-bad-row",
        [row(0), row(1, c=""), row(1), row(2)],
        {"nan_or_inf": [1]},
        [0, 1, 2],
    ),
    (
        "one-count-per-row",
        [row(0, o="-1", v="-1"), row(1, v="-1"), row(2), row(3, h="1")],
        {"non_positive_price": [0], "negative_volume": [1], "inconsistent_ohlc": [3]},
        [2],
    ),
]


@pytest.mark.parametrize(
    ("lines", "repairs", "kept"), [r[1:] for r in REPAIRS], ids=[r[0] for r in REPAIRS]
)
def test_repair_is_reported(
    tmp_path: Path, lines: list[str], repairs: dict[str, list[int]], kept: list[int]
) -> None:
    p = tmp_path / "r.csv"
    p.write_text(csv(HEADER, *lines, *([row(10), row(11)] if not kept else [])))
    s = load(p, timeframe="1m")
    if not kept:
        kept = [10, 11]
    np.testing.assert_array_equal(s.open_time, [t(m) for m in kept])
    got = {r.kind: list(r.times) for r in s.report.repairs}
    assert got == {k: [t(m) for m in v] for k, v in repairs.items()}
    assert all(r.count == len(r.times) for r in s.report.repairs)
    assert s.report.rows_read == len(lines) + (2 if kept == [10, 11] else 0)
    assert s.report.rows == len(kept)


def test_json_null_value_is_a_nan_repair(tmp_path: Path) -> None:
    p = tmp_path / "X_BTC-1m.json"
    p.write_text(
        json.dumps(
            [[1640995200000 + 60_000 * i, 1, 2, 0.5, 1.5, None if i == 1 else 3] for i in range(3)]
        )
    )
    s = load(p)
    assert s.report.repair("nan_or_inf").times == (T0 + MIN,)
    np.testing.assert_array_equal(s.open_time, [T0, T0 + 2 * MIN])


def test_repairs_keep_the_good_values(tmp_path: Path) -> None:
    p = tmp_path / "v.csv"
    p.write_text(csv(HEADER, row(2, c="11.25"), row(0, o="10.5"), row(1, v="inf")))
    s = load(p, timeframe="1m")
    np.testing.assert_array_equal(s.open, [10.5, 10.0])
    np.testing.assert_array_equal(s.close, [11.0, 11.25])


def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(csv(HEADER, row(0), row(1, h="oops")))
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "data", "info", str(p)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "line 3, column 'high': cannot parse 'oops' as a number" in lines[0]
    assert "Traceback" not in proc.stderr
