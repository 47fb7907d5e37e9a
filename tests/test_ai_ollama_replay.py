"""A full replay of real candles with OllamaBrain over a socket, faults injected on the way:
the replay completes and every fault is a recorded hold. (The call gate is off so that
every decision is a request; its own test is the last one.)"""

from __future__ import annotations

import json
import re

import pytest

from engine.backtest import BacktestEngine
from engine.brain.cache import CachingBrain, DecisionCache
from engine.brain.ollama_brain import OllamaBrain
from engine.data import load, select
from engine.types import Action
from tests.fake_ollama import FakeOllama, refused_url
from tests.test_ai_support import persona

FAULTS = [
    ("hang", "timeout"),
    ("http404", "`ollama pull phi3:mini`"),
    ("http500", "HTTP 500"),
    ("midstream_error", "middle of the stream"),
    ("truncated", "broken stream"),
    ("no_done", "truncated"),
    ("length", "done_reason length"),
    ("malformed", "invalid JSON"),
    ("garbage_line", "broken stream"),
    ("out_of_range", "invalid answer"),
    ("unknown_instrument", "unknown instrument"),
]


@pytest.fixture(scope="module")
def window(btc_1m_csv):
    series = load(btc_1m_csv)
    return [select(series, end=int(series.open_time[240]))]


def test_replay_with_every_fault_completes_and_records_holds(window, tmp_path):
    with FakeOllama() as fake:
        for behaviour, _ in FAULTS:
            fake.queue(behaviour, "ok")  # a fault, then a good answer
        # a first call of one timeout: a hang then does not open the circuit breaker
        brain = OllamaBrain(
            host=fake.url, timeout=0.5, first_call_timeout=0.5, retries=0, gate=False
        )
        reasoning: list[str] = []
        engine = BacktestEngine(window, persona(), brain, on_reasoning=reasoning.append)
        result = engine.run()
    decisions = result.decisions
    assert len(decisions) >= 2 * len(FAULTS)
    assert len(fake.requests) == len(decisions)
    for i, (behaviour, needle) in enumerate(FAULTS):
        bad, good = decisions[2 * i], decisions[2 * i + 1]
        assert len(bad.errors) == 1 and needle in bad.errors[0], (behaviour, bad.errors)
        assert all(p.action is Action.HOLD for p in bad.plans)
        assert good.errors == () and good.reasoning.startswith("RSI 28 is oversold")
    assert all(d.errors == () for d in decisions[2 * len(FAULTS) :])
    assert result.brain_stats["errors"] == len(FAULTS)
    assert result.brain_stats["calls"] == len(decisions)
    assert result.trades  # the good answers traded
    assert reasoning  # streamed to the callback during the replay


def test_replay_against_an_unreachable_server_holds_throughout(window):
    brain = OllamaBrain(host=refused_url(), timeout=1.0, retries=1, gate=False)
    result = BacktestEngine(window, persona(), brain).run()
    assert result.decisions and not result.trades and not result.fills
    assert all(d.errors and "unreachable" in d.errors[0] for d in result.decisions)
    assert result.brain_stats["errors"] == len(result.decisions)
    assert result.final_equity == pytest.approx(10_000.0)


def test_replay_rerun_hits_the_cache_on_every_decision(window, tmp_path):
    with FakeOllama() as fake:
        cache = DecisionCache(tmp_path / "c.db")
        first = BacktestEngine(
            window,
            persona(),
            CachingBrain(OllamaBrain(host=fake.url, timeout=3.0, gate=False), cache),
        ).run()
        calls = len(fake.requests)
        second = BacktestEngine(
            window,
            persona(),
            CachingBrain(OllamaBrain(host=fake.url, timeout=3.0, gate=False), cache),
        ).run()
    assert calls == len(first.decisions) and len(fake.requests) == calls
    assert second.brain_stats["cache_hits"] == len(second.decisions) == len(first.decisions)
    assert first.brain_stats["cache_hits"] == 0
    assert [d.plans for d in second.decisions] == [d.plans for d in first.decisions]
    assert second.trades == first.trades


def test_gate_skips_weightless_batches_and_reviews_nobody_needs(window):
    momentum = persona(
        signal_weights={"ema_cross_up": 1.2, "ema_cross_down": 1.2, "bb_breakout_up": 1.2},
        entry_threshold=1.0,
    )
    with FakeOllama() as fake:
        brain = OllamaBrain(host=fake.url, timeout=3.0)
        result = BacktestEngine(window, momentum, brain).run()
    skipped = [d for d in result.decisions if d.reasoning.startswith("no model call")]
    asked = [d for d in result.decisions if d not in skipped]
    assert skipped and asked and len(fake.requests) == len(asked) == brain.stats["calls"]
    assert brain.stats["skipped"] == len(skipped) == result.brain_stats["skipped"]
    assert result.brain_stats["calls"] == len(asked)
    assert all(d.tokens == 0 and d.prompt is None for d in skipped)
    assert all(p.action is Action.HOLD for d in skipped for p in d.plans)


def test_anonymised_replay_sends_no_symbol_date_or_original_price(window, btc_1m_csv):
    from engine.cli import main

    with FakeOllama() as fake:
        brain = OllamaBrain(host=fake.url, timeout=3.0, gate=False, anonymise=True)
        result = BacktestEngine(window, persona(), brain).run()
        assert result.trades  # the answers, keyed by "A", still trade BTC-PERP
        args = ["run", str(btc_1m_csv), "--last", "120", "--brain", "ollama", "--host"]
        code = main([*args, fake.url, "--anonymise", "--no-cache", "--json"])
    assert code == 0
    prices = {f"{x:.0f}"[:4] for x in window[0].close}  # 4618, 4620, ... (BTC ~46k)
    assert fake.requests
    for req in fake.requests:
        text = json.dumps(req)
        assert "BTC" not in text and "PERP" not in text
        assert not re.search(r"20(21|22)", text)  # no year, no date
        assert not any(p in text for p in prices), [p for p in prices if p in text]
        assert list(req["format"]["properties"]) == ["A"]
