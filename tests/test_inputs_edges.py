"""Inputs at the edges (issue 12, items 6-12): integer dates, repairs reported by every
command, bounded gap filling, numbers and options out of range, pipes, persona files,
instruments whose dates do not overlap. Every file is generated here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.brain.persona import PersonaError, load_persona
from engine.cli import main
from engine.data import DataError, from_arrays, load, select
from engine.data.stream import merge
from engine.runlog import read_run_log
from engine.signals import default_signal_config, detect_stream
from engine.timeutil import parse_time
from tests.conftest import REPO_ROOT

HEADER = "timestamp,open,high,low,close,volume"
SAMPLE = REPO_ROOT / "engine" / "data" / "samples" / "SYNTHETIC_BTC_USDT-1m.csv"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _walk_csv(path: Path, start: str, n: int, *, negative: tuple[int, ...] = ()) -> Path:
    """n one-minute candles of a random walk; rows in ``negative`` get a price below 0."""
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    t0 = parse_time(start) // 1_000_000_000
    lines = [HEADER]
    for i in range(n):
        o = close[i - 1] if i else close[0]
        c = close[i]
        hi, lo = max(o, c) * 1.001, min(o, c) * 0.999
        if i in negative:
            lo = -lo
        lines.append(f"{t0 + 60 * i},{o:.6f},{hi:.6f},{lo:.6f},{c:.6f},{1 + i % 7}")
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------ 6. timestamps
@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        ([20200101, 20200102, 20200103], ["2020-01-01", "2020-01-02", "2020-01-03"]),
        (
            [202001011200, 202001011201],
            ["2020-01-01T12:00", "2020-01-01T12:01"],
        ),
        ([20200101120000, 20200101120100], ["2020-01-01T12:00", "2020-01-01T12:01"]),
    ],
    ids=["yyyymmdd", "yyyymmddhhmm", "yyyymmddhhmmss"],
)
def test_integer_dates_are_read_as_dates(
    tmp_path: Path, stamps: list[int], expected: list[str]
) -> None:
    rows = [f"{s},10,12,9,11,5" for s in stamps]
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("\n".join([HEADER, *rows]) + "\n")
    json_file = tmp_path / "d.json"
    json_file.write_text(json.dumps([[s, 10, 12, 9, 11, 5] for s in stamps]))
    want = [parse_time(e) for e in expected]
    for f in (csv_file, json_file):
        np.testing.assert_array_equal(load(f).open_time, want)


def test_ten_digit_numbers_stay_epoch_seconds(tmp_path: Path) -> None:
    # 2020010112 could be YYYYMMDDHH, but it is also a real epoch (2034-01-04): seconds win.
    f = tmp_path / "e.csv"
    f.write_text(f"{HEADER}\n2020010112,10,12,9,11,5\n2020010172,10,12,9,11,5\n")
    assert load(f).open_time[0] == 2020010112 * 1_000_000_000


# ------------------------------------------------------------------ 7. repairs reported
def test_run_reports_dropped_rows_on_stderr_json_and_run_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _walk_csv(tmp_path / "X_USDT-1m.csv", "2022-01-01", 600, negative=(10, 20, 30, 40))
    log = tmp_path / "run.jsonl"
    code, out, err = _cli(capsys, "run", str(data), "--json", "--out", str(log))
    assert code == 0, err
    assert err.splitlines() == [
        "tapedeck: note: X_USDT-1m.csv (X/USDT): 4 rows with a price <= 0, dropped; "
        "4 gaps kept (4 candles missing)"
    ]
    record = json.loads(out)["data"]
    assert record == [
        {
            "instrument": "X/USDT",
            "source": "X_USDT-1m.csv",
            "rows_read": 600,
            "rows": 596,
            "gaps": 4,
            "missing_candles": 4,
            "repairs": [
                {
                    "kind": "non_positive_price",
                    "count": 4,
                    "description": "rows with a price <= 0, dropped",
                }
            ],
        }
    ]
    (window,) = read_run_log(log).config["data"]
    assert window["repairs"] == record[0]["repairs"] and window["gaps"] == 4


def test_signals_and_compare_report_repairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _walk_csv(tmp_path / "X_USDT-1m.csv", "2022-01-01", 400, negative=(5,))
    code, out, err = _cli(capsys, "signals", str(data), "--json", "--summary")
    assert code == 0 and "1 rows with a price <= 0, dropped" in err
    assert json.loads(out)["data"][0]["repairs"][0]["count"] == 1
    code, out, err = _cli(capsys, "compare", str(data), "--personas", "scalper", "--json")
    assert code == 0 and "1 rows with a price <= 0, dropped" in err
    assert json.loads(out)[0]["data"][0]["rows"] == 399


def test_a_clean_file_prints_no_note(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "run", str(SAMPLE), "--last", "300", "--json")
    assert code == 0 and err == ""


# ------------------------------------------------------------------ 8. bounded fill
def test_fill_gaps_over_centuries_is_refused_before_allocating(tmp_path: Path) -> None:
    f = tmp_path / "far.csv"
    f.write_text(
        f"{HEADER}\n1790-01-01,10,12,9,11,5\n1900-01-01,10,12,9,11,5\n2020-01-01,10,12,9,11,5\n"
    )
    with pytest.raises(DataError, match=r"far\.csv: refusing to fill gaps: [\d,]+ missing"):
        load(f, timeframe="1m", fill_gaps=True)
    # without the fill it loads: three candles and two gaps
    s = load(f, timeframe="1m")
    assert len(s) == 3 and s.report.gap_count == 2


def test_fill_gaps_still_fills_an_ordinary_gap(tmp_path: Path) -> None:
    f = tmp_path / "g.csv"
    f.write_text(
        f"{HEADER}\n2022-01-01 00:00,10,12,9,11,5\n2022-01-01 00:01,10,12,9,11,5\n"
        "2022-01-01 00:05,10,12,9,11,5\n"
    )
    s = load(f, fill_gaps=True)
    assert len(s) == 6 and s.filled.tolist() == [False, False, True, True, True, False]


# ------------------------------------------------------------------ 9. numbers and options
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--fees", "1e6", "--fees must be basis points from 0 to 1000 (10%), got 1000000.0"),
        ("--slippage", "20000", "--slippage must be basis points from 0 to 1000"),
        ("--timeout", "inf", "--timeout must be seconds, more than 0 and at most 86400, got inf"),
        ("--timeout", "0", "--timeout must be seconds"),
        ("--timeout", "-5", "--timeout must be seconds"),
        ("--timeout", "nan", "--timeout must be seconds"),
        ("--first-call-timeout", "inf", "--first-call-timeout must be seconds, more than 0"),
        ("--first-call-timeout", "0", "--first-call-timeout must be seconds"),
        ("--first-call-timeout", "-5", "--first-call-timeout must be seconds"),
        ("--first-call-timeout", "nan", "--first-call-timeout must be seconds"),
        ("--cash", "1e308", "--cash must be a positive amount up to 1e12, got 1e+308"),
        ("--cash", "0", "--cash must be a positive amount"),
    ],
)
def test_nonsense_numeric_options_are_an_error_naming_the_option(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    for command in ("run", "compare"):
        code, out, err = _cli(capsys, command, str(SAMPLE), "--last", "100", option, value)
        assert code == 2 and out == ""
        assert err.startswith(f"tapedeck: error: {message}") and err.count("\n") == 1


@settings(max_examples=8, deadline=None)
@given(k=st.integers(min_value=-60, max_value=60))
def test_signals_are_unchanged_by_scaling_prices(k: int) -> None:
    base = select(load(SAMPLE), last=1500)
    factor = 2.0**k  # a power of two scales every float exactly

    def signals(f: float) -> list[tuple[int, str, str, float]]:
        s = from_arrays(
            "X",
            base.open_time,
            base.open * f,
            base.high * f,
            base.low * f,
            base.close * f,
            base.volume,
        )
        per, _ = detect_stream(merge([s]), default_signal_config())
        return [
            (g.time, g.kind, str(g.direction), round(g.strength, 9))
            for r in per.values()
            for g in r.signals
        ]

    assert signals(factor) == signals(1.0)


# ------------------------------------------------------------------ 10. pipes
def test_data_from_a_pipe_loses_nothing(tmp_path: Path) -> None:
    data = _walk_csv(tmp_path / "p.csv", "2022-01-01", 3000)
    proc = subprocess.run(  # input= makes stdin a pipe: it can be read only once
        [sys.executable, "-m", "engine.cli", "data", "info", "/dev/stdin", "--json"],
        cwd=REPO_ROOT,
        input=data.read_bytes(),
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["rows"] == 3000


def test_signals_into_head_ends_quietly(tmp_path: Path) -> None:
    data = _walk_csv(tmp_path / "q.csv", "2022-01-01", 5000)
    proc = subprocess.run(
        [
            "bash",
            "-c",
            f"{sys.executable} -m engine.cli signals {data} | head -1; "
            'echo "status ${PIPESTATUS[0]}" >&2',
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.stdout.count("\n") == 1
    assert proc.stderr == "status 0\n"


# ------------------------------------------------------------------ 11. persona files
PERSONA = 'name = "p"\nrisk_per_trade = 0.01\n'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (PERSONA + '[brain]\ntimeout = "soon"\n', r"field 'brain\.timeout': expected a number"),
        (PERSONA + "[brain]\nmodel = 42\n", r"field 'brain\.model': expected text, got 42"),
        (
            PERSONA + "[brain]\nfirst_call_timeout = -5\n",
            r"field 'brain\.first_call_timeout': expected a positive number of seconds",
        ),
        (PERSONA + "[brain]\ntemperature = 9\n", r"field 'brain\.temperature': 9\.0 is outside"),
        (PERSONA + "[brain]\nnum_ctx = 0.5\n", r"field 'brain\.num_ctx': expected a whole number"),
        (
            PERSONA + '[trailing]\nmode = "percent"\ndistance = 5.0\n',
            r"field 'trailing\.distance': a percent trail is a fraction of the price \(0\.02 = "
            r"2%\), must be < 1, got 5\.0",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", r"not a text persona file \(byte 0 is not UTF-8\)"),
        (b"name = 1\x00\n", r"not a text persona file \(it holds NUL bytes\)"),
        (PERSONA.encode("utf-16"), r"persona file is UTF-16 text; save it as UTF-8"),
    ],
    ids=[
        "timeout-text",
        "model-number",
        "first-call-timeout",
        "temperature",
        "num-ctx",
        "percent-trail",
        "binary",
        "nul",
        "utf16",
    ],
)
def test_persona_errors_name_the_file_and_field(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    f = tmp_path / "bad.toml"
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    with pytest.raises(PersonaError, match=rf"^{tmp_path}/bad\.toml: .*{message}"):
        load_persona(f)


def test_persona_error_in_the_cli_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(PERSONA + "[brain]\nmodel = 42\n")
    code, _, err = _cli(capsys, "run", str(SAMPLE), "--persona", str(f))
    assert code == 2
    assert err == f"tapedeck: error: {f}: field 'brain.model': expected text, got 42\n"


# ------------------------------------------------------------------ 12. overlap
def test_instruments_without_a_common_period_are_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _walk_csv(tmp_path / "BTC_USDT-1m.csv", "2022-01-01", 300)
    b = _walk_csv(tmp_path / "ETH_BTC-1m.csv", "2018-01-01", 300)
    for command in ("run", "signals", "compare"):
        code, out, err = _cli(capsys, command, str(a), str(b))
        assert code == 2 and out == ""
        assert err == (
            "tapedeck: error: the instruments' dates do not overlap (BTC/USDT "
            "2022-01-01T00:00:00Z to 2022-01-01T05:00:00Z; ETH/BTC 2018-01-01T00:00:00Z to "
            "2018-01-01T05:00:00Z); expected files covering a common period\n"
        )


def test_a_partial_overlap_is_a_note_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _walk_csv(tmp_path / "BTC_USDT-1m.csv", "2022-01-01 00:00", 300)
    b = _walk_csv(tmp_path / "ETH_USDT-1m.csv", "2022-01-01 04:00", 300)
    code, _, err = _cli(capsys, "run", str(a), str(b), "--json")
    assert code == 0
    assert err == (
        "tapedeck: note: the instruments overlap only from 2022-01-01T04:00:00Z to "
        "2022-01-01T05:00:00Z (BTC/USDT 2022-01-01T00:00:00Z to 2022-01-01T05:00:00Z; "
        "ETH/USDT 2022-01-01T04:00:00Z to 2022-01-01T09:00:00Z)\n"
    )


# ------------------------------------------------------------------ 8. CSV read block by block
def test_a_bad_value_after_the_first_block_still_names_its_line(tmp_path: Path) -> None:
    # CSV files are parsed block by block (bounded memory): types come from the first
    # block, so a bad value or a float among integers further on takes the exact path.
    n = 60_000  # ~2.5 MB: dozens of 1 MB blocks
    t0 = parse_time("2022-01-01") // 1_000_000_000
    rows = [f"{t0 + 60 * i},10,12,9,11,5" for i in range(n)]
    good = tmp_path / "ints_then_floats.csv"
    good.write_text("\n".join([HEADER, *rows[:-1], f"{t0 + 60 * (n - 1)},10.5,12,9,11,5"]) + "\n")
    s = load(good)
    assert len(s) == n and s.open[-1] == 10.5 and s.open[0] == 10.0
    bad = tmp_path / "bad_late.csv"
    rows[50_000] = f"{t0 + 60 * 50_000},10,12x,9,11,5"
    bad.write_text("\n".join([HEADER, *rows]) + "\n")
    with pytest.raises(DataError, match=r"line 50002, column 'high': cannot parse '12x'"):
        load(bad)
