"""Labels a person reads (issue 12, item 5): no internal names, no duplicate rows."""

from __future__ import annotations

import pytest

from engine.cli import main
from engine.commands.tables import fmt_duration, fmt_metric, metric_label, scalar_items
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "engine" / "data" / "samples" / "SYNTHETIC_BTC_USDT-1m.csv"
D = 86_400 * 10**9


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("max_drawdown_duration_ns", "max drawdown duration"),
        ("avg_holding_ns", "avg holding"),
        ("total_return_pct", "total return"),
        ("expectancy", "expectancy (mean pnl)"),
        ("expectancy_pct", "expectancy (mean return)"),
        ("mean_latency_s", "mean latency (s)"),
        ("n_trades", "trades"),
    ],
)
def test_metric_labels(key: str, label: str) -> None:
    assert metric_label(key) == label


def test_durations_read_as_days_hours_minutes() -> None:
    assert fmt_duration(D + 2 * 3600e9 + 3 * 60e9) == "1d 02:03"
    assert fmt_duration(3 * 60e9) == "00:03"
    assert fmt_duration(3 * D + 4 * 3600e9 + 5 * 60e9 + 6e9) == "3d 04:05:06"
    assert fmt_metric("avg_holding_ns", float(D + 2 * 3600e9 + 3 * 60e9)) == "1d 02:03"


def test_fees_are_one_row_unless_they_differ() -> None:
    same = dict(scalar_items({"trade_fees": 1.0000000000001, "fees_paid": 1.0}))
    assert "trade_fees" not in same and same["fees_paid"] == 1.0
    assert set(dict(scalar_items({"trade_fees": 1.0, "fees_paid": 1.5}))) == {
        "trade_fees",
        "fees_paid",
    }


def test_run_table_has_no_internal_names_and_no_duplicate_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", str(SAMPLE), "--last", "2000", "--persona", "scalper"]) == 0
    out = capsys.readouterr().out
    rows = [line.split("│")[1].strip() for line in out.splitlines() if line.count("│") == 3]
    assert rows and len(rows) == len(set(rows))
    assert not any(r.endswith((" ns", " pct")) for r in rows)
    assert "trade fees" not in rows and "fees paid" in rows


def test_persona_messages_use_the_personas_spelling(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SAMPLE), "--persona", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "mean-reversion" in err and "mean_reversion" not in err


def test_run_help_states_the_metrics_convention(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "per-bar returns, risk-free rate 0" in out
    assert "annualised by the calendar time the window covers" in out and "365-day year" in out


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0.0"), (8.87e-06, "<0.1"), (0.0001, "0.1"), (0.0123, "12.3"), (2.5, "2,500.0")],
)
def test_mean_latency_reads_in_milliseconds_never_as_an_exponent(seconds: float, text: str) -> None:
    from engine.commands.tables import latency_ms

    assert latency_ms(seconds) == text
