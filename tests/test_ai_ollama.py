"""OllamaBrain through the real ``ollama`` client over a real socket, every fault injected."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from engine.brain.ollama_brain import OllamaBrain
from engine.types import Action
from tests.fake_ollama import DIGEST, FakeOllama, refused_url
from tests.test_ai_support import batch, long_position, persona, portfolio


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


def brain_for(url: str, **kw) -> OllamaBrain:
    kw.setdefault("timeout", 3.0)
    return OllamaBrain(host=url, **kw)


def is_hold(decision) -> bool:
    return decision.plans and all(p.action is Action.HOLD for p in decision.plans)


def test_streamed_answer_becomes_absolute_plans_and_reasoning_streams(fake):
    brain = brain_for(fake.url, timeframe_ns=60_000_000_000)
    seen: list[str] = []
    decision = brain.decide(batch(), portfolio(), persona(), on_reasoning=seen.append)
    assert decision.errors == ()
    assert decision.brain == "ollama" and decision.model == "phi3:mini"
    (plan,) = decision.plans
    assert plan.action is Action.OPEN_LONG
    # 1.5 and 3.0 ATR around the context price 46210.5 with ATR 35.2
    assert plan.stop_loss == pytest.approx(46_210.5 - 1.5 * 35.2)
    assert plan.take_profit == pytest.approx(46_210.5 + 3.0 * 35.2)
    assert plan.size == pytest.approx(0.0075)  # medium = 0.75 x persona risk
    assert plan.trailing is not None and plan.trailing.atr == pytest.approx(35.2)
    assert plan.trailing.distance == 1.0 and plan.trailing.activation == 0.5
    full = 'RSI 28 is oversold below 30 and "momentum" turns up.\nGo long.'
    assert decision.reasoning == full
    assert decision.grounded is True and decision.grounding == ()
    assert decision.raw_answer is not None and json.loads(decision.raw_answer)["BTC"]["do"] == (
        "long"
    )
    # streamed in 9-character pieces: several growing prefixes, escapes decoded
    assert len(seen) > 3
    assert all(full.startswith(s) for s in seen)
    assert all(len(a) <= len(b) for a, b in itertools.pairwise(seen))
    assert seen[-1] == full
    assert decision.tokens > 0


def test_request_carries_schema_options_keep_alive_and_readable_prompt(fake):
    brain = brain_for(fake.url, keep_alive="3m", options={"num_ctx": 8192})
    decision = brain.decide(batch(), portfolio(), persona())
    (req,) = fake.requests
    assert req["model"] == "phi3:mini"
    assert req["stream"] is True
    assert req["keep_alive"] == "3m"
    assert list(req["format"]["properties"]) == ["BTC"]
    assert req["format"]["properties"]["BTC"]["properties"]["do"]["enum"] == [
        "long",
        "short",
        "hold",
    ]
    # persona's [brain] table, then explicit options on top
    assert req["options"] == {"temperature": 0.0, "seed": 7, "num_predict": 300, "num_ctx": 8192}
    user = req["messages"][1]["content"]
    assert "rsi_oversold" in user and "46210" in user and "ATR 0.08% of price" in user
    assert decision.prompt is not None and user in decision.prompt
    # no dates or clock times in the prompt
    assert "2022" not in decision.prompt


def test_host_from_environment(fake, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", fake.url)
    brain = OllamaBrain(timeout=3.0)
    assert brain.host == fake.url
    assert brain.decide(batch(), portfolio(), persona()).errors == ()


def test_identity_uses_the_digest_and_check_finds_model(fake):
    brain = brain_for(fake.url)
    assert brain.check() is None
    assert brain.identity() == f"phi3:mini@{DIGEST}"
    other = brain_for(fake.url, model="llama3.2")
    reason = other.check()
    assert reason is not None and "ollama pull llama3.2" in reason


def test_unreachable_server_is_a_hold_with_reason():
    brain = brain_for(refused_url(), retries=1)
    decision = brain.decide(batch(), portfolio(), persona())
    assert is_hold(decision)
    assert len(decision.errors) == 2  # one retry
    assert all("unreachable" in e and "ollama serve" in e for e in decision.errors)
    assert brain.check() is not None and "unreachable" in brain.check()


def test_model_not_pulled_names_the_pull_command_and_does_not_retry(fake):
    brain = brain_for(fake.url, model="qwen2.5:0.5b", retries=2)
    decision = brain.decide(batch(), portfolio(), persona())
    assert is_hold(decision)
    (error,) = decision.errors
    assert "`ollama pull qwen2.5:0.5b`" in error
    assert len(fake.requests) == 1


def test_hang_past_the_timeout_is_a_hold_within_bounded_time(fake):
    fake.queue("hang")
    brain = brain_for(fake.url, timeout=0.5, retries=3)
    start = time.perf_counter()
    decision = brain.decide(batch(), portfolio(), persona())
    elapsed = time.perf_counter() - start
    assert is_hold(decision)
    (error,) = decision.errors  # a timeout is not retried
    assert "timeout" in error
    assert elapsed < 3.0


# Fake-server faults that fail one attempt, and a phrase the recorded error contains.
TRANSIENT_FAULTS = [
    ("http500", "HTTP 500"),
    ("midstream_error", "middle of the stream"),
    ("truncated", "broken stream"),
    ("no_done", "truncated"),
    ("malformed", "invalid JSON"),
    ("garbage_line", "broken stream"),
    ("out_of_range", "invalid answer"),
    ("unknown_instrument", "unknown instrument"),
]


@pytest.mark.parametrize(("behaviour", "needle"), TRANSIENT_FAULTS)
def test_transient_fault_is_retried_then_answers(fake, behaviour, needle):
    fake.queue(behaviour)
    brain = brain_for(fake.url, retries=1)
    decision = brain.decide(batch(), portfolio(), persona())
    assert [p.action for p in decision.plans] == [Action.OPEN_LONG]
    (error,) = decision.errors  # the first attempt's fault stays on record
    assert needle in error
    assert len(fake.requests) == 2
    assert fake.requests[1]["options"]["seed"] == 8  # a retry samples anew


@pytest.mark.parametrize(("behaviour", "needle"), TRANSIENT_FAULTS)
def test_persistent_fault_is_a_hold_after_bounded_retries(fake, behaviour, needle):
    fake.queue(*[behaviour] * 5)
    brain = brain_for(fake.url, retries=2)
    decision = brain.decide(batch(), portfolio(), persona())
    assert is_hold(decision)
    assert len(decision.errors) == 3
    assert all(needle in e for e in decision.errors)
    assert len(fake.requests) == 3


def test_done_reason_length_is_a_hold_naming_num_predict(fake):
    fake.queue("length")
    brain = brain_for(fake.url, retries=2)
    decision = brain.decide(batch(), portfolio(), persona())
    assert is_hold(decision)
    (error,) = decision.errors
    assert "done_reason length" in error and "num_predict (now 300)" in error


def test_failing_reasoning_callback_does_not_stop_the_decision(fake):
    def explode(text: str) -> None:
        raise RuntimeError("display broke")

    decision = brain_for(fake.url).decide(batch(), portfolio(), persona(), on_reasoning=explode)
    assert decision.errors == () and decision.plans[0].action is Action.OPEN_LONG


def test_non_streaming_protocol_of_the_fake_matches_the_client(fake):
    # the fake's single-JSON reply parses with the official client like Ollama's
    brain = brain_for(fake.url)
    reply = brain.client.chat(
        model="phi3:mini",
        messages=[{"role": "user", "content": "hi"}],
        format=json.loads(json.dumps(brain.prompt_for(batch(), portfolio(), persona()).schema)),
    )
    assert reply.done and reply.done_reason == "stop"
    assert json.loads(reply.message.content)["BTC"]["do"] == "long"
    shown = brain.client.show("phi3:mini")
    assert shown.capabilities == ["completion"]


def test_position_review_prompt_mentions_position_in_candles(fake):
    brain = brain_for(fake.url, timeframe_ns=60_000_000_000, gate=False)
    decision = brain.decide(batch(kinds=()), portfolio(positions=(long_position(),)), persona())
    assert "open long position, +0.46% since entry" in decision.prompt
    assert "held 12 candles" in decision.prompt
    assert "Decide: BTC (hold, close)" in decision.prompt
