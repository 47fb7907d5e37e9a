"""The one CSV writer: trades of ``run --trades-csv`` equal ``run --json``'s trades, atomically."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from engine.cli import main
from engine.data.sample import SAMPLE_PATHS
from engine.export import TRADE_COLUMNS, csv_text, write_csv, write_trades_csv
from engine.types import ExitReason, Side, Trade

SAMPLE = str(SAMPLE_PATHS[0])


def _trade(**kw: object) -> Trade:
    base: dict[str, object] = dict(
        instrument="BTC/USDT",
        side=Side.LONG,
        entry_time=1_640_995_200_000_000_000,  # 2022-01-01T00:00:00Z
        entry_price=46_000.5,
        exit_time=1_640_998_800_000_000_000,  # 2022-01-01T01:00:00Z
        exit_price=46_500.25,
        qty=0.1,
        pnl=49.975,
        fees=9.25075,
        exit_reason=ExitReason.TAKE_PROFIT,
        ambiguous=False,
    )
    base.update(kw)
    return Trade(**base)  # type: ignore[arg-type]


def test_trades_csv_by_hand(tmp_path: Path) -> None:
    path = write_trades_csv(tmp_path / "t.csv", [_trade(), _trade(side=Side.SHORT, pnl=-0.1)])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(TRADE_COLUMNS)
    assert lines[1] == (
        "BTC/USDT,long,2022-01-01T00:00:00Z,46000.5,2022-01-01T01:00:00Z,46500.25,"
        "0.1,49.975,9.25075,take_profit,false"
    )
    assert lines[2].split(",")[1] == "short" and lines[2].split(",")[7] == "-0.1"
    assert len(lines) == 3


def test_cells_none_nan_bool_and_quoting(tmp_path: Path) -> None:
    text = csv_text(
        ("a", "b", "c", "d"),
        [{"a": None, "b": float("nan"), "c": True, "d": 'say "hi", then go'}, {"a": 1}],
    )
    assert text == 'a,b,c,d\n,,true,"say ""hi"", then go"\n1,,,\n'


def test_times_and_missing_values_of_table_cells() -> None:
    import datetime as dt

    import numpy as np
    import pandas as pd

    row = {
        "a": pd.NA,
        "b": pd.NaT,
        "c": pd.Timestamp("2024-01-01 02:00", tz="Europe/Paris"),
        "d": np.datetime64("2024-01-02T00:00"),
        "e": dt.datetime(2024, 1, 3, tzinfo=dt.UTC),
        "f": np.float64(0.1),
        "g": np.int64(7),
    }
    text = csv_text(tuple(row), [row])
    assert text.splitlines()[1] == (
        ",,2024-01-01T01:00:00Z,2024-01-02T00:00:00Z,2024-01-03T00:00:00Z,0.1,7"
    )


def test_write_is_atomic_a_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    write_csv(target, ("x",), [{"x": 1}])
    before = target.read_bytes()

    def rows():
        yield {"x": 2}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_csv(target, ("x",), rows())
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["table.csv"]  # no temporary file left behind
    assert (target.stat().st_mode & 0o777) == 0o644


def test_run_trades_csv_equals_run_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_csv = tmp_path / "trades.csv"
    common = [SAMPLE, "--persona", "scalper", "--last", "4000"]
    assert main(["run", *common, "--json", "--trades-csv", str(out_csv)]) == 0
    data = json.loads(capsys.readouterr().out)
    with out_csv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(data["trades"]) > 0
    for row, trade in zip(rows, data["trades"], strict=True):
        assert tuple(row) == TRADE_COLUMNS
        for key in TRADE_COLUMNS:
            want = trade[key]
            if isinstance(want, bool):  # CSV writes booleans as true/false
                assert row[key] == str(want).lower(), key
                continue
            assert (float(row[key]) if isinstance(want, float) else row[key]) == want, key
