"""Exports from the replay screen: trades CSV, run log, HTML report, screenshots (path shown)."""

from __future__ import annotations

import csv
import json
import re

import pytest

from engine.export import TRADE_COLUMNS, trade_record
from engine.runlog import read_run_log
from tests.tui.conftest import SIZE, jump, notices, settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def export_dir(tmp_path, monkeypatch):
    folder = tmp_path / "exports" / "here"  # missing: created on the first export
    monkeypatch.setenv("TAPEDECK_EXPORT_DIR", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    return folder


async def test_export_trades_csv_and_run_log(make_app, export_dir) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await jump(pilot, "700")
        trades = list(screen.model.trades)
        assert len(trades) > 5
        await pilot.press("e")
        await pilot.press("E")
        await settle(pilot)
    (csv_path,) = export_dir.glob("tapedeck-momentum-trades-*.csv")
    (log_path,) = export_dir.glob("tapedeck-momentum-runlog-*.jsonl")
    assert any(str(csv_path) in m for m in notices(app))
    assert any(str(log_path) in m for m in notices(app))
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(TRADE_COLUMNS)
    assert len(rows) == len(trades)
    assert rows[-1]["exit_time"] == trade_record(trades[-1])["exit_time"]
    assert float(rows[-1]["pnl"]) == trades[-1].pnl
    log = read_run_log(log_path)
    assert list(log.trades) == trades


async def test_export_html_report_of_the_steps_so_far(make_app, export_dir) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await jump(pilot, "700")
        trades = list(screen.model.trades)
        assert len(trades) > 5
        steps = screen.steps_done
        await pilot.press("H")
        await settle(pilot)
    (html_path,) = export_dir.glob("tapedeck-momentum-report-*.html")
    assert any(str(html_path) in m for m in notices(app))
    page = html_path.read_text()
    assert page.count('<tr data-trade="') == len(trades)
    assert not re.search(r'(src|href)="https?:', page)  # self-contained
    # the candles embedded are those up to the step shown, not the rest of the window
    blocks = re.findall(
        r'<script type="application/json" class="candles"[^>]*>(.*?)</script>', page
    )
    assert len(blocks) == 4
    per_instrument = [len(json.loads(b.replace("<\\/", "</"))["t"]) for b in blocks]
    assert max(per_instrument) == steps, (per_instrument, steps)


async def test_screenshot_goes_to_the_export_folder_and_says_where(make_app, export_dir) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("S")
        await pilot.pause()
    (svg,) = export_dir.glob("*.svg")
    assert svg.read_text().startswith("<svg")
    assert any(f"screenshot saved: {svg}" in m for m in notices(app))
