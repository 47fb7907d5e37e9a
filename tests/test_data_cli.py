"""``tapedeck data info`` and ``data sample`` through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine import cli
from engine.data.sample import SAMPLE_PATHS
from tests.conftest import REPO_ROOT


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_real_btc(btc_1m_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["data", "info", "--json", str(btc_1m_csv)], capsys)
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {
            "instrument": "BTC-PERP",
            "timeframe": "1m",
            "rows": 45031,
            "start": "2021-12-31T23:01:00Z",
            "end": "2022-02-01T05:31:00Z",
            "gaps": 0,
            "repairs": [],
        }
    ]


def test_info_table_real_btc(btc_1m_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["data", "info", str(btc_1m_csv)], capsys)
    assert code == 0
    line = next(ln for ln in out.splitlines() if "BTC-PERP" in ln)
    cells = [c.strip() for c in line.strip("│ ").split("│")]
    assert cells == [
        "BTC-PERP",
        "1m",
        "45,031",
        "2021-12-31 23:01",
        "2022-02-01 05:31",
        "none",
        "none",
    ]
    for header in (
        "instrument",
        "timeframe",
        "rows",
        "first candle",
        "last candle",
        "gaps",
        "repairs",
    ):
        assert header in out


def test_info_eight_5m_files(alt_5m_files: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["data", "info", "--json", *map(str, alt_5m_files)], capsys)
    assert code == 0
    gaps = {o["instrument"]: o["gaps"] for o in json.loads(out)}
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
    code, out, _ = run(["data", "info", *map(str, alt_5m_files)], capsys)
    ada = next(ln for ln in out.splitlines() if "ADA/BTC" in ln)
    assert "5 (40 missing, largest 165m)" in ada


def test_info_lists_repairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "X_USDT-1m.csv"
    p.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2022-01-01 00:00,10,12,9,11,5\n"
        "2022-01-01 00:02,10,12,9,11,5\n"
        "2022-01-01 00:01,10,12,9,11,-5\n"
        "2022-01-01 00:02,10,12,9,11,5\n"
        "2022-01-01 00:04,10,12,9,11,5\n"
    )
    code, out, _ = run(["data", "info", "--json", str(p)], capsys)
    assert code == 0
    [info] = json.loads(out)
    assert (info["instrument"], info["rows"], info["gaps"]) == ("X/USDT", 3, 2)
    assert [(r["kind"], r["count"]) for r in info["repairs"]] == [
        ("sorted", 1),
        ("negative_volume", 1),
        ("exact_duplicate", 1),
    ]
    code, out, _ = run(["data", "info", str(p)], capsys)
    assert "1 sorted, 1 negative_volume, 1 exact_duplicate" in out
    code, out, _ = run(["data", "info", "--json", "--fill-gaps", str(p)], capsys)
    [info] = json.loads(out)
    assert info["rows"] == 5 and info["repairs"][-1]["kind"] == "filled_gap"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "absent.csv", "absent.csv: file not found"),
        (lambda d: d, "is a directory"),
        (lambda d: (d / "e.csv").write_text("") or d / "e.csv", "e.csv: empty file"),
    ],
    ids=["missing", "directory", "empty"],
)
def test_info_bad_input_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message
) -> None:
    target = make(tmp_path)
    code, out, err = run(["data", "info", str(target)], capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("tapedeck: error: ") and message in err


def test_info_bad_timeframe_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["data", "info", "--timeframe", "sometimes", str(SAMPLE_PATHS[0])], capsys)
    assert code == 2 and "invalid timeframe 'sometimes'" in err


def test_help_lists_data_and_no_traceback_on_usage_errors() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "data" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "data"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_info_on_the_bundled_sample(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["data", "info", "--json", *map(str, SAMPLE_PATHS)], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [r["instrument"] for r in rows] == ["BTC/USDT", "ETH/USDT", "SOL/USDT", "PEPE/USDT"]
    assert all(r["rows"] == 4320 and r["gaps"] == 0 and r["repairs"] == [] for r in rows)
    assert {r["start"] for r in rows} == {"2024-03-04T00:00:00Z"}


def test_sample_command_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["data", "sample", "--seed", "3", "--out", str(tmp_path)], capsys)
    assert code == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in SAMPLE_PATHS)
    assert out.split() == [str(tmp_path / p.name) for p in SAMPLE_PATHS]
