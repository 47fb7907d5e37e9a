"""The audit trail: raw answer in the Decision and the run log; the prompt view's text."""

from __future__ import annotations

import json

from engine.backtest import BacktestEngine
from engine.brain.audit import audit_text
from engine.brain.ollama_brain import OllamaBrain
from engine.data import load, select
from engine.runlog import read_run_log, write_run_log
from tests.fake_ollama import FakeOllama
from tests.test_ai_support import persona


def test_raw_answer_and_grounding_survive_the_run_log_and_show_in_the_audit(btc_1m_csv, tmp_path):
    series = load(btc_1m_csv)
    window = [select(series, end=int(series.open_time[120]))]
    strict = persona(allowed_directions=("short",))
    with FakeOllama() as fake:
        fake.queue("out_of_range", "ok")  # one bad answer first: an error on record
        brain = OllamaBrain(host=fake.url, timeout=3.0, gate=False)
        result = BacktestEngine(window, strict, brain).run()
    asked = [d for d in result.decisions if d.prompt]
    assert asked and all(d.raw_answer for d in asked)
    first = asked[0]
    assert json.loads(first.raw_answer)["BTC-PERP"]["do"] == "hold"  # no open_long offered
    path = tmp_path / "run.jsonl"
    write_run_log(path, result, persona=strict)
    back = read_run_log(path).decisions
    assert [d.raw_answer for d in back] == [d.raw_answer for d in result.decisions]
    assert [(d.grounded, d.grounding) for d in back] == [
        (d.grounded, d.grounding) for d in result.decisions
    ]
    text = audit_text(first)
    sections = ["── prompt", "── raw answer", "── parsed plans", "── grounding", "── corrections"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    assert first.prompt in text and first.raw_answer in text
    assert "── errors" in text and "invalid answer" in text  # the first attempt's fault
    assert "- BTC-PERP hold" in text
    assert "number 28 is not in the prompt" in text  # the fake's reasoning is ungrounded here
