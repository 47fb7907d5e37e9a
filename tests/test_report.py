"""``tapedeck report`` and ``run --html``: the page's contents checked against the run."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.data.sample import SAMPLE_PATHS
from engine.numfmt import fmt_price
from engine.report.model import from_run_log, opening_plans
from engine.report.svg import bucket, drawdown
from engine.runlog import read_run_log
from engine.timeutil import to_iso
from engine.types import Action, Decision, ExitReason, Side, Trade, TradePlan

SAMPLE = [str(p) for p in SAMPLE_PATHS[:2]]
LAST = "3000"


def _short(ns: int) -> str:
    return to_iso(ns).replace("T", " ").removesuffix("Z")


@pytest.fixture(scope="module")
def run_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "momentum.jsonl"
    code = main(["run", *SAMPLE, "--persona", "momentum", "--last", LAST, "--out", str(out)])
    assert code == 0
    return out


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr data-trade="r0-t\d+"[^>]*>(.*?)</tr>', page, flags=re.S)


def _cells(row: str) -> list[str]:
    return [
        unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def test_report_rows_are_the_runs_trades_with_their_decisions(
    run_log: Path, tmp_path: Path
) -> None:
    page_path = tmp_path / "report.html"
    assert main(["report", str(run_log), "-o", str(page_path)]) == 0
    page = page_path.read_text(encoding="utf-8")
    log = read_run_log(run_log)
    rows = _rows(page)
    assert len(log.trades) > 5 and len(rows) == len(log.trades)
    plans = opening_plans(log.trades, log.decisions)
    for row, trade, (plan, decision) in zip(rows, log.trades, plans, strict=True):
        cells = _cells(row)
        assert cells[1:4] == [trade.instrument, trade.side.value, _short(trade.entry_time)]
        assert cells[4] == fmt_price(trade.entry_price)
        assert cells[5:7] == [_short(trade.exit_time), fmt_price(trade.exit_price)]
        assert cells[8].replace(",", "") == f"{trade.pnl:.2f}" or abs(trade.pnl) < 0.01
        assert cells[10].startswith(trade.exit_reason.value)
        # the decision that opened it: at or before the entry, same instrument and side
        assert plan is not None and decision is not None
        assert decision.time <= trade.entry_time
        assert plan.instrument == trade.instrument
        assert plan.action == (Action.OPEN_LONG if trade.side == Side.LONG else Action.OPEN_SHORT)
        assert cells[11] == fmt_price(plan.stop_loss) and cells[12] == fmt_price(plan.take_profit)
        assert plan.rationale in cells[13] and decision.reasoning in unescape(row)
        assert "persona momentum" in cells[13] and "brain rules" in cells[13]
    # one mark group per trade in the candle charts, with stop and target lines
    marks = re.findall(r'<g class="trade" data-trade="r0-t(\d+)">(.*?)</g>', page, re.S)
    assert sorted(int(n) for n, _ in marks) == list(range(1, len(log.trades) + 1))
    assert all('class="stop"' in g and 'class="target"' in g for _, g in marks)
    assert page.count('<svg class="chart candles"') == 2  # one per instrument
    assert 'class="chart equity"' in page and 'class="chart drawdown"' in page
    # offline: no external resource of any kind
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page)
    urls = re.findall(r"https?://[^\"' <]+", page)
    assert set(urls) == {"http://www.w3.org/2000/svg"}  # the SVG namespace, not a resource


def test_report_metrics_table_matches_the_log(run_log: Path, tmp_path: Path) -> None:
    from engine.commands.tables import fmt_metric, metric_label

    page_path = tmp_path / "r.html"
    assert main(["report", str(run_log), "-o", str(page_path)]) == 0
    page = page_path.read_text(encoding="utf-8")
    table = re.search(r'<table class="metrics">(.*?)</table>', page, re.S).group(1)
    got = dict((_cells(r)[0], _cells(r)[1]) for r in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:])
    log = read_run_log(run_log)
    assert got["persona"] == "momentum" and got["brain"] == "rules"
    per = re.search(r'<table class="metrics per-instrument">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", per, re.S)
    assert _cells(rows[0].replace("th", "td")) == ["metric", "BTC/USDT", "ETH/USDT"]
    by_label = {_cells(r)[0]: _cells(r)[1:] for r in rows[1:]}
    per_inst = log.metrics["per_instrument"]
    key = next(k for k in per_inst["BTC/USDT"] if "trades" in k)
    assert by_label[metric_label(key)] == [
        fmt_metric(key, per_inst[n][key]) for n in ("BTC/USDT", "ETH/USDT")
    ]
    for key in ("final_equity", "total_return_pct", "max_drawdown_pct", "n_trades", "sharpe"):
        assert metric_label(key) in got
        assert got[metric_label(key)] == fmt_metric(key, log.metrics[key])


def test_run_html_and_several_runs_on_one_page(
    run_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html_path = tmp_path / "run.html"
    args = ["run", *SAMPLE, "--persona", "scalper", "--last", LAST]
    assert (
        main([*args, "--json", "--html", str(html_path), "--out", str(tmp_path / "s.jsonl")]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    page = html_path.read_text(encoding="utf-8")
    rows = _rows(page)
    assert len(rows) == len(data["trades"]) > 0
    for row, trade in zip(rows, data["trades"], strict=True):
        cells = _cells(row)
        assert cells[1] == trade["instrument"] and cells[2] == trade["side"]
        assert cells[3] == trade["entry_time"].replace("T", " ").removesuffix("Z")
        assert cells[4] == fmt_price(trade["entry_price"])
    both = tmp_path / "both.html"
    assert main(["report", str(run_log), str(tmp_path / "s.jsonl"), "-o", str(both)]) == 0
    page = both.read_text(encoding="utf-8")
    assert "<h2>comparison</h2>" in page
    header = re.search(r'<table class="metrics"><thead><tr>(.*?)</tr>', page).group(1)
    assert _cells(header.replace("th", "td")) == ["metric", "momentum", "s"]
    assert page.count('<section class="run"') == 2
    assert len(re.findall(r'<tr data-trade="r1-t\d+"', page)) == len(data["trades"])


def test_report_without_candles_says_so(run_log: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "lonely.jsonl"
    text = run_log.read_text(encoding="utf-8").replace("SYNTHETIC_", "MISSING_")
    lonely.write_text(text, encoding="utf-8")
    run = from_run_log(lonely)
    assert run.candles == [] and len(run.notes) == 2 and "--data" in run.notes[0]
    out = tmp_path / "x.html"
    assert main(["report", str(lonely), "-o", str(out), "--data", *SAMPLE]) == 0
    assert out.read_text(encoding="utf-8").count('<svg class="chart candles"') == 2


def test_opening_plan_is_the_latest_before_entry() -> None:
    def plan(action: Action, stop: float) -> TradePlan:
        return TradePlan("X/USDT", action, None, 0.01, stop_loss=stop, take_profit=stop + 10)

    decisions = [
        Decision(10, "rules", "", (plan(Action.OPEN_LONG, 1.0),), "first"),
        Decision(20, "rules", "", (plan(Action.OPEN_SHORT, 2.0),), "short one"),
        Decision(30, "rules", "", (plan(Action.OPEN_LONG, 3.0),), "second"),
    ]
    trade = Trade("X/USDT", Side.LONG, 25, 1.0, 40, 2.0, 1.0, 1.0, 0.0, ExitReason.STOP)
    early = Trade("X/USDT", Side.LONG, 5, 1.0, 40, 2.0, 1.0, 1.0, 0.0, ExitReason.STOP)
    (p1, d1), (p2, d2) = opening_plans([trade, early], decisions)
    assert d1 is not None and d1.reasoning == "first" and p1 is not None and p1.stop_loss == 1.0
    assert p2 is None and d2 is None


def test_bucketing_keeps_extremes_and_drawdown_by_hand() -> None:
    from engine.report.model import Candles

    t = np.arange(10, dtype=np.int64) * 60_000_000_000
    o = np.arange(10, dtype=float)
    c = Candles("X", "1m", t, o, o + 5, o - 5, o + 1)
    bt, bo, bh, bl, bc = bucket(c, 4)  # 3 candles per bar: 4 bars
    assert bt.tolist() == [t[0], t[3], t[6], t[9]]
    assert bo.tolist() == [0, 3, 6, 9] and bc.tolist() == [3, 6, 9, 10]
    assert bh.tolist() == [7, 10, 13, 14] and bl.tolist() == [-5, -2, 1, 4]
    assert drawdown(np.array([100.0, 110.0, 99.0, 120.0])).tolist() == pytest.approx(
        [0.0, 0.0, -10.0, 0.0]
    )


def test_compare_html_puts_every_persona_on_one_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "compare.html"
    argv = ["compare", *SAMPLE, "--personas", "scalper,momentum", "--last", LAST, "--json"]
    assert main([*argv, "--html", str(out)]) == 0
    records = json.loads(capsys.readouterr().out)
    page = out.read_text(encoding="utf-8")
    assert "<h2>comparison</h2>" in page and page.count('<section class="run"') == 2
    for i, record in enumerate(records):
        rows = re.findall(rf'<tr data-trade="r{i}-t\d+"[^>]*>(.*?)</tr>', page, flags=re.S)
        assert len(rows) == len(record["trades"]) > 0
        for row, trade in zip(rows, record["trades"], strict=True):
            cells = _cells(row)
            assert cells[1:3] == [trade["instrument"], trade["side"]]
            assert cells[5] == trade["exit_time"].replace("T", " ").removesuffix("Z")
            assert cells[6] == fmt_price(trade["exit_price"])


def test_zoom_data_holds_the_window_candles(run_log: Path, tmp_path: Path) -> None:
    from engine.data import load_many, select

    out = tmp_path / "z.html"
    assert main(["report", str(run_log), "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    blobs = re.findall(
        r'<script type="application/json" class="candles" data-run="r0" data-inst="([^"]+)">'
        r"(.*?)</script>",
        page,
        re.S,
    )
    assert [name for name, _ in blobs] == ["BTC/USDT", "ETH/USDT"]
    series = [select(s, last=int(LAST)) for s in load_many(SAMPLE)]
    for (_, text), s in zip(blobs, series, strict=True):
        data = json.loads(text)
        times = data["t0"] + np.asarray(data["t"]) * data["tf"]
        assert times.tolist() == (np.asarray(s.open_time) // 1_000_000).tolist()
        for key, col in (("o", s.open), ("h", s.high), ("l", s.low), ("c", s.close)):
            assert np.allclose(data[key], col, rtol=1e-9, atol=0)
    # each trade row carries what the zoom draws
    log = read_run_log(run_log)
    first = re.search(r'<tr data-trade="r0-t1" ([^>]*)>', page).group(1)
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', first))
    trade = log.trades[0]
    assert int(attrs["et"]) == trade.entry_time // 1_000_000
    assert float(attrs["ep"]) == trade.entry_price and float(attrs["xp"]) == trade.exit_price
    assert attrs["inst"] == trade.instrument and attrs["side"] == trade.side.value
