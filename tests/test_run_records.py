"""run --json trades carry ``ambiguous``; the run log of an LLM run keeps each decision's
real latency (issue 12, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.runlog import read_run_log
from tests.fake_ollama import FakeOllama


def test_run_json_trades_carry_ambiguous_as_the_run_log_does(
    btc_1m_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "run.jsonl"
    args = ["run", str(btc_1m_csv), "--persona", "scalper", "--last", "20000", "--json"]
    assert main([*args, "--out", str(log)]) == 0
    trades = json.loads(capsys.readouterr().out)["trades"]
    logged = read_run_log(log).trades
    assert [t["ambiguous"] for t in trades] == [t.ambiguous for t in logged]
    assert any(t["ambiguous"] for t in trades)  # this window has stop-and-target candles
    assert all(isinstance(t["ambiguous"], bool) for t in trades)


def test_an_llm_run_log_records_each_decisions_real_latency(
    btc_1m_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "llm.jsonl"
    with FakeOllama() as fake:
        code = main(
            [
                "run",
                str(btc_1m_csv),
                "--last",
                "240",
                "--brain",
                "ollama",
                "--host",
                fake.url,
                "--no-cache",
                "--json",
                "--out",
                str(log),
            ]
        )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    decisions = read_run_log(log).decisions
    asked = [d for d in decisions if d.tokens or d.errors]
    assert asked and all(d.latency_s > 0 for d in asked)
    mean = sum(d.latency_s for d in asked) / len(asked)
    assert out["brain"]["mean_latency_s"] == pytest.approx(mean, rel=0.5)
