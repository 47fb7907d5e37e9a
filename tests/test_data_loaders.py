"""Every loader, on the real files in ../shared/data and on small files written here."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data import DataError, DataReport, from_arrays, load, load_many
from engine.data.names import parse_name
from engine.data.readers import epoch_to_ns
from engine.timeutil import parse_time, timeframe_to_ns
from engine.types import InstrumentSeries

T0 = parse_time("2022-01-01T00:00:00Z")
MIN = timeframe_to_ns("1m")

ROWS = [  # open, high, low, close, volume
    (100.0, 101.0, 99.5, 100.5, 10.0),
    (100.5, 102.0, 100.0, 101.5, 12.5),
    (101.5, 101.75, 100.25, 100.75, 7.0),
    (100.75, 103.0, 100.5, 102.25, 0.0),
]


def _frame(step_ns: int = MIN) -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=["open", "high", "low", "close", "volume"])
    df.insert(0, "date", pd.to_datetime(T0 + np.arange(len(ROWS)) * step_ns, utc=True))
    return df


def _assert_rows(series: InstrumentSeries, step_ns: int = MIN) -> None:
    np.testing.assert_array_equal(series.open_time, T0 + np.arange(len(ROWS)) * step_ns)
    for k, name in enumerate(("open", "high", "low", "close", "volume")):
        np.testing.assert_array_equal(getattr(series, name), [r[k] for r in ROWS])
    assert series.open_time.dtype == np.int64
    assert series.close.dtype == np.float64
    for col in (
        series.open_time,
        series.open,
        series.high,
        series.low,
        series.close,
        series.volume,
    ):
        assert col.flags.writeable and col.flags.c_contiguous
    assert not series.filled.any()
    assert isinstance(series.report, DataReport)
    assert series.report.repairs == ()
    assert series.report.gaps == ()


# ------------------------------------------------------------------ real files


def test_real_btc_csv_facts(btc_1m_csv: Path) -> None:
    s = load(btc_1m_csv)
    assert len(s) == 45_031
    assert s.timeframe == "1m"
    assert s.report.gap_count == 0
    assert s.report.repairs == ()
    assert s.open_time[0] == parse_time("2021-12-31 23:01:00")
    assert s.open_time[-1] == parse_time("2022-02-01 05:31:00")
    # First data line: 2021-12-31 23:01:00.000000,46319.0,46385.0,46319.0,46377.0,2300413.7295
    assert (s.open[0], s.high[0], s.low[0], s.close[0]) == (46319.0, 46385.0, 46319.0, 46377.0)
    assert s.volume[0] == 2300413.7295
    assert s.instrument == "BTC-PERP"


def test_real_btc_csv_matches_pandas(btc_1m_csv: Path) -> None:
    s = load(btc_1m_csv)
    df = pd.read_csv(btc_1m_csv)
    np.testing.assert_array_equal(
        s.open_time,
        pd.to_datetime(df["timestamp"], utc=True).dt.as_unit("ns").astype("int64").to_numpy(),
    )
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(s, col), df[col].to_numpy())


def test_real_binance_5m_feather_facts(alt_5m_files: list[Path]) -> None:
    series = load_many(alt_5m_files)
    gaps = {s.instrument: s.report.gap_count for s in series}
    assert gaps == {
        "ADA/BTC": 5,
        "DASH/BTC": 2,
        "ETC/BTC": 0,
        "ETH/BTC": 0,
        "LTC/BTC": 0,
        "NXT/BTC": 0,
        "TRX/BTC": 6,
        "XLM/BTC": 0,
    }
    rows = {s.instrument: len(s) for s in series}
    assert rows["ETH/BTC"] == 5760 and rows["ADA/BTC"] == 5720 and rows["TRX/BTC"] == 5754
    for s, path in zip(series, alt_5m_files, strict=True):
        assert s.timeframe == "5m"
        assert s.report.repairs == ()
        df = pd.read_feather(path)
        np.testing.assert_array_equal(s.close, df["close"].to_numpy())
        np.testing.assert_array_equal(
            s.open_time, df["date"].dt.as_unit("ns").astype("int64").to_numpy()
        )
        # Gap accounting: present rows + missing candles = span / timeframe + 1.
        span = (s.open_time[-1] - s.open_time[0]) // s.timeframe_ns + 1
        assert len(s) + s.report.missing_candles == span
    assert min(float(s.low.min()) for s in series) < 1e-4  # small prices survive untouched


def test_real_unittest_feather_has_538_gaps_and_fills_them(unittest_1m_feather: Path) -> None:
    s = load(unittest_1m_feather)
    assert (len(s), s.timeframe, s.report.gap_count) == (13_681, "1m", 538)
    f = load(unittest_1m_feather, fill_gaps=True)
    assert len(f) == len(s) + s.report.missing_candles
    assert int(f.filled.sum()) == s.report.missing_candles
    assert np.all(np.diff(f.open_time) == MIN)
    assert f.report.count("filled_gap") == s.report.missing_candles
    assert f.report.gap_count == 538  # gaps describe the source, filling does not hide them
    np.testing.assert_array_equal(f.close[~f.filled], s.close)


# ------------------------------------------------------------------ small files per format


def _csv_lines(header: str, times: list[str]) -> str:
    body = [f"{t},{o},{h},{lo},{c},{v}" for t, (o, h, lo, c, v) in zip(times, ROWS, strict=True)]
    return "\n".join([header, *body]) + "\n"


ISO = ["2022-01-01 00:00:00", "2022-01-01 00:01:00", "2022-01-01 00:02:00", "2022-01-01 00:03:00"]


@pytest.mark.parametrize(
    ("header", "times"),
    [
        ("timestamp,open,high,low,close,volume", ISO),
        ("Date,Open,High,Low,Close,Volume", [t.replace(" ", "T") + "Z" for t in ISO]),
        (
            "TIME,OPEN,HIGH,LOW,CLOSE,VOLUME",
            [
                "2022-01-01T01:00:00+01:00",
                "2022-01-01T01:01:00+01:00",
                "2022-01-01T01:02:00+01:00",
                "2022-01-01T01:03:00+01:00",
            ],
        ),
        ("open_time,open,high,low,close,volume", [str(T0 // 10**9 + 60 * i) for i in range(4)]),
        ("timestamp,open,high,low,close,volume", [str(T0 // 10**6 + 60_000 * i) for i in range(4)]),
        (
            "timestamp,open,high,low,close,volume",
            [str(T0 // 10**3 + 60_000_000 * i) for i in range(4)],
        ),
        ("timestamp,open,high,low,close,volume", [f"{T0 / 1e9 + 60 * i:.1f}" for i in range(4)]),
        (" Timestamp , Open , High , Low , Close , Volume ", ISO),
    ],
    ids=[
        "iso-space",
        "iso-Z-capitalised",
        "iso-offset",
        "epoch-s",
        "epoch-ms",
        "epoch-us",
        "epoch-s-float",
        "padded-header",
    ],
)
def test_csv_with_header(tmp_path: Path, header: str, times: list[str]) -> None:
    p = tmp_path / "X_USDT-1m.csv"
    p.write_text(_csv_lines(header, times))
    s = load(p)
    _assert_rows(s)
    assert (s.instrument, s.timeframe, s.report.format) == ("X/USDT", "1m", "csv")


def test_csv_extra_columns_and_other_order_and_semicolons(tmp_path: Path) -> None:
    lines = ["volume;close;low;high;open;trades;date"]
    lines += [f"{v};{c};{lo};{h};{o};5;{t}" for t, (o, h, lo, c, v) in zip(ISO, ROWS, strict=True)]
    p = tmp_path / "data.txt"
    p.write_text("\n".join(lines))
    _assert_rows(load(p, instrument="ABC"))


def test_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    text = _csv_lines("timestamp,open,high,low,close,volume", ISO).replace("\n", "\r\n")
    p = tmp_path / "X_USDT-1m.csv"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())
    _assert_rows(load(p))


def test_csv_gzip(tmp_path: Path) -> None:
    p = tmp_path / "X_USDT-1m.csv.gz"
    p.write_bytes(gzip.compress(_csv_lines("timestamp,open,high,low,close,volume", ISO).encode()))
    s = load(p)
    _assert_rows(s)
    assert s.instrument == "X/USDT"


def _binance_lines(unit: int) -> str:
    lines = []
    for i, (o, h, lo, c, v) in enumerate(ROWS):
        t = (T0 + i * MIN) // unit
        close_t = (T0 + (i + 1) * MIN) // unit - 1
        lines.append(f"{t},{o},{h},{lo},{c},{v},{close_t},{v * c},42,{v / 2},{v * c / 2},0")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("unit", [10**6, 10**3], ids=["ms", "us"])
def test_binance_kline_csv(tmp_path: Path, unit: int) -> None:
    p = tmp_path / "BTCUSDT-1m-2022-01.csv"
    p.write_text(_binance_lines(unit))
    s = load(p)
    _assert_rows(s)
    assert (s.instrument, s.timeframe, s.report.format) == ("BTCUSDT", "1m", "binance-csv")


def test_binance_switch_from_ms_to_us_in_one_file(tmp_path: Path) -> None:
    ms = _binance_lines(10**6).splitlines()
    us = _binance_lines(10**3).splitlines()
    p = tmp_path / "BTCUSDT-1m-2024-12.csv"
    p.write_text("\n".join(ms[:2] + us[2:]) + "\n")
    _assert_rows(load(p))


def test_headerless_six_columns(tmp_path: Path) -> None:
    p = tmp_path / "plain.csv"
    p.write_text(_csv_lines("", ISO).lstrip("\n"))
    s = load(p)
    _assert_rows(s)
    assert s.report.format == "csv-no-header"


def test_feather(tmp_path: Path) -> None:
    p = tmp_path / "ETH_BTC-1m.feather"
    _frame().to_feather(p)
    s = load(p)
    _assert_rows(s)
    assert (s.instrument, s.timeframe, s.report.format) == ("ETH/BTC", "1m", "feather")


def test_feather_with_naive_times_and_ms_integers(tmp_path: Path) -> None:
    df = _frame()
    df["date"] = df["date"].dt.tz_localize(None)
    df.to_feather(tmp_path / "a.feather")
    _assert_rows(load(tmp_path / "a.feather"))
    df["date"] = df["date"].astype("int64") // 10**6
    df.to_feather(tmp_path / "b.feather")
    _assert_rows(load(tmp_path / "b.feather"))


def test_freqtrade_json(tmp_path: Path) -> None:
    p = tmp_path / "ETH_BTC-1m.json"
    p.write_text(json.dumps([[(T0 + i * MIN) // 10**6, *r] for i, r in enumerate(ROWS)]))
    s = load(p)
    _assert_rows(s)
    assert (s.instrument, s.timeframe, s.report.format) == ("ETH/BTC", "1m", "json")


def test_freqtrade_jsongz_and_json_objects(tmp_path: Path) -> None:
    p = tmp_path / "ETH_BTC-1m.json.gz"
    p.write_bytes(
        gzip.compress(
            json.dumps([[(T0 + i * MIN) // 10**6, *r] for i, r in enumerate(ROWS)]).encode()
        )
    )
    _assert_rows(load(p))
    r = tmp_path / "ETH_BTC-1m-iso.json"
    r.write_text(json.dumps([[t, *row] for t, row in zip(ISO, ROWS, strict=True)]))
    _assert_rows(load(r))
    q = tmp_path / "objects.json"
    q.write_text(_frame().assign(date=lambda d: d["date"].astype(str)).to_json(orient="records"))
    _assert_rows(load(q))


def test_parquet(tmp_path: Path) -> None:
    p = tmp_path / "SOL_USDT-5m.parquet"
    _frame(5 * MIN).to_parquet(p)
    s = load(p)
    _assert_rows(s, 5 * MIN)
    assert (s.instrument, s.timeframe, s.report.format) == ("SOL/USDT", "5m", "parquet")


def test_parquet_with_datetime_index(tmp_path: Path) -> None:
    p = tmp_path / "x.parquet"
    _frame().set_index("date").to_parquet(p)
    _assert_rows(load(p))
    q = tmp_path / "y.parquet"
    _frame().set_index("date").rename_axis(None).to_parquet(q)
    _assert_rows(load(q))


def test_format_detected_from_content_not_extension(tmp_path: Path) -> None:
    p = tmp_path / "candles.dat"
    _frame().to_feather(p)
    assert load(p).report.format == "feather"
    q = tmp_path / "candles2.dat"
    _frame().to_parquet(q)
    assert load(q).report.format == "parquet"


# ------------------------------------------------------------------ names, timeframe, gaps


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ETH_BTC-5m.feather", ("ETH/BTC", "5m")),
        ("BTC_USDT_USDT-1h-futures.feather", ("BTC/USDT:USDT", "1h")),
        ("eth_btc-1d.json.gz", ("ETH/BTC", "1d")),
        ("BTCUSDT-1m-2024-01.csv", ("BTCUSDT", "1m")),
        ("ETHUSDT-15m-2024-01-05.csv", ("ETHUSDT", "15m")),
        ("btc-perp-20211231-20220201_1m.csv", ("BTC-PERP", "1m")),
        ("SYNTHETIC_PEPE_USDT-1m.csv", ("PEPE/USDT", "1m")),
        ("candles.csv", ("CANDLES", None)),
    ],
)
def test_names(name: str, expected: tuple[str, str | None]) -> None:
    assert parse_name(Path(name)) == expected


def test_epoch_units_from_magnitude() -> None:
    ns = T0
    values = np.array([ns // 10**9, ns // 10**6, ns // 10**3, ns], dtype=np.int64)
    np.testing.assert_array_equal(epoch_to_ns(values), [ns] * 4)
    np.testing.assert_array_equal(epoch_to_ns(np.array([1640995200.25])), [ns + 250_000_000])


def _write(tmp_path: Path, offsets: list[int], name: str = "c.csv") -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{(T0 + k * MIN) // 10**6},1,2,0.5,1.5,3" for k in offsets]
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_timeframe_is_most_common_spacing_and_gaps_reported(tmp_path: Path) -> None:
    s = load(_write(tmp_path, [0, 5, 10, 15, 30, 35, 45]))
    assert s.timeframe == "5m"
    assert [(g.after, g.before, g.missing) for g in s.report.gaps] == [
        (T0 + 15 * MIN, T0 + 30 * MIN, 2),
        (T0 + 35 * MIN, T0 + 45 * MIN, 1),
    ]
    assert (s.report.gap_count, s.report.largest_gap, s.report.missing_candles) == (2, 2, 3)


def test_sparse_data_uses_a_timeframe_that_fits_every_spacing(tmp_path: Path) -> None:
    s = load(_write(tmp_path, [0, 2, 4, 6, 8, 9, 11, 13]))  # mostly 2m apart, once 1m
    assert s.timeframe == "1m"
    assert s.report.gap_count == 6
    assert any("some candles are closer: using 1m" in n for n in s.report.notes)


def test_file_name_timeframe_wins_when_it_fits(tmp_path: Path) -> None:
    s = load(_write(tmp_path, [0, 2, 4, 6, 7], name="A_B-1m.csv"))
    assert (s.timeframe, s.report.gap_count) == ("1m", 3)
    s = load(_write(tmp_path, [0, 1, 2, 3], name="A_B-5m.csv"))
    assert s.timeframe == "1m"
    assert any("file name says 5m" in n for n in s.report.notes)


def test_timeframe_override(tmp_path: Path) -> None:
    p = _write(tmp_path, [0, 10, 20, 30])
    assert load(p).timeframe == "10m"
    s = load(p, timeframe="5m")
    assert (s.timeframe, s.report.gap_count, s.report.missing_candles) == ("5m", 3, 3)
    with pytest.raises(DataError, match=r"timeframe 15m is longer than the spacing"):
        load(p, timeframe="15m")
    with pytest.raises(DataError, match=r"invalid timeframe"):
        load(p, timeframe="fast")


def test_single_candle_needs_a_timeframe(tmp_path: Path) -> None:
    p = _write(tmp_path, [0])
    with pytest.raises(DataError, match=r"single candle: cannot infer the timeframe"):
        load(p)
    assert load(p, timeframe="1h").timeframe == "1h"
    assert load(_write(tmp_path, [0], "X_Y-4h.csv")).timeframe == "4h"


def test_fill_gaps_flat_zero_volume(tmp_path: Path) -> None:
    p = tmp_path / "g.csv"
    p.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2022-01-01 00:00,10,12,9,11,5\n"
        "2022-01-01 00:03,11,13,10,12,6\n"
        "2022-01-01 00:04,12,12,11,11.5,7\n"
    )
    s = load(p, fill_gaps=True)
    np.testing.assert_array_equal(s.open_time, T0 + np.arange(5) * MIN)
    np.testing.assert_array_equal(s.filled, [False, True, True, False, False])
    np.testing.assert_array_equal(s.open, [10, 11, 11, 11, 12])
    np.testing.assert_array_equal(s.high, [12, 11, 11, 13, 12])
    np.testing.assert_array_equal(s.low, [9, 11, 11, 10, 11])
    np.testing.assert_array_equal(s.close, [11, 11, 11, 12, 11.5])
    np.testing.assert_array_equal(s.volume, [5, 0, 0, 6, 7])
    rep = s.report.repair("filled_gap")
    assert rep is not None and rep.times == (T0 + MIN, T0 + 2 * MIN)
    assert s.report.gap_count == 1


def test_binance_kline_csv_with_header_row(tmp_path: Path) -> None:
    header = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore"
    )
    p = tmp_path / "BTCUSDT-1m-2025-02.csv"
    p.write_text(header + "\n" + _binance_lines(10**3))
    s = load(p)
    _assert_rows(s)
    assert (s.instrument, s.report.format) == ("BTCUSDT", "csv")


def test_from_arrays_validates_like_load() -> None:
    times = np.array(
        ["2022-01-01T00:02", "2022-01-01T00:00", "2022-01-01T00:01"], dtype="datetime64[ns]"
    )
    s = from_arrays("X", times, [3, 1, 2], [4, 2, 3], [2, 0.5, 1], [3.5, 1.5, -2.5], [1, 1, 1])
    np.testing.assert_array_equal(s.open_time, [T0, T0 + 2 * MIN])
    assert s.report.count("sorted") == 2
    assert s.report.count("non_positive_price") == 1
    assert (s.timeframe, s.report.gap_count, s.report.format) == ("2m", 0, "memory")
    with pytest.raises(DataError, match=r"columns of different lengths"):
        from_arrays("X", times, [1], [1], [1], [1], [1])


@pytest.mark.parametrize(
    "cell",
    ["100", "100.0", "1e2", '"100"', "100.000000000000001"],
)
def test_csv_prices_typed_as_numbers_read_as_before(tmp_path: Path, cell: str) -> None:
    """Price columns parsed as float64 from the start (not inferred): ints, exponents,
    quotes and ints turning into floats in a later block give the same floats."""
    rows = [f"2022-01-01 00:{m:02d}:00,{cell},101,99,100.5,{m}" for m in range(40)]
    rows += [f"2022-01-01 00:{m:02d}:00,100.25,101,99,100.5,{m}.5" for m in range(40, 50)]
    path = tmp_path / "x.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    s = load(path)
    assert s.open.tolist() == [100.0] * 40 + [100.25] * 10
    assert s.volume.tolist() == [float(m) for m in range(40)] + [m + 0.5 for m in range(40, 50)]


def test_csv_price_integer_beyond_float_precision_is_a_data_error(tmp_path: Path) -> None:
    rows = [f"2022-01-01 00:0{m}:00,9007199254740993,101,99,100,5" for m in range(5)]
    path = tmp_path / "big.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="no valid candles left"):
        load(path)
