"""The circuit breaker for LLM servers (issue 12, item 13): a hand-driven clock for the
rules, and a 240-candle replay against a server that accepts and never answers."""

from __future__ import annotations

import time

import pytest

from engine.backtest import BacktestEngine
from engine.brain.breaker import CircuitBreaker
from engine.brain.ollama_brain import OllamaBrain
from engine.brain.rules import RuleBrain
from engine.data import load, select
from engine.types import Action
from tests.fake_ollama import FakeOllama
from tests.test_ai_support import persona


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_failures_and_probes_after_a_growing_cooldown() -> None:
    clock, said = Clock(), []
    b = CircuitBreaker(
        "srv", threshold=3, cooldown_s=60, max_cooldown_s=200, clock=clock, announce=said.append
    )
    b.failure("timeout")
    b.failure("timeout")
    assert b.blocked() is None and not b.is_open  # two failures: still asking
    b.failure("timeout")
    assert b.is_open and said == [
        "srv failed 3 calls in a row (timeout): holding without asking it for 60 s, then "
        "trying once more (each further failure doubles the wait)"
    ]
    assert b.blocked() == (
        "circuit open: srv failed 3 calls in a row (last: timeout); holding without asking "
        "for 60 s more"
    )
    clock.now += 59
    assert b.blocked() is not None
    clock.now += 1
    assert b.blocked() is None  # the cool-down is over: one probe may go
    b.failure("timeout")  # the probe failed: 120 s
    clock.now += 119
    assert b.blocked() is not None
    clock.now += 1
    assert b.blocked() is None
    b.failure("timeout")  # 240 s, capped at 200
    clock.now += 199
    assert b.blocked() is not None
    clock.now += 1
    assert b.blocked() is None
    b.success()  # an answer closes it and resets the cool-down
    assert not b.is_open and b.failures == 0 and b.cooldown_s == 60
    for _ in range(3):
        b.failure("refused")
    assert b.is_open and len(said) == 1  # said once, not at every opening


def test_a_bad_answer_is_an_answer() -> None:
    b = CircuitBreaker(threshold=2, announce=None)
    b.failure("timeout")
    b.success()
    b.failure("timeout")
    assert not b.is_open


@pytest.fixture(scope="module")
def window(btc_1m_csv):
    series = load(btc_1m_csv)
    return [select(series, end=int(series.open_time[240]))]


def test_a_black_hole_server_costs_at_most_three_timeouts(window, capsys) -> None:
    timeout = 1.0
    started = time.perf_counter()
    rules = BacktestEngine(window, persona(), RuleBrain(persona())).run()
    rules_s = time.perf_counter() - started
    with FakeOllama() as fake:
        fake.queue(*["hang"] * 50)
        brain = OllamaBrain(host=fake.url, timeout=timeout, retries=1)
        started = time.perf_counter()
        result = BacktestEngine(window, persona(), brain).run()
        elapsed = time.perf_counter() - started
        asked = len(fake.requests)
    assert rules.decisions and len(result.decisions) >= 10
    assert asked == 3  # three calls, each a timeout; then the breaker holds without asking
    assert elapsed <= 3 * timeout + rules_s + 2.0, (elapsed, rules_s)
    held = result.decisions[3:]
    assert all(d.errors[0].startswith("circuit open: ollama model") for d in held)
    assert all(p.action is Action.HOLD for d in result.decisions for p in d.plans)
    err = capsys.readouterr().err
    assert err.count("tapedeck: warning:") == 1 and "failed 3 calls in a row" in err
